"""Texts for the budget benchmarks, built reproducibly from what any Debian or
Ubuntu machine with Python 3.11 has (no downloads):

- shakespeare: corpora/tinyshakespeare.txt (1.1 MB of verse and dialogue);
- licenses: the licence texts in /usr/share/common-licenses, in name order,
  cut to 200,000 characters (legal English prose, small);
- code: the pure-ASCII .py files of the Python standard library, in path
  order, then pure-ASCII C headers under /usr/include, until 12,000,000
  characters (source code, large);
- small texts in three scripts, for the small-text rule (issue 27):
  en-10k, en-50k, en-200k (the first 10, 50 and 200 KB of tiny
  Shakespeare, ~62 distinct characters); ru-10k, ru-57k, cyrillic-171k
  (vim's Russian tutor cut to 10 KB, whole, and with the Ukrainian and
  Bulgarian ones: 117-165 characters); ja-10k, ja-45k, cjk-126k (vim's
  Japanese tutor cut to 10 KB, whole, and with the Chinese and Korean
  ones: 270-1,338 characters).  Sizes are UTF-8 bytes, cut at a character.

    python bench/texts.py code      # prints the path of the built text
"""
from __future__ import annotations

import os
import sys
import sysconfig

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CACHE = os.environ.get("CHARRNN_BENCH_TEXTS", "/tmp/charrnn-bench-texts")
SIZES = {"licenses": 200_000, "code": 12_000_000}
TUTORS = "/usr/share/vim/vim90/tutor/tutor.{}.utf-8"
# name -> (the files, in order, UTF-8 bytes to keep or None for all)
SMALL = {"en-10k": (["shakespeare"], 10_000), "en-50k": (["shakespeare"], 50_000),
         "en-200k": (["shakespeare"], 200_000),
         "ru-10k": (["ru"], 10_000), "ru-57k": (["ru"], None),
         "cyrillic-171k": (["ru", "uk", "bg"], None),
         "ja-10k": (["ja"], 10_000), "ja-45k": (["ja"], None),
         "cjk-126k": (["ja", "zh_cn", "ko"], None)}


def _files(top: str, suffix: str):
    for root, dirs, names in os.walk(top):
        dirs[:] = sorted(d for d in dirs if d not in ("site-packages", "dist-packages", "__pycache__"))
        for n in sorted(names):
            if n.endswith(suffix):
                yield os.path.join(root, n)


def _ascii(path: str) -> str | None:
    try:
        with open(path, "rb") as f:
            return f.read().decode("ascii")
    except (OSError, UnicodeDecodeError):
        return None


def _small(name: str) -> str:
    files, keep = SMALL[name]
    parts = []
    for f in files:
        path = os.path.join(ROOT, "corpora", "tinyshakespeare.txt") if f == "shakespeare" \
            else TUTORS.format(f)
        with open(path, encoding="utf-8") as fh:
            parts.append(fh.read())
    data = "".join(parts).encode("utf-8")
    return data[:keep].decode("utf-8", errors="ignore") if keep else data.decode("utf-8")


def _build(name: str) -> str:
    if name in SMALL:
        return _small(name)
    if name == "licenses":
        top = "/usr/share/common-licenses"
        paths = [os.path.join(top, n) for n in sorted(os.listdir(top))]
        parts = []
        for p in paths:
            if os.path.isfile(p):
                with open(p, encoding="utf-8", errors="replace") as f:
                    parts.append(f.read())
        return "".join(parts)[: SIZES[name]]
    if name == "code":
        out, n = [], 0
        sources = [(sysconfig.get_paths()["stdlib"], ".py"), ("/usr/include", ".h")]
        for top, suffix in sources:
            for p in _files(top, suffix):
                t = _ascii(p)
                if t:
                    out.append(t)
                    n += len(t)
                    if n >= SIZES[name]:
                        return "".join(out)[: SIZES[name]]
        raise SystemExit(f"only {n} characters of code found")
    raise SystemExit(f"unknown text {name!r}")


def text_path(name: str) -> str:
    """The path of a benchmark text (built into CACHE on first use)."""
    if name == "shakespeare":
        return os.path.join(ROOT, "corpora", "tinyshakespeare.txt")
    path = os.path.join(CACHE, f"{name}.txt")
    if not os.path.exists(path):
        os.makedirs(CACHE, exist_ok=True)
        text = _build(name)
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(path + ".tmp", path)
    return path


if __name__ == "__main__":
    for name in sys.argv[1:] or ["licenses", "code"]:
        p = text_path(name)
        print(p, os.path.getsize(p))
