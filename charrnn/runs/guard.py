"""When a run must stop on its own: divergence (the loss or a weight running
away: stop before a bad update or save, so the checkpoints of the last
evaluation survive) and patience (evaluations without a new best)."""
from __future__ import annotations

import math
import os

import numpy as np

from charrnn.errors import CharRNNError
from charrnn.store.checkpoint import BEST, LATEST

DIVERGE_FACTOR = 3.0       # smoothed training loss or validation loss vs the first step's
SPIKE_FACTOR = 10.0        # a single step's training loss vs the first step's
SMOOTH_CHARS = 50_000      # characters the smoothed training loss averages over


class Guard:
    """The divergence yardsticks of a run: the first step's training loss
    (``start_loss``) and the training loss smoothed over ~SMOOTH_CHARS
    characters (``smooth_loss``); both None before the first finite step.
    The checks return why the run diverged, or None."""

    def __init__(self, start_loss: float | None = None, smooth_loss: float | None = None):
        self.start_loss = start_loss
        self.smooth_loss = smooth_loss

    def add(self, loss: float, chars: int) -> None:
        """A step's training loss over ``chars`` characters."""
        if self.start_loss is None and math.isfinite(loss):
            self.start_loss = self.smooth_loss = loss
        elif math.isfinite(loss):
            a = min(1.0, chars / SMOOTH_CHARS)
            self.smooth_loss = (1.0 - a) * self.smooth_loss + a * loss

    def check_step(self, loss: float, norm: float) -> str | None:
        """After a step's forward/backward: the loss or the gradient norm is
        not finite; or this step's loss is more than SPIKE_FACTOR times the
        first step's; or the smoothed loss is more than DIVERGE_FACTOR times
        it (one chunk alone is too noisy)."""
        start = self.start_loss
        if not math.isfinite(loss):
            return f"loss is {loss}"
        if not math.isfinite(norm):
            return f"gradient norm is {norm}"
        if start is None:
            return None
        if loss > SPIKE_FACTOR * start:
            return f"loss {loss:.3f} is over {SPIKE_FACTOR:g}x the starting loss {start:.3f}"
        if self.smooth_loss > DIVERGE_FACTOR * start:
            return (f"smoothed loss {self.smooth_loss:.3f} is over {DIVERGE_FACTOR:g}x "
                    f"the starting loss {start:.3f}")
        return None

    def check_evaluation(self, val: float | None, params: dict) -> str | None:
        """At an evaluation: the validation loss (None: not scored) is not
        finite or over DIVERGE_FACTOR times the first step's loss, or a
        weight is not finite."""
        start = self.start_loss
        if val is not None and not math.isfinite(val):
            return f"validation loss is {val}"
        if val is not None and start is not None and val > DIVERGE_FACTOR * start:
            return (f"validation loss {val:.3f} is over {DIVERGE_FACTOR:g}x the starting "
                    f"loss {start:.3f}")
        if not all(np.isfinite(p).all() for p in params.values()):
            return "a weight is nan"
        return None


def diverged(why: str, iteration: int, lr: float, folder: str, best_val: float,
             saved: int | None) -> CharRNNError:
    """The error that stops a diverged run (exit 1) before a bad update or
    save: nothing is written, so the checkpoints of the last evaluation
    (``saved``: its iteration, None before the first) survive."""
    if math.isfinite(best_val):
        kept = f"kept {os.path.join(folder, BEST)} (val {best_val:.4f})"
    elif saved is not None:
        kept = f"kept {os.path.join(folder, LATEST)} (iteration {saved})"
    else:
        kept = "no checkpoint was saved yet"
    return CharRNNError(f"training diverged at iteration {iteration}: {why}; "
                        f"lower --lr (now {lr:g}) and try again; {kept}")


def check_finite(params: dict, optim_state: dict, iteration: int) -> None:
    """Raise (before anything is written) if a weight or optimizer entry is
    NaN or infinite: a diverged model must not replace a good checkpoint."""
    for section, arrays in (("weight", params), ("optimizer state", optim_state)):
        for name, a in arrays.items():
            if a.dtype.kind == "f" and not np.isfinite(a).all():
                raise CharRNNError(
                    f"training diverged by iteration {iteration} ({section} {name} is "
                    f"NaN or infinite); lower --lr or --clip. Last good checkpoint kept.")


def evals_since_best(val_losses) -> int:
    """How many evaluations came after the first lowest finite validation
    loss (all of them when none is finite)."""
    best, since = math.inf, 0
    for v in val_losses:
        if math.isfinite(v) and v < best:
            best, since = v, 0
        else:
            since += 1
    return since


def best_at(val_losses, *columns):
    """(lowest finite validation loss, then each column's value at its first
    evaluation: wall time, characters read ...), or None when none is finite."""
    best = None
    for i, v in enumerate(val_losses):
        if math.isfinite(v) and (best is None or v < best[0]):
            best = (v, *(c[i] for c in columns))
    return best
