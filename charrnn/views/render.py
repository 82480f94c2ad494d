"""Text coloured by a value per character, for a terminal or a plain stream.

Two scales, both on the xterm 256-colour cube:
    diverging  activation in [-1, 1]: blue (-1), white (0), red (+1)
    heat       loss in nats: white (0), yellow, red (SURPRISE_CAP and above)

ANSI output writes every character of the text exactly once and in order;
only colour codes are added around them (no colour on newlines, so a
background never bleeds across a line).  Plain output, for pipes and
NO_COLOR, writes each line of text followed by a line of level markers, one
per character (two under wide characters, none under combining marks).
"""
from __future__ import annotations

import math
import os
import re
import unicodedata

import numpy as np

SURPRISE_CAP = 6.0          # nats: the loss shown at full heat
LEVELS = "▁▂▃▄▅▆▇█"         # plain markers, low to high
RESET = "\x1b[0m"
ANSI_RE = re.compile(r"\x1b\[[0-9;]*m")


def use_colour(mode: str, stream) -> bool:
    """mode 'always' / 'never' / 'auto' (a terminal and NO_COLOR unset)."""
    if mode == "always":
        return True
    if mode == "never":
        return False
    if os.environ.get("NO_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


# ------------------------------------------------------------------ colours
def diverging_rgb(v: float) -> tuple[int, int, int]:
    """Activation in [-1, 1] -> cube levels (r, g, b), each 0..5."""
    v = max(-1.0, min(1.0, v))
    fade = int(round(5 * (1 - abs(v))))
    return (5, fade, fade) if v >= 0 else (fade, fade, 5)


def heat_rgb(loss: float, cap: float = SURPRISE_CAP) -> tuple[int, int, int]:
    """Loss in nats -> cube levels: white, yellow at cap/2, red at cap."""
    s = max(0.0, min(1.0, loss / cap))
    if s <= 0.5:
        return (5, 5, int(round(5 * (1 - 2 * s))))
    return (5, int(round(5 * (2 - 2 * s))), 0)


def cube_index(rgb) -> int:
    r, g, b = rgb
    return 16 + 36 * r + 6 * g + b


CUBE_STEPS = (0, 95, 135, 175, 215, 255)


def cube_hex(rgb) -> str:
    """The sRGB colour xterm shows for a cube entry, as #rrggbb."""
    return "#" + "".join(f"{CUBE_STEPS[c]:02x}" for c in rgb)


def dark(rgb) -> bool:
    """Whether white text reads better than black on this background."""
    r, g, b = (CUBE_STEPS[c] / 255 for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b < 0.45


def colours(values, scale: str):
    """Cube (r, g, b) per value, or None where the value is undefined."""
    fn = diverging_rgb if scale == "diverging" else heat_rgb
    return [fn(float(v)) if v is not None and math.isfinite(v) else None for v in values]


# ---------------------------------------------------------------- terminal
def ansi(text: str, values, scale: str) -> str:
    """text with a 256-colour background per character (none where the value
    is undefined or the character is a newline)."""
    out, current = [], None
    for ch, rgb in zip(text, colours(values, scale)):
        want = None if ch == "\n" else rgb
        if want != current:
            if current is not None:
                out.append(RESET)
            if want is not None:
                fg = 15 if dark(want) else 16
                out.append(f"\x1b[38;5;{fg};48;5;{cube_index(want)}m")
            current = want
        out.append(ch)
    if current is not None:
        out.append(RESET)
    return "".join(out)


def strip_ansi(s: str) -> str:
    return ANSI_RE.sub("", s)


def level(value: float, lo: float, hi: float) -> str:
    if value is None or not math.isfinite(value):
        return " "
    s = (min(max(value, lo), hi) - lo) / (hi - lo)
    return LEVELS[min(len(LEVELS) - 1, int(s * len(LEVELS)))]


def plain(text: str, values, lo: float, hi: float) -> str:
    """Each line of text, then a line of markers (▁ at lo ... █ at hi; a
    space where the value is undefined)."""
    out, pos = [], 0
    for line in text.split("\n"):
        if not line:
            out.append("")
            pos += 1
            continue
        marks = []
        for j, ch in enumerate(line):
            m = level(values[pos + j], lo, hi)
            w = _width(ch)
            marks.append(m * w)
        out.append(line)
        out.append("".join(marks).rstrip())
        pos += len(line) + 1
    if text.endswith("\n"):
        out.pop()
    return "\n".join(out)


def _width(ch: str) -> int:
    if unicodedata.combining(ch):
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def show(text: str, values, scale: str, colour: bool) -> str:
    """Coloured (ANSI) or plain rendering of values over text."""
    if colour:
        return ansi(text, values, scale)
    if scale == "diverging":
        return plain(text, values, -1.0, 1.0)
    return plain(text, values, 0.0, SURPRISE_CAP)


def legend(scale: str, colour: bool) -> str:
    if scale == "diverging":
        ticks = (-1.0, -0.5, 0.0, 0.5, 1.0)
        names = "-1", "0", "+1"
    else:
        ticks = tuple(SURPRISE_CAP * f for f in (0, 0.25, 0.5, 0.75, 1.0))
        names = "0", f"{SURPRISE_CAP / 2:g}", f"{SURPRISE_CAP:g}+ nats"
    if colour:
        bar = "".join(ansi(" ", [t], scale) for t in np.linspace(ticks[0], ticks[-1], 9))
    else:
        lo, hi = ticks[0], ticks[-1]
        bar = "".join(level(t, lo, hi) for t in np.linspace(lo, hi - 1e-9, 8))
    return f"{names[0]} {bar} {names[2]}"
