"""Generated text to stdout as UTF-8 bytes, whatever the locale says."""
from __future__ import annotations

import os
import sys
from typing import BinaryIO, Iterable

from charrnn.errors import CharRNNError


def binary_stdout() -> BinaryIO:
    """The byte stream under sys.stdout (text written to sys.stdout so far is flushed first)."""
    out = sys.stdout
    if out is None:
        raise CharRNNError("standard output is closed; redirect it to a file or a pipe")
    out.flush()
    return getattr(out, "buffer", out)


def write_text(pieces: Iterable[str], out: BinaryIO, flush_each: bool = False) -> int:
    """Write every piece UTF-8 encoded; returns the number of bytes written.

    flush_each: flush after every piece (streaming), so a reader sees each
    character as soon as it exists; otherwise the stream's own buffering
    applies and one flush comes at the end.  A reader that went away shows up
    as BrokenPipeError at the next write or flush, which stops the generator
    that feeds ``pieces``.
    """
    n = 0
    try:
        for s in pieces:
            b = s.encode("utf-8")
            out.write(b)
            n += len(b)
            if flush_each:
                out.flush()
        out.flush()
    except BrokenPipeError:
        raise
    except OSError as e:
        # What failed is still in the buffers: the interpreter's next flush
        # (ours at exit, or its own) would fail and report it again.
        silence_stdout()
        raise CharRNNError(f"cannot write to stdout ({e.strerror})")
    return n


def silence_stdout() -> None:
    """Point fd 1 at /dev/null so that whatever is still buffered for stdout
    (including the interpreter's final flush) goes nowhere, quietly."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass
