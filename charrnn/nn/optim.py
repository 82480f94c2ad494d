"""Optimizers with their state kept as named arrays (saved as ``optim/<name>``).

Each optimizer updates parameters in place: ``opt.update(params, grads, lr)``;
with ``sizes={}`` it also records, per parameter, the squared L2 norms of
the update and of the weights before it (for the update/weight ratio of the
run-health curves).
State names are ``<slot>.<param name>`` (e.g. ``mem.l0.Wh``) plus ``t`` for
Adam's step count, so a checkpoint can hold and validate them.
"""
from __future__ import annotations

import numpy as np


class Optimizer:
    slots: tuple[str, ...] = ()
    eps = 1e-8

    def __init__(self, params: dict[str, np.ndarray]):
        self.state = {f"{s}.{n}": np.zeros_like(p) for s in self.slots for n, p in params.items()}

    @classmethod
    def state_shapes(cls, params):
        """Name -> shape of every state array for these params."""
        return {f"{s}.{n}": p.shape for s in cls.slots for n, p in params.items()}

    def update(self, params, grads, lr, sizes=None):  # pragma: no cover - abstract
        raise NotImplementedError


def _record(sizes, name, upd, p):
    if sizes is not None:
        sizes[name] = (float(np.vdot(upd, upd)), float(np.vdot(p, p)))


class Adagrad(Optimizer):
    """mem += g^2;  p -= lr * g / sqrt(mem + eps), as in the classic script."""
    slots = ("mem",)

    def update(self, params, grads, lr, sizes=None):
        for n, p in params.items():
            g, mem = grads[n], self.state[f"mem.{n}"]
            mem += g * g
            upd = mem + self.eps
            np.sqrt(upd, out=upd)
            np.divide(g, upd, out=upd)
            upd *= lr
            _record(sizes, n, upd, p)
            p -= upd


class RMSprop(Optimizer):
    """ms = a*ms + (1-a)*g^2;  p -= lr * g / (sqrt(ms) + eps), a = 0.95."""
    slots = ("ms",)
    alpha = 0.95

    def update(self, params, grads, lr, sizes=None):
        a = self.alpha
        for n, p in params.items():
            g, ms = grads[n], self.state[f"ms.{n}"]
            ms *= a
            ms += (1 - a) * g * g
            upd = np.sqrt(ms)
            upd += self.eps
            np.divide(g, upd, out=upd)
            upd *= lr
            _record(sizes, n, upd, p)
            p -= upd


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015) with bias correction, b1=0.9, b2=0.999 (or ``beta2``)."""
    slots = ("m", "v")
    b1, b2 = 0.9, 0.999

    def __init__(self, params, beta2: float | None = None):
        super().__init__(params)
        if beta2 is not None:
            self.b2 = beta2
        self.state["t"] = np.zeros((), dtype=np.int64)

    @classmethod
    def state_shapes(cls, params):
        shapes = super().state_shapes(params)
        shapes["t"] = ()
        return shapes

    def update(self, params, grads, lr, sizes=None):
        self.state["t"] += 1
        t = int(self.state["t"])
        b1, b2 = self.b1, self.b2
        step = lr * np.sqrt(1 - b2 ** t) / (1 - b1 ** t)
        for n, p in params.items():
            g, m, v = grads[n], self.state[f"m.{n}"], self.state[f"v.{n}"]
            m *= b1
            m += (1 - b1) * g
            v *= b2
            v += (1 - b2) * g * g
            upd = np.sqrt(v)
            upd += self.eps
            np.divide(m, upd, out=upd)
            upd *= step
            _record(sizes, n, upd, p)
            p -= upd


OPTIMIZERS = {"adagrad": Adagrad, "rmsprop": RMSprop, "adam": Adam}


AVERAGE_WARMUP = 10     # the average's decay ramps up as (1 + t) / (AVERAGE_WARMUP + t)


def average_decay(decay: float, step: int) -> float:
    """The decay of the weight average at 0-based ``step``: ``decay``, but
    lower in the first steps, min(decay, (1 + step) / (AVERAGE_WARMUP + step)),
    so the average does not hold on to the initial weights."""
    return min(decay, (1.0 + step) / (AVERAGE_WARMUP + step))


def average_(avg: dict, params: dict, decay: float) -> None:
    """avg <- decay * avg + (1 - decay) * params, in place, for every weight."""
    for name, a in avg.items():
        a -= (1.0 - decay) * (a - params[name])


def make(name: str, params, beta2: float | None = None) -> Optimizer:
    """A fresh optimizer of this name (names.OPTIMIZERS) for params;
    ``beta2``: Adam's second-moment decay (None: its default; other
    optimizers ignore it)."""
    if name == "adam":
        return Adam(params, beta2)
    return OPTIMIZERS[name](params)


def clip_(grads, mode: str, value: float) -> float:
    """Clip gradients in place. mode 'value': each entry to [-value, value];
    'norm': rescale all so the global L2 norm is at most value.  Returns the
    global norm before clipping (nan-aware callers may test it)."""
    return clip_report_(grads, mode, value)[0]


def clip_report_(grads, mode: str, value: float) -> tuple[float, bool]:
    """clip_, returning (global L2 norm before clipping, whether anything was
    clipped).  An entry can only exceed ``value`` when the norm does, so the
    value mode looks for one only then."""
    norm = float(np.sqrt(sum(float(np.vdot(g, g)) for g in grads.values())))
    if value <= 0:
        return norm, False
    clipped = False
    if mode == "value":
        if norm > value:
            clipped = any(float(np.abs(g).max()) > value for g in grads.values() if g.size)
            for g in grads.values():
                np.clip(g, -value, value, out=g)
    elif norm > value:
        clipped = True
        scale = value / norm
        for g in grads.values():
            g *= scale
    return norm, clipped
