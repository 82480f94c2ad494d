"""The learning-rate schedule: the rate of each step as a pure function of the
iteration, so a resumed run follows the same curve."""
from __future__ import annotations

from charrnn.runs.config import TrainConfig


def lr_at(cfg: TrainConfig, iteration: int) -> float:
    """Learning rate of the step that follows ``iteration`` completed steps.

    Linear warm-up over the first ``warmup`` steps, then step decay: the rate
    is multiplied by ``lr_decay`` after every ``lr_decay_every`` steps.  A
    pure function of the iteration, so a resumed run follows the same curve.
    """
    lr = cfg.lr
    if cfg.warmup > 0 and iteration < cfg.warmup:
        lr *= (iteration + 1) / cfg.warmup
    if cfg.lr_decay != 1.0 and cfg.lr_decay_every > 0:
        lr *= cfg.lr_decay ** (iteration // cfg.lr_decay_every)
    return lr
