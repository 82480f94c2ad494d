"""runs/runner.py's run_training with plain arguments on tiny runs (a
12-wide rnn, a few steps): the options and the names the user set, resume
and --init-from, the folder's lock, a folder another run fills while the
text loads, and what the caller hears at the start."""
import os
import signal

import numpy as np
import pytest

from charrnn.errors import CharRNNError
from charrnn.runs.runner import run_training
from charrnn.store import checkpoint as ckpt
from charrnn.store import runlock

from helpers import corpus, signalled

OPTS = dict(model="rnn", hidden_size=12, num_layers=1, seq_len=8, batch_size=4, max_iters=3,
            eval_every=3)


class Reader:
    """read_corpus that records what it was handed (and can do something first)."""

    def __init__(self, before=None):
        self.seen, self.before = [], before

    def __call__(self, ck):
        self.seen.append(ck)
        if self.before:
            self.before()
        return corpus()


def train(folder, reader=None, **kw):
    opts = {**OPTS, **kw.pop("opts", {})}
    return run_training(reader or Reader(), str(folder), opts, **kw)


def state(path):
    return ckpt.load(str(path)).state


def test_the_options_set_the_run_and_none_means_the_default(tmp_path, fake_clock):
    train(tmp_path / "a", opts={"dropout": None, "embed_size": None})
    ck = ckpt.load(str(tmp_path / "a" / "latest.npz"))
    assert (ck.config["model"]["hidden_size"], ck.config["model"]["dropout"]) == (12, 0.0)
    assert ck.state["iteration"] == 3


def test_a_used_folder_is_refused_unless_overwrite(tmp_path, fake_clock):
    train(tmp_path / "a")
    with pytest.raises(CharRNNError, match="already holds latest.npz"):
        train(tmp_path / "a")
    train(tmp_path / "a", overwrite=True)


def test_resume_continues_in_its_own_folder_or_the_one_named(tmp_path, fake_clock):
    train(tmp_path / "a")
    reader = Reader()
    res = train(tmp_path / "ignored", reader, explicit={"max_iters"}, opts={"max_iters": 5},
                resume=str(tmp_path / "a" / "latest.npz"))
    assert res.iterations == 5 and state(tmp_path / "a" / "latest.npz")["iteration"] == 5
    assert not (tmp_path / "ignored").exists()
    assert [ck.path for ck in reader.seen] == [str(tmp_path / "a" / "latest.npz")]
    # explicit None: every option counts as set, the folder too
    res = train(tmp_path / "b", opts={"max_iters": 7}, resume=str(tmp_path / "a" / "latest.npz"))
    assert res.iterations == 7 and state(tmp_path / "b" / "latest.npz")["iteration"] == 7
    assert state(tmp_path / "a" / "latest.npz")["iteration"] == 5


def test_resume_of_a_bare_name_continues_in_this_folder(tmp_path, fake_clock, monkeypatch):
    train(tmp_path / "a")
    monkeypatch.chdir(tmp_path / "a")
    res = train(tmp_path / "ignored", explicit={"max_iters"}, opts={"max_iters": 5},
                resume="latest.npz")
    assert res.latest_path == os.path.join(".", "latest.npz")
    assert state(tmp_path / "a" / "latest.npz")["iteration"] == 5


def test_with_every_option_set_a_contradiction_is_refused(tmp_path, fake_clock):
    train(tmp_path / "a")
    with pytest.raises(CharRNNError, match="--hidden-size 20 contradicts"):
        train(tmp_path / "a", opts={"hidden_size": 20, "max_iters": 5},
              resume=str(tmp_path / "a" / "latest.npz"))


def test_init_from_starts_from_the_checkpoints_weights(tmp_path, fake_clock):
    train(tmp_path / "a")
    base = ckpt.load(str(tmp_path / "a" / "latest.npz"))
    reader = Reader()
    heard = []
    train(tmp_path / "b", reader, opts={"lr": 0.0}, explicit={"lr"},
          init_from=str(tmp_path / "a" / "latest.npz"),
          progress=lambda e, info: heard.append(info) if e == "start" else None)
    assert heard[0]["resumed_from"] is None
    tuned = ckpt.load(str(tmp_path / "b" / "latest.npz"))
    assert reader.seen == [None]
    assert tuned.state["iteration"] == 3
    assert all(np.array_equal(tuned.params[k], base.params[k]) for k in base.params)   # lr 0


def test_a_new_run_reads_its_text_without_a_checkpoint(tmp_path, fake_clock):
    reader = Reader()
    train(tmp_path / "a", reader)
    assert reader.seen == [None]


def test_a_locked_folder_is_refused_before_the_text_is_read(tmp_path, fake_clock):
    folder = tmp_path / "a"
    folder.mkdir()
    reader = Reader()
    lock = runlock.hold(str(folder))
    try:
        with pytest.raises(CharRNNError):
            train(folder, reader)
    finally:
        lock.release()
    assert reader.seen == []


def test_a_folder_another_run_fills_while_the_text_loads(tmp_path, fake_clock):
    folder = tmp_path / "a"

    def other_run():
        folder.mkdir(exist_ok=True)
        (folder / "latest.npz").write_bytes(b"another run's")
    with pytest.raises(CharRNNError, match="already holds latest.npz"):
        train(folder, Reader(other_run))
    folder = tmp_path / "a2"
    train(folder, Reader(other_run), overwrite=True)
    assert state(folder / "latest.npz")["iteration"] == 3
    train(tmp_path / "src")
    with pytest.raises(CharRNNError, match="already holds latest.npz"):
        train(tmp_path / "b", Reader(lambda: (tmp_path / "b").mkdir() or
                                     (tmp_path / "b" / "latest.npz").write_bytes(b"x")),
              opts={"max_iters": 5}, explicit={"max_iters", "checkpoint_dir"},
              resume=str(tmp_path / "src" / "latest.npz"))


def test_a_signal_before_the_run_stops_it_at_once(tmp_path, fake_clock):
    res = train(tmp_path / "a", stop=signalled(signal.SIGTERM))
    assert (res.iterations, res.interrupted_by) == (0, signal.SIGTERM)


def test_overwrite_removes_the_earlier_runs_best_and_says_when_it_cannot(tmp_path, fake_clock):
    train(tmp_path / "a")
    assert (tmp_path / "a" / "best.npz").exists()
    train(tmp_path / "a", opts={"val_frac": 0.0}, overwrite=True)     # no validation: no best
    assert not (tmp_path / "a" / "best.npz").exists()
    (tmp_path / "a" / "best.npz").mkdir()
    with pytest.raises(CharRNNError) as e:
        train(tmp_path / "a", overwrite=True)
    assert str(e.value) == (f"cannot remove the earlier run's best.npz in {tmp_path / 'a'}: "
                            f"Is a directory")


def test_resuming_the_folders_best_with_overwrite_keeps_it(tmp_path, fake_clock):
    train(tmp_path / "a", opts={"max_iters": 6})
    best = tmp_path / "a" / "best.npz"
    kept = best.read_bytes()
    train(tmp_path / "a", resume=str(best), opts={"max_iters": 8, "lr": 0.0},
          explicit={"max_iters", "lr"}, overwrite=True)
    assert best.read_bytes() == kept                # lr 0: no better loss, best.npz untouched
    assert state(tmp_path / "a" / "latest.npz")["iteration"] == 8


def test_a_stale_temporary_of_a_killed_run_is_cleaned(tmp_path, fake_clock):
    train(tmp_path / "a")
    stale = tmp_path / "a" / "latest.npz.tmp-999999999"
    stale.write_bytes(b"half a checkpoint")
    train(tmp_path / "a", overwrite=True)
    assert not stale.exists()


def test_what_the_caller_hears_at_the_start(tmp_path, fake_clock):
    heard = []
    listen = lambda e, info: heard.append(info) if e == "start" else None     # noqa: E731
    train(tmp_path / "a", progress=listen)
    new = heard.pop()
    assert {k: new[k] for k in ("iteration", "max_iters", "max_time", "resumed_from", "changed",
                                "checkpoint_dir")} == \
        {"iteration": 0, "max_iters": 3, "max_time": None, "resumed_from": None, "changed": {},
         "checkpoint_dir": str(tmp_path / "a")}
    assert new["choices"] is not None and new["plan"]["total"] == 3
    source = str(tmp_path / "a" / "latest.npz")
    train(tmp_path / "a", progress=listen, resume=source, opts={"max_iters": 5},
          explicit={"max_iters"})
    resumed = heard.pop()
    assert {k: resumed[k] for k in ("iteration", "max_iters", "choices", "resumed_from",
                                    "changed")} == \
        {"iteration": 3, "max_iters": 5, "choices": None, "resumed_from": source,
         "changed": {"max_iters": [3, 5]}}


def test_a_run_for_a_time_budget_gets_its_plan_fixed_by_the_clock(tmp_path, fake_clock):
    """--max-time 8 on the fake clock: the plan is fixed from the steps'
    speed once they have run a while, and the caller hears it."""
    heard = []
    res = train(tmp_path / "a", opts={"max_iters": None, "max_time": 8.0, "eval_every": 10 ** 6,
                                      "lr_schedule": "budget"},
                progress=lambda e, info: heard.append(info) if e == "plan" else None)
    assert heard and heard[0]["total"] is not None
    assert res.iterations >= 1
