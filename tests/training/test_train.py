"""The training loop: learning happens, evaluation is right, checkpoints follow."""
import math
import os
import signal

import numpy as np
import pytest

from charrnn.store import checkpoint
from charrnn.nn.model import zero_state
from charrnn.api.options import parse_duration
from charrnn.runs.trainer import Trainer, TrainConfig
from charrnn.runs.validation import EVAL_WARMUP_CHUNKS, EVAL_WINDOW_CHUNKS, val_plan, validation_loss

import reference_lm
from conftest import make_corpus
from helpers import corpus

TEXT = "abcdefghij the end.\n" * 200


def test_loss_falls_and_learns_a_pattern(tmp_path):
    cfg = TrainConfig(hidden_size=32, seq_len=20, batch_size=8, lr=0.05, eval_every=50,
                      max_iters=300, val_frac=0.1)
    tr = Trainer(cfg, corpus(TEXT), str(tmp_path))
    before = tr.validate()
    res = tr.run(progress=False)
    assert res.iterations == 300
    assert before > math.log(len(tr.corpus.vocab)) - 0.2     # starts near uniform
    assert res.val_loss < 0.5 * before                       # and learns the pattern
    hist = tr.history
    assert hist["iter"] == [50, 100, 150, 200, 250, 300]
    assert hist["train_loss"][-1] < hist["train_loss"][0]
    assert res.best_val == min(hist["val_loss"])


def test_evaluate_equals_manual_mean_over_chunks():
    c = corpus(TEXT)
    cfg = TrainConfig(hidden_size=8, seq_len=7, batch_size=3, dtype="float64")
    tr = Trainer(cfg, c, "unused")
    ids = c.ids[:200]
    got = validation_loss(tr.model, ids, 3, 7)
    # by hand: 3 streams of length 66, carried state, chunks of 7 (last 3 long)
    L = 199 // 3
    x, y = ids[:3 * L].reshape(3, L), ids[1:3 * L + 1].reshape(3, L)
    state, total = zero_state(tr.mcfg, 3), 0.0
    for s in range(0, L, 7):
        loss, state = tr.model.loss(x[:, s:s + 7], y[:, s:s + 7], state)
        total += loss * x[:, s:s + 7].size
    assert got == pytest.approx(total / (3 * L), rel=1e-12)


def test_run_saves_latest_and_best_with_history(tmp_path):
    cfg = TrainConfig(hidden_size=16, seq_len=10, batch_size=4, eval_every=20, max_iters=60)
    tr = Trainer(cfg, corpus(TEXT), str(tmp_path))
    tr.run(progress=False)
    latest = checkpoint.load(str(tmp_path / "latest.npz"))
    best = checkpoint.load(str(tmp_path / "best.npz"))
    assert latest.state["iteration"] == 60
    assert list(latest.history["iter"]) == [20, 40, 60]
    i = int(np.argmin(latest.history["val_loss"]))
    assert best.state["iteration"] == latest.history["iter"][i]
    np.testing.assert_array_equal(latest.params["l0.Wh"], tr.model.params["l0.Wh"])
    assert sorted(os.listdir(tmp_path)) == ["best.npz", "latest.npz"]


def test_epoch_wraps_and_resets_hidden_state(tmp_path):
    cfg = TrainConfig(hidden_size=8, seq_len=10, batch_size=4, val_frac=0.0)
    tr = Trainer(cfg, corpus(TEXT), str(tmp_path))
    n = tr.streams.chunks_per_epoch
    for _ in range(n):
        tr.train_step()
    assert (tr.epoch, tr.chunk) == (1, 0)
    assert tr.chars_seen == n * 40


def test_signal_stops_between_steps_and_saves(tmp_path):
    cfg = TrainConfig(hidden_size=8, seq_len=10, batch_size=4, eval_every=1000)
    tr = Trainer(cfg, corpus(TEXT), str(tmp_path))
    real_step = tr.train_step

    def step_then_signal():
        loss = real_step()
        if tr.iteration == 5:
            os.kill(os.getpid(), signal.SIGINT)
        return loss
    tr.train_step = step_then_signal
    res = tr.run(progress=False)
    assert res.interrupted_by == signal.SIGINT
    assert res.iterations == 5
    assert checkpoint.load(str(tmp_path / "latest.npz")).state["iteration"] == 5


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_diverging_training_is_a_clear_error(tmp_path):
    from charrnn.errors import CharRNNError
    cfg = TrainConfig(hidden_size=8, seq_len=10, batch_size=4)
    tr = Trainer(cfg, corpus(TEXT), str(tmp_path))
    tr.model.params["out.W"][:] = np.inf
    with pytest.raises(CharRNNError, match="lower --lr"):
        tr.train_step()


@pytest.mark.parametrize("text,seconds", [("90", 90), ("90s", 90), ("10m", 600), ("1h", 3600),
                                          ("1h30m", 5400), ("1.5m", 90), (" 2M ", 120)])
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "abc", "10x", "m", "0", "0s", "-5"])
def test_parse_duration_rejects(text):
    with pytest.raises(ValueError):
        parse_duration(text)


# ------------------------------------------- validation sample (bounded cost)
def test_val_plan_whole_below_the_sample_size_and_even_windows_above():
    B, T = 4, 8
    span = (EVAL_WARMUP_CHUNKS + EVAL_WINDOW_CHUNKS) * T + 1
    small = val_plan(B * span, B, T)
    assert small == {"method": "whole", "chars_scored": B * ((B * span - 1) // B)}
    for n in (B * span + 1, 10_000, 10 ** 9):
        p = val_plan(n, B, T)
        assert p["method"] == "sampled" and p["windows"] == B
        assert p["chars_scored"] == B * EVAL_WINDOW_CHUNKS * T       # whatever the split size
        starts = p["starts"]
        assert starts[0] == 0 and starts[-1] + span == n              # first and last chars
        gaps = np.diff(starts)
        assert gaps.min() >= span and gaps.max() - gaps.min() <= 1     # disjoint, even
    assert val_plan(10_000, 1, T)["starts"] == [(10_000 - span) // 2]


def test_sampled_validation_equals_a_per_window_reference(tmp_path):
    """Each window read from a zero state, char by char in float64; the
    first warmup_chars targets unscored; the mean over the scored ones."""
    text = make_corpus(60_000, seed=4, non_ascii=False)
    cfg = TrainConfig(model="lstm", hidden_size=8, num_layers=2, seq_len=8, batch_size=3,
                      dtype="float64", val_frac=0.1)
    tr = Trainer(cfg, corpus(text), str(tmp_path))
    plan = tr.val_plan
    assert plan["method"] == "sampled" and len(tr.val_ids) > 3 * 289
    warm, length = plan["warmup_chars"], plan["window_chars"]
    total = count = 0
    for s in plan["starts"]:
        ids = [int(i) for i in tr.val_ids[s: s + warm + length + 1]]
        _, _, logps = reference_lm.forward(tr.model.params, tr.mcfg, ids)
        total -= sum(logps[t - 1][ids[t]] for t in range(warm + 1, warm + length + 1))
        count += length
    assert count == plan["chars_scored"]
    assert tr.validate() == pytest.approx(total / count, rel=1e-10)


def test_evaluation_cost_does_not_grow_with_the_corpus(tmp_path, monkeypatch):
    calls = []
    for n in (40_000, 400_000):
        cfg = TrainConfig(hidden_size=8, seq_len=8, batch_size=4, val_frac=0.1)
        tr = Trainer(cfg, corpus(make_corpus(n, seed=2, non_ascii=False)), str(tmp_path))
        real = tr.model.loss
        seen = []
        monkeypatch.setattr(tr.model, "loss", lambda x, y, st: (seen.append(x.size), real(x, y, st))[1])
        tr.validate()
        calls.append(sum(seen))
    assert calls[0] == calls[1] == 4 * (EVAL_WARMUP_CHUNKS + EVAL_WINDOW_CHUNKS) * 8


def test_checkpoint_and_inspect_say_how_validation_was_scored(tmp_path, runner):
    from charrnn.cli.commands import cli
    import json
    text = make_corpus(40_000, seed=2, non_ascii=False)
    cfg = TrainConfig(hidden_size=8, seq_len=8, batch_size=4, val_frac=0.1, max_iters=4,
                      eval_every=2)
    Trainer(cfg, corpus(text), str(tmp_path / "big")).run(progress=False)
    Trainer(cfg, corpus(text[:8000]), str(tmp_path / "small")).run(progress=False)
    big = checkpoint.load(str(tmp_path / "big" / "latest.npz")).config["data"]["val_eval"]
    W = EVAL_WINDOW_CHUNKS * 8
    assert big == {"method": "sampled", "windows": 4, "spacing": "even", "window_chars": W,
                   "warmup_chars": EVAL_WARMUP_CHUNKS * 8, "chars_scored": 4 * W}
    small = checkpoint.load(str(tmp_path / "small" / "latest.npz")).config["data"]["val_eval"]
    assert small["method"] == "whole" and 790 <= small["chars_scored"] <= 800
    r = runner.invoke(cli, ["inspect", str(tmp_path / "big" / "latest.npz"), "--json"])
    assert json.loads(r.stdout)["data"]["val_eval"] == big
    r = runner.invoke(cli, ["inspect", str(tmp_path / "big" / "latest.npz")])
    assert f"validation   sample of 4 windows x {W} chars" in r.stdout
    r = runner.invoke(cli, ["inspect", str(tmp_path / "small" / "latest.npz")])
    assert "validation   the whole split" in r.stdout
