"""Training and sampling speed, measured side by side in one run.

For each configuration, in alternating rounds (median of rounds):
  ours       charrnn's Trainer.train_step() (float32, Adagrad, clip 5), chars/s
  ref b1     the classic per-character algorithm (tests/reference_rnn.py,
             batch 1, seq 25, float64) -- vanilla RNN only
  torch      PyTorch CPU, same model and sizes (one-hot input to nn.RNN /
             nn.LSTM / nn.GRU, nn.Linear output, summed cross-entropy / B,
             Adagrad, clip_grad_value_ 5, float32, default threads);
             skipped with a note when torch is not installed
  GEMM ceil  the float32 numpy matmuls of exactly the shapes one of our
             training steps runs, and nothing else: chars/s if a step took
             only that long (the fastest of: one thread; two BLAS threads;
             split across our worker threads as the step is)
  sampling   chars/s generating one character per step at batch 1:
             charrnn.generate.sample.generate vs the same loop in PyTorch (and the
             classic script's sampler for rnn); sampling's ceiling is the
             numpy matrix-vector products of one step (bandwidth bound).
  batched    `charrnn sample --num-samples 64 --len 1000`: total chars/s of
             the batched generator (charrnn.generate.batch.iter_batch, all samples
             side by side; also held to one thread) vs the one-at-a-time
             path it replaced (each sample alone through iter_chars, timed
             on 8 of the samples: its rate does not depend on how many);
             beside it PyTorch generating the same batch (torch), and two
             ceilings: the model's steps on all rows without softmax or
             drawing (cell steps) and their matmuls alone (GEMMs), each the
             best of one thread, two BLAS threads and two worker threads.

    python bench/throughput.py                         # all configurations
    python bench/throughput.py --only lstm2x512 --rounds 5 --seconds 4

On a shared machine hold a lock so timings don't overlap:
    flock /tmp/charrnn-bench.lock python bench/throughput.py
"""
from __future__ import annotations

import argparse
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests"))

from charrnn.nn.blas import configure_env  # noqa: E402  (numpy-free)

configure_env()   # as the charrnn command does; must precede numpy

import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from charrnn.nn import blas, parallel  # noqa: E402
from charrnn.generate.batch import iter_batch  # noqa: E402
from charrnn.generate.sample import generate, sample_rng  # noqa: E402
from charrnn.runs.trainer import Trainer, TrainConfig  # noqa: E402
from charrnn.text.corpus import load_corpus
import reference_rnn  # noqa: E402

CORPUS = os.path.join(ROOT, "corpora", "tinyshakespeare.txt")

# name: (model, hidden, layers, batch, seq)
CONFIGS = {
    "rnn100_b1": ("rnn", 100, 1, 1, 25),
    "rnn100_b64": ("rnn", 100, 1, 64, 25),
    "lstm2x256": ("lstm", 256, 2, 64, 64),
    "lstm2x512": ("lstm", 512, 2, 64, 100),
    "gru2x256": ("gru", 256, 2, 64, 64),
}


def rate(fn, seconds, min_calls=2):
    """Call fn() (returns chars processed) for ~seconds and at least min_calls; chars/s."""
    n, calls, t0 = 0, 0, time.perf_counter()
    while calls < min_calls or time.perf_counter() - t0 < seconds:
        n += fn()
        calls += 1
    return n / (time.perf_counter() - t0)


# ------------------------------------------------------------------ ours
def ours_trainer(corpus, kind, H, L, B, T):
    cfg = TrainConfig(model=kind, hidden_size=H, num_layers=L, batch_size=B, seq_len=T,
                      val_frac=0.0, optimizer="adagrad")
    return Trainer(cfg, corpus, tempfile.mkdtemp())


def ours_stepper(tr):
    per_step = tr.cfg.batch_size * tr.cfg.seq_len

    def step():
        tr.train_step()
        return per_step
    return step


def ours_sampler(tr, n):
    rng = np.random.default_rng(0)

    def run():
        generate(tr.model, tr.corpus.vocab, n, rng=rng)
        return n
    return run


def ours_batch_samplers(tr, n, length, alone=8):
    """(batched, one at a time): each call generates samples, returns chars made."""
    model, vocab = tr.model, tr.corpus.vocab

    def batched():
        rngs = [sample_rng(0, i) for i in range(n)]
        return sum(len(c) for _, c, _ in iter_batch(model, vocab, length, rngs))

    def batched_one_thread():
        old, model.threads = model.threads, 1
        try:
            return batched()
        finally:
            model.threads = old

    def one_by_one():
        return sum(len(generate(model, vocab, length, rng=sample_rng(0, i)))
                   for i in range(min(n, alone)))
    return batched, batched_one_thread, one_by_one


# ------------------------------------------------------------- reference
def reference_stepper(ids, V, H, seq_len=25, seed=0):
    """The classic loop: one chunk of seq_len chars per call, batch 1, float64."""
    rng = np.random.default_rng(seed)
    params = [rng.standard_normal((H, V)) * 0.01, rng.standard_normal((H, H)) * 0.01,
              rng.standard_normal((V, H)) * 0.01, np.zeros((H, 1)), np.zeros((V, 1))]
    mems = [np.zeros_like(p) for p in params]
    st = {"p": 0, "h": np.zeros((H, 1))}
    data = ids[:200_000].tolist()

    def step():
        p = st["p"]
        if p + seq_len + 1 >= len(data):
            p, st["h"] = 0, np.zeros((H, 1))
        loss, *grads, st["h"] = reference_rnn.loss_and_grads(
            data[p:p + seq_len], data[p + 1:p + seq_len + 1], st["h"], *params)
        reference_rnn.clip_and_adagrad(params, grads, mems, lr=0.1)
        st["p"] = p + seq_len
        return seq_len
    return step, params


def reference_sampler(params, n, seed=0):
    """The classic script's sample(): one-hot x, np.random.choice per char."""
    Wxh, Whh, Why, bh, by = params
    V = Wxh.shape[1]
    rs = np.random.RandomState(seed)

    def run():
        h = np.zeros((Whh.shape[0], 1))
        x = np.zeros((V, 1))
        x[0] = 1
        for _ in range(n):
            h = np.tanh(Wxh @ x + Whh @ h + bh)
            y = Why @ h + by
            p = np.exp(y) / np.sum(np.exp(y))
            ix = rs.choice(range(V), p=p.ravel())
            x = np.zeros((V, 1))
            x[ix] = 1
        return n
    return run


# ----------------------------------------------------------------- torch
def torch_or_none():
    try:
        import torch
        return torch
    except ImportError:
        return None


def torch_setup(torch, kind, V, H, L, B, T, ids, lr):
    nn = torch.nn
    torch.manual_seed(0)
    rnn = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[kind](V, H, L)
    out = nn.Linear(H, V)
    params = list(rnn.parameters()) + list(out.parameters())
    opt = torch.optim.Adagrad(params, lr=lr)
    n = (len(ids) - 1) // B
    xs = torch.from_numpy(ids[:B * n].astype(np.int64).reshape(B, n).T.copy())
    ys = torch.from_numpy(ids[1:B * n + 1].astype(np.int64).reshape(B, n).T.copy())
    st = {"k": 0, "h": None}

    def detach(h):
        if h is None:
            return None
        return tuple(t.detach() for t in h) if isinstance(h, tuple) else h.detach()

    def step():
        k = st["k"]
        if (k + 1) * T > n:
            k, st["h"] = 0, None
        x, y = xs[k * T:(k + 1) * T], ys[k * T:(k + 1) * T]
        onehot = torch.nn.functional.one_hot(x, V).float()
        hs, h = rnn(onehot, st["h"])
        logits = out(hs)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, V), y.reshape(-1),
                                                 reduction="sum") / B
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_value_(params, 5.0)
        opt.step()
        st["h"], st["k"] = detach(h), k + 1
        return B * T

    def sampler(count):
        g = torch.Generator().manual_seed(0)

        def run():
            with torch.no_grad():
                x = torch.zeros(1, 1, V)
                h, i = None, 0
                for _ in range(count):
                    x.zero_()
                    x[0, 0, i] = 1.0
                    o, h = rnn(x, h)
                    p = torch.softmax(out(o[0, 0]), dim=0)
                    i = int(torch.multinomial(p, 1, generator=g))
            return count
        return run
    return step, sampler


# ---------------------------------------------------------- GEMM ceiling
def step_gemms(kind, H, L, B, T, V):
    """(m, k, n, trans_a, trans_b, repeats) of every matmul in one training
    step on B streams (lookup-table input: layer 0 has no input GEMM)."""
    G = {"rnn": 1, "lstm": 4, "gru": 3}[kind] * H
    N = T * B
    g = []
    for k in range(L):
        g.append((B, H, G, False, False, T))              # forward h @ Wh, each step
        g.append((B, G, H, False, True, T))               # backward d @ Wh^T, each step
        g.append((H, B, G, True, False, 1))               # dWh: h0^T @ da[0]
        if T > 1:
            g.append((H, N - B, G, True, False, 1))       # dWh: hs[:-1]^T @ da[1:]
        if k > 0:
            g.append((N, H, G, False, False, 1))          # input projection
            g.append((H, N, G, True, False, 1))           # dWx
            g.append((N, G, H, False, True, 1))           # d input
    g.append((N, H, V, False, False, 1))                  # output logits
    g.append((H, N, V, True, False, 1))                   # d out.W
    g.append((N, V, H, False, True, 1))                   # d top
    return g


def _gemm_runner(gemms, rng):
    mats = []
    for m, k, n, ta, tb, rep in gemms:
        a = rng.standard_normal((k, m) if ta else (m, k), dtype=np.float32)
        b = rng.standard_normal((n, k) if tb else (k, n), dtype=np.float32)
        mats.append((a.T if ta else a, b.T if tb else b, np.empty((m, n), np.float32), rep))

    def run():
        for a, b, c, rep in mats:
            for _ in range(rep):
                np.matmul(a, b, out=c)
    return run


def _best_of(fn, repeats=3):
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def gemm_ceiling_seconds(kind, H, L, B, T, V, workers, repeats=3):
    """Fastest time for one step's GEMMs: 1 thread, 2 BLAS threads, or split
    across `workers` Python threads (each on its share of the B streams)."""
    rng = np.random.default_rng(0)
    full = _gemm_runner(step_gemms(kind, H, L, B, T, V), rng)
    best = lambda fn: _best_of(fn, repeats)  # noqa: E731
    results = {}
    with blas.single_threaded():
        results["1 thread"] = best(full)
    old = blas.get_threads()
    if old is not None and blas.set_threads(2):
        results["2 BLAS threads"] = best(full)
        blas.set_threads(old)
    if workers > 1:
        parts = [_gemm_runner(step_gemms(kind, H, L, s.stop - s.start, T, V), rng)
                 for s in parallel.splits(B, workers)]
        with blas.single_threaded():
            results[f"{workers} workers"] = best(lambda: parallel.run(parts))
    how = min(results, key=results.get)
    return results[how], how


def batch_step_ceilings(model, n, steps=200):
    """What `--num-samples n` could reach if a step were only its model
    arithmetic, chars/s: {"GEMMs": the matmuls of one step on n rows (layer
    0 is a lookup), "cell steps": Model.advance on n rows (matmuls and the
    cell's elementwise math, no softmax or drawing)}; each the best of one
    BLAS thread, two BLAS threads, and two worker threads on halves."""
    cfg = model.cfg
    H, G, V, L = cfg.hidden_size, cfg.gates * cfg.hidden_size, cfg.vocab_size, cfg.num_layers
    rng = np.random.default_rng(0)

    def gemms(rows):
        shapes = [(rows, H, G, False, False, 1)] * (2 * L - 1) + [(rows, H, V, False, False, 1)]
        run = _gemm_runner(shapes, rng)
        return lambda: [run() for _ in range(steps)]

    def cells(rows):
        from charrnn.nn.model import zero_state
        ids = rng.integers(0, V, rows)

        def run():
            state = zero_state(cfg, rows)
            for _ in range(steps):
                _, state = model.advance(ids, state)
        return run

    out = {}
    for what, make in (("GEMMs", gemms), ("cell steps", cells)):
        whole = make(n)
        halves = [make(s.stop - s.start) for s in parallel.splits(n, 2)]
        ways = []
        with blas.single_threaded():
            ways.append(_best_of(whole))
            ways.append(_best_of(lambda: parallel.run(halves)))
        old = blas.get_threads()
        if old is not None and blas.set_threads(2):
            ways.append(_best_of(whole))
            blas.set_threads(old)
        out[what] = n * steps / min(ways)
    return out


def torch_batch_sampler(torch, model, n, length):
    """`--num-samples n --len length` in PyTorch, default threads: the same
    weights in nn.LSTM / nn.GRU / nn.RNN layers stepped one character at a
    time on n rows, softmax and one multinomial draw per row.  -> a function
    that returns the characters made."""
    cfg = model.cfg
    nn = torch.nn
    V, H, L = cfg.vocab_size, cfg.hidden_size, cfg.num_layers
    rnn = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[cfg.model](V, H, L)
    out = nn.Linear(H, V)
    g = torch.Generator().manual_seed(0)

    def run():
        with torch.no_grad():
            x = torch.zeros(1, n, V)
            ids = torch.zeros(n, dtype=torch.long)
            h = None
            rows = torch.arange(n)
            for _ in range(length):
                x.zero_()
                x[0, rows, ids] = 1.0
                o, h = rnn(x, h)
                p = torch.softmax(out(o[0]), dim=1)
                ids = torch.multinomial(p, 1, generator=g)[:, 0]
        return n * length
    return run


def gemv_ceiling_seconds(kind, H, L, V, repeats=200):
    """One sampling step's matrix-vector products at batch 1 (float32)."""
    G = {"rnn": 1, "lstm": 4, "gru": 3}[kind] * H
    shapes = [(H, G)] * L + [(H, G)] * (L - 1) + [(H, V)]
    rng = np.random.default_rng(0)
    mats = [(rng.standard_normal((1, k), dtype=np.float32), rng.standard_normal((k, n), dtype=np.float32),
             np.empty((1, n), np.float32)) for k, n in shapes]
    for a, b, c in mats:
        np.matmul(a, b, out=c)
    t0 = time.perf_counter()
    for _ in range(repeats):
        for a, b, c in mats:
            np.matmul(a, b, out=c)
    return (time.perf_counter() - t0) / repeats, sum(b.nbytes for _, b, _ in mats)


# ------------------------------------------------------------------ main
def fmt(v, unit=""):
    if v is None:
        return "-"
    if v >= 100:
        return f"{v:,.0f}{unit}"
    return f"{v:.2f}{unit}" if v < 10 else f"{v:.1f}{unit}"


def table(rows, headers):
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    line = "  ".join(h.rjust(w) if i else h.ljust(w) for i, (h, w) in enumerate(zip(headers, widths)))
    print(line)
    print("-" * len(line))
    for r in rows:
        print("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*", choices=list(CONFIGS), help="configurations to run")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=3.0, help="per measurement")
    ap.add_argument("--sample-chars", type=int, default=2000, help="per sampling measurement")
    ap.add_argument("--no-torch", action="store_true", help="skip PyTorch even if installed")
    ap.add_argument("--num-samples", type=int, default=64, help="batched sampling: samples")
    ap.add_argument("--len", type=int, default=1000, dest="length",
                    help="batched sampling: characters per sample")
    a = ap.parse_args()
    names = a.only or list(CONFIGS)
    torch = None if a.no_torch else torch_or_none()
    corpus = load_corpus([CORPUS])
    V = len(corpus.vocab)

    print(f"numpy {np.__version__}, BLAS threads {blas.get_threads()}, "
          f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(auto)')}, "
          f"charrnn worker threads <= {parallel.max_workers()}", end="")
    if torch is not None:
        print(f"; torch {torch.__version__}, {torch.get_num_threads()} threads")
    else:
        print("\nnote: torch is not installed (pip install -e '.[bench]'): no PyTorch column")

    setups = {}
    for name in names:
        kind, H, L, B, T = CONFIGS[name]
        tr = ours_trainer(corpus, kind, H, L, B, T)
        s = {"tr": tr, "train": {"ours": ours_stepper(tr)},
             "sample": {"ours": ours_sampler(tr, a.sample_chars)}}
        batched, batched1, alone = ours_batch_samplers(tr, a.num_samples, a.length)
        s["batch"] = {"batched": batched, "batched1": batched1, "alone": alone}
        if torch is not None:
            s["batch"]["torch"] = torch_batch_sampler(torch, tr.model, a.num_samples, a.length)
        if kind == "rnn" and L == 1:
            step, params = reference_stepper(corpus.ids, V, H)
            s["train"]["ref"] = step
            s["sample"]["ref"] = reference_sampler(params, a.sample_chars // 4)
        if torch is not None:
            step, sampler = torch_setup(torch, kind, V, H, L, B, T, corpus.ids, tr.cfg.lr)
            s["train"]["torch"] = step
            s["sample"]["torch"] = sampler(a.sample_chars)
        for fn in list(s["train"].values()) + list(s["sample"].values()):
            fn()                                           # warm up
        setups[name] = s

    results = {n: {w: {k: [] for k in s[w]} for w in ("train", "sample", "batch")}
               for n, s in setups.items()}
    t_start = time.perf_counter()
    for r in range(a.rounds):
        for name, s in setups.items():
            for what in ("train", "sample", "batch"):
                for who, fn in s[what].items():
                    secs = {"train": a.seconds, "sample": a.seconds / 2, "batch": 0}[what]
                    results[name][what][who].append(rate(fn, secs, min_calls=2 if what == "train" else 1))
        print(f"round {r + 1}/{a.rounds} done ({time.perf_counter() - t_start:.0f} s)", file=sys.stderr)

    rows, srows, brows = [], [], []
    for name, s in setups.items():
        kind, H, L, B, T = CONFIGS[name]
        med = {w: {k: statistics.median(v) for k, v in results[name][w].items()} for w in results[name]}
        tr = med["train"]
        ceil_s, how = gemm_ceiling_seconds(kind, H, L, B, T, V, s["tr"].model.workers(B))
        ceil = B * T / ceil_s
        ref, tor = tr.get("ref"), tr.get("torch")
        rows.append([f"{kind} {L}x{H} b{B} s{T}" if L > 1 else f"{kind} {H} b{B} s{T}",
                     fmt(tr["ours"]), fmt(ref), fmt(tr["ours"] / ref, "x") if ref else "-",
                     fmt(tor), fmt(tr["ours"] / tor, "x") if tor else "-",
                     fmt(ceil), f"{100 * tr['ours'] / ceil:.0f}%",
                     how])
        sm = med["sample"]
        gemv_s, nbytes = gemv_ceiling_seconds(kind, H, L, V)
        srows.append([rows[-1][0], fmt(sm["ours"]), fmt(sm.get("ref")),
                      fmt(sm["ours"] / sm["ref"], "x") if "ref" in sm else "-",
                      fmt(sm.get("torch")), fmt(sm["ours"] / sm["torch"], "x") if "torch" in sm else "-",
                      fmt(1 / gemv_s), f"{100 * sm['ours'] * gemv_s:.0f}%",
                      f"{nbytes / 2**20:.1f} MB"])
        bm = med["batch"]
        bc = batch_step_ceilings(s["tr"].model, a.num_samples)
        brows.append([rows[-1][0], fmt(bm["batched"]), fmt(bm["batched1"]), fmt(bm["alone"]),
                      fmt(bm["batched"] / bm["alone"], "x"), fmt(bm.get("torch")),
                      fmt(bc["cell steps"]), fmt(bc["GEMMs"])])
    print(f"\ntraining, chars/s (median of {a.rounds} alternating rounds of {a.seconds:g} s)")
    table(rows, ["config", "ours", "ref b1", "ours/ref", "torch", "ours/torch",
                 "GEMM ceil", "% of ceil", "ceiling from"])
    print("\nsampling, chars/s at batch 1 (one character per step)")
    table(srows, ["config", "ours", "ref b1", "ours/ref", "torch", "ours/torch",
                  "GEMV ceil", "% of ceil", "weights/char"])
    print(f"\nsampling --num-samples {a.num_samples} --len {a.length}, total chars/s "
          f"(median of {a.rounds})")
    table(brows, ["config", "batched", "on 1 thread", "one at a time", "batched/one", "torch",
                  "cell steps", "GEMMs"])


if __name__ == "__main__":
    main()
