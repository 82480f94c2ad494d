"""The training progress on stderr: on a terminal a bar that knows its
total once the plan does (percentage, ETA) and shows the latest losses;
elsewhere plain lines at a modest rate and never a carriage return."""
from __future__ import annotations

import io
import re
import subprocess
import sys

import pytest

from charrnn.cli import progress
from charrnn.cli.progress import PLAIN_EVERY, TrainPrinter

from conftest import make_corpus
from helpers import assert_ok, charrnn_command, clean_env, invoke

TINY = ["--hidden-size", "8", "--seq-len", "8", "--batch-size", "4", "--num-layers", "1",
        "--dropout", "0"]


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def _start(printer, max_iters=None, max_time=None, total=None):
    printer("start", {"iteration": 0, "max_iters": max_iters, "max_time": max_time,
                      "plan": {"kind": "step", "total": total}, "resumed_from": None})


def test_plain_lines_come_at_evaluations_and_at_most_every_few_seconds(monkeypatch):
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    clock = Clock()
    p = TrainPrinter(terminal=False, sample_out=io.StringIO(), clock=clock)
    _start(p, max_iters=400, total=400)
    err.truncate(0), err.seek(0)
    for i in range(1, 101):
        clock.now += 0.1                          # 10 s of steps: no line
        p("step", {"iteration": i, "loss": 2.5})
    assert err.getvalue() == ""
    clock.now += PLAIN_EVERY
    p("step", {"iteration": 101, "loss": 2.4})    # a quiet stretch: one line
    p("step", {"iteration": 102, "loss": 2.4})    # and not two
    p("eval", {"iteration": 102, "train_loss": 2.41, "val_loss": 2.52, "best_val": 2.52,
               "chars_per_s": 12000})
    lines = err.getvalue().splitlines()
    assert "\r" not in err.getvalue() and len(lines) == 2, lines
    assert lines[0].startswith("iteration 101/400 (25%), loss 2.400,")
    assert re.fullmatch(r"iteration 102/400 \(26%\), loss 2\.410 val 2\.520 12k chars/s, "
                        r"0:40 elapsed, 1:57 left", lines[1]), lines[1]


def test_the_time_left_of_a_max_time_run_never_exceeds_what_its_budget_leaves(monkeypatch):
    """Seen on a 2-minute run of a small text: 392 steps in its first 9 s
    (the start slowed them) of a plan of 6,789 said "2:25 left" of the 1:51."""
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    clock = Clock()
    p = TrainPrinter(terminal=False, sample_out=io.StringIO(), clock=clock)
    _start(p, max_time=120.0, total=6789)
    clock.now += 9.0
    p("eval", {"iteration": 392, "train_loss": 1.99, "val_loss": 2.24, "best_val": 2.24,
               "chars_per_s": 206000})
    clock.now += 100.0                          # 400 more steps in 100 s: pace says 12:56
    p("eval", {"iteration": 792, "train_loss": 1.9, "val_loss": 2.2, "best_val": 2.2,
               "chars_per_s": 206000})
    lines = err.getvalue().splitlines()
    assert lines[-2].endswith("0:09 elapsed, 1:51 left"), lines      # not 2:27
    assert lines[-1].endswith("1:49 elapsed, 0:11 left"), lines
    p2 = TrainPrinter(terminal=False, sample_out=io.StringIO(), clock=clock)
    _start(p2, max_iters=6789, total=6789)      # no clock to end it: the pace stands
    clock.now += 9.0
    p2("eval", {"iteration": 392, "train_loss": 1.99, "val_loss": 2.24, "best_val": 2.24,
                "chars_per_s": 206000})
    assert err.getvalue().splitlines()[-1].endswith("0:09 elapsed, 2:27 left")


def test_a_plain_max_time_run_gets_its_total_from_the_plan(monkeypatch):
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    p = TrainPrinter(terminal=False, sample_out=io.StringIO(), clock=Clock())
    _start(p, max_time=60.0, total=None)
    p("eval", {"iteration": 10, "train_loss": 3.0, "val_loss": 3.1, "best_val": 3.1,
               "chars_per_s": 1000})
    p("plan", {"iteration": 20, "total": 800, "basis": "timed", "floor": 0.05, "replans": 0})
    p("eval", {"iteration": 40, "train_loss": 2.0, "val_loss": 2.1, "best_val": 2.1,
               "chars_per_s": 1000})
    p("plan", {"iteration": 50, "total": 700, "basis": "re-planned", "floor": 0.05,
               "replans": 1})                            # a re-plan moves the total, silently
    p("eval", {"iteration": 70, "train_loss": 2.0, "val_loss": 2.1, "best_val": 2.1,
               "chars_per_s": 1000})
    lines = err.getvalue().splitlines()
    assert lines[0].startswith("iteration 10, loss 3.000 val 3.100")      # no total yet
    assert lines[1].startswith("plan: ")
    assert lines[2].startswith("iteration 40/800 (5%), loss 2.000 val 2.100")
    assert lines[3].startswith("iteration 70/700 (10%), loss 2.000 val 2.100")
    assert len(lines) == 4


@pytest.mark.parametrize("known_at_start", [True, False], ids=["max-iters", "max-time"])
def test_the_terminal_bar_knows_its_total_and_shows_the_losses(monkeypatch, known_at_start):
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    p = TrainPrinter(terminal=True, sample_out=io.StringIO(), clock=Clock())
    _start(p, max_iters=200 if known_at_start else None,
           max_time=None if known_at_start else 30.0, total=200 if known_at_start else None)
    assert (p.bar.total == 200) is known_at_start
    if not known_at_start:
        p("plan", {"iteration": 0, "total": 200, "basis": "timed", "floor": 0.05})
    assert p.bar.total == 200
    for i in range(1, 51):
        p("step", {"iteration": i, "loss": 2.25})
    p("eval", {"iteration": 50, "train_loss": 2.25, "val_loss": 2.375, "best_val": 2.375,
               "chars_per_s": 5000})
    p.close()
    last = err.getvalue().replace("\n", "\r").split("\r")
    frame = [f for f in last if "50/200" in f][-1]
    assert "25%" in frame and " left]" in frame              # percentage, time left
    assert "loss 2.250 val 2.375" in frame


@pytest.mark.parametrize("max_time, left", [(None, "3:00 left"), (100.0, "0:40 left")])
def test_the_terminal_bar_says_the_time_left_capped_by_max_time(monkeypatch, max_time, left):
    """60 s for the first 50 of 200 steps (a slow start) says 3:00 left at
    that pace; with --max-time 100 s only 40 s are left, and the bar says so
    (tqdm's own estimate would say 3:00)."""
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    clock = Clock()
    p = TrainPrinter(terminal=True, sample_out=io.StringIO(), clock=clock)
    _start(p, max_iters=200, max_time=max_time, total=200)
    for i in range(1, 51):
        clock.now += 1.2
        p("step", {"iteration": i, "loss": 2.25})
    p("eval", {"iteration": 50, "train_loss": 2.25, "val_loss": 2.375, "best_val": 2.375,
               "chars_per_s": 5000})
    p.close()
    frame = [f for f in err.getvalue().replace("\n", "\r").split("\r") if "50/200" in f][-1]
    assert frame.rstrip().endswith(f"loss 2.250 val 2.375 5k chars/s, {left}]"), frame
    assert "<" not in frame                                  # tqdm's estimate is not shown


def test_cli_training_to_a_non_terminal_writes_plain_lines(runner, tmp_path):
    text = tmp_path / "t.txt"
    text.write_text(make_corpus(3000))
    r = invoke(runner, "train", text, "--checkpoint-dir", tmp_path / "c", "--max-iters", 60,
               "--eval-every", 20, *TINY)
    assert_ok(r)
    assert "\r" not in r.stderr
    lines = [l for l in r.stderr.splitlines() if l.startswith("iteration ")]
    evals = [l for l in lines if " val " in l]
    assert [l.split(",")[0] for l in evals] == ["iteration 20/60 (33%)", "iteration 40/60 (67%)",
                                                 "iteration 60/60 (100%)"]
    # on a machine slow enough to go PLAIN_EVERY seconds between them, a quiet line may come too
    assert all(re.match(r"iteration \d+/60 \(\d+%\), loss \d", l) for l in lines), lines


@pytest.mark.parametrize("limit", [["--max-iters", "60"], ["--max-time", "3"]],
                         ids=["max-iters", "max-time"])
def test_a_real_run_with_stderr_to_a_file_has_no_carriage_returns(tmp_path, limit):
    text = tmp_path / "t.txt"
    text.write_text(make_corpus(3000))
    log = tmp_path / "err.txt"
    with open(log, "wb") as f:
        r = subprocess.run(charrnn_command() + ["train", str(text), "--checkpoint-dir",
                                                str(tmp_path / "c"), "--eval-every", "20",
                                                *TINY, *limit],
                           stdout=subprocess.DEVNULL, stderr=f, env=clean_env(), timeout=120)
    err = log.read_bytes().decode()
    assert r.returncode == 0, err
    assert "\r" not in err
    lines = [l for l in err.splitlines() if l.startswith("iteration ")]
    assert lines and re.match(r"iteration \d+/\d+ \(\d+%\), loss ", lines[-1]), lines
