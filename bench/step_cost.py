"""A training step's cost before and after issue 27's cheaper steps, in one run.

The old code is the tree of ``--base`` (git archive into a temporary
folder); the new one is this checkout.  One worker process per side
(PYTHONPATH pointing at its tree) builds the same Trainers on tiny
Shakespeare and times Trainer.train_step(); the two sides are interleaved
(A B A B ...) for ``--rounds`` rounds, so the load of a shared machine falls
on both, and each round's ratio is old time / new time (> 1: the new step
is cheaper).  Printed: per configuration the median step time of each side
and the median of the per-round ratios, in wall-clock time and in the
process's CPU time (all its threads: the work done, which a busy machine
disturbs less than the wall clock; it does not show work moved to a
second thread).  Also, in this process, the dropout
mask draw alone (see mask_draw): one chunk's masks of the GRU as the old
code drew them (float64 uniforms, then compared and cast), as float32
uniforms, and as charrnn now draws them; and the GRU's second-layer input
projection alone, batched over T and as one 2-D GEMM (see projection); both
in CPU time of one thread.

    python bench/step_cost.py                        # all, -> bench/results/step-cost.json
    python bench/step_cost.py --rounds 3 --steps 4 --out /tmp/x.json
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "corpora", "tinyshakespeare.txt")
BASE = "03a0f3c"      # main before issue 27's step-cost changes

# name: (model, hidden, layers, batch B, seq T, dropout); other settings: the model's defaults
CONFIGS = {
    "gru 2x256 B32 T64 d0.2": ("gru", 256, 2, 32, 64, 0.2),
    "gru 2x256 B16 T32 d0.2": ("gru", 256, 2, 16, 32, 0.2),
    "rnn 1x256 B32 T50 d0": ("rnn", 256, 1, 32, 50, 0.0),
}


# ------------------------------------------------------------------ worker
def worker():
    """Read 'name steps' lines on stdin; answer each with one JSON line:
    [wall, cpu] seconds of each of `steps` train steps (after one warm-up
    step); cpu is the process's CPU time over all its threads."""
    from charrnn.nn.blas import configure_env
    configure_env()                       # as the charrnn command does
    from charrnn.runs.config import make_train_config
    from charrnn.runs.trainer import Trainer
    from charrnn.text.corpus import load_corpus
    import charrnn
    corpus = load_corpus([CORPUS])
    trainers = {}
    print(json.dumps({"charrnn": os.path.dirname(charrnn.__file__)}), flush=True)
    for line in sys.stdin:
        name, steps = line.rsplit(" ", 1)
        tr = trainers.get(name)
        if tr is None:
            kind, H, L, B, T, p = CONFIGS[name]
            cfg = make_train_config(model=kind, hidden_size=H, num_layers=L, batch_size=B,
                                    seq_len=T, dropout=p, max_iters=10 ** 6)
            tr = trainers[name] = Trainer(cfg, corpus, tempfile.mkdtemp())
            tr.train_step()
        times = []
        for _ in range(int(steps)):
            t0, c0 = time.perf_counter(), time.process_time()
            tr.train_step()
            times.append([time.perf_counter() - t0, time.process_time() - c0])
        print(json.dumps(times), flush=True)


class Side:
    """A worker process importing charrnn from `tree`."""

    def __init__(self, tree):
        env = {**os.environ, "PYTHONPATH": tree}
        self.proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--worker"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     env=env, cwd=tree)
        self.where = json.loads(self.proc.stdout.readline())["charrnn"]
        assert os.path.realpath(self.where).startswith(os.path.realpath(tree)), self.where

    def steps(self, name, n):
        self.proc.stdin.write(f"{name} {n}\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def close(self):
        self.proc.stdin.close()
        self.proc.wait()


# --------------------------------------------------------------- the masks
def mask_draw(rounds, reps=10):
    """Median CPU ms of this thread (time.thread_time: what a busy machine
    disturbs least) for one chunk's dropout masks of the GRU 2x256 B32 T64
    (2 layers of (64, 32, 256), p 0.2, float32 masks), all in one thread:
    float64 uniforms as the old code drew them (for the chunk, compared,
    divided, cast), float32 uniforms the same way, and charrnn's draw
    (Model._masks(...).outs(): 32-bit words of one generator per stream,
    which training splits across its worker threads)."""
    import numpy as np
    sys.path.insert(0, ROOT)
    from charrnn.nn.model import Model, ModelConfig, init_params
    rng = np.random.default_rng(0)
    (L, T, B, H), keep = (2, 64, 32, 256), 0.8
    cfg = ModelConfig(vocab_size=65, model="gru", hidden_size=H, num_layers=L, dropout=1 - keep)
    model = Model(cfg, init_params(cfg, rng))

    def old():
        for _ in range(L):
            ((rng.random((T, B, H), dtype=np.float64) < keep) / keep).astype(np.float32)

    def plain32():
        for _ in range(L):
            m = (rng.random((T, B, H), dtype=np.float32) < keep).astype(np.float32)
            m *= np.float32(1.0 / keep)

    def ours():
        model._masks(rng, T, B).outs()

    return cpu_ms({"float64 uniforms (old)": old, "float32 uniforms": plain32,
                   "uint32 words per stream (new)": ours}, rounds, reps)


def projection(rounds, reps=10):
    """Median CPU ms of this thread for one input projection (T, n, 256) @
    (256, 768) of the GRU's second layer, BLAS on one thread as in a worker
    (n: one worker's streams at two workers), as a product batched over T
    (old) and as one 2-D GEMM over the T*n rows (new)."""
    import numpy as np
    sys.path.insert(0, ROOT)
    from charrnn.nn import blas
    rng = np.random.default_rng(0)
    W = rng.random((256, 768), dtype=np.float32)
    out = {}
    with blas.single_threaded():
        for T, n in ((64, 16), (32, 8)):
            x = rng.random((T, n, 256), dtype=np.float32)
            ways = {"batched over T (old)": lambda: np.matmul(x, W),
                    "2-D over T*B (new)": lambda: np.matmul(x.reshape(-1, 256), W)}
            out[f"T{T} n{n}"] = {k: round(v, 3) for k, v in cpu_ms(ways, rounds, reps).items()}
    return out


def cpu_ms(ways, rounds, reps):
    """name -> median over `rounds` interleaved rounds of the CPU ms of this
    thread per call of ways[name]() (time.thread_time, `reps` calls a round)."""
    times = {k: [] for k in ways}
    for _ in range(rounds):
        for key, fn in ways.items():
            t0 = time.thread_time()
            for _ in range(reps):
                fn()
            times[key].append((time.thread_time() - t0) / reps * 1e3)
    return {k: statistics.median(v) for k, v in times.items()}


def git(*args):
    return subprocess.run(["git", "-C", ROOT, *args], check=True, capture_output=True,
                          text=True).stdout.strip()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--base", default=BASE, help="the old code's commit")
    ap.add_argument("--rounds", type=int, default=7, help="A B rounds per configuration")
    ap.add_argument("--steps", type=int, default=5, help="train steps per side per round")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "step-cost.json"))
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker()

    base = git("rev-parse", "--short", args.base)
    head = git("rev-parse", "--short", "HEAD")
    dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    with tempfile.TemporaryDirectory() as old_tree:
        archive = subprocess.run(["git", "-C", ROOT, "archive", base, "charrnn"],
                                 check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", old_tree], input=archive, check=True)
        sides = {"old": Side(old_tree), "new": Side(ROOT)}
        rows = {}
        try:
            for name in CONFIGS:
                rows[name] = row = {}
                t = {(side, c): [] for side in ("old", "new") for c in ("wall", "cpu")}
                ratios = {"wall": [], "cpu": []}
                for r in range(args.rounds):
                    order = ("old", "new") if r % 2 == 0 else ("new", "old")
                    got = {side: sides[side].steps(name, args.steps) for side in order}
                    for i, clock in enumerate(("wall", "cpu")):
                        med = {side: statistics.median(s[i] for s in got[side]) for side in got}
                        for side in med:
                            t[side, clock].append(med[side])
                        ratios[clock].append(med["old"] / med["new"])
                for clock in ("wall", "cpu"):
                    rs = ratios[clock]
                    row[clock] = {"old_ms": round(statistics.median(t["old", clock]) * 1e3, 2),
                                  "new_ms": round(statistics.median(t["new", clock]) * 1e3, 2),
                                  "ratio_old_over_new": round(statistics.median(rs), 3),
                                  "ratios": [round(x, 3) for x in rs]}
                    c = row[clock]
                    print(f"{name:20s} {clock:4s} old {c['old_ms']:8.1f} ms  new {c['new_ms']:8.1f} "
                          f"ms  old/new {c['ratio_old_over_new']:.3f}  (rounds {min(rs):.3f}.."
                          f"{max(rs):.3f})", flush=True)
        finally:
            for s in sides.values():
                s.close()
    masks = mask_draw(args.rounds)
    print("mask draw alone, gru 2x256 B32 T64 p0.2 (2 layers x 64x32x256), CPU ms in one thread: "
          + ", ".join(f"{k} {v:.2f}" for k, v in masks.items()))
    proj = projection(args.rounds)
    for shape, row in proj.items():
        print(f"layer-1 input projection {shape} x (256, 768), CPU ms in one thread: "
              + ", ".join(f"{k} {v:.2f}" for k, v in row.items()))
    try:
        load = os.getloadavg()
    except OSError:           # pragma: no cover
        load = None
    result = {
        "command": "python bench/step_cost.py " + " ".join(sys.argv[1:]),
        "old": base, "new": head + ("+changes" if dirty else ""),
        "rounds": args.rounds, "steps_per_round": args.steps,
        "what": "per side the median over rounds of each round's median Trainer.train_step() "
                "time, wall clock and process CPU time (all threads); ratio: median of the "
                "rounds' old/new (ABAB interleaved, one worker process per side); the "
                "configuration's dropout, model defaults otherwise",
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, load average "
                   f"{'/'.join(f'{x:.1f}' for x in load) if load else '?'} at the end",
        "configs": rows,
        "mask_draw_cpu_ms_one_thread": {k: round(v, 3) for k, v in masks.items()},
        "projection_cpu_ms_one_thread": proj,
    }
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
