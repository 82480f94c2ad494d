"""Text -> vocabulary -> integer ids, and the stream batching of truncated BPTT."""
from __future__ import annotations

import sys

import numpy as np

from charrnn.errors import DataError


STDIN = "-"


def source_name(path: str) -> str:
    """How a source is named in messages and checkpoints: '-' is '<stdin>'."""
    return "<stdin>" if path == STDIN else path


def open_binary(path: str):
    """A file opened for reading bytes; a missing file, a folder or an OS
    error becomes a one-line DataError."""
    try:
        return open(path, "rb")
    except FileNotFoundError:
        raise DataError(f"{path}: no such file")
    except IsADirectoryError:
        raise DataError(f"{path}: is a folder, not a text file")
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror})")


def read_bytes(path: str) -> bytes:
    """All bytes of a file, or of stdin when path is '-'."""
    if path == STDIN:
        stdin = sys.stdin
        if stdin is None:
            raise DataError("<stdin>: standard input is closed")
        try:
            return getattr(stdin, "buffer", stdin).read()
        except OSError as e:
            raise DataError(f"<stdin>: cannot read ({e.strerror})")
    with open_binary(path) as f:
        try:
            return f.read()
        except OSError as e:
            raise DataError(f"{path}: cannot read ({e.strerror})")


def read_text(path: str, encoding: str = "utf-8", errors: str = "strict",
              advice: str | None = None) -> str:
    """Read a whole text file ('-': stdin); bad bytes raise DataError naming the offset."""
    return decode(read_bytes(path), source_name(path), encoding, errors, advice)


def decode(raw: bytes, name: str, encoding: str = "utf-8", errors: str = "strict",
           advice: str | None = None) -> str:
    """bytes -> str.  errors: strict | replace | ignore (as in bytes.decode).

    Under strict, the DataError names the byte offset of the first bad byte
    and ends with ``advice`` (default: suggest --errors replace)."""
    try:
        return raw.decode(encoding, errors)
    except UnicodeDecodeError as e:
        raise decode_error(name, encoding, e.start, advice, head=raw)
    except LookupError:
        raise DataError(f"unknown text encoding {encoding!r}")


def decode_error(name: str, encoding: str, offset: int, advice: str | None = None,
                 head: bytes = b"") -> DataError:
    """The DataError for bytes that are not valid ``encoding`` at byte
    ``offset``; ``head``, the file's first bytes, tells a binary file (a
    program, an archive) from text in another encoding."""
    import codecs
    from charrnn.text.sniff import looks_binary
    wide = codecs.lookup(encoding).name.startswith(("utf-16", "utf-32"))   # NULs are text
    if looks_binary(head) and not wide:
        hint = "; pass a text file (or, for UTF-16 text, --encoding utf-16)" if advice is None \
            else ""
        return DataError(f"{name}: looks binary (it has NUL bytes), not text{hint}")
    if advice is None:
        advice = (f"if it is in another encoding, pass it with --encoding (e.g. latin-1, "
                  f"cp1252); --errors replace (or ignore) gets past bad bytes")
    return DataError(f"{name}: not valid {encoding} at byte {offset}; {advice}")


def build_vocab(text: str) -> str:
    """The sorted unique characters of text (by code point): same text, same vocab."""
    return "".join(sorted(set(text)))


def vocab_to_codes(vocab: str) -> np.ndarray:
    """Vocabulary as int32 code points (safe for NUL, which unicode arrays drop)."""
    return np.array([ord(c) for c in vocab], dtype=np.int32)


def codes_to_vocab(codes: np.ndarray) -> str:
    return "".join(chr(int(c)) for c in codes)


def id_dtype(vocab_size: int):
    """Smallest unsigned integer type that holds every id."""
    if vocab_size <= 1 << 8:
        return np.uint8
    if vocab_size <= 1 << 16:
        return np.uint16
    return np.uint32


def code_points(text: str) -> np.ndarray:
    """(N,) uint32 code points of text, without a Python loop."""
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)


def encode(text: str, vocab: str) -> np.ndarray:
    """Ids of text's characters in vocab. Raises DataError for unknown ones."""
    codes = vocab_to_codes(vocab).astype(np.uint32)
    cps = code_points(text)
    idx = np.searchsorted(codes, cps)
    idx_c = np.minimum(idx, len(codes) - 1)
    bad = codes[idx_c] != cps
    if bad.any():
        missing = sorted({chr(int(c)) for c in cps[bad][:10000]})
        shown = ", ".join(repr(c) for c in missing[:5])
        raise DataError(f"{int(bad.sum())} characters are not in the model's vocabulary "
                        f"(e.g. {shown})")
    return idx_c.astype(id_dtype(len(vocab)))


def decode_ids(ids, vocab: str) -> str:
    return "".join(vocab[i] for i in ids)


def split(ids: np.ndarray, val_frac: float):
    """The last val_frac of the ids is held out: (train, val)."""
    n_val = int(round(len(ids) * val_frac))
    return ids[: len(ids) - n_val], ids[len(ids) - n_val:]


_GOLDEN = 0.6180339887498949        # epoch e's offset: frac(e x this) of the slack


class Streams:
    """Cut ids into B contiguous streams of length L = (N-1)//B.

    Chunk ``k`` is columns [o + k*T, o + (k+1)*T) of every stream, o the
    epoch's offset: x (B, T) are inputs and y (B, T) the next characters.  A
    stream's hidden state carries from chunk k to k+1; an epoch is
    ``chunks_per_epoch`` chunks, ``L // T``.  With ``shift`` the chunks'
    cut points move from epoch to epoch: an epoch is (L - T + 1) // T chunks
    (at least 1), and epoch e > 0 starts at offset(e) in [0, L - that x T],
    a different place each epoch (epoch 0 at 0).
    """

    def __init__(self, ids: np.ndarray, batch_size: int, seq_len: int, shift: bool = False):
        n = len(ids)
        B, T = batch_size, seq_len
        L = (n - 1) // B if n > 1 else 0
        if L < T:
            raise DataError(
                f"training text is too short: {n} characters, but batch size {B} x "
                f"sequence length {T} needs at least {B * T + 1}; "
                f"lower --batch-size or --seq-len, or use more text")
        self.B, self.T, self.L = B, T, L
        self.x = ids[: B * L].reshape(B, L)
        self.y = ids[1: B * L + 1].reshape(B, L)
        self.shift = shift
        self.chunks_per_epoch = max(1, (L - T + 1) // T) if shift else L // T
        self.slack = L - self.chunks_per_epoch * T       # columns an epoch leaves out

    def offset(self, epoch: int) -> int:
        """Column where epoch's first chunk starts (0 without shift)."""
        if not self.shift or epoch == 0:
            return 0
        return int((epoch * _GOLDEN) % 1.0 * (self.slack + 1))

    def chunk(self, k: int, epoch: int = 0):
        """Chunk k of the epoch: (x, y), each (B, T)."""
        o = self.offset(epoch) + k * self.T
        s = slice(o, o + self.T)
        return np.asarray(self.x[:, s]), np.asarray(self.y[:, s])


def eval_chunks(ids: np.ndarray, batch_size: int, seq_len: int):
    """Yield (x, y) chunks that score (almost) every character of ids once.

    Uses up to batch_size streams; the last chunk may be shorter than seq_len.
    """
    n = len(ids) - 1
    if n < 1:
        return
    B = max(1, min(batch_size, n // seq_len))
    L = n // B
    x = ids[: B * L].reshape(B, L)
    y = ids[1: B * L + 1].reshape(B, L)
    for s in range(0, L, seq_len):
        yield np.asarray(x[:, s: s + seq_len]), np.asarray(y[:, s: s + seq_len])
