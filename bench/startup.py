"""Start-up: `charrnn sample --len 200` against `python -c "import numpy"`.

Whole-process wall time (fork to exit) of each command, alternating, median
of --runs, for two checkpoints trained on the shipped corpus into a
temporary folder first: a small rnn (the default model, 20 iterations) and a
2 x 512 LSTM with its Adam state (1 iteration; ~40 MB, two thirds of it
optimizer moments that sampling never reads).  Two columns for charrnn:

  cached    a copy of the charrnn package with its modules compiled to
            bytecode beforehand (what a normal `pip install` does)
  source    as found: with PYTHONDONTWRITEBYTECODE=1 and an editable install
            every run compiles charrnn's modules from source again

Then, in this process, what checking every entry's header costs the 2 x 512
checkpoint's `sample` (charrnn.store.checkpoint: each entry sampling does not
read, the optimizer moments, training state and history, is refused unless
its .npy header fits the config): checkpoint.load(MODEL_PARTS) with and
without those header reads, alternating, median of --runs x 10.

    python bench/startup.py --runs 21
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "corpora", "tinyshakespeare.txt")


def wall(cmd, env):
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=21)
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="charrnn-startup-")
    try:
        env = dict(os.environ, PYTHONPATH=ROOT)
        cks = {"small rnn": os.path.join(work, "ck"), "2x512 lstm": os.path.join(work, "lstm")}
        subprocess.run([sys.executable, "-m", "charrnn", "train", CORPUS, "--max-iters", "20",
                        "--checkpoint-dir", cks["small rnn"], "--quiet"], env=env, check=True)
        subprocess.run([sys.executable, "-m", "charrnn", "train", CORPUS, "--max-iters", "1",
                        "--model", "lstm", "--num-layers", "2", "--hidden-size", "512",
                        "--checkpoint-dir", cks["2x512 lstm"], "--quiet"], env=env, check=True)
        sizes = {k: os.path.getsize(os.path.join(v, "latest.npz")) for k, v in cks.items()}
        headers = header_cost(os.path.join(cks["2x512 lstm"], "latest.npz"), a.runs * 10)
        copy = os.path.join(work, "pkg")
        shutil.copytree(os.path.join(ROOT, "charrnn"), os.path.join(copy, "charrnn"),
                        ignore=shutil.ignore_patterns("__pycache__"))
        cached = dict(env, PYTHONPATH=copy)
        subprocess.run([sys.executable, "-m", "compileall", "-q", os.path.join(copy, "charrnn")],
                       env=cached, check=True, stdout=subprocess.DEVNULL)
        numpy_cmd = [sys.executable, "-c", "import numpy"]
        one_thread = dict(env, OPENBLAS_NUM_THREADS="1")
        def sample_cmd(ck):
            return [sys.executable, "-c", "from charrnn.cli.commands import main; main()",
                    "sample", "--len", "200", "--checkpoint-dir", ck]
        t = {"numpy": [], "numpy1": []}
        for _ in range(a.runs):
            t["numpy"].append(wall(numpy_cmd, env))
            t["numpy1"].append(wall(numpy_cmd, one_thread))
            for name, ck in cks.items():
                t.setdefault((name, "cached"), []).append(wall(sample_cmd(ck), cached))
                t.setdefault((name, "source"), []).append(
                    wall(sample_cmd(ck), dict(env, PYTHONDONTWRITEBYTECODE="1")))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    med = {k: statistics.median(v) * 1000 for k, v in t.items()}
    print(f"median of {a.runs} alternating runs, whole process:")
    print(f"  python -c 'import numpy'                                {med['numpy']:6.0f} ms")
    print(f"  the same with OPENBLAS_NUM_THREADS=1 (as charrnn runs)  {med['numpy1']:6.0f} ms")
    for name in cks:
        print(f"  {name} checkpoint ({sizes[name] / 1e6:.1f} MB):")
        for k, label in (("cached", "bytecode cached"), ("source", "compiled from source")):
            m = med[(name, k)]
            print(f"    charrnn sample --len 200 ({label}){' ' * (20 - len(label))} {m:6.0f} ms"
                  f"  = {m / med['numpy']:.2f}x import numpy (target <= 1.5x), "
                  f"{m / med['numpy1']:.2f}x with one BLAS thread")
    print("  2x512 lstm, checkpoint.load(MODEL_PARTS) in process: "
          f"{headers['with']:.2f} ms, of which reading the {headers['entries']} headers of "
          f"the entries it does not load: {headers['with'] - headers['without']:.2f} ms")


def header_cost(path, runs) -> dict:
    """Median ms of checkpoint.load(path, MODEL_PARTS) with and without the
    header checks of the entries it leaves unread."""
    sys.path.insert(0, ROOT)
    from charrnn.store import checkpoint as ckpt
    real = ckpt._check_header_only
    calls = []

    def counting(*args):
        calls.append(args[2])
        return real(*args)

    def skipped(*args):
        return None
    t = {"with": [], "without": []}
    for _ in range(runs):
        for name, check in (("with", counting), ("without", skipped)):
            ckpt._check_header_only = check
            t0 = time.perf_counter()
            ckpt.load(path, ckpt.MODEL_PARTS)
            t[name].append(time.perf_counter() - t0)
    ckpt._check_header_only = real
    out = {k: statistics.median(v) * 1000 for k, v in t.items()}
    out["entries"] = len(set(calls))
    return out


if __name__ == "__main__":
    main()
