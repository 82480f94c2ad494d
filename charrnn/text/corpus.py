"""A training text as ids (Corpus, load_corpus, text_fingerprint); for large
corpora, a streaming encoder and a memory-mapped cache of ids.

A text is never held whole as a Python string.  Two streaming passes over
the files (read ``READ_BYTES`` at a time, decoded incrementally):

    1. the vocabulary: every code point seen (a (0x110000,) bool mask) and
       the number of characters;
    2. the ids: each piece mapped through a code point -> id lookup table and
       appended to a ``.npy`` file of uint8/uint16/uint32 (by vocabulary size).

The ``.npy`` is then opened with ``mmap_mode='r'``, so training reads ids
from the page cache instead of holding them.  The cache lives in
``cache_dir`` (``CHARRNN_CACHE_DIR``, else ``$XDG_CACHE_HOME/charrnn``, else
``~/.cache/charrnn``) under a name derived from the absolute paths of every
file (a folder's too), the encoding, the error handler and the reading
(sources.Reading: newlines, document separator), and records each file's size and
modification time: an unchanged file reuses its cache, a changed one
rebuilds it (the stale entry is removed).

Integrity: the second pass also computes the text fingerprint (sha256 of
the code points as UTF-32-LE, what checkpoints store as text_sha256) and the
CRC-32 of the id bytes; the .json metadata records both, plus a digest of
itself.  Before every use one read of the id file checks its size, every id
against the vocabulary size and the CRC-32 (``_verify``); any damage is
reported in one line and the entry rebuilt.  When the cache cannot be
written, the ids are encoded into memory instead (``encoded``).

Decoding follows ``bytes.decode`` on each whole file exactly (files are
decoded separately, then joined as the reading says: sources.py), including
``errors`` = strict | replace | ignore; under strict the error names the
byte offset in the file.
"""
from __future__ import annotations

import codecs
import hashlib
import json
import os
import stat
import sys
import zlib
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from charrnn.text import data
from charrnn.text.sources import LEGACY, Reading, iter_pieces, list_files
from charrnn.errors import DataError

READ_BYTES = 1 << 22          # bytes read (and decoded) at a time
STREAM_MIN_BYTES = 32 << 20   # load_corpus uses the cache from this total size on
FORMAT = 2                    # bump when the cache layout changes (2: checksum, fingerprint)
VERIFY_BYTES = 1 << 24        # bytes of the id file checked at a time
MAX_META_BYTES = 1 << 26      # a cache's metadata is small (the vocabulary is its bulk)
N_CODE_POINTS = 0x110000


# ------------------------------------------------------------- reading
@dataclass
class Corpus:
    """Integer ids of a text, its vocabulary, and where it came from."""
    ids: np.ndarray
    vocab: str
    sources: list = field(default_factory=list)
    encoding: str = "utf-8"
    errors: str = "strict"
    fingerprint: str | None = None     # text_sha256 of the text, when known
    reading: Reading = LEGACY          # how files became the text (sources.Reading)
    files: int = 1                     # documents read (files, '-', or the one str)
    skipped: list = field(default_factory=list)   # (path, why) of files left out


def load_corpus(paths, encoding="utf-8", errors="strict", cache_dir=None,
                reading: Reading = Reading(), on_skip=None) -> Corpus:
    """Read text files and folders ('-' is stdin) into one text (see
    sources.py: folders expanded, documents joined as ``reading`` says);
    build the sorted vocabulary; encode.

    errors: strict | replace | ignore, for bytes that are not valid ``encoding``.
    sources: the paths given, absolute ('<stdin>' for stdin).
    on_skip(path, why): hears of each file a folder holds that is not read.
    From corpus.STREAM_MIN_BYTES of regular files on, the text is encoded by
    streaming into a memory-mapped id cache in cache_dir (see below).
    """
    listing = list_files(paths, encoding, on_skip)
    files = listing.files
    names = [data.source_name(p) for p in paths]
    sources = [n if p == data.STDIN else os.path.abspath(p) for p, n in zip(paths, names)]
    extra = {"reading": reading, "files": len(files), "skipped": listing.skipped}
    if should_stream(files):
        e = encoded(files, encoding, errors, cache_dir, reading=reading, names=names)
        return Corpus(ids=e.ids, vocab=e.vocab, sources=sources, encoding=encoding,
                      errors=errors, fingerprint=e.fingerprint, **extra)
    text = "".join(t for _, t in iter_pieces(files, encoding, errors, reading))
    if not text:
        raise DataError(f"{', '.join(names)}: the text is empty; give charrnn something to learn")
    vocab = data.build_vocab(text)
    return Corpus(ids=data.encode(text, vocab), vocab=vocab, sources=sources,
                  encoding=encoding, errors=errors,
                  fingerprint=hashlib.sha256(text.encode("utf-32-le", "surrogatepass")).hexdigest(),
                  **extra)


def text_fingerprint(corpus: Corpus) -> str:
    """sha256 of the text as UTF-32-LE code points: the same text gives the same
    fingerprint whatever vocabulary it is encoded with.  load_corpus computes
    it while it reads the text (corpus.fingerprint); otherwise it is computed
    here from the ids."""
    if corpus.fingerprint is not None:
        return corpus.fingerprint
    codes = data.vocab_to_codes(corpus.vocab).astype("<u4")
    h = hashlib.sha256()
    step = 1 << 20
    for i in range(0, len(corpus.ids), step):
        h.update(codes[corpus.ids[i:i + step]].tobytes())
    return h.hexdigest()


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
    offset, head = 0, b""                       # bytes read so far; the first of them
    with data.open_binary(path) as f:
        while True:
            try:
                raw = f.read(read_bytes)
            except OSError as e:
                raise DataError(f"{path}: cannot read ({e.strerror})")
            final = not raw
            head = head or raw[:8192]
            pending = len(dec.getstate()[0])    # undecoded bytes from earlier reads
            try:
                text = dec.decode(raw, final)
            except UnicodeDecodeError as e:
                at = offset - pending + e.start
                raise data.decode_error(path, encoding, at, head=head)
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
         read_bytes: int = READ_BYTES, reading: Reading = Reading()):
    """First pass: -> (vocab, number of characters), vocab sorted by code point
    (what ``data.build_vocab`` gives for the whole text: the files
    concatenated as decoded, or joined as ``reading`` says)."""
    seen = np.zeros(N_CODE_POINTS, dtype=bool)
    n = 0
    for _, text in iter_pieces(paths, encoding, errors, reading, read_bytes):
        cps = _code_points(text)
        seen[cps] = True
        n += len(cps)
    return data.codes_to_vocab(np.flatnonzero(seen)), n


def iter_ids(paths, vocab: str, encoding: str = "utf-8", errors: str = "strict",
             read_bytes: int = READ_BYTES, fingerprint=None, reading: Reading = Reading()):
    """Second pass: yield the ids of the text piece by piece (dtype by vocab size).
    A character outside vocab raises DataError.  ``fingerprint``: a hashlib
    object fed the text's code points as UTF-32-LE on the way (text_sha256)."""
    dtype = data.id_dtype(len(vocab))
    codes = data.vocab_to_codes(vocab)
    lut = np.zeros(N_CODE_POINTS, dtype=dtype)
    known = np.zeros(N_CODE_POINTS, dtype=bool)
    lut[codes] = np.arange(len(codes), dtype=dtype)
    known[codes] = True
    for k, text in iter_pieces(paths, encoding, errors, reading, read_bytes):
        cps = _code_points(text)
        if not known[cps].all():
            raise DataError(f"{paths[max(k, 0)]}: changed while being read; run again")
        if fingerprint is not None:
            fingerprint.update(cps.astype("<u4", copy=False))
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


def _prefix(paths, encoding, errors, fmt=FORMAT, reading: Reading = Reading()) -> str:
    key = {"paths": [os.path.abspath(p) for p in paths], "encoding": encoding,
           "errors": errors, "format": fmt}
    if reading.record() is not None:        # LEGACY keeps the names of before
        key["reading"] = reading.record()
    return "ids-" + _digest(key) + "-"


def cache_paths(paths, encoding: str, errors: str, cache_dir: str, reading: Reading = Reading()):
    """(.npy ids path, .json meta path, name prefix shared by every version).
    The name covers every file's path, the encoding, the error handler and
    the reading; the version, every file's size and modification time."""
    prefix = _prefix(paths, encoding, errors, reading=reading)
    version = _digest(_signature(paths))
    stem = os.path.join(cache_dir, f"{prefix}{version}")
    return stem + ".npy", stem + ".json", prefix


class Encoded(NamedTuple):
    """A text as ids: ids (N,) (a read-only memmap of the cache, or an
    in-memory array when the cache cannot be written), vocab, the text
    fingerprint (see text_sha256) and how it was obtained: 'cache' (reused),
    'built' (encoded and cached) or 'memory' (encoded, not cached)."""
    ids: np.ndarray
    vocab: str
    fingerprint: str
    how: str


class _Damaged(Exception):
    """The cache entry exists but cannot be trusted; str() says why."""


def _meta_check(meta: dict) -> str:
    return _digest({k: v for k, v in meta.items() if k != "check"})


def _read_meta(meta_path):
    """The metadata dict; None when there is no entry at all; _Damaged otherwise."""
    try:
        with open(meta_path, "rb") as f:
            raw = f.read(MAX_META_BYTES + 1)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as e:
        raise _Damaged(f"its metadata cannot be read: {e.strerror}")
    try:
        meta = json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeError):
        raise _Damaged("its metadata is not valid JSON")
    if not isinstance(meta, dict) or meta.get("check") != _meta_check(meta):
        raise _Damaged("its metadata was altered")
    return meta


def _verify(npy, meta, sig, encoding, errors, reading=Reading()):
    """The cached ids as a read-only memmap and the vocabulary, after checking
    the metadata against the files, the .npy header against the metadata,
    the file size, every id against the vocabulary size and the CRC-32 of
    the ids; _Damaged says what failed.  The file is opened once: what is
    checked is what gets mapped."""
    try:
        if (meta["format"] != FORMAT or meta["sources"] != sig or meta["encoding"] != encoding
                or meta["errors"] != errors or meta.get("reading") != reading.record()):
            raise _Damaged("its metadata belongs to other files")
        vocab = data.codes_to_vocab(meta["vocab"])
        n, crc, sha = int(meta["chars"]), int(meta["ids_crc32"]), str(meta["text_sha256"])
    except (KeyError, TypeError, ValueError, OverflowError):
        raise _Damaged("its metadata is incomplete")
    dtype = np.dtype(data.id_dtype(len(vocab)))
    try:
        f = open(npy, "rb")
    except FileNotFoundError:
        raise _Damaged("its id file is missing")
    except OSError as e:
        raise _Damaged(f"its id file cannot be read: {e.strerror}")
    with f:
        fmt = np.lib.format
        try:
            if fmt.read_magic(f) != (1, 0):
                raise ValueError("unexpected .npy version")
            shape, fortran, got = fmt.read_array_header_1_0(f)
            offset = f.tell()
            size = os.fstat(f.fileno()).st_size
        except (ValueError, OSError, EOFError, SyntaxError) as e:
            raise _Damaged(f"its id file is not a readable .npy ({_short(e)})")
        if shape != (n,) or got != dtype or fortran:
            raise _Damaged(f"its id file holds {got} {shape}, not {n} {dtype} ids")
        if size != offset + n * dtype.itemsize:
            raise _Damaged(f"its id file is {size} bytes, not {offset + n * dtype.itemsize} "
                           f"(truncated or extended)")
        buf = np.empty(VERIFY_BYTES // dtype.itemsize, dtype=dtype)
        mem = memoryview(buf).cast("B")
        got_crc, top, left = 0, 0, n
        try:
            while left:
                k = min(left, len(buf))
                if f.readinto(mem[:k * dtype.itemsize]) != k * dtype.itemsize:
                    raise _Damaged("its id file ended early")
                got_crc = zlib.crc32(mem[:k * dtype.itemsize], got_crc)
                if len(vocab) < (1 << (8 * dtype.itemsize)):
                    top = max(top, int(buf[:k].max()))
                left -= k
        except OSError as e:
            raise _Damaged(f"its id file cannot be read: {e.strerror}")
        if top >= len(vocab):
            raise _Damaged(f"id {top} is outside the vocabulary of {len(vocab)} characters")
        if got_crc != crc:
            raise _Damaged("its checksum does not match (the ids were changed)")
        try:
            ids = np.memmap(f, dtype=dtype, mode="r", offset=offset, shape=(n,))
        except (OSError, ValueError) as e:
            raise _Damaged(f"its id file cannot be mapped ({_short(e)})")
    return Encoded(ids, vocab, sha, "cache")


def _short(e) -> str:
    msg = str(e).splitlines()[0] if str(e) else type(e).__name__
    return msg[:120]


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


def _encode(paths, vocab, n, sig, encoding, errors, read_bytes, put, reading=Reading()):
    """The streaming encode: ``put(ids, start)`` for each piece; returns
    (text fingerprint, CRC-32 of the ids' bytes), both of this one pass."""
    h = hashlib.sha256()
    crc, written = 0, 0
    for ids in iter_ids(paths, vocab, encoding, errors, read_bytes, fingerprint=h,
                        reading=reading):
        if written + len(ids) > n:
            break
        put(ids, written)
        crc = zlib.crc32(ids, crc)
        written += len(ids)
    else:
        if written == n and _signature(paths) == sig:
            return h.hexdigest(), crc
    raise DataError(f"{', '.join(paths)}: changed while being read; run again")


def _default_warn(msg: str) -> None:
    print(f"charrnn: {msg}", file=sys.stderr, flush=True)


def encoded(paths, encoding: str = "utf-8", errors: str = "strict",
            cache_dir: str | None = None, read_bytes: int = READ_BYTES, warn=None,
            reading: Reading = Reading(), names=None) -> Encoded:
    """The ids of the files' text (concatenated as decoded, or joined as
    ``reading`` says), from the cache when it is intact.

    A cache entry is reused when its files' paths, sizes and modification
    times, the encoding and the error handler match and it passes _verify;
    a damaged entry is reported (one line through ``warn``, default stderr)
    and rebuilt.  Otherwise the two streaming passes run and write the
    cache (atomically, then drop stale versions for the same files), the
    text fingerprint and the ids' checksum computed during the second pass.
    When the cache cannot be written (folder not writable, disk full), the
    ids are encoded into memory instead, with one line saying so.  Raises
    DataError for empty or undecodable text (``names``: how to name the
    text in that message, default paths).
    """
    warn = warn or _default_warn
    cache_dir = cache_dir or default_cache_dir()
    sig = _signature(paths)
    npy, meta_path, prefix = cache_paths(paths, encoding, errors, cache_dir, reading)
    damage = None
    try:
        meta = _read_meta(meta_path)
        if meta is None:
            if os.path.exists(npy):
                raise _Damaged("its metadata file is missing")
        else:
            return _verify(npy, meta, sig, encoding, errors, reading)
    except _Damaged as e:
        damage = f"the corpus cache {npy} is damaged ({e})"

    vocab, n = scan(paths, encoding, errors, read_bytes, reading)
    if n == 0:
        raise DataError(f"{', '.join(names or paths)}: the text is empty; give charrnn "
                        f"something to learn")
    dtype = np.dtype(data.id_dtype(len(vocab)))
    done = {}

    def write_ids(f):
        np.lib.format.write_array_header_1_0(
            f, {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": (n,)})
        done["sha"], done["crc"] = _encode(paths, vocab, n, sig, encoding, errors, read_bytes,
                                           lambda ids, start: f.write(ids.tobytes()), reading)

    try:
        os.makedirs(cache_dir, exist_ok=True)
        _write_atomic(npy, write_ids)
        meta = {"format": FORMAT, "sources": sig, "encoding": encoding, "errors": errors,
                "chars": n, "dtype": dtype.name, "vocab": data.vocab_to_codes(vocab).tolist(),
                "ids_crc32": done["crc"], "text_sha256": done["sha"]}
        if reading.record() is not None:
            meta["reading"] = reading.record()
        meta["check"] = _meta_check(meta)
        _write_atomic(meta_path, lambda f: f.write(json.dumps(meta).encode("utf-8")))
    except OSError as e:
        why = e.strerror or _short(e)
        head = f"{damage} and cannot be rebuilt" if damage else "cannot write the corpus cache"
        warn(f"{head} in {cache_dir} ({why}); training from the text without the cache "
             f"(set CHARRNN_CACHE_DIR to a writable folder with room to keep it)")
        if "sha" in done:           # the ids were written, their metadata not
            _unlink_quietly(npy)
        ids = np.empty(n, dtype=dtype)

        def put(piece, start):
            ids[start:start + len(piece)] = piece
        sha, _ = _encode(paths, vocab, n, sig, encoding, errors, read_bytes, put, reading)
        return Encoded(ids, vocab, sha, "memory")
    if damage:
        warn(f"{damage}; rebuilt it from the text")
    stale = {prefix} | {_prefix(paths, encoding, errors, f, reading) for f in range(1, FORMAT)}
    for name in os.listdir(cache_dir):
        path = os.path.join(cache_dir, name)
        if (name.startswith(tuple(stale)) and path not in (npy, meta_path)
                and ".tmp-" not in name):
            _unlink_quietly(path)
    ids = np.load(npy, mmap_mode="r", allow_pickle=False)
    return Encoded(ids, vocab, done["sha"], "built")


def _unlink_quietly(path):
    try:
        os.unlink(path)
    except OSError:
        pass


def cached_ids(paths, encoding: str = "utf-8", errors: str = "strict",
               cache_dir: str | None = None, read_bytes: int = READ_BYTES, warn=None,
               reading: Reading = Reading()):
    """-> (ids (N,), vocab, built: bool); see ``encoded``."""
    e = encoded(paths, encoding, errors, cache_dir, read_bytes, warn, reading)
    return e.ids, e.vocab, e.how != "cache"


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
