"""Loss curves: a text chart for the terminal, and an image through matplotlib
(the optional extra ``charrnn[plot]``)."""
from __future__ import annotations

import contextlib
import math
import os

from charrnn.errors import CharRNNError

TRAIN_MARK, VAL_MARK, BOTH_MARK = "·", "o", "@"
PLOT_FORMATS = (".png", ".svg", ".pdf")


def _finite(xs, ys):
    pts = [(float(x), float(y)) for x, y in zip(xs, ys)
           if x is not None and y is not None and math.isfinite(x) and math.isfinite(y)]
    return pts


def _interp(pts, x):
    """Linear interpolation of sorted points at x; None outside their range."""
    if not pts or x < pts[0][0] - 1e-9 or x > pts[-1][0] + 1e-9:
        return None
    for (x0, y0), (x1, y1) in zip(pts, pts[1:]):
        if x0 <= x <= x1:
            return y0 if x1 == x0 else y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    return pts[-1][1] if abs(x - pts[-1][0]) <= 1e-9 or len(pts) == 1 else None


def text_chart(history: dict, width: int = 60, height: int = 12) -> list[str]:
    """Train and validation loss against iteration as lines of text.

    history: lists "iter", "train_loss", "val_loss" (nats/char, None or NaN
    where missing).  Returns [] when there is nothing to draw."""
    its = history.get("iter") or []
    series = [(TRAIN_MARK, _finite(its, history.get("train_loss") or [])),
              (VAL_MARK, _finite(its, history.get("val_loss") or []))]
    ys = [y for _, pts in series for _, y in pts]
    xs = [x for _, pts in series for x, _ in pts]
    if not ys:
        return []
    x0, x1 = min(xs), max(xs)
    y0, y1 = min(ys), max(ys)
    if y1 - y0 < 1e-9:
        y0, y1 = y0 - 0.5, y1 + 0.5
    grid = [[" "] * width for _ in range(height)]
    for mark, pts in series:
        for c in range(width):
            x = x0 if width == 1 or x1 == x0 else x0 + (x1 - x0) * c / (width - 1)
            if x1 == x0 and c > 0:
                break
            y = _interp(pts, x)
            if y is None:
                continue
            r = int(round((y1 - y) / (y1 - y0) * (height - 1)))
            cell = grid[r][c]
            grid[r][c] = mark if cell in (" ", mark) else BOTH_MARK
    labels = {0: f"{y1:.3f}", height - 1: f"{y0:.3f}", (height - 1) // 2: f"{(y0 + y1) / 2:.3f}"}
    pad = max(len(v) for v in labels.values())
    lines = [f"loss, nats/char ({TRAIN_MARK} train  {VAL_MARK} val  {BOTH_MARK} both)"]
    for r, row in enumerate(grid):
        lines.append(f"{labels.get(r, ''):>{pad}} |{''.join(row).rstrip()}")
    lines.append(" " * pad + " +" + "-" * width)
    left, right = f"{x0:,.0f}", f"{x1:,.0f} iterations"
    lines.append(" " * (pad + 2) + left + " " * max(1, width - len(left) - len(right)) + right)
    return lines


@contextlib.contextmanager
def figure(path: str, title: str, xlabel: str, ylabel: str, log: bool = False):
    """A matplotlib (fig, ax) saved to path (.png, .svg or .pdf) when the block
    ends; one-line CharRNNError for a bad name, no matplotlib or a failed write."""
    ext = os.path.splitext(path)[1].lower()
    if ext not in PLOT_FORMATS:
        raise CharRNNError(f"cannot plot to {path}: use a name ending in "
                           f"{', '.join(PLOT_FORMATS)}")
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise CharRNNError("--plot needs matplotlib: pip install 'charrnn[plot]'")
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    try:
        yield fig, ax
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        if title:
            ax.set_title(title)
        ax.grid(alpha=0.3, which="both" if log else "major")
        ax.legend()
        fig.tight_layout()
        try:
            fig.savefig(path)
        except OSError as e:
            raise CharRNNError(f"cannot write {path}: {e.strerror or e}")
    finally:
        plt.close(fig)


def plot(history: dict, path: str, title: str = "") -> None:
    """Write the train and validation curves to path (.png, .svg or .pdf)."""
    its = history.get("iter") or []
    with figure(path, title, "iteration", "loss (nats/char)") as (_, ax):
        for key, label, style in (("train_loss", "train", "-"), ("val_loss", "validation", "o-")):
            pts = _finite(its, history.get(key) or [])
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], style, label=label,
                        markersize=3)
