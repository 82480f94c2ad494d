"""Training throughput (chars/s): charrnn's batched model vs the classic
batch-1 per-character reference (tests/reference_rnn.py), measured side by
side in one process, in alternating rounds, median of rounds.

    python bench/throughput.py                 # hidden 100, default batch/seq
    python bench/throughput.py --hidden 256 --batch 64 --rounds 5
"""
from __future__ import annotations

import argparse
import os

# as the charrnn command does (cli._default_blas_threads); must precede numpy
if not any(v in os.environ for v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")):
    os.environ["OPENBLAS_NUM_THREADS"] = "1"
import statistics
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests"))

from charrnn.train import Trainer, TrainConfig, load_corpus  # noqa: E402
import reference_rnn  # noqa: E402

CORPUS = os.path.join(ROOT, "corpora", "tinyshakespeare.txt")


def rate(fn, seconds):
    """Call fn() (which returns chars processed) for ~seconds; chars/s."""
    fn()  # warm-up
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        n += fn()
    return n / (time.perf_counter() - t0)


def reference_stepper(ids, V, H, seq_len, seed=0):
    """The classic loop: one chunk of seq_len chars per call, batch 1, float64."""
    rng = np.random.default_rng(seed)
    params = [rng.standard_normal((H, V)) * 0.01, rng.standard_normal((H, H)) * 0.01,
              rng.standard_normal((V, H)) * 0.01, np.zeros((H, 1)), np.zeros((V, 1))]
    mems = [np.zeros_like(p) for p in params]
    st = {"p": 0, "h": np.zeros((H, 1))}
    data = ids.tolist()

    def step():
        p = st["p"]
        if p + seq_len + 1 >= len(data):
            p, st["h"] = 0, np.zeros((H, 1))
        loss, *grads, st["h"] = reference_rnn.loss_and_grads(
            data[p:p + seq_len], data[p + 1:p + seq_len + 1], st["h"], *params)
        reference_rnn.clip_and_adagrad(params, grads, mems, lr=0.1)
        st["p"] = p + seq_len
        return seq_len
    return step


def ours_stepper(corpus, **cfg):
    tr = Trainer(TrainConfig(val_frac=0.0, **cfg), corpus, tempfile.mkdtemp())
    per_step = tr.cfg.batch_size * tr.cfg.seq_len

    def step():
        tr.step()
        return per_step
    return step


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hidden", type=int, default=100)
    ap.add_argument("--batch", type=int, default=TrainConfig.batch_size)
    ap.add_argument("--seq", type=int, default=TrainConfig.seq_len)
    ap.add_argument("--ref-seq", type=int, default=25, help="the classic script's seq_length")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=3.0, help="per measurement")
    a = ap.parse_args()
    corpus = load_corpus([CORPUS])
    V = len(corpus.vocab)
    ref = reference_stepper(corpus.ids, V, a.hidden, a.ref_seq)
    ours = ours_stepper(corpus, hidden_size=a.hidden, batch_size=a.batch, seq_len=a.seq)
    r_ref, r_ours = [], []
    for _ in range(a.rounds):
        r_ref.append(rate(ref, a.seconds))
        r_ours.append(rate(ours, a.seconds))
    mr, mo = statistics.median(r_ref), statistics.median(r_ours)
    print(f"rnn hidden {a.hidden}: reference batch 1 seq {a.ref_seq} float64: {mr:10,.0f} chars/s")
    print(f"rnn hidden {a.hidden}: charrnn batch {a.batch} seq {a.seq} float32: {mo:10,.0f} chars/s")
    print(f"speed-up: {mo / mr:.1f}x  (median of {a.rounds} alternating rounds of {a.seconds:.0f} s)")


if __name__ == "__main__":
    main()
