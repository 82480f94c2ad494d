"""Peak memory (RSS) of training on a large corpus, measured side by side.

Writes a synthetic UTF-8 corpus (words, punctuation, some non-ASCII) of
--size-mb into a temporary folder, then runs `charrnn train` on it as a
subprocess, twice: cold (the streaming encoder builds the memory-mapped id
cache) and warm (the cache is reused).  Each run's peak RSS is the kernel's
high-water mark for that process; the id array is the cache's size on
disk, whose pages count toward RSS once training has touched them.

Side by side, on a smaller file (--compare-mb), the in-memory loader the
streaming one replaces (the whole text as one Python string) against the
streaming one, both loading the corpus only.

    python bench/memory.py                      # 1 GiB corpus, compare at 100 MiB
    python bench/memory.py --size-mb 200 --compare-mb 50
    python bench/memory.py --files 1000 --compare-mb 0   # the 1 GiB as a folder of files

Everything is deleted at the end (the corpus, the cache, the checkpoints).
"""
from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORDS = ("the of and to in a is that for it as was with be by on not he this are or his "
         "from at which but have an they you were her she there been one all we their "
         "river mountain light shadow winter morning garden letter window silence "
         "café naïve Straße façade smörgåsbord Ωmega δέλτα 東京 日本語 😀").split()


def write_corpus(path: str, size: int, seed: int = 0) -> int:
    """Write about `size` bytes of text to path, a line at a time; returns bytes written."""
    rng = random.Random(seed)
    written = 0
    with open(path, "w", encoding="utf-8") as f:
        block = []
        while written < size:
            line = " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 14)))
            line = line[0].upper() + line[1:] + rng.choice(".,;:!?") + "\n"
            block.append(line)
            if len(block) == 4096:
                data = "".join(block)
                f.write(data)
                written += len(data.encode("utf-8"))
                block = []
        if block:
            f.write("".join(block))
    return os.path.getsize(path)


def run_measured(cmd, env):
    """Run cmd; -> (exit code, wall seconds, peak RSS bytes, peak anonymous RSS bytes)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    peak_anon = [0]

    def poll():                       # RssAnon: memory that is not a mapped file
        path = f"/proc/{proc.pid}/status"
        while proc.poll() is None:
            try:
                with open(path) as f:
                    for line in f:
                        if line.startswith("RssAnon:"):
                            peak_anon[0] = max(peak_anon[0], int(line.split()[1]) * 1024)
            except OSError:
                break
            time.sleep(0.02)
    t = threading.Thread(target=poll, daemon=True)
    t.start()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    t.join()
    err = proc.stderr.read()
    if proc.returncode != 0:
        sys.exit(f"bench/memory.py: {' '.join(cmd[:4])}... failed ({proc.returncode}):\n{err}")
    return proc.returncode, time.perf_counter() - t0, usage.ru_maxrss * 1024, peak_anon[0]


LOAD_ONLY = """
import sys
sys.path.insert(0, {root!r})
from charrnn.nn.blas import configure_env
configure_env()
from charrnn.text import corpus
corpus.STREAM_MIN_BYTES = float("inf") if sys.argv[1] == "memory" else 0
c = corpus.load_corpus([sys.argv[2]])
print(len(c.ids), int(c.ids.sum() % 7))          # touch every id
"""


def mb(n):
    return f"{n / 2**20:,.0f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mb", type=int, default=1024, help="size of the big corpus (MiB)")
    ap.add_argument("--compare-mb", type=int, default=100,
                    help="size for the in-memory vs streaming comparison (MiB); 0: skip")
    ap.add_argument("--iters", type=int, default=200, help="training iterations per run")
    ap.add_argument("--files", type=int, default=1,
                    help="write the big corpus as this many files in a folder and train on "
                         "the folder (1: one file)")
    ap.add_argument("--tmp", default=None, help="folder for the temporary files (default: system temp)")
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="charrnn-membench-", dir=a.tmp)
    env = dict(os.environ, CHARRNN_CACHE_DIR=os.path.join(work, "cache"), PYTHONPATH=ROOT)
    rows = []
    try:
        if a.compare_mb:
            small = os.path.join(work, "small.txt")
            size = write_corpus(small, a.compare_mb << 20, seed=1)
            res = {}
            for how in ("memory", "stream"):
                cmd = [sys.executable, "-c", LOAD_ONLY.format(root=ROOT), how, small]
                res[how] = run_measured(cmd, env)
            ids = sum(os.path.getsize(os.path.join(env["CHARRNN_CACHE_DIR"], n))
                      for n in os.listdir(env["CHARRNN_CACHE_DIR"]) if n.endswith(".npy"))
            for how, label in (("memory", "load, whole text in memory"), ("stream", "load, streaming + cache")):
                _, secs, rss, anon = res[how]
                rows.append([mb(size), label, mb(rss), mb(anon), mb(ids) if how == "stream" else "-",
                             f"{secs:.1f}"])
            ratio = res["memory"][2] / res["stream"][2]
            shutil.rmtree(env["CHARRNN_CACHE_DIR"], ignore_errors=True)
            os.unlink(small)

        big = os.path.join(work, "big.txt")
        t0 = time.perf_counter()
        if a.files > 1:
            big = os.path.join(work, "big")
            os.makedirs(big)
            size = sum(write_corpus(os.path.join(big, f"part{k:05d}.txt"),
                                    (a.size_mb << 20) // a.files, seed=k)
                       for k in range(a.files))
        else:
            size = write_corpus(big, a.size_mb << 20, seed=0)
        print(f"wrote {mb(size)} MiB of text in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
        results = []
        for label in ("train, cold (builds the cache)", "train, warm (reuses the cache)"):
            ck = os.path.join(work, "ck")
            cmd = [sys.executable, "-m", "charrnn", "train", big, "--checkpoint-dir", ck, "--overwrite",
                   "--max-iters", str(a.iters), "--eval-every", str(a.iters), "--val-frac", "0.0001",
                   "--quiet"]
            _, secs, rss, anon = run_measured(cmd, env)
            ids = sum(os.path.getsize(os.path.join(env["CHARRNN_CACHE_DIR"], n))
                      for n in os.listdir(env["CHARRNN_CACHE_DIR"]) if n.endswith(".npy"))
            results.append((rss, ids))
            rows.append([mb(size), label, mb(rss), mb(anon), mb(ids), f"{secs:.1f}"])
        # --resume on the unchanged text with the cache warm: the checkpoint
        # is checked in full, the cache verified (checksum, ids in range) and
        # the text fingerprint taken from it, then one more iteration.
        cmd = [sys.executable, "-m", "charrnn", "train", big, "--checkpoint-dir", ck, "--resume",
               "--max-iters", str(a.iters + 1), "--quiet"]
        _, secs, rss, anon = run_measured(cmd, env)
        rows.append([mb(size), "resume, warm (+1 iteration)", mb(rss), mb(anon), mb(ids),
                     f"{secs:.1f}"])
    finally:
        shutil.rmtree(work, ignore_errors=True)

    headers = ["text MiB", "run", "peak RSS MiB", "peak anon MiB", "id array MiB", "wall s"]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    line = "  ".join(h.rjust(w) for h, w in zip(headers, widths))
    print(line)
    print("-" * len(line))
    for r in rows:
        print("  ".join(c.rjust(w) for c, w in zip(r, widths)))
    if a.compare_mb:
        print(f"\nin-memory / streaming peak RSS at {a.compare_mb} MiB: {ratio:.1f}x")
    worst = max(rss - ids for rss, ids in results)
    print(f"training on {mb(size)} MiB: peak RSS - id array = {mb(worst)} MiB "
          f"(target <= 300 MiB): {'met' if worst <= 300 << 20 else 'NOT met'}")


if __name__ == "__main__":
    main()
