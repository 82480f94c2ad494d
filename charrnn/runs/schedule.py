"""The learning-rate schedule: the rate of each step as a pure function of the
iteration and the run's Plan, so a resumed run follows the same curve.

Two kinds of plan:
- "step": linear warm-up, then step decay every ``lr_decay_every`` steps
  (constant when ``lr_decay`` is 1).  Needs no end: the schedule of a run
  with no limit, or of one whose decay flags were set by hand.
- "budget": linear warm-up, ``start`` x lr (the full rate unless re-planned)
  until ``hold``, then a linear decay that reaches ``floor`` x lr at the
  planned last step (iteration ``total``) and stays there; the rate holds
  while ``total`` is unknown.  Plans are made, fixed and (a --max-time run,
  as the clock goes) re-planned by runs/budget.py: a re-plan starts at the
  iteration it is made (``hold``) from the rate the old plan had there
  (``start``), so the rate never jumps.  The plan in force is stored in the
  checkpoint (config "plan").

A plan also says when the run evaluates (``Plan.evaluates``): every
--eval-every steps, and a budgeted run's chosen cadence (``thin``) only
every other time in the first THIN_SHARE of its planned steps, where the
validation loss is still falling fast and no best is kept for long.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from charrnn.runs.config import BUDGET_FLOOR, TrainConfig

THIN_SHARE = 0.5        # a thinned plan evaluates every other time before this share of its steps


@dataclass(frozen=True)
class Plan:
    """How the learning rate moves over the run (see the module docstring)."""
    kind: str = "step"
    hold: int = 0
    total: int | None = None
    floor: float = BUDGET_FLOOR
    basis: str = ""          # one line: how total was fixed
    start: float = 1.0       # the factor of lr at hold (below 1 after a re-plan in the decay)
    deadline: float | None = None   # --max-time: the run's wall time (s) it is planned to end by
    replans: int = 0         # re-plans since the plan was first fixed
    thin: bool = False       # fewer evaluations early (see evaluates)

    def to_dict(self) -> dict:
        """The plan as stored; the fields of re-planning only when set (so a
        --max-iters plan is stored as before them)."""
        d = asdict(self)
        for k, default in (("start", 1.0), ("deadline", None), ("replans", 0), ("thin", False)):
            if d[k] == default:
                del d[k]
        return d

    @classmethod
    def from_dict(cls, d) -> "Plan":
        """A Plan from a checkpoint's config["plan"]; ValueError if it is not one."""
        if not isinstance(d, dict) or set(d) - {f.name for f in fields(cls)}:
            raise ValueError("not a plan")
        p = cls(**d)
        ok = (p.kind in ("step", "budget") and _is_int(p.hold) and p.hold >= 0
              and (p.total is None or (_is_int(p.total) and p.total >= 1))
              and isinstance(p.floor, (int, float)) and not isinstance(p.floor, bool)
              and 0 <= p.floor <= 1 and isinstance(p.basis, str)
              and _is_number(p.start) and p.floor <= p.start <= 1
              and (p.deadline is None or (_is_number(p.deadline) and p.deadline > 0))
              and _is_int(p.replans) and p.replans >= 0 and isinstance(p.thin, bool))
        if not ok:
            raise ValueError("not a plan")
        return p

    @property
    def ends(self) -> bool:
        """Does this plan stop the run at ``total``?"""
        return self.kind == "budget" and self.total is not None

    def evaluates(self, iteration: int, every: int) -> bool:
        """Does the run evaluate after step ``iteration`` (every: --eval-every,
        0 for never; the evaluation at the run's end is the trainer's)?  At
        every multiple of ``every``; a ``thin`` plan whose end is fixed, before
        THIN_SHARE of its steps, only at multiples of 2 x every."""
        if not every or iteration % every:
            return False
        if self.thin and self.ends and iteration < THIN_SHARE * self.total:
            return iteration % (2 * every) == 0
        return True

    def finished(self, iteration: int, max_iters: int | None) -> bool:
        """Has a run at ``iteration`` reached its planned end?  A --max-iters
        raised beyond it goes on (at the floor rate)."""
        return (self.ends and iteration >= self.total
                and not (max_iters is not None and max_iters > self.total))


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def lr_at(cfg: TrainConfig, iteration: int, plan: Plan | None = None) -> float:
    """Learning rate of the step that follows ``iteration`` completed steps.

    Linear warm-up over the first ``warmup`` steps; then, by the plan, step
    decay (the rate is multiplied by ``lr_decay`` after every
    ``lr_decay_every`` steps) or the budget decay (see budget_factor).
    """
    lr = cfg.lr
    if cfg.warmup > 0 and iteration < cfg.warmup:
        lr *= (iteration + 1) / cfg.warmup
    if plan is not None and plan.kind == "budget":
        return lr * budget_factor(plan, iteration)
    if cfg.lr_decay != 1.0 and cfg.lr_decay_every > 0:
        lr *= cfg.lr_decay ** (iteration // cfg.lr_decay_every)
    return lr


def budget_factor(plan: Plan, iteration: int) -> float:
    """``start`` up to ``hold``, then linear down to ``floor`` at the last
    planned step (iteration total - 1), ``floor`` after it.  ``start``
    while total is unknown."""
    if plan.total is None or iteration < plan.hold:
        return plan.start
    last = plan.total - 1
    if iteration >= last:
        return plan.floor
    return plan.start - (plan.start - plan.floor) * (iteration - plan.hold) / (last - plan.hold)
