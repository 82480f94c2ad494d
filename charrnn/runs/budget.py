"""Budget planning, in one place: from what the user set, the text and the
budget (--max-time and/or --max-iters), a new run's whole specification
(``new_run``: the sizes, batch shape and optimizer chosen by runs/sizing.py,
the evaluation cadence, the learning-rate plan, the time spent choosing);
the plans themselves (``initial_plan``, ``plan_for_iters``,
``plan_from_speed``); and the speed timing that fixes a --max-time plan
during the first steps and re-plans it as the clock goes (``PlanTimer``,
handed to Trainer.run).  The rate of each step under a plan is
runs/schedule.py's pure ``lr_at``.

A budget plan decays the rate linearly to --lr-floor x --lr at
its last step.  With --max-iters the plan is known at the start.  With
--max-time the run holds the full rate while it times its first steps,
then fixes its end from that speed and its deadline; then, at every
evaluation and more often in the last fifth of its time, it re-times its
steps and re-plans the rest of its decay from where the rate stands, so
that it ends at the floor by the deadline if the machine slows down or
speeds up.  The decay covers the last DECAY_SHARE of the steps (all of
them after the timing with Adam, the last fifth with Adagrad), which fixes
where it starts.
"""
from __future__ import annotations

import dataclasses
import math
import time

from charrnn.errors import OptionError
from charrnn.runs import sizing
from charrnn.runs.config import STALL_SHARE, TrainConfig, make_train_config, model_defaults
from charrnn.runs.schedule import THIN_SHARE, Plan, budget_factor
from charrnn.runs.spec import RunSpec

MEASURE_SECONDS = (5.0, 20.0)   # the speed is timed for MEASURE_SHARE of --max-time, within these
MEASURE_SHARE = 0.03            # (the first steps are slower than the rest: bench/results/NOTES.md)
MEASURE_MIN_STEPS = 5   # ... and over at least this many steps (after the first)
TIME_SAFETY = 0.97      # plan to finish with 3 % of the budget to spare
# What an evaluation costs, for the plan when none was timed: a forward
# chunk at this share of a training step, and no fixed cost (the share that
# ends runs closest to their budget: bench/results/NOTES.md).
EVAL_FORWARD_SHARE = 0.4
# A --max-time plan is re-planned as the clock goes: at every evaluation,
# every REPLAN_EVERY of its planned steps (without evaluations), and in the
# last REPLAN_LAST_SHARE of its time every REPLAN_EVERY_LAST of them; each
# time from the steps timed since the last one (at least MEASURE_MIN_STEPS;
# a run on a busy machine: bench/results/NOTES.md).
REPLAN_EVERY = 0.05
REPLAN_LAST_SHARE = 0.2
REPLAN_EVERY_LAST = 0.01
OUTLIER = 10.0          # a step timed at more than this x the median is a pause
# The share of a budget plan's steps over which the rate decays, by
# optimizer: Adagrad slows itself down and loses from a long decay; Adam and
# RMSprop held at full rate drift up, so they decay over the whole plan
# (measurements: bench/results/NOTES.md).
DECAY_SHARE = {"adagrad": 0.2, "rmsprop": 1.0, "adam": 1.0}
# a budgeted run whose evaluation interval reads more than this many passes
# over the text evaluates once per pass instead (eval_interval)
EVAL_PASSES = 2.0


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
    if (opts.get("max_time") is not None and opts.get("stall_stop") is None
            and not opts.get("patience")):
        opts = {**opts, "stall_stop": STALL_SHARE}
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
                  "seq_len": choice.seq_len, "embed_size": choice.embed_size, **choice.optimizer}
        thin = False
        if "eval_every" not in explicit and cfg.eval_every:
            chosen["eval_every"], per_pass = eval_cadence(cfg, choice, len(train_ids))
            thin = cfg.max_time is not None and not per_pass
        cfg = dataclasses.replace(cfg, **chosen)
        spent = time.perf_counter() - t
    else:
        choice, thin = sizing.unsized(cfg), False
    choices = choice.to_dict()
    shape = validation.eval_shape(cfg.batch_size, cfg.seq_len, "batch_size" in choice.chosen)
    plan = initial_plan(cfg, explicit)
    if thin and plan.kind == "budget":
        plan = dataclasses.replace(plan, thin=True)
    return RunSpec(config=cfg, plan=plan, eval_shape=shape,
                   lineage={"choices": choices}, spent=spent)


def eval_interval(cfg: TrainConfig, choice: sizing.Choice, train_chars: int) -> int:
    """Steps between evaluations of a budgeted run with the chosen shape
    (eval_cadence)."""
    return eval_cadence(cfg, choice, train_chars)[0]


def eval_cadence(cfg: TrainConfig, choice: sizing.Choice, train_chars: int) -> tuple[int, bool]:
    """(steps between evaluations, whether that is once per pass) of a
    budgeted run with the chosen shape: as often per character read as
    --eval-every at the --model's own shape, but once per pass over a text
    shorter than EVAL_PASSES of those intervals (a small text overfits
    within a few passes, and --stall-stop and best.npz only see what is
    evaluated; such a run's plan is never thinned, see Plan.evaluates)."""
    step = choice.batch_size * choice.seq_len
    every = max(1, round(cfg.eval_every * cfg.batch_size * cfg.seq_len / step))
    per_pass = train_chars / step
    if every > EVAL_PASSES * per_pass:
        return max(1, round(per_pass)), True
    return every, False


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
                embed = (given["embed_size"] if "embed_size" in given
                         else sizing.embed_for(cfg.model, vocab_size, hidden))
                sized = dataclasses.replace(cfg, num_layers=layers, hidden_size=hidden,
                                            batch_size=batch, seq_len=seq, embed_size=embed)
                c = min(c, cfg.max_time * probe(sized))
            seen[key] = c
        return seen[key]

    words = " and ".join(w for w in (
        f"--max-time {_duration(cfg.max_time)}" if cfg.max_time is not None else "",
        f"--max-iters {cfg.max_iters}" if cfg.max_iters is not None else "") if w)
    return sizing.choose(cfg.model, vocab_size, train_chars, budget_chars, given,
                         model_defaults(cfg.model), words, repeats)


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
        _, grads, _ = model.loss_and_grads(x, y, state, rng if mcfg.draws_masks else None)
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
    return Plan(kind="budget", floor=cfg.lr_floor)


def plan_for_iters(cfg: TrainConfig, iteration: int) -> Plan:
    """The budget plan that ends at --max-iters, fixed at ``iteration``."""
    return Plan(kind="budget", hold=decay_start(cfg, iteration, cfg.max_iters),
                total=cfg.max_iters, floor=cfg.lr_floor, basis=f"--max-iters {cfg.max_iters}")


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


def plan_from_speed(cfg: TrainConfig, plan: Plan, iteration: int, used: float,
                    step_seconds: float, eval_chars: int, eval_seconds: float | None,
                    deadline: float) -> Plan:
    """The budget plan from ``iteration`` on, made ``used`` seconds into the
    run (its wall time) for a run to end by ``deadline`` (s of wall time),
    steps taking ``step_seconds``: the steps that fit TIME_SAFETY of the
    time left with their evaluations (steps_within); at most --max-iters.  An
    evaluation costs ``eval_seconds`` when one was timed (with its
    checkpoint), else ``eval_chars`` characters read forward, at
    EVAL_FORWARD_SHARE of a step per chunk.

    ``plan`` is the plan in force.  One still holding its start rate (or
    not yet fixed) places its decay by decay_start; one already decaying is
    re-planned from where its rate stands: the new plan starts at
    ``iteration`` at the old plan's rate there (schedule.budget_factor), so
    the rate never jumps, and falls from there to the floor at its new end."""
    per_eval = eval_seconds
    if per_eval is None:
        per_eval = eval_chars / (cfg.batch_size * cfg.seq_len) * EVAL_FORWARD_SHARE * step_seconds
    aim = max(0.0, (deadline - used) * TIME_SAFETY)
    total = iteration + steps_within(aim, iteration, step_seconds, per_eval, cfg.eval_every,
                                     plan.thin)
    first = plan.total is None
    if first:
        basis = (f"{step_seconds * 1000:.4g} ms a step, timed over the first "
                 f"{used - (deadline - cfg.max_time):.1f} s of --max-time {cfg.max_time:g}s")
    else:
        basis = (f"re-planned at iteration {iteration}, {used:.1f} s of {deadline:g} s: "
                 f"{step_seconds * 1000:.4g} ms a step")
    if eval_seconds is not None:
        basis += f"; {eval_seconds:.3g} s an evaluation"
    if cfg.max_iters is not None and cfg.max_iters < total:
        total, basis = cfg.max_iters, f"--max-iters {cfg.max_iters} (sooner than --max-time)"
    if first or iteration < plan.hold:
        hold, start = decay_start(cfg, iteration, total), plan.start
    else:
        hold, start = iteration, budget_factor(plan, iteration)
    return Plan(kind="budget", hold=hold, total=total, floor=plan.floor, basis=basis,
                start=start, deadline=deadline, replans=plan.replans + (not first),
                thin=plan.thin)


def steps_within(seconds: float, iteration: int, step_seconds: float, eval_seconds: float,
                 eval_every: int, thin: bool = False) -> int:
    """The most steps (at least 1) after ``iteration`` that fit ``seconds``
    with the evaluations they bring: one at every multiple of
    ``eval_every`` (0: none; with ``thin``, only every other one before
    THIN_SHARE of the plan that ends there, as Plan.evaluates) and one after
    the last step when it is not a multiple (the final checkpoint), each
    ``eval_seconds``."""
    def multiples(k, hi):           # of k in (iteration, hi]
        return max(0, hi // k - iteration // k)

    def cost(n):
        if not eval_every:
            return n * step_seconds
        end = iteration + n
        evals = multiples(eval_every, end) + (end % eval_every != 0)
        if thin:                    # the odd multiples below THIN_SHARE * end are skipped
            below = math.ceil(THIN_SHARE * end) - 1
            evals -= multiples(eval_every, below) - multiples(2 * eval_every, below)
        return n * step_seconds + evals * eval_seconds
    per_step = step_seconds + (eval_seconds / eval_every if eval_every else 0.0)
    n = max(1, math.floor(seconds / per_step))       # the estimate, then exact
    while n > 1 and cost(n) > seconds:
        n -= 1
    while cost(n + 1) <= seconds:
        n += 1
    return n


def step_seconds(durations) -> float:
    """The time a step takes, from the ``durations`` (s) of steps timed one
    by one: their mean, a step longer than OUTLIER x their median counted
    as the median (a pause of the machine is time lost, not the speed of
    the steps to come; the shorter waits of a busy machine are)."""
    import numpy as np
    d = np.asarray(durations, dtype=np.float64)
    median = np.median(d)
    return float(np.where(d > OUTLIER * median, median, d).mean())


# ------------------------------------------------------------ the timing
class PlanTimer:
    """Fixes a --max-time plan from the speed of the session's first steps,
    then re-plans it as the clock goes (plan_from_speed).  Trainer.run calls
    ``begin`` before the first step, ``after_step`` after each step and
    ``after_eval`` after each evaluation (both do nothing unless ``active``);
    a Plan returned is the run's plan from that step on.  Each step is timed on
    its own: the first step of the session is not timed (caches,
    allocation), nor are evaluations (their timed cost is counted apart)."""

    def __init__(self, cfg: TrainConfig):
        self.cfg = cfg
        self.timing = False          # the plan waits for its end
        self.active = False          # ... or is re-planned as the clock goes
        self._wall0 = self._t0 = 0.0
        self._eval_chars = 0
        self._last = None            # clock at the end of the last step (evaluations excluded)
        self._steps = []             # seconds of each step timed since the last (re-)plan
        self._evals = []             # seconds of each evaluation timed in the session

    def begin(self, plan: Plan, iteration: int, wall0: float, t0: float,
              eval_chars: int) -> Plan | None:
        """At the start of a session ``wall0`` seconds into the run, whose
        clock (time.perf_counter) started at ``t0``; ``eval_chars``:
        characters an evaluation reads, 0 without them.  A waiting plan is
        timed when the run has --max-time, else it ends at --max-iters
        (returned: fixed now), or never (it holds --lr); a plan with a
        deadline is re-planned as the session goes."""
        self._wall0, self._t0, self._eval_chars = wall0, t0, eval_chars
        self._last, self._steps, self._evals = None, [], []
        self.timing = self.active = False
        if plan.kind != "budget":
            return None
        if plan.total is None:
            if self.cfg.max_time is not None:
                self.timing = self.active = True
                return None
            if self.cfg.max_iters is not None:
                return plan_for_iters(self.cfg, iteration)
            return None
        self.active = plan.deadline is not None
        return None

    def after_step(self, plan: Plan, iteration: int, now: float,
                   evaluating: bool = False) -> Plan | None:
        """After a step that ended at clock ``now``, under ``plan``: the plan
        fixed (once measuring_done) or re-planned (at an evaluation,
        ``evaluating``: the step before it; and every so many steps, see
        REPLAN_EVERY), else None (also when not ``active``)."""
        if not self.active:
            return None
        if self._last is not None:
            self._steps.append(now - self._last)
        self._last = now
        steps, elapsed = len(self._steps), now - self._t0
        if self.timing:
            if not measuring_done(sum(self._steps), steps, self.cfg.max_time):
                return None
            self.timing = False
            return self._plan(plan, iteration, elapsed, self._wall0 + self.cfg.max_time)
        if steps < MEASURE_MIN_STEPS or not plan.ends or iteration >= plan.total - 1:
            return None
        used = self._wall0 + elapsed
        last = used >= (1 - REPLAN_LAST_SHARE) * plan.deadline
        every = max(MEASURE_MIN_STEPS,
                    math.ceil((REPLAN_EVERY_LAST if last else REPLAN_EVERY) * plan.total))
        if not (evaluating or steps >= every):
            return None
        return self._plan(plan, iteration, elapsed, plan.deadline)

    def _plan(self, plan, iteration, elapsed, deadline) -> Plan:
        evals = self._evals[-3:]
        eval_seconds = sum(evals) / len(evals) if evals else None
        new = plan_from_speed(self.cfg, plan, iteration, self._wall0 + elapsed,
                              step_seconds(self._steps), self._eval_chars, eval_seconds,
                              deadline)
        self._steps = []
        return new

    def after_eval(self, seconds: float) -> None:
        """An evaluation (with its checkpoint) took ``seconds``: timed apart."""
        if not self.active:
            return
        self._evals.append(seconds)
        if self._last is not None:
            self._last += seconds
