"""runs/sizing.py's small rules at their edges, by hand-worked numbers:
the weights of a shape, the embedding width, the dropout steps and the
repeat share's ease (the whole choice is tested in test_budget.py)."""
import math

import pytest

from charrnn.runs import sizing


def test_weights_of_a_shape_by_hand():
    # rnn 1x32 on 65 characters: Wx 65x32, Wh 32x32, b 32, out 32x65 + 65
    assert sizing.count_weights("rnn", 65, 1, 32) == 65 * 32 + 32 * 32 + 32 + 32 * 65 + 65
    # with a 16-wide embedding: 65x16, then Wx 16x32
    assert sizing.count_weights("rnn", 65, 1, 32, 16) == 65 * 16 + 16 * 32 + 32 * 32 + 32 + 32 * 65 + 65
    # gru 2x32 (3 gates: 96 columns, one bias each), 16-wide embedding
    assert sizing.count_weights("gru", 65, 2, 32, 16) == (65 * 16 + (16 * 96 + 32 * 96 + 96)
                                                          + (32 * 96 + 32 * 96 + 96) + 32 * 65 + 65)


def test_the_embedding_at_exactly_half_the_lookups_weights():
    # gru, H 64: E 32 holds 2 x (V x 32 + 32 x 192) against V x 192: equal at V = 96
    assert sizing.embed_for("gru", 96, 64) == 32
    assert sizing.embed_for("gru", 95, 64) == 0
    assert sizing.embed_for("rnn", 10 ** 6, 64) == 0         # G = 1 never gains
    # the narrowest embedding is 1 wide (H 2: E 1 pays from V 3 on)
    assert sizing.embed_for("gru", 65, 2) == 1


@pytest.mark.parametrize("weights, train, budget, dropout", [
    (12, 10, 10, 0.1),          # pressure exactly 1.2: the first step's edge belongs to the next
    (11, 10, 10, 0.0),
    (200, 100, 25, 0.0),        # a quarter pass: pressure 2 x sqrt(0.25) = 1
    (3, 1, 1.0, 0.2),           # one training character: pressure 3 x sqrt(1) = 3
    (2, 1, 1.0, 0.1),
    (3, 0, 1.0, 0.2),           # no training text counts as one character
    (100, 100, math.inf, 0.3),  # a pressure past every step
    (1, 100, 10 ** 9, 0.3),
])
def test_dropout_by_pressure(weights, train, budget, dropout):
    assert sizing.dropout_for(weights, train, budget) == dropout


@pytest.mark.parametrize("repeats, ease", [(-1.0, 1.0), (0.0, 1.0), (0.5, 0.25), (0.8, 0.1),
                                           (1.0, 0.1), (1.5, 0.1)])
def test_the_ease_of_a_text_that_repeats_itself(repeats, ease):
    assert sizing.NOVELTY_FLOOR == 0.1
    assert sizing.novelty(repeats) == pytest.approx(ease, abs=1e-12)
