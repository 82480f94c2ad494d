"""Validation loss reached on tiny Shakespeare in a fixed wall-time budget.

    python bench/quality.py                      # defaults, 120 s
    python bench/quality.py --time 60 -- --hidden-size 128 --lr 0.05

Everything after ``--`` is passed to ``charrnn train`` as options.  Prints
one line per run: the settings, iterations, and the final validation loss in
nats/char and bits/char (from the saved latest.npz).
"""
from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from charrnn import checkpoint  # noqa: E402

CORPUS = os.path.join(os.path.dirname(HERE), "corpora", "tinyshakespeare.txt")


def run(seconds: float, extra: list[str], corpus: str = CORPUS) -> dict:
    """Run ``charrnn train`` (a subprocess, exactly as a user would) for
    ``seconds`` with ``extra`` options; return the final figures."""
    with tempfile.TemporaryDirectory() as d:
        args = [sys.executable, "-m", "charrnn", "train", corpus, "--max-time", str(seconds),
                "--checkpoint-dir", d, "--quiet", *extra]
        t0 = time.perf_counter()
        code = subprocess.call(args, cwd=os.path.dirname(HERE))
        wall = time.perf_counter() - t0
        if code:
            raise SystemExit(f"charrnn train exited {code}")
        ck = checkpoint.load(os.path.join(d, checkpoint.LATEST))
        val = float(ck.history["val_loss"][-1])
        return {"iters": ck.state["iteration"], "val": val, "bits": val / math.log(2),
                "wall": wall, "chars_per_s": ck.state["chars_seen"] / ck.state["wall_time"]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--time", type=float, default=120.0, help="training seconds per run")
    ap.add_argument("--corpus", default=CORPUS)
    ap.add_argument("train_args", nargs="*", help="options for charrnn train (after --)")
    a = ap.parse_args()
    r = run(a.time, a.train_args, a.corpus)
    label = " ".join(a.train_args) or "(defaults)"
    print(f"{label:40s} {a.time:6.0f}s  iters {r['iters']:6d}  {r['chars_per_s']/1000:6.1f}k chars/s  "
          f"val {r['val']:.4f} nats/char  {r['bits']:.4f} bits/char", flush=True)


if __name__ == "__main__":
    main()
