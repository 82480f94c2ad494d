"""What a file's first bytes say about it, before it is decoded as text."""
from __future__ import annotations


def looks_binary(head: bytes) -> bool:
    """True when head, a file's first bytes, has a NUL byte in its first 8,192
    bytes: text in charrnn's usual encodings has none, programs, images and
    archives nearly always do."""
    return b"\x00" in head[:8192]
