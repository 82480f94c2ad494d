"""Large corpora: a streaming encoder and a memory-mapped cache of ids.

A text is never held whole as a Python string.  Two streaming passes over
the files (read ``READ_BYTES`` at a time, decoded incrementally):

    1. the vocabulary: every code point seen (a (0x110000,) bool mask) and
       the number of characters;
    2. the ids: each piece mapped through a code point -> id lookup table and
       appended to a ``.npy`` file of uint8/uint16/uint32 (by vocabulary size).

The ``.npy`` is then opened with ``mmap_mode='r'``, so training reads ids
from the page cache instead of holding them.  The cache lives in
``cache_dir`` (``CHARRNN_CACHE_DIR``, else ``$XDG_CACHE_HOME/charrnn``, else
``~/.cache/charrnn``) under a name derived from the absolute paths, the
encoding and the error handler, and records each file's size and
modification time: an unchanged file reuses its cache, a changed one
rebuilds it (the stale entry is removed).

Decoding follows ``bytes.decode`` on each whole file exactly (files are
decoded separately, then concatenated), including ``errors`` = strict |
replace | ignore; under strict the error names the byte offset in the file.
"""
from __future__ import annotations

import codecs
import hashlib
import json
import os
import stat

import numpy as np

from . import data
from .errors import DataError

READ_BYTES = 1 << 22          # bytes read (and decoded) at a time
STREAM_MIN_BYTES = 32 << 20   # load_corpus uses the cache from this total size on
FORMAT = 1                    # bump when the cache layout changes
N_CODE_POINTS = 0x110000


# ------------------------------------------------------------- reading
def default_cache_dir() -> str:
    env = os.environ.get("CHARRNN_CACHE_DIR")
    if env:
        return env
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "charrnn")


def iter_text(path: str, encoding: str = "utf-8", errors: str = "strict",
              read_bytes: int = READ_BYTES):
    """Yield the decoded text of one file in pieces of at most ~read_bytes characters.

    The concatenated pieces equal ``open(path, 'rb').read().decode(encoding,
    errors)``; a character split across two reads is decoded whole.  Bad
    bytes under errors='strict' raise DataError naming their offset in the file.
    """
    try:
        dec = codecs.getincrementaldecoder(encoding)(errors)
    except LookupError:
        raise DataError(f"unknown text encoding {encoding!r}")
    offset = 0                                  # bytes read so far
    with data.open_binary(path) as f:
        while True:
            try:
                raw = f.read(read_bytes)
            except OSError as e:
                raise DataError(f"{path}: cannot read ({e.strerror})")
            final = not raw
            pending = len(dec.getstate()[0])    # undecoded bytes from earlier reads
            try:
                text = dec.decode(raw, final)
            except UnicodeDecodeError as e:
                at = offset - pending + e.start
                raise data.decode_error(path, encoding, at)
            offset += len(raw)
            if text:
                yield text
            if final:
                return


def _code_points(text: str) -> np.ndarray:
    """(N,) code points of text: uint8 for ASCII (no 4x copy), else uint32."""
    if text.isascii():
        return np.frombuffer(text.encode("ascii"), dtype=np.uint8)
    return data.code_points(text)


def scan(paths, encoding: str = "utf-8", errors: str = "strict",
         read_bytes: int = READ_BYTES):
    """First pass: -> (vocab, number of characters), vocab sorted by code point
    (what ``data.build_vocab`` gives for the whole decoded text)."""
    seen = np.zeros(N_CODE_POINTS, dtype=bool)
    n = 0
    for p in paths:
        for text in iter_text(p, encoding, errors, read_bytes):
            cps = _code_points(text)
            seen[cps] = True
            n += len(cps)
    return data.codes_to_vocab(np.flatnonzero(seen)), n


def iter_ids(paths, vocab: str, encoding: str = "utf-8", errors: str = "strict",
             read_bytes: int = READ_BYTES):
    """Second pass: yield the ids of the text piece by piece (dtype by vocab size).
    A character outside vocab raises DataError."""
    dtype = data.id_dtype(len(vocab))
    codes = data.vocab_to_codes(vocab)
    lut = np.zeros(N_CODE_POINTS, dtype=dtype)
    known = np.zeros(N_CODE_POINTS, dtype=bool)
    lut[codes] = np.arange(len(codes), dtype=dtype)
    known[codes] = True
    for p in paths:
        for text in iter_text(p, encoding, errors, read_bytes):
            cps = _code_points(text)
            if not known[cps].all():
                raise DataError(f"{p}: changed while being read; run again")
            yield lut[cps]


# --------------------------------------------------------------- cache
def _signature(paths):
    sig = []
    for p in paths:
        try:
            st = os.stat(p)
        except FileNotFoundError:
            raise DataError(f"{p}: no such file")
        except OSError as e:
            raise DataError(f"{p}: cannot read ({e.strerror})")
        sig.append({"path": os.path.abspath(p), "size": st.st_size, "mtime_ns": st.st_mtime_ns})
    return sig


def _digest(obj) -> str:
    return hashlib.sha1(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]


def cache_paths(paths, encoding: str, errors: str, cache_dir: str):
    """(.npy ids path, .json meta path, name prefix shared by every version)."""
    prefix = _digest({"paths": [os.path.abspath(p) for p in paths],
                      "encoding": encoding, "errors": errors, "format": FORMAT})
    version = _digest(_signature(paths))
    stem = os.path.join(cache_dir, f"ids-{prefix}-{version}")
    return stem + ".npy", stem + ".json", f"ids-{prefix}-"


def _load_cached(npy, meta_path, sig, encoding, errors):
    """The cached (ids memmap, vocab), or None when absent or not matching."""
    try:
        with open(meta_path, encoding="utf-8") as f:
            meta = json.load(f)
        if (meta.get("format") != FORMAT or meta.get("sources") != sig
                or meta.get("encoding") != encoding or meta.get("errors") != errors):
            return None
        vocab = data.codes_to_vocab(meta["vocab"])
        ids = np.load(npy, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if ids.shape != (meta.get("chars"),) or ids.dtype != data.id_dtype(len(vocab)):
        return None
    return ids, vocab


def _write_atomic(path, write):
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def cached_ids(paths, encoding: str = "utf-8", errors: str = "strict",
               cache_dir: str | None = None, read_bytes: int = READ_BYTES):
    """-> (ids (N,) read-only memmap, vocab, built: bool).

    Reuses the cache when the files' paths, sizes and modification times,
    the encoding and the error handler all match; otherwise runs the two
    streaming passes and writes the cache (atomically, then drops stale
    versions for the same files).  Raises DataError for empty text.
    """
    cache_dir = cache_dir or default_cache_dir()
    sig = _signature(paths)
    npy, meta_path, prefix = cache_paths(paths, encoding, errors, cache_dir)
    hit = _load_cached(npy, meta_path, sig, encoding, errors)
    if hit is not None:
        return hit[0], hit[1], False

    vocab, n = scan(paths, encoding, errors, read_bytes)
    if n == 0:
        raise DataError(f"{', '.join(paths)}: the text is empty; give charrnn something to learn")
    dtype = np.dtype(data.id_dtype(len(vocab)))
    try:
        os.makedirs(cache_dir, exist_ok=True)
    except OSError as e:
        raise DataError(f"cannot create the corpus cache folder {cache_dir}: {e.strerror}; "
                        f"set CHARRNN_CACHE_DIR to a writable folder")

    def write_ids(f):
        np.lib.format.write_array_header_1_0(
            f, {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": (n,)})
        written = 0
        for ids in iter_ids(paths, vocab, encoding, errors, read_bytes):
            f.write(ids.tobytes())
            written += len(ids)
        if written != n or _signature(paths) != sig:
            raise DataError(f"{', '.join(paths)}: changed while being read; run again")

    meta = {"format": FORMAT, "sources": sig, "encoding": encoding, "errors": errors,
            "chars": n, "dtype": dtype.name, "vocab": data.vocab_to_codes(vocab).tolist()}
    try:
        _write_atomic(npy, write_ids)
        _write_atomic(meta_path, lambda f: f.write(json.dumps(meta).encode("utf-8")))
    except OSError as e:
        raise DataError(f"cannot write the corpus cache in {cache_dir}: {e.strerror}; "
                        f"set CHARRNN_CACHE_DIR to a writable folder with room")
    for name in os.listdir(cache_dir):
        path = os.path.join(cache_dir, name)
        if name.startswith(prefix) and path not in (npy, meta_path) and ".tmp-" not in name:
            try:
                os.unlink(path)
            except OSError:
                pass
    ids = np.load(npy, mmap_mode="r", allow_pickle=False)
    return ids, vocab, True


def should_stream(paths, min_bytes: int | None = None) -> bool:
    """True when every path is a regular file ('-', pipes: no) and together
    they hold at least min_bytes (default STREAM_MIN_BYTES)."""
    total = 0
    for p in paths:
        try:
            st = os.stat(p)
        except (OSError, ValueError):
            return False
        if not stat.S_ISREG(st.st_mode):
            return False
        total += st.st_size
    return total >= (STREAM_MIN_BYTES if min_bytes is None else min_bytes)
