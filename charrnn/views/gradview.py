"""Gradient flow (charrnn.gradflow) shown: a terminal chart on a log scale,
one line per layer and state, and an image through matplotlib (the optional
extra ``charrnn[plot]``)."""
from __future__ import annotations

import math

from charrnn.views.curves import figure

COLOURS = (39, 208, 76, 199, 226, 141, 51, 203)      # ANSI 256-colour, one per series


def series(flow: dict) -> list[tuple[str, str, list]]:
    """[(mark, label, values by lag)]: h of layer k is marked with the digit k,
    an lstm's c state of layer k with the letter a, b, c, ..."""
    out = []
    for k, layer in enumerate(flow["layers"]):
        out.append((str(k % 10), f"layer {k} h", layer["h"]))
        if "c" in layer:
            out.append((chr(ord("a") + k % 26), f"layer {k} c", layer["c"]))
    return out


def text_chart(flow: dict, width: int = 60, height: int = 14, colour: bool = False) -> list[str]:
    """Mean gradient norm against lag, log10 y axis, as lines of text."""
    ss = series(flow)
    pts = [(k, v) for _, _, vals in ss for k, v in enumerate(vals)
           if v is not None and math.isfinite(v) and v > 0]
    if not pts:
        return ["no gradient to show (the text needs at least 2 characters)"]
    K = flow["lags"]
    lo = math.floor(math.log10(min(v for _, v in pts)))
    hi = math.ceil(math.log10(max(v for _, v in pts)))
    if hi == lo:
        hi += 1
    grid = [[" "] * width for _ in range(height)]
    paint = [[None] * width for _ in range(height)]
    for n, (mark, _, vals) in enumerate(ss):
        for c in range(width):
            k = round(c * K / max(width - 1, 1)) if K else 0
            if k >= len(vals) or (K == 0 and c > 0):
                continue
            v = vals[k]
            if v is None or not math.isfinite(v) or v <= 0:
                continue
            r = int(round((hi - math.log10(v)) / (hi - lo) * (height - 1)))
            grid[r][c] = mark if grid[r][c] in (" ", mark) else "*"
            paint[r][c] = COLOURS[n % len(COLOURS)]
    labels = {round((hi - e) / (hi - lo) * (height - 1)): f"1e{e:+d}" for e in range(lo, hi + 1)}
    pad = max(len(v) for v in labels.values())
    legend = "  ".join(f"{m} {label}" for m, label, _ in ss)
    lines = [f"gradient norm |dL_t/dstate(t-k)|, log scale ({legend}; * overlap)"]
    for r, row in enumerate(grid):
        cells = []
        for c, ch in enumerate(row):
            if colour and paint[r][c] is not None and ch != " ":
                cells.append(f"\x1b[38;5;{paint[r][c]}m{ch}\x1b[0m")
            else:
                cells.append(ch)
        lines.append(f"{labels.get(r, ''):>{pad}} |{''.join(cells).rstrip()}")
    lines.append(" " * pad + " +" + "-" * width)
    right = f"{K} characters back (k)"
    lines.append(" " * (pad + 2) + "0" + " " * max(1, width - 1 - len(right)) + right)
    return lines


def summary_lines(flow: dict) -> list[str]:
    """One line per series: the norm at k = 0, 10, 25 and K, and the ratio K/0."""
    K = flow["lags"]
    ks = sorted({k for k in (0, 10, 25, K) if k <= K})
    head = "series        " + "".join(f"{'k=' + str(k):>11}" for k in ks) + "   k=K / k=0"
    lines = [head]
    for _, label, vals in series(flow):
        row = "".join(f"{vals[k]:>11.3e}" if _ok(vals[k]) else f"{'-':>11}" for k in ks)
        ratio = vals[K] / vals[0] if _ok(vals[K]) and _ok(vals[0]) and vals[0] > 0 else None
        lines.append(f"{label:<14}{row}   {ratio:.1e}" if ratio is not None
                     else f"{label:<14}{row}   -")
    return lines


def _ok(v) -> bool:
    return v is not None and math.isfinite(v)


def plot(flow: dict, path: str, title: str = "") -> None:
    """Write the gradient-flow curves to path (.png, .svg or .pdf), log y axis."""
    with figure(path, title, "characters back (k)", "mean |dL_t / d state(t-k)|",
                log=True) as (_, ax):
        for _, label, vals in series(flow):
            pts = [(k, v) for k, v in enumerate(vals) if _ok(v) and v > 0]
            if pts:
                ax.semilogy([p[0] for p in pts], [p[1] for p in pts],
                            "-" if label.endswith(" h") else "--", label=label)
