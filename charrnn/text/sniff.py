"""Telling text files from binary ones by their first bytes."""
from __future__ import annotations

SNIFF_BYTES = 8192      # how much of a file's start looks_binary is meant to see


def looks_binary(head: bytes) -> bool:
    """True when a NUL byte occurs in the first SNIFF_BYTES bytes of head (the
    rule of git and grep: text in the encodings charrnn reads has no NUL)."""
    return b"\x00" in head[:SNIFF_BYTES]
