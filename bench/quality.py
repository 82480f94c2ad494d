"""Validation loss reached on tiny Shakespeare in a fixed wall-time budget.

    python bench/quality.py --table                 # rnn, lstm, gru defaults at 1, 2, 5, 10 min
    python bench/quality.py --table --marks 1m,2m --run "lstm 1x512=--model lstm --num-layers 1 --hidden-size 512"
    python bench/quality.py --table --chars 2M,4M,8M --run "..."  # per character seen, untimed
    python bench/quality.py --time 120 -- --hidden-size 128 --lr 0.05   # one CLI run

--table: one run per model; each run trains until the last mark and is
evaluated on the validation text at every mark.  The clock counts training
steps only and is paused while evaluating, so the loss at a mark is what
``charrnn train --max-time MARK`` ends with (apart from its own periodic
evaluations).  Options are parsed by ``charrnn train`` itself, so the rows
without --run are exactly each --model's defaults.  Every timed run holds
the machine-wide bench lock (/tmp/charrnn-bench.lock) for its own duration
only, so other benchmarks can interleave (do not wrap --table in flock).  --chars marks count characters
trained on instead of seconds: deterministic, untimed, so no lock.

--time T -- OPTIONS: one ``charrnn train`` subprocess (exactly as a user
would run it) for T seconds; prints the final validation loss.  Takes no
lock itself: run it as ``flock /tmp/charrnn-bench.lock python bench/quality.py ...``.

--grid RESULTS.json: budgeted runs as a user makes them, one ``charrnn train
TEXT --max-time B`` subprocess per (text, budget, configuration), each scored
by the validation loss of its best.npz and of its last evaluation.  The
configuration "auto" passes only --model, so charrnn chooses the sizes and
dropout itself; the others set them by hand.  Results go to RESULTS.json as
each run ends, and a rerun skips what is there (unattended, resumable).
--jobs 2 runs two at a time, each pinned to one core (taskset): both the
grid rows and the automatic choice then see a one-core machine.  --text
takes several texts ("licenses,code"), so both share one queue; a label
"NAME@TEXT" runs only on that text (a dropout grid that differs by text).
bench/budget_grid.sh runs the whole grid of bench/README.md.

    python bench/quality.py --grid /tmp/grid.json --text licenses --budgets 2m,10m \
        --config auto="--model gru" --config "2x128 d0=--model gru --num-layers 2 \
        --hidden-size 128 --dropout 0" ... --jobs 2

Losses are nats/char and bits/char (= nats / ln 2).
"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from charrnn.nn.blas import configure_env  # noqa: E402

configure_env()     # BLAS threads and kernels as the charrnn command sets them; before numpy

import argparse  # noqa: E402
import contextlib  # noqa: E402
import dataclasses  # noqa: E402
import fcntl  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import shlex  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

from charrnn.store import checkpoint  # noqa: E402
from charrnn.api.options import parse_duration  # noqa: E402

CORPUS = os.path.join(ROOT, "corpora", "tinyshakespeare.txt")
LOCK = "/tmp/charrnn-bench.lock"
LN2 = math.log(2.0)
DEFAULT_RUNS = {"rnn": "", "lstm": "--model lstm", "gru": "--model gru"}


# ------------------------------------------------------------ one CLI run
def run(seconds: float, extra: list[str], corpus: str = CORPUS) -> dict:
    """Run ``charrnn train`` (a subprocess, exactly as a user would) for
    ``seconds`` with ``extra`` options; return the final figures."""
    with tempfile.TemporaryDirectory() as d:
        args = [sys.executable, "-m", "charrnn", "train", corpus, "--max-time", str(seconds),
                "--checkpoint-dir", d, "--quiet", *extra]
        t0 = time.perf_counter()
        code = subprocess.call(args, cwd=ROOT)
        wall = time.perf_counter() - t0
        if code:
            raise SystemExit(f"charrnn train exited {code}")
        ck = checkpoint.load(os.path.join(d, checkpoint.LATEST))
        val = float(ck.history["val_loss"][-1])
        return {"iters": ck.state["iteration"], "val": val, "bits": val / LN2,
                "wall": wall, "chars_per_s": ck.state["chars_seen"] / ck.state["wall_time"]}


# ------------------------------------------------------ loss at many marks
def train_config(args: list[str], corpus: str):
    """The TrainConfig ``charrnn train CORPUS ARGS`` would use."""
    from charrnn.cli.commands import train as train_cmd
    from charrnn.runs.config import TrainConfig, make_train_config
    ctx = train_cmd.make_context("train", [corpus, *args])
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    opts = {k: v for k, v in ctx.params.items() if k in fields}
    return make_train_config(**opts)


def describe(cfg) -> str:
    """Short settings string: '2x256 lstm adam 0.002 b64 s64 clip norm 5 drop 0.1'."""
    s = (f"{cfg.num_layers}x{cfg.hidden_size} {cfg.model} {cfg.optimizer} {cfg.lr:g} "
         f"b{cfg.batch_size} s{cfg.seq_len} clip {cfg.clip_mode} {cfg.clip:g}")
    if cfg.embed_size:
        s += f" emb {cfg.embed_size}"
    if cfg.dropout:
        s += f" drop {cfg.dropout:g}"
    if cfg.lr_decay != 1.0:
        s += f" decay {cfg.lr_decay:g}/{cfg.lr_decay_every}"
    if cfg.warmup:
        s += f" warmup {cfg.warmup}"
    return s


@contextlib.contextmanager
def bench_lock(enabled=True):
    """Hold the machine-wide benchmark lock (flock) for the duration."""
    if not enabled:
        yield
        return
    with open(LOCK, "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"waiting for {LOCK} (if you wrapped this script in flock, "
                  f"pass --no-lock) ...", file=sys.stderr, flush=True)
            fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def loss_at_marks(args: list[str], marks: list[float], unit: str = "s", corpus: str = CORPUS,
                  log=None) -> dict:
    """Train with ``charrnn train`` options ``args`` and evaluate at each mark.

    unit 's': marks are seconds of training (evaluation time excluded);
    unit 'chars': marks are characters trained on.  Returns the settings,
    chars/s, and per mark: iterations, chars, seconds, val loss (nats/char).
    """
    from charrnn.runs.trainer import Trainer
    from charrnn.text.corpus import load_corpus
    cfg = train_config(args, corpus)
    corp = load_corpus([corpus])
    rows = []
    with tempfile.TemporaryDirectory() as d:
        tr = Trainer(cfg, corp, d)
        clock = 0.0
        for mark in sorted(marks):
            while (clock if unit == "s" else tr.chars_seen) < mark:
                t = time.perf_counter()
                tr.train_step()
                clock += time.perf_counter() - t
            val = tr.validate()
            rows.append({"mark": mark, "iters": tr.iteration, "chars": tr.chars_seen,
                         "seconds": clock, "val": val, "bits": val / LN2})
            if log:
                print(f"  {log}: {_mark_label(mark, unit)}  it {tr.iteration}  "
                      f"{tr.chars_seen / max(clock, 1e-9) / 1000:.1f}k chars/s  val {val:.4f}",
                      file=sys.stderr, flush=True)
    return {"settings": describe(cfg), "args": args, "unit": unit,
            "chars_per_s": rows[-1]["chars"] / rows[-1]["seconds"], "marks": rows}


def _mark_label(mark, unit):
    if unit == "chars":
        return f"{mark / 1e6:g}M chars"
    return f"{mark / 60:g} min" if mark >= 60 else f"{mark:g} s"


def parse_chars(text: str) -> float:
    t = text.strip().lower()
    mult = {"k": 1e3, "m": 1e6}.get(t[-1:], 1)
    return float(t[:-1] if mult != 1 else t) * mult


def format_table(results: dict, unit: str) -> str:
    labels = list(results)
    marks = [r["mark"] for r in next(iter(results.values()))["marks"]]
    head = "val loss on tiny Shakespeare, nats/char (bits/char), after "
    head += "training for" if unit == "s" else "training on"
    w = max(len(lb) for lb in labels + ["run"])
    ws = max(len(r["settings"]) for r in results.values())
    lines = [head,
             f"{'run':<{w}}  {'settings':<{ws}}  {'chars/s':>8}  "
             + "  ".join(f"{_mark_label(m, unit):>15}" for m in marks)]
    for lb, r in results.items():
        cells = "  ".join(f"{m['val']:.3f} ({m['bits']:.3f})".rjust(15) for m in r["marks"])
        lines.append(f"{lb:<{w}}  {r['settings']:<{ws}}  {r['chars_per_s'] / 1000:7.1f}k  {cells}")
    return "\n".join(lines)


# ------------------------------------------------------------ budget grid
def budget_run(text: str, seconds: float, extra: list[str], core: int | None = None) -> dict:
    """One ``charrnn train`` subprocess for ``seconds`` (pinned to ``core``):
    best and last validation loss, iterations, speed, what it chose and its plan."""
    with tempfile.TemporaryDirectory() as d:
        args = [sys.executable, "-m", "charrnn", "train", text, "--max-time", f"{seconds:g}",
                "--checkpoint-dir", d, "--quiet", *extra]
        if core is not None:
            args = ["taskset", "-c", str(core), *args]
        t0 = time.perf_counter()
        proc = subprocess.run(args, cwd=ROOT, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if proc.returncode:
            return {"error": proc.stderr.strip().splitlines()[-1:], "wall": wall}
        ck = checkpoint.load(os.path.join(d, checkpoint.LATEST))
        vals = [float(v) for v in ck.history["val_loss"]]
        m, t = ck.config["model"], ck.config["train"]
        return {"best": min(vals), "last": vals[-1], "iters": ck.state["iteration"],
                "wall": wall, "chars_per_s": ck.state["chars_seen"] / ck.state["wall_time"],
                "size": f"{m['num_layers']}x{m['hidden_size']}"
                        + (f"e{m['embed_size']}" if m.get("embed_size") else ""),
                "dropout": m["dropout"],
                "shape": f"{t['batch_size']}x{t['seq_len']}",
                "choices": ck.config.get("choices"), "plan": ck.config.get("plan"),
                "evals": list(zip([int(i) for i in ck.history["iter"]], vals))}


def run_grid(path: str, text_names: str, budgets: list[float], configs: dict, jobs: int = 1):
    """Every (budget, text, config) not yet in the results file at ``path``,
    budgets in the order given; two at a time on cores 0 and 1 with jobs=2.
    text_names: one or more names, comma-separated ("licenses,code")."""
    import threading
    sys.path.insert(0, HERE)
    from texts import text_path
    names = [t for t in text_names.split(",") if t]
    texts = {t: text_path(t) for t in names}
    results = json.load(open(path)) if os.path.exists(path) else {}
    only = {lb: lb.split("@", 1)[1].split(",") if "@" in lb else names for lb in configs}
    todo = [(t, b, lb) for b in budgets for t in names for lb in configs
            if t in only[lb] and f"{t}|{b:g}|{lb.split('@')[0]}" not in results]
    lock = threading.Lock()

    def worker(core):
        while True:
            with lock:
                if not todo:
                    return
                text_name, b, lb = todo.pop(0)
            r = budget_run(texts[text_name], b, shlex.split(configs[lb]), core)
            name = lb.split("@")[0]
            r.update(text=text_name, budget=b, label=name, options=configs[lb])
            with lock:
                results[f"{text_name}|{b:g}|{name}"] = r
                with open(path + ".tmp", "w") as f:
                    json.dump(results, f, indent=1)
                os.replace(path + ".tmp", path)
                shown = (f"best {r['best']:.4f} last {r['last']:.4f} {r['size']} d{r['dropout']:g} "
                         f"b{shape_of(r)}" if "best" in r else f"FAILED {r['error']}")
                print(f"  {text_name} {b / 60:g} min {name}: {shown}", file=sys.stderr, flush=True)

    with bench_lock():
        if jobs > 1:
            threads = [threading.Thread(target=worker, args=(c,)) for c in range(jobs)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        else:
            worker(None)
    return results


def shape_of(r: dict) -> str:
    """A grid result's batch shape ("16x32"); for results from before runs
    recorded it, the shape in its choices, else the one its options set,
    else its --model's own (the only one then)."""
    if "shape" in r:
        return r["shape"]
    ch = r.get("choices") or {}
    if ch.get("batch_size") and ch.get("seq_len"):
        return f"{ch['batch_size']}x{ch['seq_len']}"
    from charrnn.runs.config import model_defaults
    opts, args = {}, shlex.split(r.get("options", ""))
    for flag, value in zip(args, args[1:]):
        opts[flag] = value
    d = model_defaults(opts.get("--model", "rnn"))
    return f"{opts.get('--batch-size', d['batch_size'])}x{opts.get('--seq-len', d['seq_len'])}"


def format_grid(results: dict) -> str:
    """Per text and budget: every configuration's best and last validation
    loss, and the automatic choice against the best hand-set one."""
    lines = []
    keys = sorted({(r["text"], r["budget"]) for r in results.values()})
    for text, b in keys:
        rows = [r for r in results.values() if r["text"] == text and r["budget"] == b]
        ok = [r for r in rows if "best" in r]
        lines.append(f"{text}, {b / 60:g} min (validation loss of best.npz / of the last "
                     f"evaluation, nats/char)")
        for r in sorted(rows, key=lambda r: (r["label"] != "auto", r["label"])):
            if "best" not in r:
                lines.append(f"  {r['label']:<12} failed: {r['error']}")
                continue
            shape = shape_of(r)
            lines.append(f"  {r['label']:<12} {r['size']:>9} d{r['dropout']:<4g} b{shape:<6} "
                         f"{r['best']:.4f} / {r['last']:.4f}  {r['iters']:6d} its "
                         f"{r['chars_per_s'] / 1000:6.1f}k chars/s"
                         + (f" {r['wall']:5.0f} s" if "wall" in r else ""))
        hand = [r for r in ok if r["label"] != "auto"]
        auto = [r for r in ok if r["label"] == "auto"]
        if hand and auto:
            best = min(hand, key=lambda r: r["best"])
            lines.append(f"  auto - best hand-set ({best['label']}): "
                         f"{auto[0]['best'] - best['best']:+.4f} nats/char")
        lines.append("")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--table", action="store_true", help="loss-at-marks table (see below)")
    ap.add_argument("--marks", default="1m,2m,5m,10m", help="wall-time marks for --table")
    ap.add_argument("--chars", default=None, help="character marks instead (e.g. 1M,2M,4M); untimed")
    ap.add_argument("--run", action="append", default=[], metavar="LABEL=OPTIONS",
                    help="a row: label and charrnn train options (default: rnn, lstm, gru "
                         "with their defaults); repeatable")
    ap.add_argument("--no-lock", action="store_true",
                    help="do not take the bench lock (when the caller already holds it)")
    ap.add_argument("--json", default=None, help="also write the results to this JSON file")
    ap.add_argument("--time", type=float, default=120.0, help="seconds for the single CLI run")
    ap.add_argument("--corpus", default=CORPUS)
    ap.add_argument("--grid", default=None, metavar="RESULTS.json",
                    help="budget grid (see below); results kept and resumed in this file")
    ap.add_argument("--text", default="shakespeare",
                    help="grid text(s), comma-separated: shakespeare, licenses, code")
    ap.add_argument("--budgets", default="2m,10m", help="grid budgets (--max-time of each run)")
    ap.add_argument("--config", action="append", default=[], metavar="LABEL=OPTIONS",
                    help="a grid configuration; repeatable")
    ap.add_argument("--jobs", type=int, default=1, help="grid runs at once (one core each)")
    ap.add_argument("--show", action="store_true", help="print the grid table of --grid and stop")
    ap.add_argument("train_args", nargs="*", help="options for charrnn train (after --)")
    a = ap.parse_args()

    if a.grid:
        if not a.show:
            configs = dict(c.split("=", 1) for c in a.config)
            run_grid(a.grid, a.text, [parse_duration(b) for b in a.budgets.split(",")], configs,
                     a.jobs)
        print(format_grid(json.load(open(a.grid))), flush=True)
        return

    if not a.table:
        r = run(a.time, a.train_args, a.corpus)      # wrap in flock yourself, as before
        label = " ".join(a.train_args) or "(defaults)"
        print(f"{label:40s} {a.time:6.0f}s  iters {r['iters']:6d}  {r['chars_per_s']/1000:6.1f}k chars/s  "
              f"val {r['val']:.4f} nats/char  {r['bits']:.4f} bits/char", flush=True)
        return

    unit = "chars" if a.chars else "s"
    marks = ([parse_chars(m) for m in a.chars.split(",")] if a.chars
             else [parse_duration(m) for m in a.marks.split(",")])
    runs = dict(r.split("=", 1) if "=" in r else (r, r) for r in a.run) or DEFAULT_RUNS
    results = {}
    for label, opts in runs.items():
        with bench_lock(enabled=unit == "s" and not a.no_lock):
            results[label] = loss_at_marks(shlex.split(opts), marks, unit, a.corpus, log=label)
        if a.json:
            with open(a.json, "w") as f:
                json.dump(results, f, indent=1)
    print(format_table(results, unit), flush=True)


if __name__ == "__main__":
    main()
