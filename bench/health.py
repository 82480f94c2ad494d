"""What seeing training from inside costs.

1. Run-health recording (charrnn.health): the same training run with and
   without it, side by side in alternating rounds (median of rounds), at
   the default --eval-every 500, so each run includes its evaluations:
   the per-step figures (gradient norm, clipped share, update/weight
   ratios) and the per-evaluation ones (saturation, gradient memory).
2. `inspect --gradients` on 10,000 characters of tiny Shakespeare with a
   2 x 256 LSTM (lags 0..50): seconds.

    python bench/health.py                 # both
    python bench/health.py --rounds 5 --iters 1000

Give it the machine to itself: it measures time.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from charrnn.nn.blas import configure_env  # noqa: E402  (numpy-free)

configure_env()

import numpy as np  # noqa: E402

from charrnn.nn import optim  # noqa: E402
from charrnn.runs import health  # noqa: E402
from charrnn.text import data  # noqa: E402
from charrnn.runs.config import make_train_config  # noqa: E402
from charrnn.runs.trainer import Trainer  # noqa: E402
from charrnn.text.corpus import Corpus

CORPUS = os.path.join(ROOT, "corpora", "tinyshakespeare.txt")
CONFIGS = {
    "rnn 1x128 (default)": dict(model="rnn"),
    "lstm 2x256 (default)": dict(model="lstm"),
}


def corpus() -> Corpus:
    text = open(CORPUS, encoding="utf-8").read()
    vocab = data.build_vocab(text)
    return Corpus(ids=data.encode(text, vocab), vocab=vocab, sources=[CORPUS])


class Off:
    """Health recording switched off: the figures are neither computed nor kept."""

    def __enter__(self):
        self.saved = (health.Span.add, health.measure, optim._record)
        health.Span.add = lambda self, *a: None
        health.measure = lambda model, ids: {}
        optim._record = lambda *a: None

    def __exit__(self, *exc):
        health.Span.add, health.measure, optim._record = self.saved


def train_seconds(c: Corpus, opts: dict, iters: int, tmp: str) -> float:
    cfg = make_train_config(**opts, max_iters=iters, eval_every=500)
    tr = Trainer(cfg, c, tmp)
    t0 = time.perf_counter()
    tr.run(progress=False)
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--iters", type=int, default=1000, help="training iterations per run")
    ap.add_argument("--only", choices=["train", "gradients"], default=None)
    args = ap.parse_args()
    import tempfile
    c = corpus()
    if args.only != "gradients":
        print(f"run-health recording, {args.iters} iterations at --eval-every 500, "
              f"median of {args.rounds} alternating rounds")
        for name, opts in CONFIGS.items():
            on, off = [], []
            for _ in range(args.rounds):
                with tempfile.TemporaryDirectory() as d:
                    with Off():
                        off.append(train_seconds(c, opts, args.iters, d))
                with tempfile.TemporaryDirectory() as d:
                    on.append(train_seconds(c, opts, args.iters, d))
            a, b = statistics.median(off), statistics.median(on)
            print(f"  {name:<22} without {a:7.2f} s   with {b:7.2f} s   "
                  f"overhead {100 * (b - a) / a:+5.1f} %")
    if args.only != "train":
        from charrnn.nn.gradflow import gradient_flow
        from charrnn.nn.model import Model, ModelConfig, init_params
        cfg = ModelConfig(vocab_size=len(c.vocab), model="lstm", hidden_size=256, num_layers=2)
        model = Model(cfg, init_params(cfg, np.random.default_rng(0)))
        ids = c.ids[:10_000]
        t0 = time.perf_counter()
        gradient_flow(model, ids, 50)
        print(f"inspect --gradients: 10,000 characters, 2 x 256 lstm, lags 0..50: "
              f"{time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
