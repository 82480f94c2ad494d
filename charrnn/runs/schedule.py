"""The learning-rate schedule: the rate of each step as a pure function of the
iteration and the run's Plan, so a resumed run follows the same curve.

Two kinds of plan:
- "step": linear warm-up, then step decay every ``lr_decay_every`` steps
  (constant when ``lr_decay`` is 1).  Needs no end: the schedule of a run
  with no limit, or of one whose decay flags were set by hand.
- "budget": linear warm-up, the full rate until ``hold``, then a linear decay
  that reaches ``floor`` x lr at the planned last step (iteration ``total``)
  and stays there.  With --max-iters the plan is known at the start.  With
  --max-time the run holds the full rate while it times its first steps,
  then fixes ``total`` from that speed: see ``plan_from_speed``.  Either way
  the decay covers the last config.DECAY_SHARE of the steps (all of them
  after the timing with Adam, the last fifth with Adagrad), which fixes
  ``hold``.  Stored in the checkpoint (config "plan").
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

from charrnn.runs.config import TrainConfig

BUDGET_FLOOR = 0.05     # the budget schedule ends at this fraction of --lr
MEASURE_SECONDS = (5.0, 20.0)   # the speed is timed for 3 % of --max-time, within these bounds
MEASURE_SHARE = 0.03            # (2 s at 2 minutes read the first steps, 15 % slower than the rest)
MEASURE_MIN_STEPS = 5   # ... and over at least this many steps (after the first)
TIME_SAFETY = 0.97      # plan to finish with 3 % of the budget to spare
# What an evaluation costs, for the plan: a forward chunk is about 0.4 of a
# training step.  (0.6 plus 0.3 s per evaluation for the health figures and
# the checkpoint ended 2-minute rnn runs 25 % early and 10-minute gru runs
# 9 % early; 0.4 and no fixed cost ended runs within 1-5 % of the budget.)
EVAL_FORWARD_SHARE = 0.4


@dataclass(frozen=True)
class Plan:
    """How the learning rate moves over the run (see the module docstring)."""
    kind: str = "step"
    hold: int = 0
    total: int | None = None
    floor: float = BUDGET_FLOOR
    basis: str = ""          # one line: how total was fixed

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d) -> "Plan":
        """A Plan from a checkpoint's config["plan"]; ValueError if it is not one."""
        if not isinstance(d, dict) or set(d) - {f.name for f in fields(cls)}:
            raise ValueError("not a plan")
        p = cls(**d)
        ok = (p.kind in ("step", "budget") and _is_int(p.hold) and p.hold >= 0
              and (p.total is None or (_is_int(p.total) and p.total >= 1))
              and isinstance(p.floor, (int, float)) and not isinstance(p.floor, bool)
              and 0 <= p.floor <= 1 and isinstance(p.basis, str))
        if not ok:
            raise ValueError("not a plan")
        return p

    @property
    def ends(self) -> bool:
        """Does this plan stop the run at ``total``?"""
        return self.kind == "budget" and self.total is not None

    def finished(self, iteration: int, max_iters: int | None) -> bool:
        """Has a run at ``iteration`` reached its planned end?  A --max-iters
        raised beyond it goes on (at the floor rate)."""
        return (self.ends and iteration >= self.total
                and not (max_iters is not None and max_iters > self.total))


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def budget_schedule(cfg: TrainConfig, explicit=()) -> bool:
    """Does a new run with these settings plan its rate for its budget?
    --lr-schedule budget: yes (it needs a limit); step: no; auto: when
    --max-time or --max-iters is set and the decay flags were not."""
    if cfg.lr_schedule == "budget":
        return True
    if cfg.lr_schedule == "step":
        return False
    hand_set = {"lr_decay", "lr_decay_every"} & set(explicit)
    return (cfg.max_iters is not None or cfg.max_time is not None) and not hand_set


def initial_plan(cfg: TrainConfig, explicit=()) -> Plan:
    """The plan a new run starts with: step; or budget, with ``total`` =
    --max-iters when only the iterations are limited (with --max-time the
    total waits for the speed measurement)."""
    if not budget_schedule(cfg, explicit):
        return Plan()
    if cfg.max_time is None:
        return plan_for_iters(cfg, 0)
    return Plan(kind="budget")


def plan_for_iters(cfg: TrainConfig, iteration: int) -> Plan:
    """The budget plan that ends at --max-iters, fixed at ``iteration``."""
    return Plan(kind="budget", hold=decay_start(cfg, iteration, cfg.max_iters),
                total=cfg.max_iters, basis=f"--max-iters {cfg.max_iters}")


def decay_start(cfg: TrainConfig, hold: int, total: int) -> int:
    """Where the decay starts: after ``hold`` and over the last DECAY_SHARE
    of the ``total`` planned steps (config.DECAY_SHARE, per optimizer)."""
    from charrnn.runs.config import DECAY_SHARE
    share = DECAY_SHARE.get(cfg.optimizer, 1.0)
    return max(hold, total - max(1, round(share * total)))


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
    """1 up to ``hold``, then linear down to ``floor`` at the last planned
    step (iteration total - 1), ``floor`` after it.  1 while total is unknown."""
    if plan.total is None or iteration < plan.hold:
        return 1.0
    last = plan.total - 1
    if iteration >= last:
        return plan.floor
    return 1.0 - (1.0 - plan.floor) * (iteration - plan.hold) / (last - plan.hold)


def measuring_done(elapsed: float, steps: int, max_time: float) -> bool:
    """Has the speed been timed long enough to plan?  ``steps`` timed steps
    (the first step of the session is not timed) over ``elapsed`` seconds."""
    lo, hi = MEASURE_SECONDS
    want = min(max(MEASURE_SHARE * max_time, lo), hi)
    return steps >= MEASURE_MIN_STEPS and (elapsed >= want or elapsed >= 0.25 * max_time)


def plan_from_speed(cfg: TrainConfig, iteration: int, elapsed: float, step_seconds: float,
                    eval_chars: int, eval_seconds: float | None = None) -> Plan:
    """The budget plan fixed at ``iteration`` after ``elapsed`` seconds of the
    session (of --max-time ``cfg.max_time``), steps taking ``step_seconds``:
    the steps that fit the rest of the time, counting the evaluations every
    ``eval_every`` steps and keeping TIME_SAFETY; at most --max-iters.  An
    evaluation costs ``eval_seconds`` when one was timed (with its
    checkpoint), else ``eval_chars`` characters read forward, at
    EVAL_FORWARD_SHARE of a step per chunk."""
    per_eval = eval_seconds
    if per_eval is None:
        per_eval = eval_chars / (cfg.batch_size * cfg.seq_len) * EVAL_FORWARD_SHARE * step_seconds
    per_step = step_seconds + (per_eval / cfg.eval_every if cfg.eval_every else 0.0)
    left = max(0.0, cfg.max_time * TIME_SAFETY - elapsed)
    total = iteration + max(1, math.floor(left / per_step))
    basis = (f"{step_seconds * 1000:.4g} ms a step, timed over the first {elapsed:.1f} s of "
             f"--max-time {cfg.max_time:g}s")
    if eval_seconds is not None:
        basis += f"; {eval_seconds:.3g} s an evaluation"
    if cfg.max_iters is not None and cfg.max_iters < total:
        total, basis = cfg.max_iters, f"--max-iters {cfg.max_iters} (sooner than --max-time)"
    return Plan(kind="budget", hold=decay_start(cfg, iteration, total), total=total, basis=basis)
