"""Trainer.run on tiny runs (a 12-wide rnn, a few steps): what the caller
hears and gets back, a run stopped before its first step, a resumed run
stopped at once in a new folder, and what a PlanTimer is told, on the
fake clock (conftest.py)."""
import math
import os
import signal

import pytest

from charrnn.runs.schedule import Plan
from charrnn.runs.trainer import Trainer
from charrnn.runs.validation import chars_read
from charrnn.store import checkpoint as ckpt

from helpers import config, corpus, signalled


def test_what_a_run_reports_and_returns(tmp_path, fake_clock):
    tr = Trainer(config("rnn", max_iters=6, eval_every=3, max_time=3600.0), corpus(),
                 str(tmp_path))
    heard = []
    start = fake_clock[0]
    res = tr.run(progress=lambda e, info: heard.append((e, info)))
    steps = [info for e, info in heard if e == "step"]
    evals = [info for e, info in heard if e == "eval"]
    assert [s["iteration"] for s in steps] == [1, 2, 3, 4, 5, 6]
    assert all(math.isfinite(s["loss"]) and set(s) == {"iteration", "loss"} for s in steps)
    assert [e["iteration"] for e in evals] == [3, 6]
    assert all(e["chars_per_s"] > 0 and math.isfinite(e["chars_per_s"]) for e in evals)
    assert tr.history["iter"] == [3, 6]
    assert all(math.isfinite(v) for v in tr.history["train_loss"])
    assert 0 < tr.wall_time <= fake_clock[0] - start
    assert (res.iterations, res.interrupted_by, res.stopped_early, res.stop_reason) == \
        (6, None, False, "")
    assert (res.train_loss, res.val_loss) == (tr.history["train_loss"][-1],
                                              tr.history["val_loss"][-1])
    assert (res.latest_path, res.best_path) == (os.path.join(str(tmp_path), "latest.npz"),
                                                os.path.join(str(tmp_path), "best.npz"))


def test_a_run_that_never_evaluates_in_its_loop_is_not_stopped_early(tmp_path, fake_clock):
    tr = Trainer(config("rnn", max_iters=3, eval_every=10, val_frac=0.0), corpus(),
                 str(tmp_path))
    res = tr.run()
    assert (res.iterations, res.stopped_early, res.stop_reason, res.best_path) == \
        (3, False, "", None)
    assert tr.history["iter"] == [3]                 # the final checkpoint


def test_a_run_stopped_before_its_first_step_records_the_first_steps_rate(tmp_path, fake_clock):
    tr = Trainer(config("rnn", max_iters=6, warmup=10, lr=0.1), corpus(), str(tmp_path))
    res = tr.run(stop=signalled())
    assert (res.iterations, res.interrupted_by) == (0, signal.SIGINT)
    assert tr.history["lr"] == [pytest.approx(0.01)]      # warm-up's first step: 0.1 x 1/10
    assert os.path.exists(res.latest_path)
    tr = Trainer(config("rnn", max_iters=6, lr=0.1), corpus(), str(tmp_path / "b"))
    tr.plan = Plan(kind="budget", hold=2, total=6, start=0.5)   # a re-planned budget plan
    tr.run(stop=signalled())
    assert tr.history["lr"] == [pytest.approx(0.05)]


def test_a_resumed_run_stopped_at_once_in_a_new_folder_leaves_a_checkpoint_there(tmp_path, fake_clock):
    first = Trainer(config("rnn", max_iters=3, eval_every=3), corpus(), str(tmp_path / "a"))
    first.run()
    ck = ckpt.load(str(tmp_path / "a" / "latest.npz"))
    on = Trainer(first.spec, first.corpus, str(tmp_path / "b"), resume_from=ck)
    res = on.run(stop=signalled())
    assert res.iterations == 3
    assert ckpt.load(str(tmp_path / "b" / "latest.npz")).state["iteration"] == 3
    assert (res.train_loss, res.val_loss) == (float(ck.history["train_loss"][-1]),
                                              float(ck.history["val_loss"][-1]))


class Timer:
    """A PlanTimer that records what the Trainer tells it; begin hands back ``plan``."""

    def __init__(self, plan=None):
        self.plan, self.calls = plan, []

    def begin(self, *args):
        self.calls.append(("begin", args))
        return self.plan

    def after_step(self, *args):
        self.calls.append(("after_step", args))

    def after_eval(self, seconds):
        self.calls.append(("after_eval", (seconds,)))


def test_what_a_plan_timer_is_told(tmp_path, fake_clock):
    tr = Trainer(config("rnn", max_iters=4, eval_every=2), corpus(), str(tmp_path))
    plan = Plan(kind="step", basis="test")
    timer, heard = Timer(plan), []
    tr.run(progress=lambda e, info: heard.append((e, info)), timer=timer)
    (name, (old, it, wall0, t0, eval_chars)), *rest = timer.calls
    assert (name, old.kind, it, wall0, eval_chars) == ("begin", "step", 0, 0.0, chars_read(tr.val_plan))
    assert eval_chars > 0 and 1e6 < t0 < fake_clock[0]
    steps = [args for n, args in rest if n == "after_step"]
    assert [(p is plan, i, e) for p, i, _, e in steps] == [(True, 1, False), (True, 2, True),
                                                           (True, 3, False), (True, 4, True)]
    assert all(1e6 < now <= fake_clock[0] for _, _, now, _ in steps)
    evals = [args[0] for n, args in rest if n == "after_eval"]
    assert len(evals) == 2 and all(0 < s < 1 for s in evals)
    assert [info for e, info in heard if e == "plan"] == [
        {"iteration": 0, "total": None, "basis": "test", "floor": plan.floor, "replans": 0}]


def test_a_run_without_evaluations_tells_the_timer_they_cost_nothing(tmp_path, fake_clock):
    tr = Trainer(config("rnn", max_iters=2, eval_every=0), corpus(), str(tmp_path))
    timer = Timer()
    tr.run(timer=timer)
    assert timer.calls[0][1][4] == 0
    assert len(tr.val_ids) > 0


def test_the_time_spent_choosing_sizes_counts_as_the_runs(tmp_path, fake_clock):
    import dataclasses
    tr = Trainer(config("rnn", max_iters=2), corpus(), str(tmp_path))
    tr.spec = dataclasses.replace(tr.spec, spent=30.0)
    start = fake_clock[0]
    tr.run()
    assert 30.0 < tr.wall_time <= 30.0 + fake_clock[0] - start


def test_a_plan_the_timer_changes_after_a_step_is_reported(tmp_path, fake_clock):
    new = Plan(kind="budget", total=8, basis="re-planned", replans=1)

    class Replanning(Timer):
        def after_step(self, plan, it, now, evaluating):
            return new if it == 3 else None

    tr = Trainer(config("rnn", max_iters=4, eval_every=2), corpus(), str(tmp_path))
    heard = []
    tr.run(progress=lambda e, info: heard.append((e, info)), timer=Replanning())
    assert tr.plan is new
    assert [info for e, info in heard if e == "plan"] == [
        {"iteration": 3, "total": 8, "basis": "re-planned", "floor": new.floor, "replans": 1}]


def test_a_run_that_stalls_stops_with_the_budget_it_leaves(tmp_path, fake_clock):
    """lr 0: every evaluation scores the same, so none is better than the
    first; --stall-stop 0.001 of --max-time 1 s is 1 ms of the fake clock."""
    tr = Trainer(config("rnn", max_iters=50, eval_every=2, lr=0.0, max_time=1.0,
                        stall_stop=0.001), corpus(), str(tmp_path))
    res = tr.run()
    assert (res.iterations, res.stopped_early) == (4, True)
    assert res.stop_reason.startswith("no better validation loss for 0s (0% of --max-time, "
                                      "--stall-stop) since its best, ")
    assert res.stop_reason.endswith(" at 0s; best.npz keeps it; 1s of the budget left unused")


def test_the_steps_after_the_last_evaluation_get_a_final_one(tmp_path, fake_clock):
    tr = Trainer(config("rnn", max_iters=5, eval_every=3), corpus(), str(tmp_path))
    heard = []
    tr.run(progress=lambda e, info: heard.append((e, info)))
    evals = [info for e, info in heard if e == "eval"]
    assert [e["iteration"] for e in evals] == [3, 5]
    assert evals[-1]["chars_per_s"] > 0
    assert tr.history["iter"] == [3, 5] and math.isfinite(tr.history["train_loss"][-1])
