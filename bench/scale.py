"""Training on a large generated text end to end, with default flags.

Writes a synthetic corpus (bench/memory.py's generator) of --size-mb, then
runs `charrnn train FILE --model lstm` (2 x 256, every other flag at its
default: --val-frac 0.1, --eval-every 500) for --iters iterations as a
subprocess, three times:

  cold    the id cache does not exist yet (the streaming encoder builds it)
  warm    the same again (--overwrite): the id cache is reused
  resume  --resume from the warm run's latest.npz for --resume-iters more

and prints for each run: time from process start to the first training
iteration, the evaluations (count, total seconds, share of the training
loop's time), the final evaluation's seconds, wall time and peak RSS (the
kernel's high-water mark of the process).  Timings come from a small
wrapper around the CLI that timestamps Trainer.train_step and Trainer.validate.
The default --iters (1100) ends between two evaluations, so the run has
periodic evaluations (at 500 and 1000) and a separate final one.

    python bench/scale.py                            # 1 GiB: the issue's case
    python bench/scale.py --size-mb 100 --iters 120 --eval-every 50   # a quick check

The page cache is not dropped (that needs root): "cold" means a cold id
cache.  Everything is deleted at the end.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

from memory import mb, run_measured, write_corpus  # noqa: E402

CHILD = """
import json, sys, time
T0 = time.time()
sys.path.insert(0, {root!r})
from charrnn.nn.blas import configure_env
configure_env()
from charrnn.runs import trainer
rec = {{"t0": T0, "first_step": None, "steps": 0, "evals": []}}
step, validate = trainer.Trainer.train_step, trainer.Trainer.validate

def timed_step(self):
    if rec["first_step"] is None:
        rec["first_step"] = time.time()
    rec["steps"] += 1
    return step(self)

def timed_evaluate(self):
    t = time.time()
    v = validate(self)
    rec["evals"].append([self.iteration, time.time() - t])
    rec["val_eval"] = {{k: v for k, v in self.val_plan.items() if k != "starts"}}
    return v

trainer.Trainer.train_step, trainer.Trainer.validate = timed_step, timed_evaluate
from charrnn.cli.commands import cli
try:
    code = cli.main(args=sys.argv[2:], standalone_mode=False)
finally:
    rec["t_end"] = time.time()
    with open(sys.argv[1], "w") as f:
        json.dump(rec, f)
sys.exit(code)
"""


def run(label, args, env, work):
    out = os.path.join(work, "rec.json")
    cmd = [sys.executable, "-c", CHILD.format(root=ROOT), out, "train", *args]
    t_spawn = time.time()
    _, wall, rss, anon = run_measured(cmd, env)
    with open(out) as f:
        rec = json.load(f)
    first = rec["first_step"]
    loop = rec["t_end"] - first if first else 0.0
    evals = rec["evals"]
    ev_total = sum(s for _, s in evals)
    final = evals[-1][1] if evals else float("nan")
    return {"run": label, "first": (first - t_spawn) if first else float("nan"),
            "steps": rec["steps"], "evals": len(evals), "eval_s": ev_total,
            "share": ev_total / loop if loop else float("nan"), "final": final,
            "final_at": evals[-1][0] if evals else None, "wall": wall, "rss": rss, "anon": anon,
            "val_eval": rec.get("val_eval")}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mb", type=int, default=1024, help="size of the corpus (MiB)")
    ap.add_argument("--iters", type=int, default=1100, help="training iterations (cold, warm)")
    ap.add_argument("--resume-iters", type=int, default=20, help="iterations after --resume")
    ap.add_argument("--eval-every", type=int, default=None,
                    help="pass --eval-every (default: charrnn's own default)")
    ap.add_argument("--tmp", default=None, help="folder for the temporary files")
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="charrnn-scale-", dir=a.tmp)
    env = dict(os.environ, CHARRNN_CACHE_DIR=os.path.join(work, "cache"), PYTHONPATH=ROOT)
    rows = []
    try:
        big = os.path.join(work, "big.txt")
        t0 = time.perf_counter()
        size = write_corpus(big, a.size_mb << 20, seed=0)
        print(f"wrote {mb(size)} MiB of text in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
        ck = os.path.join(work, "ck")
        base = [big, "--model", "lstm", "--checkpoint-dir", ck, "--quiet"]
        if a.eval_every:
            base += ["--eval-every", str(a.eval_every)]
        for label in ("cold id cache", "warm id cache"):
            rows.append(run(f"train, {label}", base + ["--max-iters", str(a.iters), "--overwrite"],
                            env, work))
            print(f"{rows[-1]['run']}: done in {rows[-1]['wall']:.0f} s", file=sys.stderr)
        rows.append(run("resume (warm)", base + ["--resume", "--max-iters",
                                                 str(a.iters + a.resume_iters)], env, work))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    ve = rows[0]["val_eval"] or {}
    print(f"text {mb(size)} MiB; lstm 2x256, default flags"
          f"{'' if not a.eval_every else f' but --eval-every {a.eval_every}'}; "
          f"validation: {ve.get('method', '?')}"
          + (f" ({ve['windows']} windows x {ve['window_chars']:,} chars after "
             f"{ve['warmup_chars']:,} of warm-up)" if ve.get("method") == "sampled" else ""))
    headers = ["run", "to 1st iter s", "iters", "evals", "eval s", "eval share",
               "final eval s", "wall s", "peak RSS MiB"]
    table = [[r["run"], f"{r['first']:.1f}", str(r["steps"]), str(r["evals"]), f"{r['eval_s']:.1f}",
              f"{100 * r['share']:.1f}%", f"{r['final']:.1f}" + (f" (it {r['final_at']})"
                                                                 if r["final_at"] else ""),
              f"{r['wall']:.0f}", mb(r["rss"])] for r in rows]
    widths = [max(len(h), *(len(t[i]) for t in table)) for i, h in enumerate(headers)]
    line = "  ".join(h.rjust(w) for h, w in zip(headers, widths))
    print(line)
    print("-" * len(line))
    for t in table:
        print("  ".join(c.rjust(w) for c, w in zip(t, widths)))
    print("\n'eval share' is the evaluations' time over the training loop's (first step to "
          "exit); 'final eval' is the last evaluation of the run.")


if __name__ == "__main__":
    main()
