"""charrnn.generate.sample: temperature, top-k, top-p, inverse-CDF draws, argmax, stop
strings and beam search, each against a straightforward reference."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import example, given, settings, strategies as st

from charrnn.generate import batch as B
from charrnn.generate import sample as S
from charrnn.errors import CharRNNError
from charrnn.nn.model import Model, ModelConfig, param_shapes

logit_lists = st.lists(st.floats(-20, 20, allow_nan=False), min_size=1, max_size=30)


def _ref_softmax(logits, t=1.0):
    z = [x / t for x in logits]
    m = max(z)
    e = [math.exp(x - m) for x in z]
    return np.array([x / sum(e) for x in e])


def tiny_model(kind="rnn", vocab="abc", hidden=6, layers=1, seed=0, scale=1.0):
    """A float64 model with large random weights, so its distributions are far
    from uniform and from each other (no near-ties between continuations)."""
    cfg = ModelConfig(vocab_size=len(vocab), model=kind, hidden_size=hidden,
                      num_layers=layers, dtype="float64")
    rng = np.random.default_rng(seed)
    params = {n: rng.standard_normal(s) * scale for n, s in param_shapes(cfg).items()}
    return Model(cfg, params), vocab


# ------------------------------------------------------------ temperature
@given(logit_lists, st.floats(0.05, 20))
def test_softmax_with_temperature_matches_reference(logits, t):
    p = S.softmax(np.array(logits), t)
    assert p.dtype == np.float64 and p.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(p, _ref_softmax(logits, t), rtol=1e-9, atol=1e-300)


def test_low_temperature_concentrates_and_high_flattens():
    logits = np.array([1.0, 2.0, 0.5, 1.9])
    assert S.softmax(logits, 0.01)[1] > 0.99
    assert np.ptp(S.softmax(logits, 100.0)) < 0.01


@pytest.mark.parametrize("t", [0.0, -1.0])
def test_temperature_must_be_positive(t):
    with pytest.raises(CharRNNError):
        S.softmax(np.zeros(3), t)


# ------------------------------------------------------------------ top-k
@given(logit_lists, st.integers(1, 35))
def test_top_k_keeps_exactly_the_k_most_likely(logits, k):
    probs = S.softmax(np.array(logits))
    keep = S.top_k_mask(probs, k)
    assert keep.sum() == min(k, len(probs))
    if not keep.all():
        assert probs[keep].min() >= probs[~keep].max()


@given(logit_lists, st.integers(1, 35), st.floats(0.1, 5))
def test_probabilities_with_top_k_are_the_renormalised_softmax_on_the_k_best(logits, k, t):
    logits = np.array(logits)
    p = S.probabilities(logits, t, top_k=k)
    soft = S.softmax(logits, t)
    keep = S.top_k_mask(soft, k)
    assert np.all(p[~keep] == 0)
    assert p.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(p[keep], soft[keep] / soft[keep].sum(), rtol=1e-9)


def test_top_k_ties_go_to_the_lower_id():
    probs = np.array([0.2, 0.3, 0.3, 0.2])
    assert list(S.top_k_mask(probs, 1)) == [False, True, False, False]
    assert list(S.top_k_mask(probs, 3)) == [True, True, True, False]


def test_top_k_draws_never_leave_the_k_most_likely():
    rng = np.random.default_rng(0)
    logits = rng.standard_normal(40)
    best3 = set(np.argsort(-logits)[:3])
    probs = S.probabilities(logits, 1.0, top_k=3)
    drawn = {S.draw(probs, u) for u in rng.random(5000)}
    assert drawn == best3


# ------------------------------------------------------------------ top-p
@settings(max_examples=300)
@given(logit_lists, st.floats(0.001, 1.0))
@example([0.0, 0.0, 0.0, 0.0], 0.5)          # mass exactly p after two of four
@example([5.0, 0.0, -1.0], 1.0)
def test_top_p_keeps_the_smallest_most_likely_set_with_mass_at_least_p(logits, p):
    probs = S.softmax(np.array(logits))
    keep = S.top_p_mask(probs, p)
    mass = probs[keep].sum()
    tol = 1e-12
    assert mass >= p - tol                                   # enough mass
    assert mass - probs[keep].min() < p + tol                # ... and no set smaller
    if not keep.all():
        assert probs[keep].min() >= probs[~keep].max()       # the most likely ones


def test_top_p_small_examples():
    probs = np.array([0.125, 0.5, 0.125, 0.25])          # exact in binary
    assert list(S.top_p_mask(probs, 0.5)) == [False, True, False, False]
    assert list(S.top_p_mask(probs, 0.51)) == [False, True, False, True]
    assert list(S.top_p_mask(probs, 0.75)) == [False, True, False, True]
    assert list(S.top_p_mask(probs, 0.76)) == [True, True, False, True]    # tie: lower id
    assert S.top_p_mask(probs, 1.0).all()


def test_top_p_is_applied_after_top_k_on_the_renormalised_rest():
    logits = np.log(np.array([0.1, 0.5, 0.15, 0.25]))
    # top-k 2 leaves {1: 2/3, 3: 1/3}; top-p 0.6 of that keeps only id 1.
    assert list(S.probabilities(logits, top_k=2, top_p=0.6)) == [0, 1, 0, 0]
    # top-p alone at 0.6 needs ids 1 and 3 (0.75).
    p = S.probabilities(logits, top_p=0.6)
    assert np.flatnonzero(p).tolist() == [1, 3]


@pytest.mark.parametrize("bad", [0.0, -0.1, 1.5])
def test_top_p_range(bad):
    with pytest.raises(CharRNNError):
        S.top_p_mask(np.array([0.5, 0.5]), bad)


# ------------------------------------------------------------------- draw
def _ref_draw(probs, u):
    total = 0.0                  # summed left to right, as the cumulative sum is
    for p in probs:
        total += float(p)
    acc = 0.0
    for i, p in enumerate(probs):
        acc += p
        if acc > u * total and p > 0:
            return i
    return max(i for i, p in enumerate(probs) if p > 0)


@settings(max_examples=300)
@given(st.lists(st.sampled_from([0.0, 0.0, 1e-300, 0.1, 0.3, 1.0, 7.0]), min_size=1,
                max_size=12).filter(lambda ps: sum(ps) > 0),
       st.floats(0.0, 1.0, exclude_max=True))
@example([1.0, 0.0], 1 - 2 ** -53)
@example([0.3, 0.0, 0.7, 0.0], 1 - 2 ** -53)
@example([0.0, 1.0], 0.0)
def test_draw_is_the_inverse_cdf_and_never_picks_probability_zero(ps, u):
    probs = np.array(ps)
    i = S.draw(probs, u)
    assert probs[i] > 0
    assert i == _ref_draw(probs, u)


@given(logit_lists, st.floats(0.1, 5), st.one_of(st.none(), st.integers(1, 35)),
       st.one_of(st.none(), st.floats(0.01, 1.0)))
def test_weights_are_proportional_to_the_probabilities(logits, t, k, p):
    w = S.weights(np.array(logits), t, k, p)
    np.testing.assert_allclose(w / w.sum(), S.probabilities(np.array(logits), t, k, p),
                               rtol=1e-12, atol=1e-300)
    assert np.array_equal(w > 0, S.probabilities(np.array(logits), t, k, p) > 0)


def test_draw_frequencies_follow_the_probabilities():
    probs = np.array([0.05, 0.0, 0.5, 0.2, 0.25])
    n = 10000
    counts = np.bincount([S.draw(probs, (j + 0.5) / n) for j in range(n)], minlength=5)
    np.testing.assert_allclose(counts / n, probs, atol=1.5 / n)


# --------------------------------------------------------- iter_chars
class CountingRng:
    """np.random.Generator stand-in that counts uniforms."""

    def __init__(self, seed):
        self.g = np.random.default_rng(seed)
        self.calls = 0

    def random(self):
        self.calls += 1
        return self.g.random()


@pytest.mark.parametrize("kw", [{}, {"top_k": 2}, {"top_p": 0.7}, {"temperature": 0.5},
                                {"top_k": 3, "top_p": 0.9, "temperature": 2.0}])
def test_one_uniform_per_generated_character(kw):
    model, vocab = tiny_model(vocab="abcdef")
    rng = CountingRng(1)
    out = S.generate(model, vocab, 37, prime="ab", rng=rng, **kw)
    assert len(out) == 37 and rng.calls == 37


def test_argmax_draws_nothing_and_equals_brute_force_greedy():
    model, vocab = tiny_model("lstm", vocab="abcde", layers=2)
    rng = CountingRng(5)
    out = S.generate(model, vocab, 25, prime="ba", rng=rng, argmax=True)
    assert rng.calls == 0
    # Brute force: re-run the whole text from scratch before every character.
    text = ""
    for _ in range(25):
        logits, _ = S.prime_state(model, vocab, "ba" + text)
        probs = _ref_softmax(list(logits[0]))
        text += vocab[int(np.argmax(probs))]
    assert out == text


def test_the_draws_follow_the_model_distribution_step_by_step():
    """Each character is draw(probabilities(...), u) for the next uniform u, given
    the text so far (recomputed from scratch here)."""
    model, vocab = tiny_model("gru", vocab="xyz")
    kw = {"temperature": 0.7, "top_k": 2}
    out = S.generate(model, vocab, 20, prime="zy", rng=np.random.default_rng(3), **kw)
    us = np.random.default_rng(3)
    text = ""
    for _ in range(20):
        logits, _ = S.prime_state(model, vocab, "zy" + text)
        text += vocab[S.draw(S.weights(logits[0], 0.7, top_k=2), us.random())]
    assert out == text


@pytest.mark.parametrize("prime,stops", [("a", ["c"]), ("ab", ["ba", "cc"]), ("", ["\n\n"]),
                                         ("bc", ["cb"]), ("c", ["\n"])])
def test_until_stops_right_after_the_first_stop_string(prime, stops):
    model, vocab = tiny_model(vocab="\nabc", seed=2)
    full = S.generate(model, vocab, 300, prime=prime, rng=np.random.default_rng(4))
    cut = S.generate(model, vocab, 300, prime=prime, rng=np.random.default_rng(4), until=stops)
    # Reference: the first position where prime + generated ends with a stop
    # string and the match ends in the generated part.
    whole = prime + full
    end = next((k for k in range(len(prime) + 1, len(whole) + 1)
                if any(whole[:k].endswith(s) for s in stops)), len(whole))
    assert end < len(whole)             # the stop string does occur in 300 characters
    assert cut == whole[len(prime):end]
    assert any((prime + cut).endswith(s) for s in stops)


def test_until_matches_across_the_prime_boundary_but_not_inside_the_prime():
    model, vocab = tiny_model(vocab="ab", seed=0)
    # Inside the prime only: generation must go on.
    assert len(S.generate(model, vocab, 50, prime="abab", rng=np.random.default_rng(0),
                          until=["bab"])) > 0
    full = S.generate(model, vocab, 50, prime="a", rng=np.random.default_rng(0))
    first = full[0]
    cut = S.generate(model, vocab, 50, prime="a", rng=np.random.default_rng(0),
                     until=["a" + first])
    assert cut == first


def test_prime_outside_the_vocabulary():
    model, vocab = tiny_model()
    with pytest.raises(CharRNNError, match="vocabulary"):
        S.generate(model, vocab, 5, prime="abz")


# ------------------------------------------------------ batched sampling
@settings(max_examples=60, deadline=None)
@given(st.lists(logit_lists.filter(lambda l: len(l) == 7), min_size=1, max_size=6),
       st.floats(0.05, 5), st.one_of(st.none(), st.integers(1, 8)),
       st.one_of(st.none(), st.floats(0.05, 1.0)), st.floats(0, 1, exclude_max=True))
def test_row_decoding_equals_the_one_row_functions(rows, t, k, p, u):
    """weights_rows/draw_rows give, row by row, exactly weights/draw."""
    logits = np.array(rows)
    w = B.weights_rows(logits, t, k, p)
    us = [(u + 0.37 * r) % 1.0 for r in range(len(rows))]
    ids = B.draw_rows(w, us)
    for r, row in enumerate(logits):
        one = S.weights(row, t, k, p)
        np.testing.assert_array_equal(w[r], one)
        assert ids[r] == S.draw(one, us[r])


def _reference_samples(model, vocab, n, length, seed, **kw):
    """N independent lone runs of iter_chars, sample i with sample_rng(seed, i)."""
    return [S.generate(model, vocab, length, rng=S.sample_rng(seed, i), **kw) for i in range(n)]


def _batched(model, vocab, n, length, seed, **kw):
    out = [""] * n
    for i, c, _ in B.iter_batch(model, vocab, length, [S.sample_rng(seed, i) for i in range(n)],
                                **kw):
        out[i] += c
    return out


@pytest.mark.parametrize("kind,layers", [("rnn", 1), ("lstm", 2), ("gru", 2)])
@pytest.mark.parametrize("kw", [{}, {"temperature": 0.6, "top_k": 3},
                                {"top_p": 0.8, "prime": "ba"}, {"argmax": True, "prime": "c"},
                                {"until": ["ce", "dd"], "prime": "a"}])
def test_batched_samples_equal_independent_lone_runs(kind, layers, kw):
    model, vocab = tiny_model(kind, vocab="abcde", hidden=8, layers=layers, seed=3)
    got = _batched(model, vocab, 9, 40, 17, **kw)
    assert got == _reference_samples(model, vocab, 9, 40, 17, **kw)
    if "until" not in kw:
        assert all(len(x) == 40 for x in got)
    if not kw.get("argmax"):
        assert len(set(got)) > 1            # each sample has its own stream


def test_each_sample_stops_at_its_own_until_match():
    model, vocab = tiny_model("lstm", vocab="\nabc", hidden=8, seed=2)
    got = _batched(model, vocab, 12, 200, 5, until=["\n"])
    lengths = [len(x) for x in got]
    assert len(set(lengths)) > 2                           # they stop at different times
    for x in got:
        assert x.endswith("\n") and "\n" not in x[:-1]


def test_first_sample_of_n_is_bit_for_bit_the_lone_sample_in_float32():
    cfg = ModelConfig(vocab_size=30, model="lstm", hidden_size=64, num_layers=2)
    rng = np.random.default_rng(0)
    model = Model(cfg, {n: (rng.standard_normal(s) * 0.5).astype(np.float32)
                        for n, s in param_shapes(cfg).items()})
    vocab = "".join(chr(65 + i) for i in range(30))
    alone = S.generate(model, vocab, 300, rng=S.sample_rng(4, 0), top_p=0.95)
    assert _batched(model, vocab, 20, 300, 4, top_p=0.95)[0] == alone


def test_batches_of_samples_and_length_zero(monkeypatch):
    model, vocab = tiny_model("gru", vocab="abcd", hidden=6, seed=1)
    full = _batched(model, vocab, 7, 30, 2)
    monkeypatch.setattr(B, "BATCH_ROWS", 3)               # 7 samples in 3 batches
    assert _batched(model, vocab, 7, 30, 2) == full
    assert _batched(model, vocab, 3, 30, 2) == full[:3]  # sample i does not depend on N
    assert list(B.iter_batch(model, vocab, 0, [S.sample_rng(1, i) for i in range(2)])) == \
        [(0, "", True), (1, "", True)]
    monkeypatch.setattr(B, "BATCH_ROWS", 128)
    monkeypatch.setattr(B, "BATCH_CHARS", 75)             # 75 // 30: 2 rows a batch
    assert _batched(model, vocab, 7, 30, 2) == full


@pytest.mark.parametrize("group_rows", [8, 64])
def test_batched_samples_do_not_depend_on_the_threads(monkeypatch, group_rows):
    """Groups spread over worker threads (8 rows: six groups; 64 rows: sample
    0 in one thread, the rest in the other) give the text of one thread."""
    monkeypatch.setattr(B, "GROUP_ROWS", group_rows)
    monkeypatch.setattr(B, "PAR_MIN_MACS", 0)          # threads even for a small model
    cfg = ModelConfig(vocab_size=20, model="gru", hidden_size=48, num_layers=2)
    rng = np.random.default_rng(1)
    params = {n: (rng.standard_normal(s) * 0.4).astype(np.float32)
              for n, s in param_shapes(cfg).items()}
    vocab = "abcdefghijklmnopqrst"
    texts = []
    for threads in (1, 2):
        model = Model(cfg, dict(params), threads=threads)
        assert model.workers(40) == threads
        texts.append(_batched(model, vocab, 40, 60, 9, top_k=10))
    assert texts[0] == texts[1]
    assert texts[0][0] == S.generate(Model(cfg, params), vocab, 60, rng=S.sample_rng(9, 0),
                                     top_k=10)


def test_in_order_streams_the_first_sample_and_holds_the_others():
    # three samples stepping together: 1 stops first, then 0, then 2
    events = [(0, "a", False), (1, "x", False), (2, "p", False),
              (0, "b", False), (1, "y", True), (2, "q", False),
              (0, "c", True), (2, "r", False),
              (2, "s", True)]
    out, seen = [], []

    def tracked():
        for e in events:
            seen.append(e)
            yield e
    for piece in B.in_order(tracked(), 3):
        out.append((piece, len(seen)))
    # sample 0 passes through at once, character by character ...
    assert out[:3] == [((0, "a"), 1), ((0, "b"), 4), ((0, "c"), 7)]
    # ... then sample 1 (already complete), then 2 so far, then 2 live
    assert out[3:] == [((1, "xy"), 7), ((2, "pq"), 7), ((2, "r"), 8), ((2, "s"), 9)]


# ------------------------------------------------------------ beam search
def _brute_force(model, vocab, prime, length, stops=()):
    """Every complete candidate with its log-probability (nats), by depth-first
    search with one unbatched model run per prefix: a candidate is length
    characters, or ends at its first stop match (which must end in generated text)."""
    out = []

    def walk(text, score):
        if len(text) == length:
            out.append((text, score))
            return
        logits, _ = S.prime_state(model, vocab, (prime or S.default_prime(vocab)) + text)
        logp = np.log(_ref_softmax(list(logits[0])))
        for i, c in enumerate(vocab):
            t = text + c
            if any((prime + t).endswith(s) for s in stops):
                out.append((t, score + logp[i]))
            else:
                walk(t, score + logp[i])

    walk("", 0.0)
    return sorted(out, key=lambda ts: -ts[1])


@pytest.mark.parametrize("kind,vocab,length,prime", [
    ("rnn", "abc", 4, "ab"), ("lstm", "abc", 3, ""), ("gru", "ab", 6, "ba"),
    ("lstm", "abcd", 3, "dd"), ("rnn", "abc", 1, "c"),
])
def test_exhaustive_beam_equals_brute_force(kind, vocab, length, prime):
    model, vocab = tiny_model(kind, vocab=vocab, seed=len(vocab) + length)
    brute = _brute_force(model, vocab, prime, length)
    width = len(vocab) ** max(length - 1, 0)
    got = S.beam_search(model, vocab, length, max(width, 3), prime, n_best=3)
    assert [t for t, _ in got] == [t for t, _ in brute[:3]]
    np.testing.assert_allclose([s for _, s in got], [s for _, s in brute[:3]], rtol=1e-10)
    # A sanity check of the reference itself: the probabilities of all
    # candidates add up to one.
    assert sum(math.exp(s) for _, s in brute) == pytest.approx(1.0)


@pytest.mark.parametrize("stops,prime", [(["b"], "a"), (["ca", "bb"], ""), (["aa"], "a")])
def test_exhaustive_beam_with_stop_strings_equals_brute_force(stops, prime):
    model, vocab = tiny_model("gru", vocab="abc", seed=11)
    length = 5
    brute = _brute_force(model, vocab, prime, length, stops)
    assert sum(math.exp(s) for _, s in brute) == pytest.approx(1.0)
    assert any(len(t) < length for t, _ in brute)
    got = S.beam_search(model, vocab, length, 3 ** (length - 1), prime, until=stops, n_best=4)
    assert [t for t, _ in got] == [t for t, _ in brute[:4]]
    np.testing.assert_allclose([s for _, s in got], [s for _, s in brute[:4]], rtol=1e-10)


def _reference_beam(model, vocab, prime, length, width):
    beams = [("", 0.0)]
    for _ in range(length):
        cand = []
        for text, score in beams:
            logits, _ = S.prime_state(model, vocab, (prime or S.default_prime(vocab)) + text)
            logp = np.log(_ref_softmax(list(logits[0])))
            cand += [(text + c, score + logp[i]) for i, c in enumerate(vocab)]
        beams = sorted(cand, key=lambda ts: -ts[1])[:width]
    return beams


@pytest.mark.parametrize("kind,width", [("rnn", 2), ("lstm", 3), ("gru", 1)])
def test_narrow_beam_equals_a_plain_reference_beam(kind, width):
    model, vocab = tiny_model(kind, vocab="abcde", layers=2, seed=5, scale=0.7)
    ref = _reference_beam(model, vocab, "ea", 7, width)
    got = S.beam_search(model, vocab, 7, width, "ea", n_best=width)
    assert [t for t, _ in got] == [t for t, _ in ref]
    np.testing.assert_allclose([s for _, s in got], [s for _, s in ref], rtol=1e-10)


def test_beam_width_one_is_greedy():
    model, vocab = tiny_model("lstm", vocab="abcdef", seed=8)
    greedy = S.generate(model, vocab, 30, prime="fa", argmax=True)
    assert S.beam_search(model, vocab, 30, 1, "fa")[0][0] == greedy


def test_beam_edge_cases():
    model, vocab = tiny_model()
    assert S.beam_search(model, vocab, 0, 4, "ab") == [("", 0.0)]
    assert len(S.beam_search(model, vocab, 1, 5, "ab", n_best=5)) == 3   # only V exist
    with pytest.raises(CharRNNError):
        S.beam_search(model, vocab, 3, 0)


@pytest.mark.parametrize("vocab, prime", [("\nab", "\n"), ("ab\n", "\n"), ("ba", "b"), ("x", "x")])
def test_without_a_prime_generation_starts_after_a_newline_or_the_first_character(vocab, prime):
    assert S.default_prime(vocab) == prime


def test_a_prime_with_unknown_characters_names_five_of_them():
    S.check_prime("abc", "abcd")
    with pytest.raises(CharRNNError) as e:
        S.check_prime("a§¶†‡•‰a", "ab")
    assert str(e.value) == ("the prime has 6 character(s) the model never saw ('§', '¶', '†', "
                            "'‡', '•'); use only characters from its vocabulary (see 'charrnn "
                            "inspect')")


@pytest.mark.parametrize("bad", [True, False, "1", 0, -1.0, math.nan, math.inf, None])
def test_a_temperature_that_is_not_a_positive_number_is_refused(bad):
    from charrnn.errors import OptionError
    with pytest.raises(OptionError) as e:
        S.check_temperature(bad)
    assert str(e.value) == f"temperature must be > 0, got {bad!r}; for greedy decoding use argmax"


def test_softmax_is_float64_at_temperature_one_by_default_and_quiet_when_tiny():
    import warnings
    logits = np.array([2.0, 1.0, 0.5], dtype=np.float32)
    p = S.softmax(logits)
    assert p.dtype == np.float64
    assert np.array_equal(p, S.softmax(logits, 1.0))
    assert np.array_equal(S.weights(logits), S.weights(logits, 1.0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # (z - max) / 1e-320 overflows to -inf: no warning
        assert S.softmax(logits, 1e-320).tolist() == [1.0, 0.0, 0.0]
        assert S.weights(logits, 1e-320).tolist() == [1.0, 0.0, 0.0]


def test_ties_go_to_the_lower_id_also_past_sixteen():
    """numpy sorts up to 16 items by insertion (stable either way); more need kind="stable"."""
    probs = np.array([0.1, 0.2] * 60)
    by_hand = sorted(range(len(probs)), key=lambda i: (-probs[i], i))
    assert S._by_probability(probs).tolist() == by_hand
    assert np.flatnonzero(S.top_k_mask(probs, 61)).tolist() == sorted(by_hand[:61])


def test_top_k_and_top_p_out_of_range_are_named():
    with pytest.raises(CharRNNError) as e:
        S.top_k_mask(np.ones(3), 0)
    assert str(e.value) == "top-k must be >= 1, got 0"
    with pytest.raises(CharRNNError) as e:
        S.top_p_mask(np.ones(3), 1.5)
    assert str(e.value) == "top-p must be in (0, 1], got 1.5"


def test_top_p_takes_a_share_of_unnormalised_weights():
    # mass 2, 3, 4 of 4: three quarters is reached by the second id
    assert S.top_p_mask(np.array([2.0, 1.0, 1.0]), 0.75).tolist() == [True, True, False]


def test_top_p_of_one_keeps_the_cheap_unnormalised_weights():
    logits = np.array([0.0, -1.0, -2.0])
    assert np.array_equal(S.weights(logits, 1.0, top_p=1.0), np.exp(logits))


def test_the_defaults_of_iter_chars_and_beam_search():
    """No prime (the default one: 'a', the first of "abc"), temperature 1,
    a fresh generator when none is given; beam search keeps the best one."""
    model, vocab = tiny_model()
    seeded = "".join(S.iter_chars(model, vocab, 12, rng=np.random.default_rng(4)))
    assert seeded == "".join(S.iter_chars(model, vocab, 12, 1.0, "", np.random.default_rng(4)))
    assert len("".join(S.iter_chars(model, vocab, 12))) == 12
    best = S.beam_search(model, vocab, 4, 3)
    assert best == S.beam_search(model, vocab, 4, 3, "", (), 1) and len(best) == 1
    with pytest.raises(CharRNNError) as e:
        S.beam_search(model, vocab, 4, 0)
    assert str(e.value) == "beam width must be >= 1, got 0"


def test_generation_steps_the_model_once_per_character_it_still_needs(monkeypatch):
    """The prime's characters, then one step per generated character but the last."""
    model, vocab = tiny_model()
    calls = []
    real = S.next_logits

    def counted(m, state, ids):
        calls.append(len(ids))
        return real(m, state, ids)
    monkeypatch.setattr(S, "next_logits", counted)
    assert len(S.generate(model, vocab, 5, prime="ab", rng=np.random.default_rng(0))) == 5
    assert len(calls) == 2 + 4


def test_beam_ties_keep_the_order_they_were_found_in():
    """A model of zero weights: every continuation is equally likely, so the
    order is all ties: finished candidates in the order they finished, then
    the live ones in beam order (20 characters: 400 candidates, past the 16
    that numpy sorts stably without being asked)."""
    vocab = "abcdefghijklmnopqrst"
    cfg = ModelConfig(vocab_size=len(vocab), model="rnn", hidden_size=4, dtype="float64")
    model = Model(cfg, {n: np.zeros(s) for n, s in param_shapes(cfg).items()})
    rest = [c for c in vocab if c != "b"]
    got = S.beam_search(model, vocab, 2, 400, "a", until=["b"], n_best=400)
    assert [t for t, _ in got] == ["b"] + [x + "b" for x in rest] + [x + y for x in rest for y in rest]
    one, two = math.log(1 / 20), 2 * math.log(1 / 20)
    assert all(math.isclose(s, one if len(t) == 1 else two) for t, s in got)
    plain = S.beam_search(model, vocab, 2, 400, "a", n_best=400)
    assert [t for t, _ in plain] == [x + y for x in vocab for y in vocab]


def test_beam_ties_among_unequal_scores_keep_their_order():
    """Zero weights but the output bias (1 for every third character): each
    step scores each character alike whatever came before, so the 400
    candidates of two steps hold three scores, each shared by many; the
    beam keeps them stably sorted, as Python's sort does by hand."""
    vocab = "abcdefghijklmnopqrst"
    cfg = ModelConfig(vocab_size=len(vocab), model="rnn", hidden_size=4, dtype="float64")
    params = {n: np.zeros(s) for n, s in param_shapes(cfg).items()}
    params["out.b"] = np.array([1.0 if i % 3 == 0 else 0.0 for i in range(len(vocab))])
    model = Model(cfg, params)
    logp = S.log_softmax(params["out.b"][None, :])[0]
    first = sorted(range(20), key=lambda i: -logp[i])
    by_hand = sorted(((x, y) for x in first for y in range(20)), key=lambda c: -(logp[c[0]] + logp[c[1]]))
    got = S.beam_search(model, vocab, 2, 400, "a", n_best=400)
    assert [t for t, _ in got] == [vocab[x] + vocab[y] for x, y in by_hand]


def biased_model(vocab, bias):
    """Zero weights but the output bias: each step scores each character by
    its bias alone, whatever came before."""
    cfg = ModelConfig(vocab_size=len(vocab), model="rnn", hidden_size=4, dtype="float64")
    params = {n: np.zeros(s) for n, s in param_shapes(cfg).items()}
    params["out.b"] = np.asarray(bias, dtype=np.float64)
    return Model(cfg, params), S.log_softmax(params["out.b"][None, :])[0]


def test_a_beam_whose_candidates_all_finish_returns_them(monkeypatch):
    model, logp = biased_model("abc", [0.0, 1.0, 2.0])
    got = S.beam_search(model, "abc", 3, 2, "a", until=list("abc"), n_best=3)
    assert got == [("c", pytest.approx(logp[2])), ("b", pytest.approx(logp[1])),
                   ("a", pytest.approx(logp[0]))]


def test_a_beam_stops_once_its_finished_best_beat_every_live_one(monkeypatch):
    """'b' ends a candidate and is far likelier than the rest: after one
    step it beats every live prefix, and longer ones only fall."""
    model, logp = biased_model("abc", [0.0, 8.0, 0.0])
    calls = []
    real = S.next_logits
    monkeypatch.setattr(S, "next_logits", lambda *a: calls.append(1) or real(*a))
    got = S.beam_search(model, "abc", 6, 2, "a", until=["b"], n_best=1)
    assert got == [("b", pytest.approx(logp[1]))]
    assert len(calls) == 1                      # the prime's step only
    calls.clear()
    two = S.beam_search(model, "abc", 6, 2, "a", until=["b"], n_best=2)
    assert [t for t, _ in two] == ["b", "ab"]
    assert len(calls) == 2                      # the prime, then one step of two beams


@pytest.mark.parametrize("bias, stops, n_best", [
    ([2.0, 8.0, 0.0], ["b", "c"], 1),              # the best finished beats the live 'a'
    ([3.0, 8.0, 7.0, 0.0], ["b", "c", "d"], 2),     # so do the two best of three
    ([5.0, 5.0, 0.0], ["b"], 1),                    # a tie is enough: the live one only falls
])
def test_a_beam_stops_when_its_n_best_finished_beat_every_live_one(monkeypatch, bias, stops, n_best):
    vocab = "abcd"[:len(bias)]
    model, _ = biased_model(vocab, bias)
    calls = []
    real = S.next_logits
    monkeypatch.setattr(S, "next_logits", lambda *a: calls.append(1) or real(*a))
    got = S.beam_search(model, vocab, 6, 2, "a", until=stops, n_best=n_best)
    assert [t for t, _ in got] == ["b", "c"][:n_best]
    assert len(calls) == 1                      # the prime's step only


def test_a_beam_steps_the_model_once_per_character_it_still_needs(monkeypatch):
    model, vocab = tiny_model()
    calls = []
    real = S.next_logits
    monkeypatch.setattr(S, "next_logits", lambda *a: calls.append(1) or real(*a))
    S.beam_search(model, vocab, 4, 2, "ab")
    assert len(calls) == 2 + 3


@pytest.mark.parametrize("t, k, p", [(1.0, None, None), (0.7, 40, None), (1.3, 1, None),
                                     (1.0, None, 1.0), (0.9, None, 1e-9), (1.1, 25, 0.5),
                                     (1.0, 40, 1.0), (1.0, 40, 0.5), (1e-320, None, 0.5)])
def test_row_decoding_of_float32_rows_with_ties_equals_the_one_row_functions(t, k, p):
    """40 ids (past numpy's 16 stably sorted items), float32 logits that tie
    in fives, the filters at their edges, uniforms from 0 up."""
    import warnings
    rng = np.random.default_rng(3)
    logits = rng.integers(0, 8, size=(6, 40)).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")              # a tiny temperature overflows quietly
        w = B.weights_rows(logits, t, k, p)
    us = [0.0, 0.25, 0.5, 0.75, 0.999, 0.1]
    ids = B.draw_rows(w, us)
    for r, row in enumerate(logits):
        one = S.weights(row, t, k, p)
        np.testing.assert_array_equal(w[r], one)
        assert ids[r] == S.draw(one, us[r])
    np.testing.assert_array_equal(B.weights_rows(logits), B.weights_rows(logits, 1.0))


def test_top_p_rows_at_exactly_the_mass_asked_for():
    """Four equal weights: half the mass is reached exactly by the second id."""
    w = B.weights_rows(np.zeros((2, 4)), 1.0, None, 0.5)
    assert (w > 0).sum(axis=1).tolist() == [2, 2]
    np.testing.assert_array_equal(w[0], S.weights(np.zeros(4), 1.0, None, 0.5))


def test_a_row_at_u_zero_skips_leading_ids_of_weight_zero():
    w = np.array([[0.0, 1.0, 1.0], [0.0, 0.0, 2.0]])
    assert B.draw_rows(w, [0.0, 0.0]).tolist() == [1, 2]
    assert [S.draw(row, 0.0) for row in w] == [1, 2]


@pytest.mark.parametrize("k, p, message", [(0, None, "top-k must be >= 1, got 0"),
                                           (None, 0.0, "top-p must be in (0, 1], got 0.0"),
                                           (None, -0.5, "top-p must be in (0, 1], got -0.5")])
def test_row_filters_out_of_range_are_named(k, p, message):
    with pytest.raises(CharRNNError) as e:
        B.weights_rows(np.zeros((2, 3)), 1.0, k, p)
    assert str(e.value) == message


def test_a_batch_of_one_character_and_a_stop_across_the_prime():
    model, _ = biased_model("abc", [0.0, 0.0, 9.0])          # 'c' nearly always
    rngs = [np.random.default_rng(i) for i in range(3)]
    one = list(B.iter_batch(model, "abc", 1, rngs, prime="ab"))
    assert sorted(i for i, _, last in one if last) == [0, 1, 2]
    assert all(c == "c" for _, c, _ in one)
    rngs = [np.random.default_rng(i) for i in range(3)]
    stopped = list(B.iter_batch(model, "abc", 10, rngs, prime="ab", until=["bc"]))
    assert [(i, c) for i, c, _ in stopped] == [(0, "c"), (1, "c"), (2, "c")]


@pytest.mark.parametrize("kw", [{}, {"until": ["c"]}])
def test_many_small_groups_and_batches_give_each_sample_its_lone_text(monkeypatch, kw):
    """Groups of 2 (sample 0 alone, then 1-2, 3-4; then 5-6, 7) in batches
    of 5 rows: every sample, not only the first two groups', is its lone
    run; with a stop string, a batch whose rows all stopped is followed by
    the next."""
    model, vocab = tiny_model("lstm", vocab="abcd", hidden=6, seed=2)
    monkeypatch.setattr(B, "GROUP_ROWS", 2)
    monkeypatch.setattr(B, "BATCH_ROWS", 5)
    got = _batched(model, vocab, 8, 25, 5, **kw)
    assert got == _reference_samples(model, vocab, 8, 25, 5, **kw)
    if kw:        # every row of the first batch stopped early, and the next ones still ran
        assert all(t.endswith("c") and len(t) < 25 for t in got)


def test_in_order_waits_for_a_sample_that_has_not_started():
    """Sample 1 starts only after sample 0 ended (a later batch): nothing of
    it is held yet when 0 ends."""
    events = [(0, "a", False), (0, "b", True), (2, "x", True), (1, "c", False), (1, "d", True)]
    assert list(B.in_order(events, 3)) == [(0, "a"), (0, "b"), (1, "c"), (1, "d"), (2, "x")]
