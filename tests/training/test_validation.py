"""Validation during training (runs/validation.py): the plan recorded in the
checkpoint against what the loss functions actually read and score, counted
by a model that only counts, and the NaN cases."""
import math

import numpy as np
import pytest

from charrnn.nn.model import Model, ModelConfig, init_params, zero_state
from charrnn.runs.validation import (EVAL_SHAPE, chars_read, eval_shape, sampled_validation_loss,
                                     score, val_plan, validation_loss)

CFG = ModelConfig(vocab_size=5, model="gru", hidden_size=4, dtype="float64")


class Counting:
    """A model that scores nothing: it counts the characters it is handed."""
    cfg = CFG

    def __init__(self):
        self.read = self.scored = 0

    def loss(self, x, y, state):
        assert x.shape == y.shape
        self.read += x.size
        self.scored += y.size
        return 1.0, state


def real_model():
    return Model(CFG, init_params(CFG, np.random.default_rng(0)))


@pytest.mark.parametrize("run, chosen, expected", [
    ((8, 16), False, (8, 16)),
    ((8, 16), True, EVAL_SHAPE),
    ((40, 10), True, (40, 64)),
    ((8, 100), True, (32, 100)),
    ((48, 100), True, (48, 100)),
])
def test_the_evaluation_shape(run, chosen, expected):
    assert EVAL_SHAPE == (32, 64)
    assert eval_shape(*run, chosen) == expected


def test_a_whole_plan_records_what_validation_scores():
    """Every short split (0 to 60 characters, 1-5 streams, chunks of 1-7):
    the plan's characters are those validation_loss scores and reads."""
    for n in range(0, 61):
        ids = np.arange(n) % CFG.vocab_size
        for batch in range(1, 6):
            for seq in range(1, 8):
                plan = val_plan(n, batch, seq)
                if n > batch * (56 * seq + 1):
                    continue                # sampled: below
                assert plan == {"method": "whole", "chars_scored": plan["chars_scored"]}
                model = Counting()
                validation_loss(model, ids, batch, seq)
                assert (plan["chars_scored"], chars_read(plan)) == (model.scored, model.read), \
                    (n, batch, seq)


def test_the_split_is_sampled_once_it_is_longer_than_the_windows():
    # 2 windows of 4 warm-up and 52 scored chunks of 3: 169 characters each, y included
    assert val_plan(338, 2, 3)["method"] == "whole"
    plan = val_plan(339, 2, 3)
    assert plan == {"method": "sampled", "windows": 2, "spacing": "even", "window_chars": 156,
                    "warmup_chars": 12, "chars_scored": 312, "starts": [0, 170]}
    assert chars_read(plan) == 2 * (12 + 156)
    # one window sits in the middle of the room left
    assert val_plan(1000, 1, 2)["starts"] == [(1000 - 113) // 2]


@pytest.mark.parametrize("n, batch, seq", [(339, 2, 3), (1000, 1, 2), (5000, 4, 5)])
def test_a_sampled_plan_records_what_validation_reads(n, batch, seq):
    plan = val_plan(n, batch, seq)
    assert plan["method"] == "sampled"
    if batch > 1:               # the first starts the split, the last ends it
        assert plan["starts"][0] == 0
        assert plan["starts"][-1] + plan["warmup_chars"] + plan["window_chars"] + 1 == n
    model = Counting()
    sampled_validation_loss(model, np.arange(n) % CFG.vocab_size, plan, seq)
    assert chars_read(plan) == model.read


def test_a_sampled_loss_is_the_mean_over_the_windows_after_their_warm_up():
    """Against each window read whole from a zero state: its scored part's
    loss is the whole window's minus the warm-up's, by their lengths."""
    model, ids = real_model(), np.random.default_rng(1).integers(0, 5, 339)
    plan = val_plan(339, 2, 3)
    w, n = plan["warmup_chars"], plan["window_chars"]
    per_window = []
    for s in plan["starts"]:
        x, y = ids[None, s: s + w + n], ids[None, s + 1: s + w + n + 1]
        whole = model.loss(x, y, zero_state(CFG, 1))[0]
        warm = model.loss(x[:, :w], y[:, :w], zero_state(CFG, 1))[0]
        per_window.append((whole * (w + n) - warm * w) / n)
    assert sampled_validation_loss(model, ids, plan, 3) == pytest.approx(np.mean(per_window), rel=1e-10)


def test_nothing_to_score_is_nan():
    model = real_model()
    assert math.isnan(validation_loss(model, np.array([1]), 2, 3))
    assert math.isnan(score(model, np.array([1]), val_plan(1, 2, 3), (2, 3)))
    empty = {"method": "sampled", "warmup_chars": 6, "window_chars": 0, "starts": [0, 3]}
    assert math.isnan(sampled_validation_loss(model, np.arange(20) % 5, empty, 3))


def test_two_characters_are_scored():
    model, ids = real_model(), np.array([1, 3])
    loss = score(model, ids, val_plan(2, 2, 3), (2, 3))
    assert math.isfinite(loss)
    assert loss == validation_loss(model, ids, 2, 3)


@pytest.mark.parametrize("n", [40, 2000])
def test_a_stop_between_chunks_abandons_the_evaluation(n):
    model, ids = real_model(), np.arange(n) % CFG.vocab_size
    plan = val_plan(n, 2, 3)
    assert plan["method"] == ("whole", "sampled")[n > 1000]
    assert math.isfinite(score(model, ids, plan, (2, 3)))
    assert math.isnan(score(model, ids, plan, (2, 3), stop=lambda: True))
    fn = sampled_validation_loss if n > 1000 else validation_loss
    args = (plan, 3) if n > 1000 else (2, 3)
    assert math.isnan(fn(model, ids, *args, stop=lambda: True))
