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


def gru_choice(train_chars, budget, given=None, repeats=0.0, words="x"):
    from charrnn.runs.config import model_defaults
    return sizing.choose("gru", 65, train_chars, budget, given or {}, model_defaults("gru"),
                         words, repeats=repeats)


def test_the_reason_when_everything_is_set():
    from charrnn.runs.config import model_defaults
    given = {"hidden_size": 64, "num_layers": 1, "dropout": 0.1, "batch_size": 32, "seq_len": 50}
    c = sizing.choose("rnn", 64, 10 ** 6, lambda L, H, B, T: 1e7, given, model_defaults("rnn"), "x")
    assert c.reason == "sizes, dropout and batch shape set by you; adam 0.004 for the budget"


@pytest.mark.parametrize("train_chars, budget, ending", [
    (50, 1e12, "1 x 32 gru, embedding 16, dropout 0.3, batch 32 x 64: 7.89k weights, x reads "
               "~1e+03G chars = 2e+10 passes over 50 chars of text in ~488M steps; the smallest "
               "size: none fits the text"),
    (20_000, 1e12, "1 x 64 gru, dropout 0.3, batch 32 x 64: 29.2k weights, x reads ~1e+03G chars "
                   "= 5e+07 passes over 20k chars of text in ~488M steps; the text is too short "
                   "for a larger size"),
    (10 ** 8, 10.0, "2 x 128 gru, dropout 0, batch 32 x 64: 182k weights, x reads ~10 chars = "
                    "1e-07 passes over 100M chars of text in ~0.00488 steps; no larger size is "
                    "affordable"),
])
def test_the_reason_says_why_no_larger_size(train_chars, budget, ending):
    assert gru_choice(train_chars, lambda L, H, B, T: budget).reason == ending


def test_the_reason_names_a_repeat_share_from_a_tenth():
    plenty = lambda L, H, B, T: 1e12          # noqa: E731
    assert gru_choice(10 ** 7, plenty, repeats=0.1).reason.endswith(", 10% of it repeats")
    assert "repeats" not in gru_choice(10 ** 7, plenty, repeats=0.099).reason


def test_the_shapes_weighed_are_recorded():
    c = gru_choice(10 ** 8, lambda L, H, B, T: 10.0)
    assert c.shapes == [
        {"shape": "32x64", "budget_chars": 10.0, "steps": 10.0 / 2048, "eligible": True},
        {"shape": "16x32", "budget_chars": 10.0, "steps": 10.0 / 512, "eligible": False}]


def test_a_smaller_shape_at_its_edges():
    """gru: its own 32x64, or 16x32 while it reads 2 characters a weight."""
    w = 1000

    def shape(own, small):
        return sizing.choose_shape("gru", lambda B, T: own if B == 32 else small, w)[0]
    assert shape(2000 * 2048, 10 ** 9) == (32, 64)          # exactly MIN_STEPS with its own
    assert shape(1999 * 2048, 10 ** 9) == (16, 32)
    assert shape(100.0, 2.0 * w) == (16, 32)                # fed at exactly 2 a weight
    assert shape(100.0, 2.0 * w - 1) == (32, 64)


def test_a_run_without_a_limit_keeps_the_flags():
    from charrnn.runs.config import make_train_config
    c = sizing.unsized(make_train_config(model="gru", embed_size=8))
    assert (c.num_layers, c.hidden_size, c.dropout, c.batch_size, c.seq_len, c.embed_size) == \
        (2, 256, 0.1, 32, 64, 8)
    assert c.reason == ("2 x 256 gru, dropout 0.1, batch 32 x 64: no --max-time or --max-iters "
                        "to size the model for, so the flags or the --model defaults")


@pytest.mark.parametrize("n, shown", [(0.5, "0.5"), (999, "999"), (1000, "1k"), (180_000, "180k"),
                                      (-2500, "-2.5k"), (10 ** 6, "1M"), (12_345_678, "12.3M"),
                                      (10 ** 9, "1G"), (999_999, "1e+03k")])
def test_short_numbers(n, shown):
    assert sizing._short(n) == shown


def test_a_budget_without_an_end_is_recorded_as_zero():
    assert (sizing._finite(math.inf), sizing._finite(3.5)) == (0.0, 3.5)
    assert sizing._finite(math.nan) == 0.0


def repeats_by_hand(train, val):
    """The share of val's 32-character windows found in train, by sets."""
    n = sizing.REPEAT_WINDOW
    if len(val) <= n:
        cut = len(train) - len(train) // 10
        train, val = train[:cut], train[cut:]
    if len(train) <= n or len(val) <= n:
        return 0.0
    seen = {tuple(train[i:i + n]) for i in range(len(train) - n + 1)}
    windows = [tuple(val[i:i + n]) for i in range(len(val) - n + 1)]
    return sum(w in seen for w in windows) / len(windows)


def test_the_repeat_share_against_windows_compared_by_hand():
    import numpy as np
    rng = np.random.default_rng(7)
    base = rng.integers(0, 5, 300)
    cases = [(base, base[100:180]), (base, rng.integers(0, 5, 90)),
             (base, np.concatenate([base[:50], rng.integers(0, 5, 40)])),
             (base, base[:32]), (base, base[:33]), (base[:330], []), (base[:32], base),
             (base[:33], base[:33]), (rng.integers(0, 5, 400), base[:20])]
    # no validation text: the last tenth of the training text, with a repeated stretch at its end
    tail = np.concatenate([base, rng.integers(0, 5, 20), base[:34]])        # 354: the last 35
    cases += [(tail, []), (tail, base[:32]), (np.concatenate([base[:288], base[:32]]), [])]
    for train, val in cases:
        expected = repeats_by_hand(list(train), list(val))
        assert sizing.repeat_share(train, np.asarray(val, dtype=base.dtype)) == \
            pytest.approx(expected, abs=1e-12), (len(train), len(val))
    assert repeats_by_hand(list(base), list(base[100:180])) == 1.0
    assert repeats_by_hand(list(tail), []) == pytest.approx(0.75)   # 3 of its 4 windows


def test_windows_that_differ_only_in_their_first_character_differ():
    import numpy as np
    train = np.array([0] + [1] * 31 + [2])
    val = np.array([4] + [1] * 31 + [3])
    assert sizing.repeat_share(train, val) == 0.0
