"""Run-health figures recorded at every evaluation (history curves, see
checkpoint.health_keys), for `charrnn inspect` and its diagnosis (advice.py).

Over the span of training steps since the previous evaluation:
    grad_norm            mean global L2 norm of the gradient before clipping (the
                         gradient the optimizer gets: of the chunk's loss summed
                         over its characters and averaged over the streams)
    clip_share           share of those steps whose gradient was clipped
    update_ratio         mean over steps of ||update|| / ||weights||, all weights
    update_ratio/<group> the same per group: embed, l0, l1, ..., out
At the evaluation itself, on the first characters of the validation text
(the training text when there is none):
    saturation           share of saturated activations: |tanh| > 0.99,
                         sigmoid gates below 0.01 or above 0.99
    saturation/l<k>      the same per layer
    memory               mean |dL_t/dstate(t-20)| over mean |dL_t/dstate(t)|
                         of the bottom layer (its c state for an lstm): how
                         much of the gradient survives 20 characters back
None of these draws random numbers or changes the model, so recording them
keeps --resume bit-identical.
"""
from __future__ import annotations

import functools
import math

import numpy as np

MEMORY_LAG = 20
MEMORY_CHARS = 257          # positions scored for the memory figure
SATURATION_STREAMS = 8      # the saturation sample: 8 streams ...
SATURATION_CHARS = 256      # ... of 256 characters


@functools.lru_cache(maxsize=None)
def group_of(param: str) -> str:
    """'l1.Wh' -> 'l1', 'out.W' -> 'out', 'embed' -> 'embed'."""
    return param.split(".", 1)[0]


class Span:
    """Accumulates the per-step figures between two evaluations."""

    def __init__(self):
        self.steps = 0
        self.clipped = 0
        self.norm_sum = 0.0
        self.ratio_sum: dict[str, float] = {}

    def add(self, norm: float, clipped: bool, sizes: dict) -> None:
        """sizes: param -> (||update||^2, ||weights||^2), from Optimizer.step."""
        self.steps += 1
        self.clipped += bool(clipped)
        self.norm_sum += norm
        groups: dict[str, list] = {}
        for name, (u, w) in sizes.items():
            g = groups.setdefault(group_of(name), [0.0, 0.0])
            g[0] += u
            g[1] += w
        total = [sum(g[0] for g in groups.values()), sum(g[1] for g in groups.values())]
        for name, (u, w) in [*groups.items(), ("", total)]:
            r = math.sqrt(u / w) if w > 0 else math.nan
            self.ratio_sum[name] = self.ratio_sum.get(name, 0.0) + r

    def figures(self) -> dict:
        """history key -> value for this span (NaN without steps)."""
        n = self.steps
        out = {"grad_norm": self.norm_sum / n if n else math.nan,
               "clip_share": self.clipped / n if n else math.nan}
        for name, s in self.ratio_sum.items():
            out["update_ratio" + (f"/{name}" if name else "")] = s / n if n else math.nan
        return out


def saturation(model, ids: np.ndarray) -> dict:
    """Saturated share of the activations on up to 8 x 256 characters of ids."""
    from charrnn.nn.model import zero_state
    L = model.cfg.num_layers
    nan = {"saturation": math.nan, **{f"saturation/l{k}": math.nan for k in range(L)}}
    n = min(len(ids) - 1, SATURATION_STREAMS * SATURATION_CHARS)
    if n < 1:
        return nan
    B = max(1, min(SATURATION_STREAMS, n // 16))
    T = n // B
    x = np.asarray(ids[:B * T]).reshape(B, T)
    _, _, caches, _ = model._run(x.T, zero_state(model.cfg, B), None, train=False)
    out, sat_all, tot_all = {}, 0, 0
    for k, (_, cache, _) in enumerate(caches):
        sat, tot = model.cfg.cell.saturation(cache)
        out[f"saturation/l{k}"] = sat / tot if tot else math.nan
        sat_all += sat
        tot_all += tot
    out["saturation"] = sat_all / tot_all if tot_all else math.nan
    return out


def memory(model, ids: np.ndarray) -> float:
    """Gradient surviving MEMORY_LAG characters back (see the module docstring)."""
    from charrnn.nn.gradflow import gradient_flow
    ids = np.asarray(ids[:MEMORY_CHARS])
    if len(ids) < MEMORY_LAG + 2:
        return math.nan
    flow = gradient_flow(model, ids, MEMORY_LAG)["layers"][0]
    curve = flow["c"] if "c" in flow else flow["h"]
    return curve[MEMORY_LAG] / curve[0] if curve[0] > 0 else math.nan


def measure(model, ids: np.ndarray) -> dict:
    """The evaluation-time figures: saturation and memory."""
    with np.errstate(all="ignore"):
        return {**saturation(model, ids), "memory": memory(model, ids)}
