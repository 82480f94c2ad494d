"""Budget planning, in one place: from what the user set, the text and the
budget (--max-time and/or --max-iters), a new run's whole specification
(``new_run``: the sizes, batch shape and optimizer chosen by runs/sizing.py,
the evaluation cadence, the learning-rate plan, the time spent choosing);
the plans themselves (``initial_plan``, ``plan_for_iters``,
``plan_from_speed``); and the speed timing that fixes a --max-time plan
during the first steps (``PlanTimer``, handed to Trainer.run).  The rate of
each step under a plan is runs/schedule.py's pure ``lr_at``.

A budget plan decays the rate linearly to schedule.BUDGET_FLOOR x --lr at
its last step.  With --max-iters the plan is known at the start.  With
--max-time the run holds the full rate while it times its first steps,
then fixes its end from that speed.  Either way the decay covers the last
DECAY_SHARE of the steps (all of them after the timing with Adam, the last
fifth with Adagrad), which fixes where it starts.
"""
from __future__ import annotations

import dataclasses
import math
import time

from charrnn.errors import OptionError
from charrnn.runs import sizing
from charrnn.runs.config import TrainConfig, make_train_config, model_defaults
from charrnn.runs.schedule import Plan
from charrnn.runs.spec import RunSpec

MEASURE_SECONDS = (5.0, 20.0)   # the speed is timed for MEASURE_SHARE of --max-time, within these
MEASURE_SHARE = 0.03            # (the first steps are slower than the rest: bench/results/NOTES.md)
MEASURE_MIN_STEPS = 5   # ... and over at least this many steps (after the first)
TIME_SAFETY = 0.97      # plan to finish with 3 % of the budget to spare
# What an evaluation costs, for the plan when none was timed: a forward
# chunk at this share of a training step, and no fixed cost (the share that
# ends runs closest to their budget: bench/results/NOTES.md).
EVAL_FORWARD_SHARE = 0.4
# The share of a budget plan's steps over which the rate decays, by
# optimizer: Adagrad slows itself down and loses from a long decay; Adam and
# RMSprop held at full rate drift up, so they decay over the whole plan
# (measurements: bench/results/NOTES.md).
DECAY_SHARE = {"adagrad": 0.2, "rmsprop": 1.0, "adam": 1.0}


# ------------------------------------------------------------- a new run
def new_run(corpus, opts: dict, explicit) -> RunSpec:
    """The specification of a new run on ``corpus`` from ``opts`` (settings;
    absent means the default, per --model) of which the user set
    ``explicit``.  With a limit, the sizes, batch shape and (rnn) optimizer
    the user left unset are chosen for the text and the budget (the time
    spent choosing counts against --max-time), and a smaller chosen step is
    evaluated as often per character read; the rate is planned for the
    budget."""
    from charrnn.runs import validation
    from charrnn.text import data
    cfg = make_train_config(**opts)
    if cfg.lr_schedule == "budget" and cfg.max_iters is None and cfg.max_time is None:
        raise OptionError("--lr-schedule budget plans the rate for a budget: set --max-time "
                          "or --max-iters (or use --lr-schedule step)")
    spent = 0.0
    if cfg.max_iters is not None or cfg.max_time is not None:
        t = time.perf_counter()
        given = {k: opts[k] for k in sizing.CHOSEN_FIELDS if k in opts and k in explicit}
        train_ids, val_ids = data.split(corpus.ids, cfg.val_frac)
        repeats = sizing.repeat_share(train_ids, val_ids) if not given.keys() >= {
            "hidden_size", "num_layers", "dropout"} else 0.0
        choice = choose_sizes(cfg, len(corpus.vocab), len(train_ids), given, repeats=repeats)
        chosen = {"num_layers": choice.num_layers, "hidden_size": choice.hidden_size,
                  "dropout": choice.dropout, "batch_size": choice.batch_size,
                  "seq_len": choice.seq_len, **choice.optimizer}
        if "eval_every" not in explicit and cfg.eval_every:
            # smaller steps, evaluated as often per character read
            per_step = cfg.batch_size * cfg.seq_len / (choice.batch_size * choice.seq_len)
            chosen["eval_every"] = max(1, round(cfg.eval_every * per_step))
        cfg = dataclasses.replace(cfg, **chosen)
        spent = time.perf_counter() - t
    else:
        choice = sizing.unsized(cfg)
    choices = choice.to_dict()
    shape = validation.eval_shape(cfg.batch_size, cfg.seq_len, "batch_size" in choice.chosen)
    return RunSpec(config=cfg, plan=initial_plan(cfg, explicit), eval_shape=shape,
                   lineage={"choices": choices}, spent=spent)


def choose_sizes(cfg: TrainConfig, vocab_size: int, train_chars: int, given: dict, probe=None,
                 repeats: float = 0.0) -> sizing.Choice:
    """sizing.choose() for a new run's TrainConfig with a limit (--max-time
    and/or --max-iters): the budget characters of a size come from
    --max-iters exactly, or from --max-time x its speed timed by
    ``probe(cfg)`` (default probe_chars_per_s); the smaller of the two when
    both are set.  given: the sizing.CHOSEN_FIELDS the user set."""
    probe = probe or (lambda c: probe_chars_per_s(c, vocab_size))
    cfg = dataclasses.replace(cfg, **sizing.optimizer_for(cfg.model, given))   # timed as it will train
    seen = {}

    def budget_chars(layers, hidden, batch, seq):
        key = (layers, hidden, batch, seq)
        if key not in seen:
            c = math.inf
            if cfg.max_iters is not None:
                c = cfg.max_iters * batch * seq
            if cfg.max_time is not None:
                sized = dataclasses.replace(cfg, num_layers=layers, hidden_size=hidden,
                                            batch_size=batch, seq_len=seq)
                c = min(c, cfg.max_time * probe(sized))
            seen[key] = c
        return seen[key]

    words = " and ".join(w for w in (
        f"--max-time {_duration(cfg.max_time)}" if cfg.max_time is not None else "",
        f"--max-iters {cfg.max_iters}" if cfg.max_iters is not None else "") if w)
    return sizing.choose(cfg.model, vocab_size, train_chars, budget_chars, given,
                         model_defaults(cfg.model), words, cfg.embed_size, repeats)


def _duration(s: float) -> str:
    if s >= 60 and s % 60 == 0:
        return f"{s / 60:g}m"
    return f"{s:g}s"


def probe_chars_per_s(cfg: TrainConfig, vocab_size: int, steps: int = 2) -> float:
    """Training speed (characters per second) of cfg's model on this machine:
    the fastest of ``steps`` timed steps (forward, backward, clip, update) on
    random text, after one untimed step."""
    import numpy as np
    from charrnn.nn import optim
    from charrnn.nn.model import Model, init_params, zero_state
    mcfg = cfg.model_config(vocab_size)
    rng = np.random.default_rng(0)
    model = Model(mcfg, init_params(mcfg, rng))
    opt = optim.make(cfg.optimizer, model.params)
    x = rng.integers(0, vocab_size, (cfg.batch_size, cfg.seq_len))
    y = rng.integers(0, vocab_size, (cfg.batch_size, cfg.seq_len))
    state = zero_state(mcfg, cfg.batch_size)
    best = math.inf
    for i in range(steps + 1):
        t = time.perf_counter()
        _, grads, _ = model.loss_and_grads(x, y, state, rng if mcfg.dropout > 0 else None)
        optim.clip_report_(grads, cfg.clip_mode, cfg.clip)
        opt.update(model.params, grads, 1e-9, {})
        if i:
            best = min(best, time.perf_counter() - t)
    return cfg.batch_size * cfg.seq_len / max(best, 1e-9)


# ------------------------------------------------------------------ plans
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
    total waits for the speed timing)."""
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
    of the ``total`` planned steps (per optimizer)."""
    share = DECAY_SHARE.get(cfg.optimizer, 1.0)
    return max(hold, total - max(1, round(share * total)))


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


# ------------------------------------------------------------ the timing
class PlanTimer:
    """Fixes, in the session's first steps, a budget plan still waiting for
    its end.  Trainer.run calls ``begin`` before the first step, then while
    ``timing``: ``after_step`` after each step and ``after_eval`` after each
    evaluation; a Plan returned is the run's plan from then on.  The first
    step of the session is not timed (caches, allocation), nor are the
    evaluations among the timed steps (their timed cost is counted apart)."""

    def __init__(self, cfg: TrainConfig):
        self.cfg = cfg
        self.timing = False
        self._start = None           # (clock, iteration) at the end of the first step
        self._evals = []             # seconds of each evaluation since

    def begin(self, plan: Plan, iteration: int) -> Plan | None:
        """At the start of a session: a waiting plan is timed when the run
        has --max-time, else it ends at --max-iters (returned: fixed now),
        or never (it holds --lr)."""
        self.timing, self._start, self._evals = False, None, []
        if plan.kind != "budget" or plan.total is not None:
            return None
        if self.cfg.max_time is not None:
            self.timing = True
            return None
        if self.cfg.max_iters is not None:
            return plan_for_iters(self.cfg, iteration)
        return None

    def after_step(self, iteration: int, now: float, elapsed: float, eval_chars: int) -> Plan | None:
        """After a step that ended at clock ``now``, ``elapsed`` seconds into
        the session: once measuring_done, the plan from this speed
        (plan_from_speed; ``eval_chars``: characters an evaluation reads,
        0 without evaluations)."""
        if self._start is None:
            self._start = (now, iteration)
            return None
        t, it = self._start
        steps = iteration - it
        stepping = now - t - sum(self._evals)
        if not measuring_done(stepping, steps, self.cfg.max_time):
            return None
        self.timing = False
        evals = self._evals
        eval_seconds = sum(evals) / len(evals) if evals else None
        return plan_from_speed(self.cfg, iteration, elapsed, stepping / steps, eval_chars,
                               eval_seconds)

    def after_eval(self, seconds: float) -> None:
        """An evaluation (with its checkpoint) took ``seconds`` among the timed steps."""
        if self._start is not None:
            self._evals.append(seconds)
