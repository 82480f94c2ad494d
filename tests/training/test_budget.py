"""Runs planned for their budget: the learning-rate plan (runs/budget.py, runs/schedule.py)
and the sizes chosen for the text and the budget (runs/sizing.py).

The plan is held to hand computations of the formula, the --max-time plan
to a fake clock (each step takes a known time), resume across a plan to the
uninterrupted run bit for bit; the size rule to its stated properties
(monotone, flags win) over many inputs.
"""
from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import charrnn
from charrnn.store import checkpoint as ckpt
from charrnn.runs import resume as runs
from charrnn.runs import budget, schedule, sizing
from charrnn.runs.config import TrainConfig, model_defaults
from charrnn.runs.schedule import Plan, lr_at

from helpers import assert_ok, assert_one_line_error, bits, invoke

TEXT = ("the quick brown fox jumps over the lazy dog; pack my box with five dozen "
        "liquor jugs.\n") * 60
BASE = dict(seq_len=8, batch_size=4, eval_every=10, seed=3)
SIZES = dict(hidden_size=16, num_layers=1, dropout=0.0)


# ------------------------------------------------------------ the formula
@pytest.mark.parametrize("hold,total,floor", [(0, 10, 0.05), (4, 30, 0.1), (7, 8, 0.0)])
def test_the_budget_schedule_holds_then_falls_linearly_to_its_floor_at_the_planned_end(
        hold, total, floor):
    cfg = TrainConfig(lr=0.2)
    plan = Plan(kind="budget", hold=hold, total=total, floor=floor)
    got = [lr_at(cfg, i, plan) for i in range(total + 5)]
    last = total - 1
    for i, lr in enumerate(got):
        if i < hold:
            want = 0.2
        elif i >= last:
            want = 0.2 * floor
        else:
            want = 0.2 * (1 - (1 - floor) * (i - hold) / (last - hold))
        assert lr == pytest.approx(want, rel=1e-12, abs=1e-15), i
    assert got[last] == pytest.approx(0.2 * floor)          # the floor at the last planned step
    assert all(a >= b for a, b in zip(got, got[1:]))         # never rises
    assert lr_at(cfg, last - 1, plan) > 0.2 * floor or last - 1 < hold or floor == 1


def _steps_within_by_hand(seconds, iteration, step, per_eval, every, thin):
    """The most steps n >= 1 after ``iteration`` whose time fits ``seconds``:
    each step, each evaluation Plan.evaluates makes in a plan ending after n
    steps, and the final checkpoint's when the end is not a multiple."""
    def cost(n):
        end = iteration + n
        if not every:
            return n * step
        plan = Plan(kind="budget", total=end, thin=thin)
        evals = sum(plan.evaluates(i, every) for i in range(iteration + 1, end + 1))
        return n * step + (evals + (end % every != 0)) * per_eval
    fits = [n for n in range(1, int(seconds / step) + 1) if cost(n) <= seconds]
    return max(fits, default=1)


@settings(max_examples=150, deadline=None)
@given(seconds=st.floats(0, 20), iteration=st.integers(0, 60), step=st.floats(0.1, 1.0),
       per_eval=st.one_of(st.just(0.0), st.floats(0, 3)), every=st.integers(0, 9),
       thin=st.booleans())
def test_the_steps_that_fit_a_time_are_counted_as_by_hand(seconds, iteration, step, per_eval,
                                                         every, thin):
    assert budget.steps_within(seconds, iteration, step, per_eval, every, thin) == \
        _steps_within_by_hand(seconds, iteration, step, per_eval, every, thin)


@pytest.mark.parametrize("args, n", [
    ((10.0, 0, 1.0, 0.0, 0), 10),            # no evaluations: the time over the step
    ((10.0, 0, 1.0, 1.0, 5), 8),             # 8 steps + evaluations at 5 and after 8
    ((10.0, 0, 1.0, 1.0, 3), 7),             # 7 steps + evaluations at 3, 6 and after 7
    ((10.0, 0, 1.0, 1.0, 3, True), 8),       # thinned: 8 steps, 3 skipped (below half of 8)
    ((0.5, 7, 1.0, 1.0, 5), 1)])             # nothing fits: at least one step
def test_the_steps_that_fit_a_time_in_literal_cases(args, n):
    assert budget.steps_within(*args) == n


@pytest.mark.parametrize("schedule, limit, explicit, want", [
    ("budget", {}, (), True),                          # as asked (a limit is checked elsewhere)
    ("step", {"max_iters": 50}, (), False),
    ("auto", {"max_iters": 50}, (), True),
    ("auto", {"max_time": 60.0}, (), True),
    ("auto", {}, (), False),
    ("auto", {"max_iters": 50}, ("lr_decay",), False),         # decay flags set by hand
    ("auto", {"max_iters": 50}, ("lr_decay_every",), False),
    ("auto", {"max_iters": 50}, ("lr",), True)])
def test_which_runs_plan_their_rate_for_the_budget(schedule, limit, explicit, want):
    assert budget.budget_schedule(TrainConfig(lr_schedule=schedule, **limit), explicit) is want


def test_the_first_plans_of_a_budgeted_run():
    timed = budget.initial_plan(TrainConfig(max_time=60.0, lr_floor=0.07))
    assert (timed.kind, timed.total, timed.floor) == ("budget", None, 0.07)
    assert Plan().floor != 0.07
    counted = budget.plan_for_iters(TrainConfig(max_iters=500, optimizer="adagrad",
                                                lr_floor=0.07), 0)
    assert (counted.kind, counted.hold, counted.total, counted.floor, counted.basis) == (
        "budget", 400, 500, 0.07, "--max-iters 500")
    assert budget.decay_start(TrainConfig(optimizer="adagrad"), 0, 2) == 1   # at least 1 step


@pytest.mark.parametrize("elapsed, steps, max_time, done", [
    (18.0, 5, 600.0, True),      # 3 % of 10 min, over the 5 steps asked
    (17.9, 5, 600.0, False),
    (18.0, 4, 600.0, False),
    (20.0, 9, 3600.0, True),     # at most 20 s
    (5.0, 9, 30.0, True),        # at least 5 s ...
    (2.0, 5, 8.0, True),         # ... or a quarter of a short budget
    (1.9, 5, 8.0, False)])
def test_how_long_the_speed_is_timed_before_planning(elapsed, steps, max_time, done):
    assert budget.measuring_done(elapsed, steps, max_time) is done


def test_a_plan_from_the_speed_in_numbers():
    """97 % of the 97 s left, 20 ms a step and 0.5 s an evaluation every 50
    steps: 3,110 steps from 40 (62.2 s + 63 evaluations = 93.7 s; one more
    step brings the final checkpoint: 94.22 s > 94.09 s)."""
    cfg = TrainConfig(max_time=100.0, batch_size=4, seq_len=8, eval_every=50,
                      optimizer="adagrad", lr_floor=0.07)
    p = budget.plan_from_speed(cfg, Plan(kind="budget", floor=0.07), 40, 33.0, 0.02, 0, 0.5,
                               130.0)           # resumed: 30 s of wall time before this session
    assert (p.total, p.floor, p.replans, p.deadline) == (3150, 0.07, 0, 130.0)
    assert p.hold == budget.decay_start(cfg, 40, 3150) == 2520
    assert p.basis == ("20 ms a step, timed over the first 3.0 s of --max-time 100s; "
                       "0.5 s an evaluation")
    thin = budget.plan_from_speed(cfg, Plan(kind="budget", floor=0.07, thin=True), 40, 3.0,
                                  0.02, 0, 0.5, 100.0)
    assert thin.thin and thin.total == 40 + budget.steps_within(97 * 0.97, 40, 0.02, 0.5, 50,
                                                                 True) != 3150
    capped = budget.plan_from_speed(dataclasses.replace(cfg, max_iters=3150),
                                    Plan(kind="budget", floor=0.07), 40, 3.0, 0.02, 0, 0.5, 100.0)
    assert capped.basis == p.basis                 # --max-iters exactly as far: the clock's plan
    sooner = budget.plan_from_speed(dataclasses.replace(cfg, max_iters=3149),
                                    Plan(kind="budget", floor=0.07), 40, 3.0, 0.02, 0, 0.5,
                                    100.0)
    assert (sooner.total, sooner.basis) == (3149, "--max-iters 3149 (sooner than --max-time)")
    # re-planned exactly where the plan in force starts to decay: it decays from there
    again = budget.plan_from_speed(cfg, Plan(kind="budget", hold=40, total=4000, floor=0.07),
                                   40, 3.0, 0.02, 0, 0.5, 100.0)
    assert (again.hold, again.total, again.replans) == (40, 3150, 1)
    assert again.basis == ("re-planned at iteration 40, 3.0 s of 100 s: 20 ms a step; "
                           "0.5 s an evaluation")


def test_the_plan_timer_times_steps_apart_from_evaluations_then_plans_and_re_plans():
    """PlanTimer on a fake clock (steps of 1/32 s, exact in binary): a
    waiting --max-time plan is fixed once 5 s of steps are timed, with the
    evaluation's 0.5 s left out of the steps; then re-planned at an
    evaluation once 5 steps are timed since.  plan_from_speed (pinned in
    numbers above) is the yardstick."""
    cfg = TrainConfig(max_time=100.0, batch_size=4, seq_len=8, eval_every=50,
                      optimizer="adagrad", lr_floor=0.07)
    timer = budget.PlanTimer(cfg)
    assert timer.after_step(Plan(kind="budget"), 1, 5.0) is None       # not begun: inactive
    waiting = Plan(kind="budget", floor=0.07)
    assert timer.begin(waiting, 0, 20.0, 1000.0, 0) is None
    assert timer.timing and timer.active
    clock, got = 1000.0, None
    for k in range(1, 200):
        clock += 1 / 32
        got = timer.after_step(waiting, k, clock, evaluating=(k == 100))
        if k == 100:
            timer.after_eval(0.5)
            clock += 0.5
        if got is not None:
            break
    assert k == 161 and not timer.timing and timer.active   # 160 timed steps = 5 s
    assert got == budget.plan_from_speed(cfg, waiting, 161, 20.0 + 161 / 32 + 0.5, 1 / 32, 0,
                                         0.5, 120.0)
    fixed = got
    for k in range(162, 166):                      # fewer than 5 steps since: no re-plan
        clock += 1 / 32
        assert timer.after_step(fixed, k, clock, evaluating=True) is None
    clock += 1 / 16                                # a slower step
    again = timer.after_step(fixed, 166, clock, evaluating=True)
    steps = [1 / 32] * 4 + [1 / 16]
    assert again == budget.plan_from_speed(cfg, fixed, 166, 20.0 + clock - 1000.0,
                                           budget.step_seconds(steps), 0, 0.5, fixed.deadline)
    assert again.replans == 1


@pytest.mark.parametrize("wall0, start, at", [
    (0.0, 100, 51),        # every 5 % of the plan's 1,000 steps: after 50 timed steps
    (100.0, 100, 11),      # in the last 20 % of the time (100 s of 120): every 1 %
    (85.65625, 100, 11),   # ... from exactly 96 s on (at step 11: 85.65625 + 10.34375)
    (100.0, 987, 11),      # ... re-planned at iteration 998, two before the end
    (100.0, 988, None)])   # ... but never at the last step's
def test_a_fixed_plan_is_re_planned_every_so_many_steps(wall0, start, at):
    cfg = TrainConfig(max_time=120.0, batch_size=4, seq_len=8, eval_every=0,
                      optimizer="adagrad", lr_floor=0.07)
    plan = Plan(kind="budget", hold=0, total=1000, floor=0.07, deadline=120.0)
    timer = budget.PlanTimer(cfg)
    assert timer.begin(plan, start, wall0, 0.0, 0) is None and timer.active
    clock = 0.0
    for k in range(1, 60):
        clock += 1 / 32
        if k <= 4:                                 # four evaluations: the last three count
            timer.after_eval(float(k))
            clock += k
        got = timer.after_step(plan, start + k, clock)
        if got is not None or start + k >= 999:
            break
    if at is None:
        assert got is None
        return
    assert k == at
    assert got == budget.plan_from_speed(cfg, plan, start + k, wall0 + clock, 1 / 32, 0, 3.0,
                                         120.0)


def test_the_plan_timer_leaves_other_plans_alone():
    timer = budget.PlanTimer(TrainConfig(max_iters=300, optimizer="adagrad"))
    assert timer.begin(Plan(), 0, 0.0, 0.0, 0) is None and not timer.active
    assert timer.begin(Plan(kind="budget"), 10, 0.0, 0.0, 0) == budget.plan_for_iters(
        timer.cfg, 10)
    assert not timer.active and timer.after_step(Plan(kind="budget"), 11, 1.0) is None
    fixed = Plan(kind="budget", hold=10, total=300)  # --max-iters plan: no deadline to keep
    assert timer.begin(fixed, 20, 0.0, 0.0, 0) is None and not timer.active


def test_step_decay_every_single_step():
    cfg = TrainConfig(lr=1.0, lr_decay=0.5, lr_decay_every=1, warmup=0)
    assert [lr_at(cfg, i) for i in range(4)] == [1.0, 0.5, 0.25, 0.125]


def test_warm_up_applies_before_the_budget_decay_and_a_plan_without_end_holds():
    cfg = TrainConfig(lr=0.1, warmup=4)
    plan = Plan(kind="budget", hold=0, total=20, floor=0.05)
    assert lr_at(cfg, 0, plan) == pytest.approx(0.1 * 0.25 * 1.0)
    assert lr_at(cfg, 2, plan) == pytest.approx(0.1 * 0.75 * (1 - 0.95 * 2 / 19))
    waiting = Plan(kind="budget")          # --max-time, speed not timed yet
    assert [lr_at(TrainConfig(lr=0.1), i, waiting) for i in (0, 50, 10 ** 6)] == [0.1] * 3


def test_a_step_plan_is_the_step_schedule():
    cfg = TrainConfig(lr=0.1, lr_decay=0.5, lr_decay_every=3)
    assert [lr_at(cfg, i, Plan()) for i in range(7)] == [lr_at(cfg, i) for i in range(7)]
    assert lr_at(cfg, 6, Plan()) == pytest.approx(0.025)


def test_plan_from_speed_counts_steps_evaluations_and_the_safety_margin():
    cfg = TrainConfig(model="gru", optimizer="adam", max_time=100.0, batch_size=10, seq_len=10,
                      eval_every=50)
    waiting = Plan(kind="budget")
    p = budget.plan_from_speed(cfg, waiting, iteration=40, used=3.0, step_seconds=0.02,
                               eval_chars=5000, eval_seconds=None, deadline=100.0)
    per_eval = 5000 / 100 * budget.EVAL_FORWARD_SHARE * 0.02
    want = 40 + budget.steps_within((100 - 3.0) * budget.TIME_SAFETY, 40, 0.02, per_eval, 50)
    estimate = (100 - 3.0) * budget.TIME_SAFETY / (0.02 + per_eval / 50)  # evaluations spread
    assert abs(want - 40 - estimate) <= 2 * per_eval / 0.02 + 1     # within two evaluations
    assert (p.kind, p.hold, p.total) == ("budget", 40, want)       # adam decays all the way
    assert (p.start, p.deadline, p.replans) == (1.0, 100.0, 0)
    rnn = budget.plan_from_speed(TrainConfig(model="rnn", optimizer="adagrad", max_time=100.0,
                                             batch_size=10, seq_len=10, eval_every=50),
                                 waiting, 40, 3.0, 0.02, 5000, None, 100.0)
    assert rnn.total == want and rnn.hold == want - round(0.2 * want)   # adagrad: the last fifth
    on_adam = budget.plan_from_speed(TrainConfig(model="rnn", optimizer="adam", max_time=100.0,
                                                 batch_size=10, seq_len=10, eval_every=50),
                                     waiting, 40, 3.0, 0.02, 5000, None, 100.0)
    assert (on_adam.hold, on_adam.total) == (40, want)     # the optimizer decides, not the cell
    capped = budget.plan_from_speed(TrainConfig(max_time=100.0, max_iters=500), waiting, 40, 3.0,
                                    0.02, 0, None, 100.0)
    assert capped.total == 500 and "--max-iters 500" in capped.basis


def test_a_re_plan_starts_from_the_rate_where_it_stands_and_ends_at_the_floor_in_time():
    """Re-planned in the decay, the plan starts at the iteration of the
    re-plan from the old plan's rate there and falls to the floor at the
    new end: the steps that fit TIME_SAFETY of the time left to the
    deadline (less the last evaluation)."""
    cfg = TrainConfig(model="gru", optimizer="adam", max_time=100.0, eval_every=50)
    old = budget.plan_from_speed(cfg, Plan(kind="budget"), 40, 3.0, 0.02, 0, 0.5, 100.0)
    at = old.hold + (old.total - old.hold) // 2
    rate = schedule.budget_factor(old, at)
    for step in (0.03, 0.01):                                # slower, faster
        new = budget.plan_from_speed(cfg, old, at, 50.0, step, 0, 0.5, 100.0)
        assert (new.hold, new.start, new.replans, new.deadline) == (at, rate, 1, 100.0)
        assert new.total == at + budget.steps_within(50.0 * budget.TIME_SAFETY, at, step, 0.5, 50)
        assert schedule.budget_factor(new, at) == rate                      # no jump
        assert schedule.budget_factor(new, new.total - 1) == new.floor      # the floor at the end
        assert "re-planned at iteration" in new.basis
    held = Plan(kind="budget", hold=800, total=1000, deadline=100.0)       # adagrad, still holding
    adagrad = TrainConfig(model="rnn", optimizer="adagrad", max_time=100.0, eval_every=50)
    again = budget.plan_from_speed(adagrad, held, 300, 50.0, 0.03, 0, 0.5, 100.0)
    assert again.start == 1.0 and again.hold == budget.decay_start(adagrad, 300, again.total)


@pytest.mark.parametrize("it,every", [(0, 10), (7, 10), (40, 50), (3, 0), (10, 1)])
def test_the_steps_that_fit_count_each_evaluation_they_bring_and_the_final_one(it, every):
    step, ev = 0.0625, 0.25
    for seconds in (0.5, 1.0, 3.3, 10.0):
        n = budget.steps_within(seconds, it, step, ev, every)

        def cost(k):      # by hand: the steps, an evaluation at each multiple and at the end
            ends = [i for i in range(it + 1, it + k + 1) if every and i % every == 0]
            final = every and (it + k) % every != 0
            return k * step + (len(ends) + final) * ev
        assert n == 1 or cost(n) <= seconds
        assert cost(n + 1) > seconds


def test_the_step_time_counts_a_pause_as_a_slow_step_not_as_the_speed():
    assert budget.step_seconds([0.1] * 9 + [50.0]) == pytest.approx(0.1)     # a pause
    assert budget.step_seconds([0.1] * 9 + [0.9]) == pytest.approx(0.18)     # a busy machine
    assert budget.step_seconds([0.1, 0.2, 0.3]) == pytest.approx(0.2)
    assert budget.step_seconds([1, 1, 1, 10]) == 13 / 4        # exactly OUTLIER x: a step


def test_a_plan_round_trips_and_a_damaged_one_is_refused():
    p = Plan(kind="budget", hold=3, total=99, floor=0.05, basis="x")
    assert Plan.from_dict(p.to_dict()) == p
    assert set(p.to_dict()) == {"kind", "hold", "total", "floor", "basis"}   # as before re-plans
    again = Plan(kind="budget", hold=50, total=99, start=0.5, deadline=60.0, replans=3)
    assert Plan.from_dict(again.to_dict()) == again
    thin = Plan(kind="budget", total=99, thin=True)
    assert Plan.from_dict(thin.to_dict()) == thin and thin.to_dict()["thin"] is True
    half = Plan(kind="budget", total=10, thin=True)
    assert [i for i in range(1, 11) if half.evaluates(i, 5)] == [5, 10]   # 5 is not below half
    assert Plan(kind="budget", total=100).finished(100, 100)              # --max-iters as planned
    assert not Plan(kind="budget", total=100).finished(100, 101)
    for edge in (Plan(kind="budget", total=1),                      # the edges are plans
                 Plan(kind="budget", total=9, floor=1.0, start=1.0),
                 Plan(kind="budget", total=9, floor=0.05, start=0.05),
                 Plan(kind="budget", total=9, deadline=0.5)):
        assert Plan.from_dict(edge.to_dict()) == edge
    for bad in ({"kind": "cosine"}, {"kind": "budget", "total": 0}, {"kind": "budget",
                "floor": 2.0}, {"kind": "budget", "hold": True}, {"extra": 1}, [1, 2],
                {"kind": "budget", "start": 1.5}, {"kind": "budget", "start": 0.01},
                {"kind": "budget", "deadline": -1.0}, {"kind": "budget", "deadline": "soon"},
                {"kind": "budget", "deadline": 0.0},
                {"kind": "budget", "replans": -1}, {"kind": "budget", "replans": 1.5},
                {"kind": "budget", "thin": 1}, {"kind": "budget", "thin": "yes"}):
        with pytest.raises(ValueError):
            Plan.from_dict(bad)


@pytest.mark.parametrize("opts,explicit,kind", [
    ({"max_iters": 50}, {"max_iters"}, "budget"),
    ({"max_time": 60.0}, {"max_time"}, "budget"),
    ({}, set(), "step"),                                          # no limit: no end to plan for
    ({"max_iters": 50, "lr_decay": 0.9}, {"max_iters", "lr_decay"}, "step"),   # hand-set decay
    ({"max_iters": 50, "lr_schedule": "step"}, {"max_iters", "lr_schedule"}, "step"),
])
def test_which_runs_plan_for_their_budget(opts, explicit, kind):
    p = budget.initial_plan(TrainConfig(**opts), explicit)
    assert p.kind == kind
    if kind == "budget":
        assert p.total == opts.get("max_iters") if "max_time" not in opts else p.total is None


# ---------------------------------------------------- the trainer follows it
def train(folder, **opts):
    return charrnn.train(TEXT, checkpoint_dir=str(folder), **{**BASE, **SIZES, **opts})


def test_a_max_iters_run_ends_at_the_floor_and_records_the_plan(tmp_path):
    res = train(tmp_path, max_iters=35, lr=0.05)
    ck = ckpt.load(res.latest_path)
    plan = Plan.from_dict(ck.config["plan"])
    assert (plan.kind, plan.total) == ("budget", 35)
    assert plan.hold == budget.decay_start(TrainConfig(model="rnn"), 0, 35) == 35 - 7
    assert res.iterations == 35
    lrs = list(ck.history["lr"])
    assert lrs[-1] == pytest.approx(0.05 * schedule.BUDGET_FLOOR)
    assert lrs == pytest.approx([lr_at(TrainConfig(lr=0.05), int(i) - 1, plan)
                                 for i in ck.history["iter"]])


class FakeClock:
    """time.perf_counter for the trainer: STEP seconds per training step and
    ``eval_cost`` seconds per evaluation; from ``change_at`` seconds on, each
    step costs ``factor`` x STEP (a machine that slowed down or sped up),
    and the first step from ``pause_at`` on is ``pause`` seconds longer.
    ``lrs``: the rate of every step taken."""
    STEP = 0.0625         # a binary fraction: the fake times add up exactly
    START = 1000.0

    def __init__(self):
        self.now = self.START
        self.eval_cost = 0.0
        self.change_at, self.factor = math.inf, 1.0
        self.pause_at, self.pause = math.inf, 0.0
        self.lrs = []

    def __call__(self):
        return self.now

    def step(self):
        t = self.now - self.START
        self.now += self.STEP * (self.factor if t >= self.change_at else 1.0)
        if t >= self.pause_at:
            self.now += self.pause
            self.pause_at = math.inf


@pytest.fixture
def fake_clock(monkeypatch):
    from charrnn.runs import trainer as trainer_mod
    clock = FakeClock()
    real_step, real_validate = trainer_mod.Trainer.train_step, trainer_mod.Trainer.validate

    def step(self):
        clock.lrs.append(lr_at(self.cfg, self.iteration, self.plan))
        clock.step()
        return real_step(self)

    def validate(self):
        clock.now += clock.eval_cost
        return real_validate(self)
    monkeypatch.setattr(trainer_mod.time, "perf_counter", clock)
    monkeypatch.setattr(trainer_mod.Trainer, "train_step", step)
    monkeypatch.setattr(trainer_mod.Trainer, "validate", validate)
    return clock


def timed_steps(max_time: float) -> int:
    """Steps the fake clock's speed is timed over: 3 % of --max-time within
    MEASURE_SECONDS, at most a quarter of --max-time, at least 5 steps."""
    lo, hi = budget.MEASURE_SECONDS
    want = min(max(budget.MEASURE_SHARE * max_time, lo), hi, 0.25 * max_time)
    return max(budget.MEASURE_MIN_STEPS, math.ceil(want / FakeClock.STEP - 1e-9))


def timed_evals(at: int, eval_every: int) -> int:
    """Evaluations between the timed steps when the plan is fixed after step
    ``at`` (timing starts at the end of step 1)."""
    return (at - 1) // eval_every if eval_every else 0


def expected_time_plan(ck, eval_cost: float = 0.0, spent: float = 0.0) -> Plan:
    """The first plan plan_from_speed gives for the fake clock: the speed is
    timed from the end of step 1 over timed_steps, the evaluations among
    them apart (each eval_cost seconds); ``spent`` seconds went before step 1."""
    t = FakeClock.STEP
    at = 1 + timed_steps(ck.config["train"]["max_time"])
    cfg = TrainConfig(**{k: ck.config["train"][k] for k in ("model", "optimizer", "max_time",
                                                            "batch_size", "seq_len",
                                                            "eval_every")})
    vp = ck.config["data"]["val_eval"]
    evals = timed_evals(at, cfg.eval_every)
    return budget.plan_from_speed(cfg, Plan(kind="budget"), at, spent + at * t + evals * eval_cost,
                                  t, vp["chars_scored"], eval_cost if evals else None,
                                  cfg.max_time)


def plans_heard():
    """(progress, plans): a progress callback and the Plans it hears of
    ("plan" events: the plan fixed, then each re-plan)."""
    plans = []

    def progress(event, info):
        if event == "plan":
            plans.append(info)
    return progress, plans


def assert_on_time_at_the_floor(clock, res, ck, max_time, lr):
    """The run ended at its plan's end, at the floor, inside --max-time
    (its final evaluation included) and using at least 97 % of it."""
    plan = Plan.from_dict(ck.config["plan"])
    assert res.iterations == plan.total                         # the plan ended it, not the clock
    assert clock.lrs[-1] == pytest.approx(lr * schedule.BUDGET_FLOOR, rel=1e-9)
    used = clock.now - FakeClock.START
    assert 0.97 * max_time <= used <= max_time, used


@pytest.mark.parametrize("model", ["rnn", "gru"])
def test_a_max_time_run_times_its_steps_then_ends_at_its_floor_on_time(tmp_path, fake_clock,
                                                                       model):
    progress, plans = plans_heard()
    res = train(tmp_path, max_time=10.0, lr=0.05, model=model, progress=progress)
    ck = ckpt.load(res.latest_path)
    first = expected_time_plan(ck)
    assert (plans[0]["total"], plans[0]["basis"], plans[0]["replans"]) == (
        first.total, first.basis, 0)
    share = {"rnn": 0.2, "gru": 1.0}[model]
    assert first.hold == max(1 + timed_steps(10.0), first.total - round(share * first.total))
    assert "ms a step" in first.basis
    plan = Plan.from_dict(ck.config["plan"])      # re-planned as the clock went
    assert plan.replans == len(plans) - 1 >= 1 and plan.deadline == 10.0
    assert_on_time_at_the_floor(fake_clock, res, ck, 10.0, 0.05)
    assert ck.history["lr"][-1] == pytest.approx(0.05 * plan.floor)


def test_evaluations_among_the_timed_steps_are_timed_apart_and_the_budget_is_used(
        tmp_path, fake_clock):
    """Evaluations that take 4 steps' time each: timed as steps (and then
    counted again by the estimate) they ended this run at about 7 of its 10
    s; timed apart, the plan counts each at its own cost and the run ends
    within TIME_SAFETY of the budget."""
    fake_clock.eval_cost = 4 * FakeClock.STEP
    progress, plans = plans_heard()
    res = train(tmp_path, max_time=10.0, lr=0.05, model="gru", progress=progress)
    ck = ckpt.load(res.latest_path)
    at = 1 + timed_steps(10.0)
    assert timed_evals(at, BASE["eval_every"]) >= 3          # evaluations fell among them
    first = expected_time_plan(ck, eval_cost=fake_clock.eval_cost)
    assert (plans[0]["total"], plans[0]["basis"]) == (first.total, first.basis)
    assert "62.5 ms a step" in first.basis and "0.25 s an evaluation" in first.basis
    assert_on_time_at_the_floor(fake_clock, res, ck, 10.0, 0.05)


def test_plan_from_speed_takes_a_timed_evaluation_over_the_estimate():
    cfg = TrainConfig(model="gru", optimizer="adam", max_time=100.0, batch_size=10, seq_len=10,
                      eval_every=50)
    waiting = Plan(kind="budget")
    p = budget.plan_from_speed(cfg, waiting, 40, 3.0, 0.02, 5000, 1.5, 100.0)
    assert p.total == 40 + budget.steps_within((100 - 3.0) * budget.TIME_SAFETY, 40, 0.02, 1.5, 50)
    assert p.basis.endswith("; 1.5 s an evaluation")
    estimated = budget.plan_from_speed(cfg, waiting, 40, 3.0, 0.02, 5000, None, 100.0)
    assert estimated.total != p.total and "evaluation" not in estimated.basis


@pytest.mark.parametrize("scenario", ["slower", "faster", "pause"])
def test_a_max_time_run_follows_the_clock_to_its_floor_on_time(tmp_path, fake_clock, scenario):
    """The machine slows down 30 % or speeds up 30 % from a third of the
    budget on, or stops for a tenth of it: the run re-plans at every
    evaluation (more often in its last fifth), ends at the floor inside
    the budget using at least 97 % of it, and its rate never jumps."""
    T = 20.0
    fake_clock.eval_cost = 2 * FakeClock.STEP
    if scenario == "pause":
        fake_clock.pause_at, fake_clock.pause = T / 3, T / 10
    else:
        fake_clock.change_at = T / 3
        fake_clock.factor = {"slower": 1.3, "faster": 1 / 1.3}[scenario]
    progress, plans = plans_heard()
    res = train(tmp_path, max_time=T, lr=0.05, model="gru", progress=progress)
    ck = ckpt.load(res.latest_path)
    assert_on_time_at_the_floor(fake_clock, res, ck, T, 0.05)
    first = expected_time_plan(ck, eval_cost=fake_clock.eval_cost)
    assert plans[0]["total"] == first.total
    end = ck.config["plan"]["total"]
    assert end < first.total if scenario != "faster" else end > first.total    # it followed
    decrement = 0.05 * (1 - schedule.BUDGET_FLOOR) / (first.total - 1 - first.hold)
    assert np.abs(np.diff(fake_clock.lrs)).max() <= 2 * decrement              # no jump
    assert ck.config["plan"]["replans"] == len(plans) - 1
    late = [p["iteration"] for p in plans if p["iteration"] >= 0.8 * end]
    assert any(i % BASE["eval_every"] for i in late)          # between evaluations, late on
    assert max(np.diff(late)) <= budget.MEASURE_MIN_STEPS


def test_resume_is_bit_identical_up_to_the_interruption_then_re_plans_for_the_time_left(
        tmp_path, fake_clock):
    """The plan in force is in the checkpoint: a run stopped at iteration
    150 and resumed takes the uninterrupted run's steps, at its rates, up
    to its own first re-plan (at the next evaluation, once it has timed
    its steps), then plans for the time the run has left."""
    fake_clock.eval_cost = 2 * FakeClock.STEP
    opts = dict(max_time=20.0, lr=0.05, model="gru", dropout=0.1)
    ref = train(tmp_path / "ref", **opts)
    ref_lrs, fake_clock.lrs = fake_clock.lrs, []
    stop_at = 150

    def progress(event, info):
        if event == "step" and info["iteration"] == stop_at:
            import os
            import signal
            os.kill(os.getpid(), signal.SIGINT)
    first = train(tmp_path / "split", progress=progress, **opts)
    assert first.interrupted_by is not None and first.iterations == stop_at
    mid = ckpt.load(first.latest_path)
    assert mid.config["plan"]["replans"] >= 1                  # re-planned before the stop
    fake_clock.lrs = []
    again = charrnn.train(TEXT, checkpoint_dir=str(tmp_path / "split"), resume=True,
                          max_time=20.0)
    a, b = ckpt.load(ref.latest_path), ckpt.load(again.latest_path)
    nxt = stop_at + BASE["eval_every"]
    assert fake_clock.lrs[:nxt - stop_at] == ref_lrs[stop_at:nxt]      # bit for bit
    rows = lambda ck: {int(i): (ck.history["lr"][j], ck.history["val_loss"][j])  # noqa: E731
                       for j, i in enumerate(ck.history["iter"]) if i <= nxt}
    assert rows(a) == rows(b)
    plan = Plan.from_dict(b.config["plan"])
    assert plan.deadline == 20.0 and again.iterations == plan.total
    assert 0.97 * 20.0 <= b.state["wall_time"] <= 20.0          # the run's time, both sessions
    assert fake_clock.lrs[-1] == pytest.approx(0.05 * schedule.BUDGET_FLOOR, rel=1e-9)


def test_an_old_max_time_plan_without_a_deadline_resumes_as_it_was_planned(tmp_path, fake_clock):
    """A checkpoint from before re-planning (no deadline in its plan) is
    followed bit for bit to its planned end."""
    train(tmp_path, max_time=10.0, lr=0.05, model="gru", max_iters=None)
    path = str(tmp_path / "latest.npz")
    ck = ckpt.load(path)
    old = {k: v for k, v in ck.config["plan"].items() if k not in ("start", "deadline", "replans")}
    old.update(hold=40, total=200, basis="an older charrnn")
    ck.config["plan"] = old
    ck.state["iteration"] = 60
    ckpt.save(path, ck)
    fake_clock.lrs = []
    res = charrnn.train(TEXT, checkpoint_dir=str(tmp_path), resume=True, max_time=60.0)
    after = ckpt.load(res.latest_path)
    assert after.config["plan"] == old and res.iterations == 200
    assert fake_clock.lrs == [lr_at(TrainConfig(lr=0.05), i, Plan.from_dict(old))
                              for i in range(60, 200)]


def thin_run(folder, thin: bool, progress=None, **more):
    """A --max-time GRU run on a text long enough for evaluations a few
    steps apart (every 5 at 32 x 64, so 20 at the 16 x 32 chosen); its
    cadence chosen (thin) or set by hand (--eval-every 20).  The text
    repeats itself, so it learns it by heart: no --stall-stop."""
    from charrnn.runs.runner import run_training
    from helpers import corpus
    text = corpus(TEXT * 8)
    opts = dict(model="gru", hidden_size=16, num_layers=1, dropout=0.0, max_time=40.0, seed=3,
                lr=0.05, eval_every=5 if thin else 20, stall_stop=0.0, **more)
    explicit = set(opts) - ({"eval_every"} if thin else set())
    return run_training(lambda resumed: text, str(folder), opts, explicit, progress=progress)


def test_a_max_time_run_evaluates_every_other_time_in_its_first_half_and_trains_longer(
        tmp_path, fake_clock, monkeypatch):
    """Its plan is thinned (a long text, the cadence chosen): the odd
    multiples of the interval before half of the plan are not evaluated,
    every multiple after it is; it still ends at the floor on time using
    97 % of the budget, with more steps than the same run evaluating at
    every multiple (--eval-every set)."""
    monkeypatch.setattr(budget, "probe_chars_per_s", lambda cfg, vocab_size: 20_000.0)
    fake_clock.eval_cost = 2 * FakeClock.STEP
    progress, plans = plans_heard()
    res = thin_run(tmp_path / "thin", True, progress=progress)
    ck = ckpt.load(res.latest_path)
    fixed = plans[0]["iteration"]          # while the speed is timed, no end: every multiple
    plan = Plan.from_dict(ck.config["plan"])
    every = ck.config["train"]["eval_every"]
    assert plan.thin and every == 20 and (ck.config["train"]["batch_size"],
                                          ck.config["train"]["seq_len"]) == (16, 32)
    assert_on_time_at_the_floor(fake_clock, res, ck, 40.0, 0.05)
    evals = [int(i) for i in ck.history["iter"]]
    assert evals[-1] == res.iterations
    early = [i for i in range(every, res.iterations, every) if fixed < i < 0.45 * plan.total]
    assert [i for i in range(every, fixed + 1, every)] == [i for i in evals if i <= fixed]
    late = [i for i in range(every, res.iterations, every) if i >= 0.55 * plan.total]
    assert len(early) >= 6 and len(late) >= 10
    assert [i for i in early if i in evals] == [i for i in early if i % (2 * every) == 0]
    assert all(i in evals for i in late)
    assert "evaluations every other one in the first half" in inspect_of(ck)

    clock_then, fake_clock.now, fake_clock.lrs = fake_clock.now, FakeClock.START, []
    plain = thin_run(tmp_path / "plain", False)
    ck2 = ckpt.load(plain.latest_path)
    assert not Plan.from_dict(ck2.config["plan"]).thin
    assert_on_time_at_the_floor(fake_clock, plain, ck2, 40.0, 0.05)
    assert len(ck2.history["iter"]) > len(evals)
    assert res.iterations > plain.iterations           # the evaluations saved became steps
    assert clock_then - FakeClock.START <= 40.0


def inspect_of(ck) -> str:
    from charrnn.views.inspect import format_summary, summary
    return format_summary(summary(ck))


@pytest.mark.parametrize("repeat, limit, cadence_set, every, thin", [
    (40, {"max_time": 20.0}, False, 20, True),    # evaluations a quarter of a pass apart: thinned
    (1, {"max_time": 20.0}, False, 9, False),     # once per pass: a small text overfits early
    (40, {"max_time": 20.0}, True, 5, False),     # --eval-every set: as set
    (40, {"max_iters": 400}, False, 5, False),    # no clock: no thinning (and the model's shape)
    (40, {"max_time": 20.0, "max_iters": 400}, False, 20, True)])
def test_which_runs_evaluate_less_early(monkeypatch, repeat, limit, cadence_set, every, thin):
    """The chosen cadence of a --max-time run is thinned unless it is once
    per pass; 16 x 32 steps are chosen for the clock, so every 5 steps at
    32 x 64 becomes every 20 (as often per character read)."""
    from helpers import corpus
    monkeypatch.setattr(budget, "probe_chars_per_s", lambda cfg, vocab_size: 20_000.0)
    opts = dict(model="gru", hidden_size=16, num_layers=1, dropout=0.0, seed=3, eval_every=5,
                **limit)
    spec = budget.new_run(corpus(TEXT * repeat), opts, set(opts) - ({"eval_every"} if not
                                                                    cadence_set else set()))
    assert (spec.config.eval_every, spec.plan.thin) == (every, thin)


def test_a_run_without_a_limit_spends_no_time_choosing():
    """Without --max-time or --max-iters nothing is chosen, so no time is
    counted against the run (it would show in its recorded wall time)."""
    from helpers import corpus
    opts = dict(model="gru", **BASE)
    spec = budget.new_run(corpus(TEXT), opts, set(opts))
    assert spec.spent == 0.0 and isinstance(spec.spent, float)
    assert spec.lineage["choices"]["chosen"] == []


@pytest.mark.parametrize("given", [("hidden_size", "num_layers", "dropout"),
                                   ("hidden_size", "num_layers"), ("dropout",)])
def test_the_repeat_share_is_measured_only_when_it_informs_a_choice(monkeypatch, given):
    """repeat_share reads the text; it informs the size and the dropout, so a
    run that sets all three never measures it and records a share of 0."""
    from helpers import corpus
    calls = []

    def share(train_ids, val_ids):
        calls.append(len(train_ids))
        return 0.5
    monkeypatch.setattr(sizing, "repeat_share", share)
    opts = dict(model="gru", max_iters=50, seed=3, **{k: SIZES[k] for k in given})
    spec = budget.new_run(corpus(TEXT), opts, set(opts))
    measured = len(given) < 3
    assert len(calls) == measured
    assert spec.lineage["choices"]["repeats"] == (0.5 if measured else 0.0)


def test_a_chosen_size_given_as_none_is_chosen_as_if_unset(tmp_path):
    """charrnn.train(hidden_size=None, ...) means the default: under a
    budget the size is chosen for the text, as when it is not passed."""
    runs_ = [charrnn.train(TEXT, checkpoint_dir=str(tmp_path / str(k)), max_iters=2, seed=3,
                           **extra)
             for k, extra in enumerate([{}, dict(hidden_size=None, num_layers=None,
                                                 dropout=None, batch_size=None)])]
    choices = [ckpt.load(r.latest_path).config["choices"] for r in runs_]
    assert "hidden_size" in choices[0]["chosen"]
    assert choices[1] == choices[0]


def test_a_cadence_set_on_resume_is_kept_as_set(tmp_path, fake_clock, monkeypatch):
    """A thinned run resumed with --eval-every evaluates at every multiple
    of it from there on; resumed without it stays thinned."""
    from charrnn.runs.runner import run_training
    from helpers import corpus
    import os
    import signal
    monkeypatch.setattr(budget, "probe_chars_per_s", lambda cfg, vocab_size: 20_000.0)

    def progress(event, info):
        if event == "step" and info["iteration"] == 100:    # after the plan is fixed
            os.kill(os.getpid(), signal.SIGINT)
    first = thin_run(tmp_path, True, progress=progress)
    assert first.interrupted_by is not None
    stored = ckpt.load(first.latest_path).config["plan"]
    assert stored["total"] is not None and stored["thin"] is True
    text = corpus(TEXT * 8)
    for given, thin in (({}, True), ({"eval_every": 20}, False)):
        d = tmp_path / f"again-{bool(given)}"
        d.mkdir()
        import shutil
        shutil.copy(first.latest_path, d / "latest.npz")
        opts = dict(max_time=40.0, max_iters=110, **given)
        res = run_training(lambda resumed: text, str(d), opts, set(opts),
                           resume=str(d / "latest.npz"))
        plan = Plan.from_dict(ckpt.load(res.latest_path).config["plan"])
        assert plan.thin is thin, given


def test_a_run_is_specified_once_and_the_trainer_takes_the_spec_as_it_is(tmp_path):
    """budget.new_run settles the settings, plan and evaluation shape before
    the Trainer exists; the Trainer takes them from the spec (never from its
    stored choices), and nothing can change the spec afterwards."""
    from charrnn.runs.trainer import Trainer
    from charrnn.runs.validation import val_plan
    from helpers import corpus
    text = corpus(TEXT * 4)
    opts = dict(model="gru", max_iters=30, **BASE, **SIZES)
    spec = budget.new_run(text, opts, set(opts))
    assert spec.plan == budget.plan_for_iters(spec.config, 0)
    assert spec.eval_shape == (BASE["batch_size"], BASE["seq_len"])
    odd = dataclasses.replace(spec, eval_shape=(3, 7))
    tr = Trainer(odd, text, str(tmp_path))
    assert tr.plan is spec.plan
    assert tr.val_plan == val_plan(len(tr.val_ids), 3, 7)
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.plan = Plan()
    with pytest.raises(TypeError):
        spec.lineage["choices"] = {}


def test_a_chosen_small_shape_validates_at_the_eval_shape_and_resumes_bit_identically(
        tmp_path, fake_clock, monkeypatch):
    """16 x 32 steps chosen for a short budget; validation reads 32 x 64
    (validation.EVAL_SHAPE) chunks, before and after a resume."""
    from charrnn.runs.validation import EVAL_SHAPE, val_plan
    monkeypatch.setattr(budget, "probe_chars_per_s", lambda cfg, vocab_size: 20_000.0)
    text = TEXT * 40
    opts = dict(model="gru", num_layers=2, hidden_size=32, max_time=10.0, seed=3, eval_every=20)
    ref = charrnn.train(text, checkpoint_dir=str(tmp_path / "ref"), **opts)
    a = ckpt.load(ref.latest_path)
    t = a.config["train"]
    assert (t["batch_size"], t["seq_len"]) == sizing.SHAPES["gru"][0]
    want = {k: v for k, v in val_plan(a.config["data"]["val_chars"], *EVAL_SHAPE).items()
            if k != "starts"}
    assert a.config["data"]["val_eval"] == want

    def progress(event, info):
        if event == "step" and info["iteration"] == 80:
            import os
            import signal
            os.kill(os.getpid(), signal.SIGINT)
    first = charrnn.train(text, checkpoint_dir=str(tmp_path / "split"), progress=progress, **opts)
    assert first.interrupted_by is not None and first.iterations == 80
    assert ckpt.load(first.latest_path).config["plan"]["total"] is not None   # fixed before
    again = charrnn.train(text, checkpoint_dir=str(tmp_path / "split"), resume=True,
                          max_time=10.0)
    b = ckpt.load(again.latest_path)
    assert b.config["data"]["val_eval"] == want
    upto = 80                             # bit for bit up to the interruption
    rows = lambda ck: [(ck.history["lr"][j], ck.history["val_loss"][j])  # noqa: E731
                       for j, i in enumerate(ck.history["iter"]) if i <= upto]
    assert len(rows(a)) >= 2 and rows(a) == rows(b)


def test_a_finished_plan_goes_on_at_its_floor_only_when_max_iters_is_raised(runner, tmp_path,
                                                                            fake_clock):
    folder = tmp_path / "run"
    train(folder, max_time=10.0, lr=0.05)
    ck = ckpt.load(str(folder / "latest.npz"))
    end = ck.config["plan"]["total"]
    assert ck.state["iteration"] == end
    text = tmp_path / "t.txt"
    text.write_text(TEXT)
    r = invoke(runner, "train", text, "--checkpoint-dir", folder, "--resume", "--max-time", 60)
    msg = assert_one_line_error(r, 1)
    assert "finished" in msg and "--max-iters" in msg and "--init-from" in msg
    r = invoke(runner, "train", text, "--checkpoint-dir", folder, "--resume", "--max-iters",
               end + 15, "--quiet")
    assert_ok(r)
    after = ckpt.load(str(folder / "latest.npz"))
    assert after.state["iteration"] == end + 15
    assert after.config["plan"] == ck.config["plan"]
    assert after.history["lr"][-1] == pytest.approx(0.05 * schedule.BUDGET_FLOOR)


def test_a_damaged_plan_in_a_checkpoint_is_refused(tmp_path):
    res = train(tmp_path / "a", max_iters=12)
    ck = ckpt.load(res.latest_path)
    ck.config["plan"] = {"kind": "budget", "total": -4}
    with pytest.raises(charrnn.CheckpointError, match="plan"):
        runs.stored_plan(ck)


def test_budget_schedule_without_a_limit_is_a_usage_error(runner, tmp_path):
    text = tmp_path / "t.txt"
    text.write_text(TEXT)
    r = invoke(runner, "train", text, "--checkpoint-dir", tmp_path / "c", "--lr-schedule",
               "budget")
    assert assert_one_line_error(r, 2) == (
        "charrnn: error: --lr-schedule budget plans the rate for a budget: set --max-time "
        "or --max-iters (or use --lr-schedule step)")


# --------------------------------------------------------------- the sizes
def shape_speed(batch: int, seq: int) -> float:
    """A speed factor that falls with smaller steps, as real ones do (16 x 32
    reads 0.84 of what 32 x 64 does per second on a 2 x 256 GRU here)."""
    return (batch * seq / 2048) ** 0.12


def fake_budget(speeds: dict, seconds: float):
    """budget_chars for choose(): seconds x a speed per size (chars/s) x the
    shape's factor."""
    return lambda layers, hidden, batch, seq: (seconds * speeds[(layers, hidden)]
                                               * shape_speed(batch, seq))


def speeds_for(model: str, scale: float) -> dict:
    """Speeds that fall with the weights, as real ones do."""
    return {(L, H): scale * 5e10 / sizing.count_weights(model, 65, L, H) ** 1.2
            for L, H in sizing.LADDER[model]}


def weights_of(c: sizing.Choice, model: str) -> int:
    return sizing.count_weights(model, 65, c.num_layers, c.hidden_size, c.embed_size)


@settings(max_examples=150, deadline=None)
@given(model=st.sampled_from(["rnn", "lstm", "gru"]),
       chars=st.integers(1_000, 10 ** 9), more=st.floats(1.0, 100.0),
       seconds=st.floats(1.0, 10 ** 5), later=st.floats(1.0, 100.0),
       scale=st.floats(0.01, 100.0), repeats=st.floats(0.0, 1.0))
def test_more_text_or_more_time_never_picks_a_smaller_model(model, chars, more, seconds, later,
                                                            scale, repeats):
    sp = speeds_for(model, scale)
    pick = lambda n, s: sizing.choose(model, 65, n, fake_budget(sp, s), {},  # noqa: E731
                                      model_defaults(model), "x", repeats=repeats)
    base = weights_of(pick(chars, seconds), model)
    assert weights_of(pick(int(chars * more), seconds), model) >= base
    assert weights_of(pick(chars, seconds * later), model) >= base


@pytest.mark.parametrize("model", ["rnn", "gru"])
@pytest.mark.parametrize("repeats", [0.0, 0.3, 0.7])
def test_the_rule_picks_the_largest_affordable_size_that_fits_the_text(model, repeats):
    sp = speeds_for(model, 1.0)
    defaults = model_defaults(model)
    ladder = sizing.LADDER[model]
    ease = max((1 - repeats) ** 2, sizing.NOVELTY_FLOOR)
    weights = {s: sizing.count_weights(model, 65, *s, sizing.embed_for(model, 65, s[1]))
               for s in ladder}
    floor = weights[sizing.FLOOR[model]]
    picked = set()
    own = (defaults["batch_size"], defaults["seq_len"])
    for seconds in (10.0, 100.0, 1000.0, 10000.0, 1e5, 1e6):
        for chars in (300, 3_000, 10 ** 4, 30_000, 10 ** 5, 10 ** 6, 10 ** 8):
            c = sizing.choose(model, 65, chars, fake_budget(sp, seconds), {}, defaults, "x",
                              repeats=repeats)
            read = lambda s, shape: seconds * sp[s] * shape_speed(*shape)  # noqa: E731
            fits = [s for s in ladder if weights[s] * ease <= sizing.PARAMS_PER_CHAR * chars]
            above = [s for s in fits if weights[s] > floor
                     and read(s, own) >= sizing.CHARS_PER_PARAM[model] * ease * weights[s]]
            below = [s for s in fits if weights[s] <= floor]     # affordable or not
            want = max(above or below or [ladder[0]], key=weights.get)
            assert (c.num_layers, c.hidden_size) == want, (seconds, chars)
            shape = (c.batch_size, c.seq_len)
            assert c.dropout == sizing.dropout_for(weights[want], chars, read(want, shape),
                                                   repeats)
            picked.add(want)
    assert len(picked) >= 4                  # the cases above do reach different sizes
    assert {ladder[0], sizing.FLOOR[model]} <= picked


def test_the_repeat_share_is_the_share_of_validation_windows_seen_in_training():
    rng = np.random.default_rng(0)
    train = rng.integers(0, 60, 20_000)
    fresh = rng.integers(0, 60, 2_000)
    copied = train[5_000:7_000].copy()
    assert sizing.repeat_share(train, fresh) == 0.0
    assert sizing.repeat_share(train, copied) == 1.0
    half = np.concatenate([copied[:1000], fresh[:1000]])
    n = len(half) - sizing.REPEAT_WINDOW + 1
    # windows wholly inside the copied half, plus none that straddle (random text)
    assert sizing.repeat_share(train, half) == pytest.approx((1000 - sizing.REPEAT_WINDOW + 1) / n)
    # no validation text: the training text's last tenth against the rest
    doubled = np.concatenate([train[:18_000], train[:2_000]])
    assert sizing.repeat_share(doubled, doubled[:0]) == 1.0


def test_the_repeat_share_equals_a_brute_force_count_of_windows():
    """Small alphabets repeat windows often: every validation window looked
    up among the training windows as Python tuples (no hashing, no sort)."""
    rng = np.random.default_rng(3)
    w = sizing.REPEAT_WINDOW
    for _ in range(20):
        base = rng.integers(0, 2, int(rng.integers(w + 1, 400)))
        train = np.concatenate([base, rng.integers(0, 2, int(rng.integers(0, 300)))])
        val = np.concatenate([base[:int(rng.integers(0, len(base)))], rng.integers(0, 2, 60)])
        seen = {tuple(train[i:i + w]) for i in range(len(train) - w + 1)}
        wins = [tuple(val[i:i + w]) for i in range(len(val) - w + 1)]
        assert sizing.repeat_share(train, val) == pytest.approx(
            sum(x in seen for x in wins) / len(wins), abs=1e-12)


def test_a_text_that_repeats_itself_gets_a_larger_model_and_less_dropout():
    sp = speeds_for("gru", 1.0)
    args = ("gru", 65, 200_000, fake_budget(sp, 120.0), {}, model_defaults("gru"), "x")
    plain, repeating = sizing.choose(*args), sizing.choose(*args, repeats=0.7)
    assert weights_of(repeating, "gru") > weights_of(plain, "gru")
    assert sizing.dropout_for(10 ** 5, 10 ** 5, 10 ** 6, 0.7) < sizing.dropout_for(
        10 ** 5, 10 ** 5, 10 ** 6, 0.0)


@pytest.mark.parametrize("seconds, size, dropout", [(120.0, (2, 256), 0.0),
                                                    (600.0, (2, 512), 0.2)])
def test_the_rule_picks_the_measured_winners_on_the_licences(seconds, size, dropout):
    """bench/results/budget-grid-final.json: the licences (r = 0.69, 180k
    training chars, one core) were learnt best by 2 x 256 without dropout at
    2 minutes and by 2 x 512 with dropout 0.2 at 10."""
    one_core = {(2, 128): 30_000.0, (2, 256): 14_000.0, (2, 512): 4_200.0}
    c = sizing.choose("gru", 83, 180_000, fake_budget(one_core, seconds), {},
                      model_defaults("gru"), "x", repeats=0.69)
    assert ((c.num_layers, c.hidden_size), c.dropout) == (size, dropout)


@pytest.mark.parametrize("model", ["rnn", "lstm", "gru"])
def test_the_shape_is_the_largest_fed_one_making_enough_steps_else_the_one_making_most(model):
    ladder = sizing.SHAPES[model]
    defaults = model_defaults(model)
    own = (defaults["batch_size"], defaults["seq_len"])
    assert ladder[-1] == own                   # the --model's own is the largest
    need, per_weight = sizing.MIN_STEPS, sizing.SMALL_STEP_CHARS_PER_PARAM
    picked = set()
    for weights in (10 ** 3, 10 ** 5, 10 ** 6):
        for chars_per_s in (1e3, 1e4, 3e4, 1e5, 1e6):
            for seconds in (30.0, 120.0, 600.0, 3600.0):
                read = lambda B, T: seconds * chars_per_s * shape_speed(B, T)  # noqa: E731
                shape, weighed = sizing.choose_shape(model, read, weights)
                steps = {s: read(*s) / (s[0] * s[1]) for s in ladder}
                fed = [s for s in ladder if s == own or read(*s) >= per_weight * weights]
                enough = [s for s in fed if steps[s] >= need]
                want = enough[-1] if enough else max(reversed(fed), key=steps.get)
                assert shape == want, (weights, chars_per_s, seconds)
                assert [w["shape"] for w in weighed] == [
                    f"{B}x{T}" for B, T in reversed(ladder)][:len(weighed)]
                picked.add((shape, bool(enough)))
    # the cases above reach every shape, and the own one both ways
    assert {s for s, _ in picked} == set(ladder) and {(own, True), (own, False)} <= picked


@pytest.mark.parametrize("text, seconds, size, shape", [
    ("shakespeare", 120.0, (2, 256), (16, 32)), ("shakespeare", 600.0, (2, 256), (32, 64)),
    ("licenses", 120.0, (2, 256), (16, 32)), ("code", 120.0, (2, 128), (32, 64)),
    ("licenses", 600.0, (2, 512), (32, 64))])
def test_the_shape_rule_picks_the_measured_winners(text, seconds, size, shape):
    """bench/results/budget-shape.json and budget-grid-shape.json: 16 x 32
    steps won where 32 x 64 made few (tiny Shakespeare, whole machine, 2 x
    256 GRU, 2 minutes: 1,185 steps, 1.5541 against 1.4917; the licences, one
    core, 2 minutes: 816 steps, 0.8785 against 0.7526), tied at 5,462 steps
    (tiny Shakespeare, 10 minutes: 1.4673 and 1.4636) and lost at 2,540 (the
    code, one core, 2 x 128, 2 minutes: 1.5470 against 1.5774); and lost for a
    model starved of text (the licences, one core, 2 x 512, 10 minutes: 1,320
    steps but 0.88 characters per weight at 16 x 32: 0.6506 against 0.6769)."""
    speeds = {  # chars/s at 32 x 64 and at 16 x 32, as the runs' probes timed them
        "shakespeare": {(2, 128): (41_000.0, 35_700.0), (2, 256): (21_600.0, 18_750.0),
                        (2, 512): (5_500.0, 4_500.0)},
        "licenses": {(2, 128): (34_600.0, 30_000.0), (2, 256): (14_650.0, 12_250.0),
                     (2, 512): (4_470.0, 3_700.0)},
        "code": {(2, 128): (43_350.0, 39_070.0), (2, 256): (14_820.0, 12_500.0),
                 (2, 512): (4_600.0, 3_800.0)}}[text]
    chars = {"shakespeare": (65, 1_003_854, 0.0), "licenses": (83, 180_000, 0.69),
             "code": (96, 10_800_000, 0.04)}[text]
    read = lambda L, H, B, T: seconds * speeds[(L, H)][(B, T) != (32, 64)]  # noqa: E731
    c = sizing.choose("gru", chars[0], chars[1], read, {}, model_defaults("gru"), "x",
                      repeats=chars[2])
    assert ((c.num_layers, c.hidden_size), (c.batch_size, c.seq_len)) == (size, shape)


@pytest.mark.parametrize("model", ["rnn", "lstm", "gru"])
def test_a_step_budget_keeps_the_models_own_shape(model):
    """--max-iters: every shape makes the same steps, so the largest reads most."""
    sp = speeds_for(model, 1.0)
    for iters in (5, 10 ** 3, 10 ** 6):
        c = sizing.choose(model, 65, 10 ** 6, lambda L, H, B, T: iters * B * T, {},
                          model_defaults(model), "x")
        assert (c.batch_size, c.seq_len) == sizing.SHAPES[model][-1]
        assert c.budget_chars / (c.batch_size * c.seq_len) == iters
    del sp


def test_a_short_time_budget_takes_small_steps_evaluated_as_often_per_character(
        tmp_path, monkeypatch):
    """A probe that makes every shape read 20k chars/s: 60 s make fewer than
    MIN_STEPS steps of 32 x 64, and a 2 x 128 GRU reads 7 characters per
    weight, so the run takes 16 x 32 steps and evaluates every 4 x 500 of
    them; a set --eval-every is kept."""
    monkeypatch.setattr(budget, "probe_chars_per_s", lambda cfg, vocab_size: 20_000.0)
    small = sizing.SHAPES["gru"][0]
    got = {}

    class Seen(Exception):
        pass

    def fake_run(self, progress=None, stop=None, timer=None):
        got["cfg"] = self.cfg
        raise Seen
    from charrnn.runs import trainer as trainer_mod
    monkeypatch.setattr(trainer_mod.Trainer, "run", fake_run)
    for extra, every in (({}, 500 * 2048 // (small[0] * small[1])), ({"eval_every": 7}, 7)):
        with pytest.raises(Seen):
            # 1.8M training characters: a pass is longer than the interval
            charrnn.train(TEXT * 400, checkpoint_dir=str(tmp_path / str(every)), model="gru",
                          num_layers=2, hidden_size=128, max_time=60.0, **extra)
        cfg = got["cfg"]
        assert (cfg.batch_size, cfg.seq_len) == small
        assert cfg.eval_every == every


@pytest.mark.parametrize("model, optimizer", [("rnn", ("adam", 0.004, "norm", 5.0)),
                                              ("gru", ("adam", 0.004, "norm", 5.0)),
                                              ("lstm", ("adam", 0.008, "norm", 5.0))])
def test_a_budgeted_rnn_trains_with_adam_and_the_gated_cells_keep_theirs(tmp_path, model,
                                                                        optimizer):
    res = charrnn.train(TEXT, checkpoint_dir=str(tmp_path), model=model, hidden_size=8,
                        num_layers=1, dropout=0.0, seq_len=8, batch_size=4, max_iters=6)
    ck = ckpt.load(res.latest_path)
    t = ck.config["train"]
    assert (t["optimizer"], t["lr"], t["clip_mode"], t["clip"]) == optimizer
    chosen = set(ck.config["choices"]["chosen"])
    assert bool(chosen & set(sizing.OPTIMIZER_FIELDS)) == (model == "rnn")
    assert ("adam 0.004" in ck.config["choices"]["reason"]) == (model == "rnn")


def test_an_rnn_kept_on_adagrad_needs_more_characters_per_weight_for_a_larger_size():
    w = {s: sizing.count_weights("rnn", 65, *s) for s in sizing.LADDER["rnn"]}
    per = 300.0             # between the two thresholds, for 1 x 256; 1 x 512 unaffordable
    read = lambda L, H, B, T: per * w[(1, 256)] if H <= 256 else 1.0  # noqa: E731
    pick = lambda given: sizing.choose("rnn", 65, 10 ** 8, read, given,  # noqa: E731
                                       model_defaults("rnn"), "x")
    assert sizing.CHARS_PER_PARAM["rnn"] < per < sizing.SLOW_RNN_CHARS_PER_PARAM
    assert pick({}).hidden_size == 256                            # adam, chosen
    assert pick({"optimizer": "adam", "lr": 0.01}).hidden_size == 256
    assert pick({"optimizer": "adagrad"}).hidden_size == 128
    assert pick({"lr": 0.05}).hidden_size == 128                  # the rnn's adagrad


def test_any_optimizer_flag_keeps_the_rnn_on_its_own_optimizer_settings():
    assert sizing.optimizer_for("rnn", {}) == sizing.BUDGET_OPTIMIZER["rnn"]
    for k, v in (("optimizer", "adagrad"), ("lr", 0.1), ("clip_mode", "value"), ("clip", 1.0)):
        assert sizing.optimizer_for("rnn", {k: v}) == {}
    assert sizing.optimizer_for("gru", {}) == sizing.optimizer_for("lstm", {}) == {}


def test_dropout_rises_with_the_pressure_to_memorise():
    got = [sizing.dropout_for(10 ** 5, 10 ** 6, 10 ** 6 * passes) for passes in
           (0.1, 1, 10, 100, 1000, 10 ** 5)]
    assert got == sorted(got) and got[0] == 0.0 and got[-1] == sizing.DROPOUT_STEPS[-1][1]


# ------------------------------------------------------------ small texts
def test_an_embedding_replaces_the_lookup_where_it_holds_at_most_half_its_weights():
    for model, gates in (("rnn", 1), ("lstm", 4), ("gru", 3)):
        for V in (30, 65, 97, 150, 200, 601, 1338):
            for H in (32, 64, 128, 256, 512):
                e = H // 2
                lookup, embedded = V * gates * H, V * e + e * gates * H
                assert sizing.embed_for(model, V, H) == (e if 2 * embedded <= lookup else 0)
    assert sizing.embed_for("gru", 65, 128) == 0          # tiny Shakespeare keeps the lookup
    assert sizing.embed_for("gru", 601, 128) == 64
    assert sizing.embed_for("rnn", 5000, 128) == 0        # one gate: never half


# (vocabulary, training characters) of the texts of bench/results/small-texts.json
# -> the size the rule picks there when the budget affords everything
SMALL_TEXTS = {"en-10k": ((57, 9_000), (1, 32, 16)), "en-50k": ((59, 45_000), (1, 128, 0)),
               "en-200k": ((62, 180_000), (2, 128, 0)), "ru-10k": ((117, 5_580), (1, 32, 16)),
               "ru-57k": ((155, 32_437), (1, 64, 32)),
               "cyrillic-171k": ((165, 97_765), (1, 128, 0)),
               "ja-10k": ((292, 4_401), (1, 32, 16)), "ja-45k": ((538, 20_471), (1, 32, 16)),
               "cjk-126k": ((1338, 62_595), (1, 32, 16)),
               "issue-49k": ((601, 30_000), (1, 32, 16))}


@pytest.mark.parametrize("name", sorted(SMALL_TEXTS))
def test_a_small_text_gets_a_model_small_enough_for_it(name):
    (V, chars), want = SMALL_TEXTS[name]
    c = sizing.choose("gru", V, chars, lambda L, H, B, T: 1e9, {}, model_defaults("gru"),
                      "--max-time 2m")
    assert (c.num_layers, c.hidden_size, c.embed_size) == want
    w = sizing.count_weights("gru", V, c.num_layers, c.hidden_size, c.embed_size)
    smallest = sizing.count_weights("gru", V, 1, 32, sizing.embed_for("gru", V, 32))
    if smallest <= sizing.PARAMS_PER_CHAR * chars:
        assert w <= sizing.PARAMS_PER_CHAR * chars         # fits the text
    else:
        assert "none fits the text" in c.reason
    below = sizing.LADDER["gru"].index(want[:2]) < sizing.LADDER["gru"].index(sizing.FLOOR["gru"])
    assert ("the text is too short for a larger size" in c.reason) == (
        below and smallest <= sizing.PARAMS_PER_CHAR * chars)
    assert c.embed_size < V
    assert ("embedding" in c.reason) == bool(c.embed_size)
    assert ("embed_size" in c.chosen) == bool(c.embed_size)
    # the size the rule took before the smaller rungs: 2 x 128 with its lookup
    assert w < sizing.count_weights("gru", V, 2, 128) or want == (2, 128, 0)


@pytest.mark.parametrize("train_chars, shape, every, per_pass", [
    (903_468, (32, 64), 500, False),   # tiny Shakespeare: as before (1.1 passes per interval)
    (903_468, (16, 32), 2_000, False),  # smaller steps, as often per character read
    (600_000, (32, 64), 500, False),   # 1.7 passes per interval: within EVAL_PASSES
    (180_000, (32, 64), 88, True),     # 5.7 passes per interval: once per pass instead
    (9_000, (16, 32), 18, True),
    (100, (32, 64), 1, True),
    (512_000, (32, 64), 500, False),   # exactly EVAL_PASSES passes per interval: as set
    (2_000_000, (1024, 1024), 1, False)])   # far larger steps: every step, not fewer
def test_a_budgeted_run_on_a_short_text_evaluates_once_per_pass(train_chars, shape, every,
                                                                per_pass):
    cfg = TrainConfig(model="gru", batch_size=32, seq_len=64, eval_every=500)
    choice = sizing.Choice(num_layers=1, hidden_size=32, dropout=0.0, reason="",
                           batch_size=shape[0], seq_len=shape[1])
    assert budget.eval_interval(cfg, choice, train_chars) == every
    assert budget.eval_cadence(cfg, choice, train_chars) == (every, per_pass)


def test_a_thin_plan_evaluates_every_other_time_in_its_first_half():
    """Literal cadences: every 500 steps of 4,000; thinned, 500 and 1,500
    (odd multiples before step 2,000) are left out; a plan whose end is not
    fixed yet, or not thinned, evaluates at every multiple."""
    due = lambda plan, every=500: [i for i in range(1, 4001) if plan.evaluates(i, every)]  # noqa: E731
    every = [500, 1000, 1500, 2000, 2500, 3000, 3500, 4000]
    assert due(Plan(kind="budget", total=4000)) == every
    assert due(Plan(kind="budget", total=4000, thin=True)) == [1000, 2000, 2500, 3000, 3500, 4000]
    assert due(Plan(kind="budget", total=4100, thin=True)) == [1000, 2000, 2500, 3000, 3500, 4000]
    assert due(Plan(kind="budget", total=3001, thin=True)) == [1000, 2000, 2500, 3000, 3500, 4000]
    assert due(Plan(kind="budget", total=2999, thin=True)) == [1000, 1500, 2000, 2500, 3000,
                                                                 3500, 4000]
    assert due(Plan(kind="budget", thin=True)) == every                 # end not fixed yet
    assert due(Plan(kind="budget", total=4000, thin=True), every=0) == []
    assert due(Plan(), 1000) == [1000, 2000, 3000, 4000]


@settings(max_examples=300, deadline=None)
@given(it=st.integers(0, 3000), every=st.integers(1, 300), step=st.floats(0.001, 0.2),
       per_eval=st.floats(0.0, 5.0), seconds=st.floats(0.0, 100.0), thin=st.booleans())
def test_the_steps_that_fit_count_the_evaluations_a_thin_plan_makes(it, every, step, per_eval,
                                                                    seconds, thin):
    """steps_within against a count of what Plan.evaluates does under the
    plan that would end there: the steps found fit (or are the 1 minimum),
    and one more would not."""
    def cost(n):
        plan = Plan(kind="budget", total=it + n, thin=thin)
        evals = sum(plan.evaluates(i, every) for i in range(it + 1, it + n + 1))
        return n * step + (evals + ((it + n) % every != 0)) * per_eval
    n = budget.steps_within(seconds, it, step, per_eval, every, thin)
    assert n == 1 or cost(n) <= seconds
    assert cost(n + 1) > seconds


def test_a_short_text_run_evaluates_and_keeps_its_best_once_per_pass(tmp_path):
    opts = {k: v for k, v in BASE.items() if k != "eval_every"}
    res = charrnn.train(TEXT, checkpoint_dir=str(tmp_path), max_iters=300, **opts)
    ck = ckpt.load(res.latest_path)
    # 4,644 training characters, 4 x 8 = 32 a step: a pass is 145 steps
    assert ck.config["train"]["eval_every"] == 145
    assert [int(i) for i in ck.history["iter"]] == [145, 290, 300]


def test_a_text_long_enough_for_the_floor_keeps_it_however_short_the_budget():
    """The rungs below FLOOR are for short texts: on a long text a budget
    too short for anything still gets FLOOR, as before they existed."""
    for model in ("rnn", "lstm", "gru"):
        c = sizing.choose(model, 65, 10 ** 7, lambda L, H, B, T: 1.0, {},
                          model_defaults(model), "x")
        assert (c.num_layers, c.hidden_size) == sizing.FLOOR[model]
        assert "no larger size is affordable" in c.reason


def test_a_budgeted_run_on_a_large_vocabulary_trains_with_the_chosen_embedding(tmp_path):
    rng = np.random.default_rng(5)
    letters = [chr(0x4E00 + i) for i in range(300)]
    text = "".join(rng.choice(letters, size=6_000)) + "\n"
    path = tmp_path / "wide.txt"
    path.write_text(text, encoding="utf-8")
    res = charrnn.train(str(path), checkpoint_dir=str(tmp_path / "a"), max_iters=6, model="gru", **BASE)
    ck = ckpt.load(res.latest_path)
    m, ch = ck.config["model"], ck.config["choices"]
    assert 0 < m["embed_size"] < m["vocab_size"] and m["embed_size"] == ch["embed_size"]
    assert "embed_size" in ch["chosen"] and f"embedding {m['embed_size']}" in ch["reason"]
    assert ck.params["embed"].shape == (m["vocab_size"], m["embed_size"])
    assert (m["num_layers"], m["hidden_size"]) < sizing.FLOOR["gru"]   # too short for it
    mine = charrnn.train(str(path), checkpoint_dir=str(tmp_path / "b"), max_iters=6,
                         embed_size=0, model="gru", **BASE)
    ck = ckpt.load(mine.latest_path)
    assert ck.config["model"]["embed_size"] == 0 and "embed" not in ck.params
    assert "embed_size" not in ck.config["choices"]["chosen"]


@pytest.mark.parametrize("given_", [{"hidden_size": 40}, {"num_layers": 3},
                                    {"dropout": 0.35}, {"hidden_size": 40, "num_layers": 1,
                                                        "dropout": 0.0},
                                    {"batch_size": 3}, {"seq_len": 5}, {"lr": 0.02},
                                    {"optimizer": "rmsprop"}, {"clip_mode": "value"}])
def test_flags_the_user_sets_win_over_the_rule(tmp_path, given_):
    base = {k: v for k, v in BASE.items() if k not in sizing.SHAPE_FIELDS}
    res = charrnn.train(TEXT, checkpoint_dir=str(tmp_path), max_iters=12, **base, **given_)
    ck = ckpt.load(res.latest_path)
    for k, v in given_.items():
        assert {**ck.config["model"], **ck.config["train"]}[k] == v
    chosen = set(ck.config["choices"]["chosen"])
    assert bool(chosen & set(sizing.SHAPE_FIELDS)) == (not set(given_) & set(sizing.SHAPE_FIELDS))
    reason = ck.config["choices"]["reason"]
    assert ("(size set by you)" in reason) == bool({"hidden_size", "num_layers"} & set(given_))
    mine = set(given_) & set(sizing.OPTIMIZER_FIELDS)
    assert bool(chosen & set(sizing.OPTIMIZER_FIELDS)) == (not mine)
    if mine:                                   # the rest of the optimizer: the rnn's defaults
        assert ck.config["train"]["optimizer"] == given_.get("optimizer", "adagrad")
    assert not chosen & set(given_)
    if "dropout" not in given_:
        assert "dropout" in chosen


def test_a_budgeted_run_records_its_choice_and_inspect_json_shows_plan_and_choice(
        runner, tmp_path):
    res = charrnn.train(TEXT, checkpoint_dir=str(tmp_path), max_iters=15, **BASE)
    ck = ckpt.load(res.latest_path)
    ch = ck.config["choices"]
    # BASE sets the shape, not the optimizer: a budgeted rnn takes Adam
    assert set(ch["chosen"]) == set(sizing.SIZE_FIELDS + sizing.OPTIMIZER_FIELDS)
    assert (ch["num_layers"], ch["hidden_size"]) == (ck.config["model"]["num_layers"],
                                                      ck.config["model"]["hidden_size"])
    # TEXT repeats one line (repeat share ~1, so weights count a tenth): the
    # floor fits its 4.6k characters, and 15 steps afford nothing larger
    assert (ch["num_layers"], ch["hidden_size"]) == sizing.FLOOR["rnn"]
    assert "no larger size is affordable" in ch["reason"] and ch["repeats"] > 0.9
    r = invoke(runner, "inspect", res.latest_path, "--json")
    assert_ok(r)
    js = json.loads(r.stdout)
    assert js["plan"] == ck.config["plan"] and js["plan"]["total"] == 15
    assert js["choices"]["reason"] == ch["reason"]
    r = invoke(runner, "inspect", res.latest_path)
    assert_ok(r)
    assert f"chosen       {ch['reason']}" in r.stdout
    assert "budget: linear decay to 5% of lr at iteration 15" in r.stdout


def test_inspect_shows_how_often_a_max_time_run_re_planned_and_its_last_re_plan(
        runner, tmp_path, fake_clock):
    res = train(tmp_path, max_time=10.0, lr=0.05, model="gru")
    plan = ckpt.load(res.latest_path).config["plan"]
    n = plan["replans"]
    assert n >= 2
    r = invoke(runner, "inspect", res.latest_path, "--json")
    assert_ok(r)
    js = json.loads(r.stdout)
    assert js["plan"] == plan
    assert js["schedule"]["settings"]["replans"] == n
    assert js["schedule"]["settings"]["start"] == plan["start"] < 1
    r = invoke(runner, "inspect", res.latest_path)
    assert_ok(r)
    assert (f"budget: linear decay to 5% of lr at iteration {plan['total']} "
            f"(re-planned at iteration {plan['hold']}, ") in r.stdout
    assert f"re-planned {n} times)" in r.stdout


def test_train_says_what_it_chose_and_its_plan_first(runner, tmp_path):
    text = tmp_path / "t.txt"
    text.write_text(TEXT)
    r = invoke(runner, "train", text, "--checkpoint-dir", tmp_path / "c", "--max-iters", 15,
               "--seq-len", 8, "--batch-size", 4, "--eval-every", 10)
    assert_ok(r)
    lines = r.stderr.splitlines()
    assert lines[0].startswith("chosen: 1 x 128 rnn, dropout ")
    assert ", batch 4 x 8 (batch shape set by you), adam 0.004:" in lines[0]
    assert "--max-iters 15 reads ~480 chars" in lines[0]
    assert lines[1].startswith("plan: the learning rate decays linearly to 5% of --lr at "
                               "iteration 15")
    r = invoke(runner, "train", text, "--checkpoint-dir", tmp_path / "d", "--max-iters", 5,
               "--seq-len", 8, "--batch-size", 4, "--hidden-size", 8, "--num-layers", 1,
               "--dropout", 0)
    assert_ok(r)
    assert r.stderr.splitlines()[0] == ("chosen: sizes, dropout and batch shape set by you; "
                                        "adam 0.004 for the budget")


def test_the_probe_times_the_real_step_of_each_size():
    cfg = TrainConfig(model="gru", batch_size=4, seq_len=8)
    fast = budget.probe_chars_per_s(TrainConfig(**{**cfg.__dict__, "hidden_size": 8}), 30)
    slow = budget.probe_chars_per_s(TrainConfig(**{**cfg.__dict__, "hidden_size": 512,
                                                   "num_layers": 2}), 30)
    assert np.isfinite(fast) and np.isfinite(slow) and fast > slow > 0


@pytest.mark.parametrize("dropout, clip_mode", [(0.0, "norm"), (0.3, "value")])
def test_the_probe_runs_the_trainers_step_and_keeps_the_fastest(monkeypatch, dropout,
                                                                 clip_mode):
    """One untimed step, then 2 timed ones (by default), each as the trainer steps
    (dropout masks drawn, clipping in the run's mode, update sizes recorded);
    the speed is batch x sequence characters over the fastest."""
    from charrnn.nn import model as model_mod, optim
    ticks = iter([0.0, 10.0, 10.5, 20.0, 20.25])  # one untimed step, then 2 of .5 and .25 s
    monkeypatch.setattr(budget.time, "perf_counter", lambda: next(ticks))
    seen = {"rng": [], "clip": [], "sizes": []}
    real_loss, real_clip = model_mod.Model.loss_and_grads, optim.clip_report_

    def loss_and_grads(self, x, y, state, rng=None):
        seen["rng"].append(rng)
        return real_loss(self, x, y, state, rng)

    def clip_report_(grads, mode, value):
        seen["clip"].append((mode, value))
        return real_clip(grads, mode, value)
    monkeypatch.setattr(model_mod.Model, "loss_and_grads", loss_and_grads)
    monkeypatch.setattr(optim, "clip_report_", clip_report_)
    real_make = optim.make

    def make(name, params):
        opt = real_make(name, params)
        real_update = opt.update

        def update(params, grads, lr, sizes=None):
            seen["sizes"].append(sizes)
            return real_update(params, grads, lr, sizes)
        opt.update = update
        return opt
    monkeypatch.setattr(optim, "make", make)
    cfg = TrainConfig(model="gru", hidden_size=8, batch_size=4, seq_len=6, dropout=dropout,
                      clip_mode=clip_mode, clip=2.5)
    speed = budget.probe_chars_per_s(cfg, 20)
    assert speed == 4 * 6 / 0.25
    assert len(seen["rng"]) == 3
    assert all(isinstance(r, np.random.Generator) == (dropout > 0) for r in seen["rng"])
    assert seen["clip"] == [(clip_mode, 2.5)] * 3
    assert all(isinstance(s, dict) for s in seen["sizes"]) and len(seen["sizes"]) == 3


def test_each_size_is_timed_with_the_input_layer_it_would_train_with():
    """A 601-character vocabulary: every size the rule weighs is probed with
    the embedding embed_for gives it; a set --embed-size is probed as set."""
    for given, want in (({}, lambda H: sizing.embed_for("gru", 601, H)), ({"embed_size": 0},
                                                                          lambda H: 0)):
        probed = []

        def probe(cfg):
            probed.append((cfg.hidden_size, cfg.embed_size))
            return 1e5
        cfg = TrainConfig(model="gru", max_time=60.0, **given)
        c = budget.choose_sizes(cfg, 601, 30_000, given, probe=probe)
        assert probed and all(e == want(H) for H, e in probed), probed
        assert c.embed_size == want(c.hidden_size)
    assert sizing.embed_for("gru", 601, 32) == 16     # the probes above did carry one


@pytest.mark.parametrize("given, optimizer, lr", [({}, "adam", 0.004),
                                                   ({"optimizer": "adagrad"}, "adagrad", 0.03)])
def test_each_size_is_timed_with_the_optimizer_it_would_train_with(given, optimizer, lr):
    """A budgeted rnn trains with Adam unless an optimizer setting is given,
    so that is what the probe times (Adam's step costs more than Adagrad's)."""
    probed = []

    def probe(cfg):
        probed.append((cfg.optimizer, cfg.lr))
        return 1e5
    cfg = TrainConfig(model="rnn", max_time=60.0, **given)
    budget.choose_sizes(cfg, 65, 30_000, given, probe=probe)
    assert probed and set(probed) == {(optimizer, lr)}
    assert TrainConfig(model="rnn").optimizer == "adagrad"        # not the default by chance


@pytest.mark.parametrize("given", [{}, {"batch_size": 8, "seq_len": 16}])
def test_each_size_is_timed_at_its_own_layers_width_and_batch_shape(given):
    """The probe times each size weighed at that size and at the batch shape
    it is weighed at (the given one, or the --model's), never at the
    settings the run's config happens to hold (3 layers, 7 x 9 here)."""
    probed = set()

    def probe(cfg):
        probed.add((cfg.num_layers, cfg.hidden_size, cfg.batch_size, cfg.seq_len))
        return 1e4
    cfg = TrainConfig(model="gru", max_time=60.0, **{"num_layers": 3, "batch_size": 7,
                                                      "seq_len": 9, **given})
    c = budget.choose_sizes(cfg, 65, 30_000, given, probe=probe)
    weighed = {tuple(map(int, k["size"].split("x"))) for k in c.candidates if k["fits_text"]}
    assert {(L, H) for L, H, _, _ in probed} == weighed | {(c.num_layers, c.hidden_size)}
    shape = (given.get("batch_size", 32), given.get("seq_len", 64))
    assert shape in {(B, T) for _, _, B, T in probed}
    assert (c.batch_size, c.seq_len) in {(B, T) for _, _, B, T in probed}
    assert not {(B, T) for _, _, B, T in probed if B == 7 or T == 9}


@pytest.mark.parametrize("limits, words", [
    (dict(max_time=60.0), "--max-time 1m reads"),
    (dict(max_time=120.0), "--max-time 2m reads"),
    (dict(max_time=59.0), "--max-time 59s reads"),
    (dict(max_time=61.0), "--max-time 61s reads"),
    (dict(max_time=90.0), "--max-time 90s reads"),
    (dict(max_iters=50), "--max-iters 50 reads"),
    (dict(max_time=60.0, max_iters=50), "--max-time 1m and --max-iters 50 reads")])
def test_the_reason_for_the_sizes_names_the_budget_as_the_user_said_it(limits, words):
    cfg = TrainConfig(model="gru", **limits)
    c = budget.choose_sizes(cfg, 65, 30_000, {}, probe=lambda c: 1e4)
    assert f"weights, {words} ~" in c.reason, c.reason


def test_choosing_sizes_assumes_no_repeats_unless_told():
    cfg = TrainConfig(model="gru", max_time=60.0)
    bare = budget.choose_sizes(cfg, 65, 30_000, {}, probe=lambda c: 1e5)
    told = budget.choose_sizes(cfg, 65, 30_000, {}, probe=lambda c: 1e5, repeats=0.0)
    assert bare.to_dict() == told.to_dict() and bare.repeats == 0.0


def test_the_time_spent_choosing_sizes_counts_against_max_time(tmp_path, fake_clock,
                                                               monkeypatch):
    calls = []

    def slow_probe(cfg, vocab_size, steps=2):
        calls.append(cfg.hidden_size)
        fake_clock.now += 1.5                   # each size's timed steps take 1.5 s
        return 1e6
    monkeypatch.setattr(budget, "probe_chars_per_s", slow_probe)
    progress, plans = plans_heard()
    res = charrnn.train(TEXT, checkpoint_dir=str(tmp_path), max_time=20.0, lr=0.05,
                        progress=progress, **BASE)
    ck = ckpt.load(res.latest_path)
    spent = 1.5 * len(calls)
    assert calls                                    # sizes were chosen by timing them
    plan = Plan.from_dict(ck.config["plan"])
    t = FakeClock.STEP
    assert plans[0]["total"] == expected_time_plan(ck, spent=spent).total
    assert ck.state["wall_time"] == pytest.approx(spent + plan.total * t)
    assert_on_time_at_the_floor(fake_clock, res, ck, 20.0, 0.05)


def test_a_max_time_run_says_its_plan_once_it_is_fixed(runner, tmp_path, fake_clock):
    text = tmp_path / "t.txt"
    text.write_text(TEXT)
    r = invoke(runner, "train", text, "--checkpoint-dir", tmp_path / "c", "--max-time", 10,
               "--seq-len", 8, "--batch-size", 4, "--hidden-size", 16, "--num-layers", 1,
               "--dropout", 0)
    assert_ok(r)
    ck = ckpt.load(str(tmp_path / "c" / "latest.npz"))
    total = expected_time_plan(ck).total             # the first plan: its re-plans are not said
    assert ck.config["plan"]["replans"] >= 1
    lines = [ln.strip("\r") for ln in r.stderr.replace("\r", "\n").splitlines()
             if ln.strip().startswith("plan:")]
    assert lines == [f"plan: the learning rate decays linearly to 5% of --lr at iteration "
                     f"{total} (62.5 ms a step, timed over the first "
                     f"{(1 + timed_steps(10.0)) * FakeClock.STEP:.1f} s of --max-time 10s)"]


# ------------------------------------------------------------ --stall-stop
def _stall_run(tmp_path, monkeypatch, fake_clock, stall_stop, vals, chars=60_000):
    """A run of --max-time 100 s on the fake clock (0.0625 s a step, evaluated
    every 10 steps) whose validation losses are ``vals(iteration)``, on a
    text of ``chars`` (60k: a pass is 1,687 steps of 4 x 8, longer than the run)."""
    from charrnn.runs import trainer as trainer_mod
    from helpers import corpus, make_corpus
    monkeypatch.setattr(trainer_mod.Trainer, "validate", lambda self: vals(self.iteration))
    cfg = TrainConfig(hidden_size=8, seq_len=8, batch_size=4, eval_every=10, max_time=100.0,
                      stall_stop=stall_stop)
    text = corpus(make_corpus(chars, seed=3))
    return trainer_mod.Trainer(cfg, text, str(tmp_path)).run(progress=False)


def test_stall_stop_ends_a_run_whose_best_is_that_share_of_the_budget_old(
        tmp_path, monkeypatch, fake_clock):
    """Best at iteration 200 (recorded at 199 x 0.0625 = 12.4375 s); a quarter
    of 100 s later is the evaluation at iteration 600 (599 steps' time)."""
    res = _stall_run(tmp_path, monkeypatch, fake_clock, 0.25,
                     lambda it: 3.0 - it / 100 if it <= 200 else 1.5 + it / 1000)
    assert res.stopped_early and res.iterations == 600
    assert res.best_val == pytest.approx(1.0)
    assert res.stop_reason == ("no better validation loss for 25s (25% of --max-time, "
                               "--stall-stop) since its best, 1.0000 at 12s; best.npz keeps it; "
                               "1m02s of the budget left unused")
    assert ckpt.load(str(tmp_path / "best.npz")).state["iteration"] == 200


def test_stall_stop_ends_a_run_on_a_small_text_five_passes_after_its_best(
        tmp_path, monkeypatch, fake_clock):
    """make_corpus(1500): 1,407 characters to train on, 43 chunks of 4 x 8 a
    pass (1,376 characters); best at iteration 200; 5 passes (215 steps)
    later is the evaluation at 420 (5.12 passes), long before a quarter of
    the budget (at 600); 100 s - 419 x 0.0625 s = 73.8 s left."""
    res = _stall_run(tmp_path, monkeypatch, fake_clock, 0.25,
                     lambda it: 3.0 - it / 100 if it <= 200 else 1.5 + it / 1000, chars=1_500)
    assert res.stopped_early and res.iterations == 420
    assert res.stop_reason == ("no better validation loss in 5.12 passes over the text (it is "
                               "learning the text by heart) since its best, 1.0000 at 12s; "
                               "best.npz keeps it; 1m14s of the budget left unused")
    assert ckpt.load(str(tmp_path / "best.npz")).state["iteration"] == 200
    off = _stall_run(tmp_path / "off", monkeypatch, fake_clock, 0.0,
                     lambda it: 3.0 - it / 100 if it <= 200 else 1.5 + it / 1000, chars=1_500)
    assert not off.stopped_early                     # --stall-stop 0: neither rule


def test_without_stall_stop_or_while_improving_the_run_uses_its_budget(
        tmp_path, monkeypatch, fake_clock):
    worse_after_200 = lambda it: 3.0 - it / 100 if it <= 200 else 1.5 + it / 1000  # noqa: E731
    off = _stall_run(tmp_path / "off", monkeypatch, fake_clock, 0.0, worse_after_200)
    assert not off.stopped_early and off.iterations == 1600 and off.stop_reason == ""
    fake_clock.now = fake_clock.START
    better = _stall_run(tmp_path / "on", monkeypatch, fake_clock, 0.25, lambda it: 3.0 - it / 1e4)
    assert not better.stopped_early and better.iterations == 1600


def test_max_time_runs_get_stall_stop_unless_they_set_it_or_patience(tmp_path):
    from helpers import corpus
    text = corpus()
    base = {"max_time": 60.0, "hidden_size": 8, "num_layers": 1, "dropout": 0.0,
            "batch_size": 4, "seq_len": 8}
    fixed = set(base)
    assert budget.new_run(text, base, fixed).config.stall_stop == 0.25
    assert budget.new_run(text, {**base, "stall_stop": 0.5}, fixed | {"stall_stop"}
                          ).config.stall_stop == 0.5
    assert budget.new_run(text, {**base, "patience": 3}, fixed | {"patience"}
                          ).config.stall_stop == 0.0
    no_time = {**base, "max_time": None, "max_iters": 50}
    assert budget.new_run(text, no_time, fixed | {"max_iters"}).config.stall_stop == 0.0
