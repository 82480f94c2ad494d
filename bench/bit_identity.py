"""Does a change that should change nothing keep every checkpoint bit for bit?

Short runs of every model on tiny Shakespeare (2 layers and dropout, the
step schedule, a run stopped and resumed, --init-from, budgeted runs with
automatic sizes, and a --max-time run whose clock and speed probe are fixed,
so the planner chooses sizes, a smaller batch shape and its plan
deterministically), then a comparison of two such sets: every array of
every checkpoint bit for bit, the config JSON, `inspect --json`, the
`chosen:`/`plan:`/`saved` lines and `charrnn train --help`.

    git archive BASE | tar -x -C /tmp/base          # the code before the change
    cd /tmp && PYTHONPATH=/tmp/base python CHECKOUT/bench/bit_identity.py make /tmp/ref-before
    cd /tmp && python CHECKOUT/bench/bit_identity.py make /tmp/ref-after
    python CHECKOUT/bench/bit_identity.py compare /tmp/ref-before /tmp/ref-after

Run from a folder that holds no charrnn/ (PYTHONPATH then picks the code;
the charrnn command beside the python is used).  Same machine for both sets:
float bits differ between machines.  Every run writes into the same WORK
folder (so the paths recorded in the checkpoints are the same), then is
copied to OUT/<name>.  Wall-clock figures (history/wall_time,
state/wall_time, resumes[].wall_time, inspect's wall_time_s and
chars_per_s) are the only things left out of the comparison.  About 3
minutes per set on 2 idle cores.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEXT = os.path.join(REPO, "corpora", "tinyshakespeare.txt")
TMP = os.path.join(tempfile.gettempdir(), "charrnn-bit-identity")
WORK = os.path.join(TMP, "work")
BIN = os.path.join(os.path.dirname(sys.executable), "charrnn")
SMALL = ["--max-iters", "60", "--hidden-size", "64", "--eval-every", "20", "--seed", "7"]

RUNS = [  # name, args (after `charrnn train TEXT`)
    ("rnn", ["--model", "rnn", *SMALL]),
    ("lstm", ["--model", "lstm", *SMALL]),
    ("gru", ["--model", "gru", *SMALL]),
    ("gru-2l-dropout", ["--model", "gru", *SMALL, "--num-layers", "2", "--dropout", "0.2"]),
    ("lstm-2l-dropout-step", ["--model", "lstm", *SMALL, "--num-layers", "2", "--dropout", "0.3",
                              "--lr-schedule", "step", "--lr-decay", "0.5",
                              "--lr-decay-every", "20"]),
    ("rnn-unlimited-mid", ["--model", "rnn", "--hidden-size", "32", "--eval-every", "20",
                           "--seed", "3", "--max-iters", "30", "--lr-schedule", "step"]),
    ("rnn-resumed", None),      # resume of the above to 60 (copied, then --resume)
    ("gru-mid", ["--model", "gru", *SMALL[2:], "--max-iters", "30", "--num-layers", "2",
                 "--dropout", "0.1"]),
    ("gru-resumed", None),      # --resume gru-mid's latest.npz with --max-iters 60, --lr 0.002
    ("gru-init-from", None),    # --init-from gru's latest.npz, dropout 0.3, 40 iters
    ("gru-auto", ["--model", "gru", "--max-iters", "40", "--eval-every", "20", "--seed", "5"]),
    ("rnn-auto", ["--model", "rnn", "--max-iters", "60", "--eval-every", "20", "--seed", "5"]),
]


def run(args, out, name):
    p = subprocess.run([BIN, "train", TEXT, *args], capture_output=True, text=True, cwd="/tmp")
    if p.returncode:
        sys.exit(f"{name}: exit {p.returncode}\n{p.stderr}")
    lines = [ln for ln in p.stderr.replace("\r", "\n").splitlines()
             if ln.split(":")[0] in ("chosen", "plan", "resuming", "resumed")
             or ln.startswith(("saved", "resum", "chosen", "plan", "changed"))]
    with open(os.path.join(out, name + ".lines"), "w") as f:
        f.write("\n".join(lines) + "\n")


def keep(name, out):
    dst = os.path.join(out, name)
    shutil.copytree(WORK, dst)
    for n in ("latest.npz", "best.npz"):
        if os.path.exists(os.path.join(dst, n)):
            p = subprocess.run([BIN, "inspect", "--json", os.path.join(WORK, n)],
                               capture_output=True, text=True, check=True)
            with open(os.path.join(dst, n + ".inspect.json"), "w") as f:
                f.write(p.stdout)


def fresh():
    shutil.rmtree(WORK, ignore_errors=True)


def fake_clock_run(out):
    """A --max-time run with automatic sizes whose clock and probe are fixed:
    the planner chooses sizes, a smaller batch shape, the evaluation shape,
    and the plan is fixed by the (fake) speed."""
    fresh()
    code = f"""
import time, json
import charrnn
from charrnn.runs import sizing
from charrnn.runs import trainer as tm
clock = [1000.0]
time.perf_counter = lambda: clock[0]
real = tm.Trainer.train_step
def step(self):
    clock[0] += 0.0625
    return real(self)
tm.Trainer.train_step = step
try:
    from charrnn.runs import budget as home       # after issue 26
except ImportError:
    home = sizing                                 # before
home.probe_chars_per_s = lambda cfg, vocab_size: 20000.0
events = []
def progress(ev, info):
    if ev in ("start", "plan"):
        events.append([ev, info])
text = open({TEXT!r}).read()[:300000]
charrnn.train(text, checkpoint_dir={WORK!r}, model="gru", max_time=30, seed=11,
              progress=progress)
print(json.dumps(events, sort_keys=True, default=str))
"""
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/tmp")
    if p.returncode:
        sys.exit(f"fake-clock: exit {p.returncode}\n{p.stderr}")
    with open(os.path.join(out, "gru-fake-clock.lines"), "w") as f:
        f.write(p.stdout)
    keep("gru-fake-clock", out)


def make(out):
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    p = subprocess.run([BIN, "train", "--help"], capture_output=True, text=True,
                       env={**os.environ, "COLUMNS": "100"}, check=True)
    with open(os.path.join(out, "train-help.txt"), "w") as f:
        f.write(p.stdout)
    for name, args in RUNS:
        if name == "rnn-resumed":
            fresh()
            shutil.copytree(os.path.join(out, "rnn-unlimited-mid"), WORK,
                            ignore=shutil.ignore_patterns("*.json"))
            args = ["--resume", "--checkpoint-dir", WORK, "--max-iters", "60"]
        elif name == "gru-resumed":
            fresh()
            shutil.copytree(os.path.join(out, "gru-mid"), WORK,
                            ignore=shutil.ignore_patterns("*.json"))
            args = ["--resume", "--checkpoint-dir", WORK, "--max-iters", "60", "--lr", "0.002"]
        elif name == "gru-init-from":
            fresh()
            src = os.path.join(TMP, "src", "gru.npz")
            os.makedirs(os.path.dirname(src), exist_ok=True)
            shutil.copy(os.path.join(out, "gru", "latest.npz"), src)
            args = ["--init-from", src, "--checkpoint-dir", WORK,
                    "--max-iters", "40", "--eval-every", "20", "--dropout", "0.3", "--seed", "9"]
        else:
            fresh()
            args = [*args, "--checkpoint-dir", WORK]
        run(args, out, name)
        keep(name, out)
        print("made", name, flush=True)
    fake_clock_run(out)
    print("made gru-fake-clock")


WALL = {"history/wall_time", "state/wall_time"}


def _strip(obj):
    """JSON with the wall-clock figures removed."""
    if isinstance(obj, dict):
        return {k: _strip(v) for k, v in obj.items()
                if k not in ("wall_time", "wall_time_s", "chars_per_s")}
    if isinstance(obj, list):
        return [_strip(v) for v in obj]
    return obj


def compare(a, b):
    bad, arrays, files = 0, 0, 0
    for root, _, names in os.walk(a):
        for n in sorted(names):
            pa = os.path.join(root, n)
            pb = os.path.join(b, os.path.relpath(pa, a))
            rel = os.path.relpath(pa, a)
            if not os.path.exists(pb):
                print("MISSING", rel)
                bad += 1
                continue
            files += 1
            if n.endswith(".npz"):
                za, zb = np.load(pa, allow_pickle=False), np.load(pb, allow_pickle=False)
                if set(za.files) != set(zb.files):
                    print("KEYS DIFFER", rel, set(za.files) ^ set(zb.files))
                    bad += 1
                for k in sorted(set(za.files) & set(zb.files)):
                    if k in WALL:
                        continue
                    x, y = za[k], zb[k]
                    if k == "config":
                        cx, cy = _strip(json.loads(str(x))), _strip(json.loads(str(y)))
                        if cx != cy:
                            print("CONFIG DIFFERS", rel)
                            print(" ", json.dumps(cx, sort_keys=True)[:3000])
                            print(" ", json.dumps(cy, sort_keys=True)[:3000])
                            bad += 1
                        continue
                    arrays += 1
                    same = (x.dtype == y.dtype and x.shape == y.shape
                            and (x.tobytes() == y.tobytes() if x.dtype.kind == "f"
                                 else np.array_equal(x, y)))
                    if not same:
                        print("ARRAY DIFFERS", rel, k)
                        bad += 1
            elif n.endswith(".json"):
                ja, jb = (_strip(json.load(open(p))) for p in (pa, pb))
                if ja != jb:
                    print("JSON DIFFERS", rel)
                    bad += 1
            else:
                if open(pa).read() != open(pb).read():
                    print("TEXT DIFFERS", rel)
                    subprocess.run(["diff", pa, pb])
                    bad += 1
    print(f"{files} files, {arrays} arrays compared bit for bit: "
          + ("ALL IDENTICAL" if not bad else f"{bad} DIFFERENCES"))
    return 1 if bad else 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "make":
        make(sys.argv[2])
    elif len(sys.argv) == 4 and sys.argv[1] == "compare":
        sys.exit(compare(sys.argv[2], sys.argv[3]))
    else:
        sys.exit(__doc__)
