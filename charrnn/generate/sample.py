"""Generation: feed a prime, then pick one character at a time.

Decoding is split into small plain functions so each can be tested alone:

    probabilities(logits, temperature, top_k, top_p) -> (V,) float64, sums to 1
    weights(...)                                      -> the same up to a constant factor
    draw(weights, u)                                  -> id, inverse CDF at u in [0, 1)
    greedy(logits)                                    -> id of the largest logit

``iter_chars`` draws exactly ONE uniform from the generator per generated
character (``--argmax`` draws none), whatever the filters, so a seed fixes the
text and the prime's echo never changes it.  Every model call goes through
``next_logits`` so a faster step can replace it in one place.

``iter_batch`` generates N samples side by side (``--num-samples``), one
model step per character position for all of them, with the row versions
of the pieces above (``weights_rows``, ``draw_rows``: row r of the result
is exactly the one-row function on row r) and one generator per sample
(``sample_rng``); ``in_order`` turns its events into the samples in order.
"""
from __future__ import annotations

from typing import Iterable, Iterator, Sequence

import numpy as np

from charrnn.text import data
from charrnn.errors import CharRNNError, OptionError
from charrnn.nn.model import Model, log_softmax, zero_state


# ------------------------------------------------------------ model calls
def next_logits(model: Model, state, ids: np.ndarray):
    """Feed one character per stream: ids (B,) int -> (logits (B, V), new state)."""
    return model.advance(ids, state)


def default_prime(vocab: str) -> str:
    """With no prime, start as if after a newline (or the first vocab char)."""
    return "\n" if "\n" in vocab else vocab[0]


def check_prime(prime: str, vocab: str) -> None:
    missing = sorted(set(prime) - set(vocab))
    if missing:
        shown = ", ".join(repr(c) for c in missing[:5])
        raise CharRNNError(f"the prime has {len(missing)} character(s) the model never saw "
                           f"({shown}); use only characters from its vocabulary "
                           f"(see 'charrnn inspect')")


def prime_state(model: Model, vocab: str, prime: str):
    """Run the prime through the model: -> (logits (1, V) for the next char, state)."""
    ids = data.encode(prime, vocab).astype(np.int64)
    state = zero_state(model.cfg, 1)
    logits = None
    for i in ids:
        logits, state = next_logits(model, state, np.array([i]))
    return logits, state


# ------------------------------------------------------- decoding pieces
def check_temperature(temperature) -> None:
    """OptionError unless temperature is a number > 0 (nan and inf refused)."""
    import math
    import numbers
    if isinstance(temperature, bool) or not isinstance(temperature, numbers.Real) or \
            not (math.isfinite(temperature) and temperature > 0):
        raise OptionError(f"temperature must be > 0, got {temperature!r}; for greedy "
                          f"decoding use argmax")


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """(V,) logits -> (V,) float64 probabilities of softmax(logits / temperature)."""
    check_temperature(temperature)
    z = np.asarray(logits, dtype=np.float64) - np.max(logits)
    with np.errstate(over="ignore"):
        z /= temperature
    np.exp(z, out=z)
    return z / z.sum()


def _by_probability(probs: np.ndarray) -> np.ndarray:
    """Ids from most to least likely; ties go to the lower id."""
    return np.argsort(-probs, kind="stable")


def top_k_mask(probs: np.ndarray, k: int) -> np.ndarray:
    """(V,) bool: the k most likely ids (all of them when k >= V)."""
    if k < 1:
        raise CharRNNError(f"top-k must be >= 1, got {k}")
    keep = np.zeros(len(probs), dtype=bool)
    keep[_by_probability(probs)[:k]] = True
    return keep


def top_p_mask(probs: np.ndarray, p: float) -> np.ndarray:
    """(V,) bool: the smallest set of most likely ids whose mass is >= p (nucleus)."""
    if not 0 < p <= 1:
        raise CharRNNError(f"top-p must be in (0, 1], got {p}")
    order = _by_probability(probs)
    mass = np.cumsum(probs[order])
    m = min(int(np.searchsorted(mass, p * mass[-1], side="left")) + 1, len(probs))
    keep = np.zeros(len(probs), dtype=bool)
    keep[order[:m]] = True
    return keep


def weights(logits: np.ndarray, temperature: float = 1.0, top_k: int | None = None,
            top_p: float | None = None) -> np.ndarray:
    """(V,) logits -> (V,) float64 weights proportional to ``probabilities``
    (unnormalised when no filter applies: the cheap per-character path)."""
    # Shift first, then divide: (z - max) / t is <= 0 and never overflows, so
    # a tiny temperature is greedy instead of nan (1/t may be inf).
    w = np.asarray(logits, dtype=np.float64) - np.max(logits)
    with np.errstate(over="ignore"):
        w /= temperature
    np.exp(w, out=w)
    V = len(w)
    if (top_k is not None and top_k < V) or (top_p is not None and top_p < 1):
        w /= w.sum()
        if top_k is not None and top_k < V:
            w = np.where(top_k_mask(w, top_k), w, 0.0)
            w /= w.sum()
        if top_p is not None and top_p < 1:
            w = np.where(top_p_mask(w, top_p), w, 0.0)
    return w


def probabilities(logits: np.ndarray, temperature: float = 1.0, top_k: int | None = None,
                  top_p: float | None = None) -> np.ndarray:
    """(V,) logits -> (V,) float64 sampling distribution (sums to 1).

    Applied in this order: temperature, then top-k, then top-p on what top-k
    kept (renormalised); every dropped id gets probability exactly 0.
    """
    check_temperature(temperature)
    w = weights(logits, temperature, top_k, top_p)
    return w / w.sum()


def draw(probs: np.ndarray, u: float) -> int:
    """Inverse CDF: the first id whose cumulative weight exceeds u * total.

    probs: (V,) non-negative weights (need not sum to 1); u in [0, 1).
    An id with weight 0 is never returned."""
    cdf = np.cumsum(probs)
    i = int(np.searchsorted(cdf, u * cdf[-1], side="right"))
    if i >= len(probs):              # u * total rounded up to the total
        i = int(np.flatnonzero(probs)[-1])
    return i


def greedy(logits: np.ndarray) -> int:
    """The most likely id (ties: the lowest id)."""
    return int(np.argmax(logits))


def ends_with_any(text: str, stops: Sequence[str]) -> bool:
    return any(text.endswith(s) for s in stops)


# ------------------------------------------------------------- sampling
def iter_chars(model: Model, vocab: str, length: int, temperature: float = 1.0,
               prime: str = "", rng: np.random.Generator | None = None, *,
               top_k: int | None = None, top_p: float | None = None, argmax: bool = False,
               until: Iterable[str] = ()) -> Iterator[str]:
    """Yield up to ``length`` generated characters (the prime is not included).

    argmax: always the most likely character; draws nothing from rng.
    until: stop right after the text (prime + generated so far) ends with one
    of these strings; a match must end in a generated character, and the
    stop string itself is yielded.
    """
    check_temperature(temperature)
    stops = [s for s in until if s]
    check_prime(prime, vocab)
    rng = rng if rng is not None else np.random.default_rng()
    logits, state = prime_state(model, vocab, prime or default_prime(vocab))
    keep = max((len(s) for s in stops), default=0)
    tail = prime[-keep:] if keep else ""
    ids = np.zeros(1, dtype=np.int64)
    for n in range(length):
        if argmax:
            i = greedy(logits[0])
        else:
            i = draw(weights(logits[0], temperature, top_k, top_p), rng.random())
        c = vocab[i]
        yield c
        if stops:
            tail = (tail + c)[-keep:]
            if ends_with_any(tail, stops):
                return
        if n + 1 < length:
            ids[0] = i
            logits, state = next_logits(model, state, ids)


def generate(model: Model, vocab: str, length: int, temperature: float = 1.0,
             prime: str = "", rng: np.random.Generator | None = None, **kw) -> str:
    """The characters that follow prime, as one string (see iter_chars)."""
    return "".join(iter_chars(model, vocab, length, temperature, prime, rng, **kw))


# ---------------------------------------------------------- beam search
def beam_search(model: Model, vocab: str, length: int, width: int, prime: str = "",
                until: Iterable[str] = (), n_best: int = 1) -> list[tuple[str, float]]:
    """The most likely continuations of prime, found by beam search.

    A candidate is ``length`` characters, or shorter when it ends at the first
    match of an ``until`` string (matched as in iter_chars); its score is its
    log-probability in nats.  Keeps the ``width`` best unfinished prefixes at
    each step; finished candidates leave the beam and keep their score.
    Returns up to n_best (text, score) pairs, best first (ties: the earlier
    found).  With width >= V**(length-1) the search is exhaustive.
    Deterministic: no random numbers.
    """
    if width < 1:
        raise CharRNNError(f"beam width must be >= 1, got {width}")
    stops = [s for s in until if s]
    check_prime(prime, vocab)
    logits, state = prime_state(model, vocab, prime or default_prime(vocab))
    keep = max((len(s) for s in stops), default=0)
    # Live beams: texts (generated part), scores (B,), tails for stop matching.
    texts, scores = [""], np.zeros(1)
    tails = [prime[-keep:] if keep else ""]
    finished: list[tuple[float, int, str]] = []      # (score, order found, text)
    found = 0
    V = len(vocab)
    for t in range(length):
        cand = (scores[:, None] + log_softmax(logits)).ravel()     # (B*V,)
        order = np.argsort(-cand, kind="stable")
        new_beams, new_ids = [], []
        for flat in order:
            b, i = divmod(int(flat), V)
            c = vocab[i]
            tail = (tails[b] + c)[-keep:] if keep else ""
            if stops and ends_with_any(tail, stops):
                finished.append((float(cand[flat]), found, texts[b] + c))
                found += 1
                continue
            new_beams.append((b, texts[b] + c, float(cand[flat]), tail))
            new_ids.append(i)
            if len(new_beams) == width:
                break
        if not new_beams:              # every candidate finished: no live prefix is one
            texts, scores = [], np.zeros(0)
            break
        src = np.array([nb[0] for nb in new_beams])
        texts = [nb[1] for nb in new_beams]
        scores = np.array([nb[2] for nb in new_beams])
        tails = [nb[3] for nb in new_beams]
        # Scores only fall: stop once n_best finished texts beat every live one.
        best_done = sorted(s for s, _, _ in finished)[::-1][:n_best]
        if len(best_done) == n_best and best_done[-1] >= scores[0]:
            texts, scores = [], np.zeros(0)
            break
        if t + 1 < length:
            state = [(h[src], None if cs is None else cs[src]) for h, cs in state]
            logits, state = next_logits(model, state, np.array(new_ids, dtype=np.int64))
    for k, (txt, s) in enumerate(zip(texts, scores)):
        finished.append((float(s), found + k, txt))
    finished.sort(key=lambda f: (-f[0], f[1]))
    return [(txt, s) for s, _, txt in finished[:n_best]]


# ------------------------------------------------------ batched sampling


def sample_rng(seed: int | None, i: int):
    """The generator of sample i: ``random.Random(seed)`` for sample 0 (so the
    first of N samples is the sample you get alone) and a generator seeded
    with the string ``f"{seed}:{i}"`` for the others; with no seed, fresh
    entropy for each.  Python's Mersenne Twister: the samplers need only
    ``.random()``, and numpy.random would add ~17 ms to every start-up."""
    import random
    if seed is None or i == 0:
        return random.Random(seed)
    return random.Random(f"{seed}:{i}")
