"""The advice rules on histories written by hand: each fires on the pattern
it names, with its numbers in the evidence, and stays silent on a healthy
curve.  (tests/training/test_advice_runs.py builds real runs that trigger them.)"""
import math

import pytest

from charrnn.views import advice

CONFIG = {"train": {"model": "rnn", "lr": 0.03, "hidden_size": 128, "dropout": 0.0},
          "data": {"sources": ["/data/my text.txt"]}}


def healthy(n=8):
    """Both losses falling, val a little above train; health figures normal."""
    return {"iter": [500 * (i + 1) for i in range(n)],
            "train_loss": [2.5 - 0.1 * i for i in range(n)],
            "val_loss": [2.55 - 0.1 * i for i in range(n)],
            "lr": [0.03] * n, "grad_norm": [1.0] * n, "clip_share": [0.05] * n,
            "update_ratio": [1e-3] * n, "saturation": [0.02] * n, "memory": [0.2] * n}


def rules(h, config=CONFIG):
    return [f.rule for f in advice.diagnose(h, config)]


def test_a_healthy_run_says_so():
    assert rules(healthy()) == []
    assert advice.verdict([], 8).startswith("healthy")
    assert "too early" in advice.verdict([], 2)


def test_overfitting_names_where_it_began_and_suggests_dropout():
    h = healthy()
    h["val_loss"] = [2.5, 2.3, 2.2, 2.15, 2.2, 2.3, 2.4, 2.5]
    (f,) = advice.diagnose(h, CONFIG)
    assert f.rule == "overfitting"
    assert "2.150 at iteration 2000" in f.evidence and "2.500 at 4000" in f.evidence
    assert f.suggestion == ("charrnn train '/data/my text.txt' --model rnn --dropout 0.2 "
                            "--checkpoint-dir checkpoints-next")
    # with dropout at its cap, a smaller model instead
    capped = {**CONFIG, "train": {**CONFIG["train"], "dropout": 0.5}}
    assert "--hidden-size 64" in advice.diagnose(h, capped)[0].suggestion


def test_validation_rising_with_training_rising_too_is_not_overfitting():
    h = healthy()
    h["val_loss"] = [2.5, 2.3, 2.2, 2.15, 2.2, 2.3, 2.4, 2.5]
    h["train_loss"] = [2.5, 2.3, 2.2, 2.15, 2.2, 2.3, 2.4, 2.5]
    assert "overfitting" not in rules(h)


def test_validation_rising_while_training_stays_flat_is_not_overfitting():
    # validation rose 0.35 from its best at iteration 2000: overfitting needs
    # training to fall by at least half that (0.175) over the same stretch
    h = healthy()
    h["val_loss"] = [2.5, 2.3, 2.2, 2.15, 2.2, 2.3, 2.4, 2.5]
    h["train_loss"] = [2.5, 2.3, 2.2, 2.1, 2.1, 2.1, 2.1, 2.1]
    assert "overfitting" not in rules(h)
    h["train_loss"][-1] = 2.0                   # fell 0.10: still noise
    assert "overfitting" not in rules(h)
    h["train_loss"][-1] = 1.88                  # fell 0.22: overfitting
    assert rules(h)[:1] == ["overfitting"]


def test_underfitting_when_both_are_flat_and_close():
    h = healthy()
    h["train_loss"] = [2.5, 2.2, 2.1, 2.05, 2.04, 2.04, 2.035, 2.035]
    h["val_loss"] = [2.52, 2.22, 2.12, 2.07, 2.06, 2.06, 2.055, 2.055]
    (f,) = advice.diagnose(h, CONFIG)
    assert f.rule == "underfitting" and "2.060 -> 2.055" in f.evidence
    assert "--model lstm" in f.suggestion and "--model rnn" not in f.suggestion
    gated = {**CONFIG, "train": {**CONFIG["train"], "model": "gru", "hidden_size": 256}}
    assert "--hidden-size 512" in advice.diagnose(h, gated)[0].suggestion


def test_learning_rate_too_high_from_clipping_or_spikes():
    h = healthy()
    h["clip_share"] = [0.1, 0.2, 0.5, 0.7, 0.9, 0.95, 0.9, 0.92]
    (f,) = advice.diagnose(h, CONFIG)
    assert f.rule == "lr_too_high" and "92% of the recent steps" in f.evidence
    assert "--lr 0.01" in f.suggestion
    h = healthy()
    h["train_loss"][5] = h["train_loss"][4] * 1.5
    assert rules(h) == ["lr_too_high"]
    assert "jumped" in advice.diagnose(h, CONFIG)[0].evidence


def test_learning_rate_too_low_from_tiny_updates():
    h = healthy()
    h["update_ratio"] = [1e-6] * 8
    (f,) = advice.diagnose(h, CONFIG)
    assert f.rule == "lr_too_low" and "1.0e-06" in f.evidence and "--lr 0.3" in f.suggestion


def test_vanishing_gradients_only_for_a_vanilla_rnn():
    h = healthy()
    h["memory"] = [1e-5] * 8
    (f,) = advice.diagnose(h, CONFIG)
    assert f.rule == "vanishing" and "--model lstm" in f.suggestion
    lstm = {**CONFIG, "train": {**CONFIG["train"], "model": "lstm"}}
    assert rules(h, lstm) == []


def test_saturated_units():
    h = healthy()
    h["saturation"] = [0.02] * 7 + [0.7]
    (f,) = advice.diagnose(h, CONFIG)
    assert f.rule == "saturated" and "70%" in f.evidence


def test_an_old_history_without_health_curves_gets_the_loss_rules_only():
    h = {k: v for k, v in healthy().items() if k in ("iter", "train_loss", "val_loss", "lr")}
    assert rules(h) == []
    h["val_loss"] = [2.5, 2.3, 2.2, 2.15, 2.2, 2.3, 2.4, 2.5]
    assert rules(h) == ["overfitting"]


def test_nan_evaluations_are_ignored():
    h = healthy()
    h["val_loss"][3] = math.nan
    h["clip_share"][7] = math.nan
    assert rules(h) == []


@pytest.mark.parametrize("sources, word", [(["<stdin>"], " - "), ([], " FILE ")])
def test_the_suggested_command_names_the_text(sources, word):
    h = healthy()
    h["memory"] = [1e-5] * 8
    cfg = {**CONFIG, "data": {"sources": sources}}
    assert word in advice.diagnose(h, cfg)[0].suggestion
