"""`charrnn export`: the page's size and its characters per second in a browser.

For the default GRU of a 2-minute budget on tiny Shakespeare (what
`charrnn train corpora/tinyshakespeare.txt --model gru --max-time 2m`
chooses: 2 x 256, one row per character, batch 16 x 32; see the README's
"Runs planned for their budget"), trained for --iters steps only (speed does
not depend on training), exported, and opened in headless Chromium: the
page times its own generation of --chars characters (the sampler the Generate
button streams from, temperature 1, no filters) with performance.now() and
writes the figure into the page, which Chromium dumps.  Median of --runs
page loads.  The Generate button runs the same loop in slices of about 20 ms
with a setTimeout(0) between them, so a streamed sample comes out at nearly
this rate.

    python bench/export.py                       # prints; --json writes the figures
    python bench/export.py --checkpoint ck/best.npz --json bench/results/export.json
"""
from __future__ import annotations

import argparse
import html
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import urllib.parse
from pathlib import Path

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "corpora", "tinyshakespeare.txt")
DEFAULT_GRU = ["--model", "gru", "--num-layers", "2", "--hidden-size", "256", "--dropout", "0",
               "--batch-size", "16", "--seq-len", "32"]


def charrnn(*args):
    exe = shutil.which("charrnn", path=os.path.dirname(sys.executable)) or "charrnn"
    subprocess.run([exe, *map(str, args)], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


def chromium() -> str:
    for name in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if name and shutil.which(name):
            return shutil.which(name)
    sys.exit("no chromium on PATH (apt-get install chromium, or set CHROMIUM)")


def page_rate(exe: str, page: Path, chars: int) -> dict:
    query = urllib.parse.quote(json.dumps({"bench": chars}))
    with tempfile.TemporaryDirectory() as profile:
        r = subprocess.run([exe, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                            "--disable-background-networking", f"--user-data-dir={profile}",
                            "--dump-dom", f"{page.as_uri()}#test={query}"],
                           capture_output=True, text=True, timeout=600)
    m = re.search(r'<pre id="charrnn-test"[^>]*>(.*?)</pre>', r.stdout, re.S)
    if not m:
        sys.exit(f"the page wrote no answer: {r.stderr[-2000:]}")
    return json.loads(html.unescape(m.group(1)))["bench"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", help="export this checkpoint instead of training the default GRU")
    ap.add_argument("--iters", type=int, default=50, help="training steps of the default GRU")
    ap.add_argument("--chars", type=int, default=5000, help="characters generated per page load")
    ap.add_argument("--runs", type=int, default=5, help="page loads (the median is reported)")
    ap.add_argument("--json", help="also write the figures to this file")
    a = ap.parse_args()
    exe = chromium()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        ck = a.checkpoint
        if ck is None:
            charrnn("train", CORPUS, *DEFAULT_GRU, "--max-iters", a.iters, "--eval-every", a.iters,
                    "--checkpoint-dir", tmp / "ck", "--quiet")
            ck = tmp / "ck" / "best.npz"
        page = tmp / "model.html"
        charrnn("export", page, "--checkpoint", ck)
        size = page.stat().st_size
        runs = [page_rate(exe, page, a.chars) for _ in range(a.runs)]
    rates = [r["chars"] / r["seconds"] for r in runs]
    load = os.getloadavg()[0]         # other processes share the cores: say how busy
    version = subprocess.run([exe, "--version"], capture_output=True, text=True).stdout.strip()
    what = (f"{a.checkpoint}" if a.checkpoint else
            "default GRU of a 2-minute budget on tiny Shakespeare: 2 x 256, embed 0, "
            f"{a.iters} training steps")
    out = {"model": what, "page_bytes": size, "chars_per_page_load": a.chars,
           "chars_per_s_median": round(statistics.median(rates)),
           "chars_per_s_runs": [round(x) for x in rates], "browser": version,
           "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
           "load_average_1min_after": round(load, 2),
           "command": "python bench/export.py " + " ".join(sys.argv[1:])}
    print(f"{what}")
    print(f"page: {size:,} bytes ({size / 1e6:.2f} MB)")
    print(f"browser ({version}): {out['chars_per_s_median']:,} characters a second "
          f"(median of {a.runs} page loads of {a.chars:,} characters: "
          f"{', '.join(f'{x:,.0f}' for x in rates)}); load average {load:.1f} on "
          f"{os.cpu_count()} cores")
    if a.json:
        with open(a.json, "w", encoding="utf-8") as f:
            json.dump(out, f, indent=2)
            f.write("\n")


if __name__ == "__main__":
    main()
