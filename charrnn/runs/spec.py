"""The run specification: everything a run is, resolved once before the
Trainer is built (by runs/budget.py for a new run, runs/resume.py for
--resume and --init-from) and handed to it finished."""
from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

from charrnn.runs.config import TrainConfig
from charrnn.runs.schedule import Plan


@dataclass(frozen=True)
class RunSpec:
    """config: the settings; plan: the learning-rate plan it starts with;
    eval_shape: (streams K, characters per chunk T) of validation during
    training; lineage: the config entries the run carries besides its
    settings ("choices", "resumes", "init_from", ...), read-only; spent:
    seconds this session spent before training (choosing sizes), counted
    against --max-time."""
    config: TrainConfig
    plan: Plan = Plan()
    eval_shape: tuple = ()
    lineage: Mapping = field(default_factory=dict)
    spent: float = 0.0

    def __post_init__(self):
        if not self.eval_shape:
            object.__setattr__(self, "eval_shape", (self.config.batch_size, self.config.seq_len))
        object.__setattr__(self, "lineage", MappingProxyType(dict(self.lineage)))

    @classmethod
    def plain(cls, cfg: TrainConfig) -> "RunSpec":
        """A run of exactly these settings: the step schedule, validation at
        the batch shape, no lineage (a Trainer built from a TrainConfig)."""
        return cls(config=cfg)
