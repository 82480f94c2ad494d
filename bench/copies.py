"""How long the copy report takes, how much memory it holds, and where its
default --min-len comes from.

    python bench/copies.py                 # tiny Shakespeare, the --min-len table, 1 GB
    python bench/copies.py --big-mb 100    # a smaller big text (then extrapolated)

Three measurements, each in a fresh child process so that its peak
resident memory (resource.getrusage ru_maxrss) is its own:

1. tiny Shakespeare (corpora/tinyshakespeare.txt, 1.1 MB) against a
   2,000-character sample: pieces of the corpus (5 to 60 characters) spliced
   with random characters of its vocabulary, so that copies of every length
   up to 60 occur, as they do in a model's samples;
2. the --min-len table: the held-out last 10 % of tiny Shakespeare (what
   `charrnn train` validates on: new text by the same hand) against the
   first 90 %, the share of its characters inside copied spans of N or more
   characters for several N.  A model that writes new text in the style
   should look like this; the default N is where this share becomes small;
3. a big text (default 1,000 MB) made in a temporary folder by writing the
   corpus's lines again and again, each copy in a new random order, then
   deleted: the same 2,000-character sample, through the path `charrnn
   copies --text` takes (files decoded and read in pieces, then chunks).

Writes bench/results/copies.json.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "corpora", "tinyshakespeare.txt")
OUT = os.path.join(ROOT, "bench", "results", "copies.json")
MIN_LENS = (8, 12, 16, 20, 24, 32, 48)


def make_sample(text: str, n: int = 2000, seed: int = 1) -> str:
    rng = random.Random(seed)
    vocab = sorted(set(text))
    out = []
    size = 0
    while size < n:
        if rng.random() < 0.5:
            o = rng.randrange(len(text))
            piece = text[o:o + rng.randint(5, 60)]
        else:
            piece = "".join(rng.choice(vocab) for _ in range(rng.randint(1, 8)))
        out.append(piece)
        size += len(piece)
    return "".join(out)[:n]


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024      # KiB on Linux


def child(args) -> None:
    """One measurement; prints one JSON line."""
    sys.path.insert(0, ROOT)
    from charrnn.api.verbs import TrainingText, copy_reports
    import numpy  # noqa: F401  (its memory is counted in the baseline)
    base = _rss_mb()
    text = open(CORPUS, encoding="utf-8").read()
    if args.measure == "minlen":
        cut = len(text) - round(len(text) * 0.1)
        train, held = text[:cut], text[cut:]
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "train.txt")
            with open(path, "w", encoding="utf-8") as f:
                f.write(train)
            rows = {}
            for n in MIN_LENS:
                r = copy_reports([held], TrainingText([path]), n)[0]
                rows[str(n)] = {"share": round(r["copied_share"], 4),
                                "longest": r["longest"]["length"] if r["longest"] else None}
        print(json.dumps({"held_out_chars": len(held), "training_chars": len(train),
                          "by_min_len": rows}))
        return
    sample = make_sample(text)
    del text
    base = max(base, _rss_mb())
    t = time.perf_counter()
    tt = TrainingText([args.path])
    r = copy_reports([sample], tt, 20)[0]
    secs = time.perf_counter() - t
    print(json.dumps({"seconds": round(secs, 2), "chars": tt.chars,
                      "chars_per_s": round(tt.chars / secs),
                      "peak_rss_mb": round(_rss_mb(), 1), "rss_before_mb": round(base, 1),
                      "longest": r["longest"]["length"] if r["longest"] else None,
                      "copied_share": r["copied_share"]}))


def run_child(*args) -> dict:
    out = subprocess.run([sys.executable, os.path.abspath(__file__), *args], check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def make_big(path: str, mb: int, seed: int = 0) -> int:
    lines = open(CORPUS, encoding="utf-8").read().splitlines(keepends=True)
    rng = random.Random(seed)
    want, size = mb * 1_000_000, 0
    with open(path, "w", encoding="utf-8") as f:
        while size < want:
            rng.shuffle(lines)
            block = "".join(lines)
            f.write(block)
            size += len(block.encode("utf-8"))
    return size


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--big-mb", type=int, default=1000, help="size of the big text in MB")
    ap.add_argument("--measure", choices=["scan", "minlen"], help=argparse.SUPPRESS)
    ap.add_argument("--path", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.measure:
        return child(args)
    results = {"machine": f"{platform.machine()}, {os.cpu_count()} cpus (shared)",
               "python": platform.python_version(), "sample_chars": 2000, "min_len": 20}
    tiny = run_child("--measure", "scan", "--path", CORPUS)
    print(f"tiny Shakespeare ({tiny['chars']:,} chars): {tiny['seconds']} s, peak RSS "
          f"{tiny['peak_rss_mb']} MB (before the scan {tiny['rss_before_mb']} MB); longest copy "
          f"{tiny['longest']}, {tiny['copied_share']:.1%} in copies of 20+")
    results["tinyshakespeare"] = tiny
    ml = run_child("--measure", "minlen")
    print(f"held-out 10% of tiny Shakespeare ({ml['held_out_chars']:,} chars) against the "
          f"first 90%: share in copied spans of N+ characters")
    for n, row in ml["by_min_len"].items():
        print(f"  N {n:>3}: {row['share']:.1%}   (longest {row['longest']})")
    results["held_out_by_min_len"] = ml
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "big.txt")
        t = time.perf_counter()
        size = make_big(path, args.big_mb)
        made = time.perf_counter() - t
        big = run_child("--measure", "scan", "--path", path)
    big.update({"bytes": size, "made_in_s": round(made, 1)})
    print(f"{size / 1e6:,.0f} MB text ({big['chars']:,} chars): {big['seconds']} s "
          f"({big['chars_per_s'] / 1e6:.1f} M chars/s), peak RSS {big['peak_rss_mb']} MB "
          f"(before the scan {big['rss_before_mb']} MB)")
    results["big"] = big
    if args.big_mb < 1000:
        per_gb = big["seconds"] * 1e9 / size
        results["big"]["extrapolated_s_per_gb"] = round(per_gb, 1)
        print(f"extrapolated to 1 GB: {per_gb:.0f} s (time grows linearly with the text; "
              f"memory does not)")
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(results, f, indent=2)
        f.write("\n")
    print(f"wrote {os.path.relpath(OUT, ROOT)}")


if __name__ == "__main__":
    main()
