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


def rnn_choice(train_chars, budget, given=None):
    from charrnn.runs.config import model_defaults
    return sizing.choose("rnn", 64, train_chars, budget, given or {}, model_defaults("rnn"),
                         "--max-time 1m")


W512 = 64 * 512 + 512 * 512 + 512 + 512 * 64 + 64      # rnn 1x512 on 64 characters: 328,256


def test_a_size_fits_a_text_of_exactly_half_its_weights():
    assert sizing.count_weights("rnn", 64, 1, 512) == W512
    plenty = lambda L, H, B, T: 1e12                        # noqa: E731
    fits = rnn_choice(W512 // 2, plenty)
    assert (fits.num_layers, fits.hidden_size) == (1, 512)
    assert fits.candidates == [{"size": "1x512", "weights": W512, "fits_text": True,
                                "budget_chars": 1e12, "affordable": True}]
    short = rnn_choice(W512 // 2 - 1, plenty)
    assert (short.num_layers, short.hidden_size) == (1, 256)
    assert short.candidates[0] == {"size": "1x512", "weights": W512, "fits_text": False}


def test_a_size_is_affordable_at_exactly_its_characters_per_weight():
    """The budgeted rnn trains with Adam: 200 characters a weight."""
    exactly = lambda L, H, B, T: 200.0 * sizing.count_weights("rnn", 64, L, H)   # noqa: E731
    c = rnn_choice(10 ** 9, exactly)
    assert (c.num_layers, c.hidden_size) == (1, 512)
    assert c.candidates[0]["affordable"] and c.candidates[0]["budget_chars"] == 200.0 * W512


def test_the_reason_in_numbers():
    set_all = {"hidden_size": 64, "num_layers": 1, "embed_size": 16, "batch_size": 32,
               "seq_len": 50}
    c = rnn_choice(400_000, lambda L, H, B, T: 1.6e6, set_all)
    # 64x16 + 16x64 + 64x64 + 64 + 64x64 + 64 weights; 1.6M / (32 x 50) steps
    assert c.reason == ("1 x 64 rnn (size set by you), dropout 0, batch 32 x 50 (batch shape "
                        "set by you), adam 0.004: 10.4k weights, --max-time 1m reads ~1.6M chars "
                        "= 4 passes over 400k chars of text in ~1k steps")
    one = rnn_choice(1, lambda L, H, B, T: 1.6e6, set_all)
    assert "= 1.6e+06 passes over 1 chars of text" in one.reason


@pytest.mark.parametrize("given, kept", [({"num_layers": 2}, (2, 256)),
                                         ({"hidden_size": 64}, (2, 64))])
def test_a_size_half_set_is_not_listed_as_chosen(given, kept):
    from charrnn.runs.config import model_defaults
    c = sizing.choose("gru", 64, 10 ** 9, lambda L, H, B, T: 1e12, given, model_defaults("gru"), "x")
    assert (c.num_layers, c.hidden_size) == kept
    assert c.chosen == ("dropout", "batch_size", "seq_len")
