"""`charrnn train --model/--num-layers/--optimizer/...` as a user meets them."""
from __future__ import annotations

import numpy as np
import pytest

from charrnn.store import checkpoint as ckpt
from charrnn.runs.config import model_defaults
from charrnn.nn.model import param_shapes

from helpers import assert_ok, assert_one_line_error, invoke

SMALL = ["--seq-len", "8", "--batch-size", "4", "--max-iters", "12", "--eval-every", "6", "--quiet"]


def test_stacked_lstm_with_every_option_trains_saves_and_samples(runner, corpus_file, tmp_path):
    ck = tmp_path / "ck"
    result = invoke(runner, "train", corpus_file, "--checkpoint-dir", ck, *SMALL,
                    "--model", "lstm", "--num-layers", "3", "--hidden-size", "12",
                    "--embed-size", "5", "--dropout", "0.25", "--optimizer", "rmsprop",
                    "--clip-mode", "norm", "--clip", "2", "--lr", "0.01", "--lr-decay", "0.5",
                    "--lr-decay-every", "4", "--warmup", "2", "--patience", "5")
    assert_ok(result)
    c = ckpt.load(str(ck / "latest.npz"))
    m, t = c.config["model"], c.config["train"]
    assert (m["model"], m["num_layers"], m["hidden_size"], m["embed_size"], m["dropout"]) == \
        ("lstm", 3, 12, 5, 0.25)
    assert (t["optimizer"], t["clip_mode"], t["clip"], t["lr"]) == ("rmsprop", "norm", 2.0, 0.01)
    assert (t["lr_decay"], t["lr_decay_every"], t["warmup"], t["patience"]) == (0.5, 4, 2, 5)
    # optimizer state: one RMSprop slot per parameter
    assert set(c.optim) == {f"ms.{n}" for n in param_shapes(c.model_config)}
    assert c.state["c"].shape == (3, 4, 12)              # LSTM cell state of every layer
    # the schedule as recorded: lr of the last step before each evaluation
    assert list(c.history["lr"]) == pytest.approx([0.01 * 0.5, 0.01 * 0.25])
    s = invoke(runner, "sample", "--checkpoint-dir", ck, "--len", "80", "--seed", "3")
    assert_ok(s)
    text = s.stdout[:-1]
    assert len(text) == 80 and set(text) <= set(c.vocab)
    # dropout is off when sampling: the same seed writes the same text
    assert invoke(runner, "sample", "--checkpoint-dir", ck, "--len", "80", "--seed", "3").stdout == s.stdout


@pytest.mark.parametrize("model", ["lstm", "gru"])
def test_gated_model_gets_its_defaults_and_adam_state(runner, corpus_file, tmp_path, model):
    ck = tmp_path / "ck"
    assert_ok(invoke(runner, "train", corpus_file, "--checkpoint-dir", ck, *SMALL,
                     "--model", model, "--hidden-size", "8", "--num-layers", "2"))
    c = ckpt.load(str(ck / "latest.npz"))
    t, d = c.config["train"], model_defaults(model)
    for k in ("optimizer", "lr", "clip_mode", "clip"):
        assert t[k] == d[k], k
    # a budgeted run (--max-iters): its dropout is the rule's (tests/training/test_budget.py)
    assert t["dropout"] == c.config["choices"]["dropout"]
    assert c.config["model"]["model"] == model and t["hidden_size"] == 8
    if d["optimizer"] == "adam":
        assert int(c.optim["t"]) == 12
        names = param_shapes(c.model_config)
        assert set(c.optim) == {"t"} | {f"m.{n}" for n in names} | {f"v.{n}" for n in names}


def test_default_model_is_the_classic_rnn(runner, trained):
    from charrnn.runs.config import make_train_config
    from charrnn.runs.sizing import BUDGET_OPTIMIZER
    d = make_train_config()                   # a run with no limit: the classic settings
    assert (d.model, d.optimizer, d.clip_mode, d.num_layers) == ("rnn", "adagrad", "value", 1)
    ck = ckpt.load(str(trained.latest))        # a budgeted run (--max-iters): Adam, chosen
    t = ck.config["train"]
    assert (t["model"], t["num_layers"]) == ("rnn", 1)
    assert {k: t[k] for k in BUDGET_OPTIMIZER["rnn"]} == BUDGET_OPTIMIZER["rnn"]
    assert "optimizer" in ck.config["choices"]["chosen"]


@pytest.mark.parametrize("args", [
    ["--model", "transformer"], ["--num-layers", "0"], ["--dropout", "1"], ["--dropout", "-0.1"],
    ["--optimizer", "sgd"], ["--clip-mode", "max"], ["--lr-decay", "0"], ["--lr-decay", "1.5"],
    ["--lr-decay-every", "0"], ["--warmup", "-1"], ["--patience", "-2"], ["--embed-size", "-1"],
])
def test_bad_model_options_are_usage_errors(runner, corpus_file, tmp_path, args):
    ckdir = tmp_path / "ck"
    line = assert_one_line_error(invoke(runner, "train", corpus_file, "--checkpoint-dir", ckdir,
                                        *args), 2)
    assert args[0] in line
    assert not ckdir.exists()


def test_help_states_each_models_default(runner):
    h = invoke(runner, "train", "--help").stdout
    flat = " ".join(h.split())
    for opt in ("optimizer", "clip_mode", "hidden_size"):
        for m in ("rnn", "lstm", "gru"):
            assert f"{model_defaults(m)[opt]} for" in flat
    assert "--patience" in flat and "--lr-decay-every" in flat and "--warmup" in flat


def test_divergence_is_one_line_exit_1_naming_the_flag(runner, corpus_file, tmp_path):
    ck = tmp_path / "ck"
    result = invoke(runner, "train", corpus_file, "--checkpoint-dir", ck, "--hidden-size", "16",
                    *SMALL[:4], "--max-iters", "30", "--eval-every", "1", "--quiet",
                    "--lr", "1000")
    line = assert_one_line_error(result, 1)
    assert "diverged" in line and "lower --lr (now 1000)" in line
    # nothing with exploded weights was written
    assert not list(ck.glob("*.npz"))


def test_patience_from_the_command_line_stops_early(runner, corpus_file, tmp_path):
    """A learning rate so small the loss cannot improve by more than rounding:
    patience 1 stops at the second evaluation."""
    ck = tmp_path / "ck"
    result = invoke(runner, "train", corpus_file, "--checkpoint-dir", ck, "--hidden-size", "8",
                    *SMALL[:4], "--max-iters", "1000", "--eval-every", "2", "--lr", "1e-30",
                    "--patience", "1")
    assert_ok(result)
    c = ckpt.load(str(ck / "latest.npz"))
    assert c.state["iteration"] == 4          # val unchanged at the 2nd evaluation
    assert "stopped early" in result.stderr and "--patience" in result.stderr
    assert np.isfinite(c.history["val_loss"]).all()


def test_weight_drop_and_chunk_masks_are_stored_shown_and_held_on_resume(runner, corpus_file,
                                                                          tmp_path):
    ck = tmp_path / "ck"
    assert_ok(invoke(runner, "train", corpus_file, "--checkpoint-dir", ck, *SMALL, "--model",
                     "gru", "--hidden-size", "8", "--dropout", "0.2", "--dropout-mask", "chunk",
                     "--weight-drop", "0.3", "--weight-average", "0.95", "--adam-beta2", "0.99",
                     "--shift-epochs"))
    c = ckpt.load(str(ck / "latest.npz"))
    assert (c.config["model"]["dropout_mask"], c.config["model"]["weight_drop"]) == ("chunk", 0.3)
    assert (c.model_config.dropout_mask, c.model_config.weight_drop) == ("chunk", 0.3)
    shown = invoke(runner, "inspect", "--checkpoint-dir", ck)
    assert_ok(shown)
    assert "dropout 0.2 (one mask per chunk), weight drop 0.3," in shown.stdout
    assert ", weights averaged (decay 0.95)\n" in shown.stdout
    assert "optimizer    adam (beta2 0.99), lr" in shown.stdout
    assert "seed 1234, cut points shifted each epoch\n" in shown.stdout
    refused = invoke(runner, "train", corpus_file, "--checkpoint-dir", ck, "--resume",
                     "--weight-drop", "0.1", "--max-iters", "20")
    line = assert_one_line_error(refused, 1)
    assert "--weight-drop 0.1 contradicts" in line and "weight_drop 0.3" in line
    assert ckpt.load(str(ck / "latest.npz")).state["iteration"] == 12


def test_weight_drop_changes_training_and_is_off_when_sampling(runner, corpus_file, tmp_path):
    runs = {}
    for name, extra in (("plain", []), ("drop", ["--weight-drop", "0.5"])):
        ck = tmp_path / name
        assert_ok(invoke(runner, "train", corpus_file, "--checkpoint-dir", ck, *SMALL,
                         "--model", "gru", "--hidden-size", "8", "--dropout", "0", *extra))
        runs[name] = ckpt.load(str(ck / "latest.npz"))
    assert not np.array_equal(runs["plain"].params["l0.Wh"], runs["drop"].params["l0.Wh"])
    ck = tmp_path / "drop"
    a = invoke(runner, "sample", "--checkpoint-dir", ck, "--len", "60", "--seed", "4")
    assert_ok(a)
    assert invoke(runner, "sample", "--checkpoint-dir", ck, "--len", "60", "--seed", "4").stdout == a.stdout


def test_lr_floor_is_where_the_budget_schedule_ends(runner, corpus_file, tmp_path):
    from charrnn.runs.config import TrainConfig
    from charrnn.runs.schedule import Plan, lr_at
    for floor, args in ((0.05, []), (0.2, ["--lr-floor", "0.2"]), (0.0, ["--lr-floor", "0"])):
        ck = tmp_path / f"f{floor}"
        assert_ok(invoke(runner, "train", corpus_file, "--checkpoint-dir", ck, "--seq-len", "8",
                         "--batch-size", "4", "--max-iters", "12", "--eval-every", "6",
                         "--quiet", "--lr", "0.01", *args))
        c = ckpt.load(str(ck / "latest.npz"))
        plan = Plan.from_dict(c.config["plan"])
        assert (plan.kind, plan.total, plan.floor) == ("budget", 12, floor)
        cfg = TrainConfig(**c.config["train"])
        assert lr_at(cfg, 12, plan) == pytest.approx(0.01 * floor, abs=1e-15)
        assert lr_at(cfg, 0, plan) == pytest.approx(0.01)
