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
        if not new_beams:
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
# ``--num-samples N`` runs the samples side by side: one model step per
# character position advances every unfinished sample at once (matrix-matrix
# products), and each sample draws from its own generator (sample_rng), so a
# sample's text does not depend on the others.
BATCH_ROWS = 128          # samples generated side by side at most; later ones wait
BATCH_CHARS = 1 << 22     # and at most this many characters (rows x --len): samples
                          # after the first are held in memory until their turn
GROUP_ROWS = 32           # samples that step together in one set of products
PAR_MIN_MACS = 1 << 26    # multiply-adds per step from which groups run in worker threads


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


def weights_rows(logits: np.ndarray, temperature: float = 1.0, top_k: int | None = None,
                 top_p: float | None = None) -> np.ndarray:
    """(R, V) logits -> (R, V) float64: ``weights`` applied to every row."""
    w = np.asarray(logits, dtype=np.float64)
    w = w - w.max(axis=1, keepdims=True)
    with np.errstate(over="ignore"):
        w /= temperature
    np.exp(w, out=w)
    R, V = w.shape
    if (top_k is not None and top_k < V) or (top_p is not None and top_p < 1):
        w /= w.sum(axis=1, keepdims=True)
        if top_k is not None and top_k < V:
            if top_k < 1:
                raise CharRNNError(f"top-k must be >= 1, got {top_k}")
            order = np.argsort(-w, axis=1, kind="stable")
            keep = np.zeros(w.shape, dtype=bool)
            np.put_along_axis(keep, order[:, :top_k], True, axis=1)
            w = np.where(keep, w, 0.0)
            w /= w.sum(axis=1, keepdims=True)
        if top_p is not None and top_p < 1:
            if not 0 < top_p <= 1:
                raise CharRNNError(f"top-p must be in (0, 1], got {top_p}")
            order = np.argsort(-w, axis=1, kind="stable")
            mass = np.cumsum(np.take_along_axis(w, order, axis=1), axis=1)
            # searchsorted(mass, p * total, side="left") + 1, row by row
            m = np.minimum((mass < top_p * mass[:, -1:]).sum(axis=1) + 1, V)
            keep = np.zeros(w.shape, dtype=bool)
            np.put_along_axis(keep, order, np.arange(V)[None, :] < m[:, None], axis=1)
            w = np.where(keep, w, 0.0)
    return w


def draw_rows(w: np.ndarray, us) -> np.ndarray:
    """``draw`` on every row: w (R, V) weights, us (R,) uniforms -> (R,) int64 ids."""
    cdf = np.cumsum(w, axis=1)
    target = np.asarray(us, dtype=np.float64) * cdf[:, -1]
    ids = (cdf <= target[:, None]).sum(axis=1)
    over = np.flatnonzero(ids >= w.shape[1])          # u * total rounded up to the total
    for r in over.tolist():
        ids[r] = int(np.flatnonzero(w[r])[-1])
    return ids


class _Group:
    """Rows (sample indices) that share one model state and step together."""

    def __init__(self, rows, state):
        self.rows = list(rows)
        self.state = state

    def keep(self, mask: list[bool]) -> None:
        idx = np.flatnonzero(mask)
        self.rows = [r for r, k in zip(self.rows, mask) if k]
        self.state = [(h[idx], None if c is None else c[idx]) for h, c in self.state]


def iter_batch(model: Model, vocab: str, length: int, rngs: Sequence, temperature: float = 1.0,
               prime: str = "", *, top_k: int | None = None, top_p: float | None = None,
               argmax: bool = False, until: Iterable[str] = ()) -> Iterator[tuple[int, str, bool]]:
    """Generate len(rngs) samples side by side; sample i draws from rngs[i]
    (any object with ``.random()``), one uniform per generated character.

    Yields (i, character, last) as characters are generated: at each step
    one triple for every unfinished sample, in sample order; ``last`` is True
    for the final character of sample i (``length`` characters, or the end of
    an ``until`` match as in iter_chars).  With length 0, each sample yields
    (i, "", True) once.

    Samples run in batches of at most BATCH_ROWS samples (and BATCH_CHARS
    characters); a sample that ends leaves its batch.  Within a batch,
    sample 0 steps on its own (batch 1) and the others in groups of
    GROUP_ROWS, so sample 0 is bit for bit the sample iter_chars writes
    alone with the same generator; the others match their lone runs up to
    floating-point rounding in the batched products (in float64 practically
    always), and do not depend on N or on the number of threads.
    """
    check_temperature(temperature)
    stops = [s for s in until if s]
    check_prime(prime, vocab)
    n = len(rngs)
    if length <= 0:
        for i in range(n):
            yield i, "", True
        return
    logits1, state1 = prime_state(model, vocab, prime or default_prime(vocab))
    keep = max((len(s) for s in stops), default=0)
    tail0 = prime[-keep:] if keep else ""
    rows_per_batch = max(2, min(BATCH_ROWS, BATCH_CHARS // length))
    for lo in range(0, n, rows_per_batch):
        rows = list(range(lo, min(n, lo + rows_per_batch)))
        # Sample 0 alone; the others in groups of GROUP_ROWS.  The groups
        # depend only on N, never on the CPU count, so a seed gives the same
        # text whatever the threads.
        parts = [[0]] if rows[0] == 0 else []
        rest = rows[1:] if rows[0] == 0 else rows
        parts += [rest[k: k + GROUP_ROWS] for k in range(0, len(rest), GROUP_ROWS)]
        groups = [_Group(part, [(np.repeat(h, len(part), axis=0),
                                 None if c is None else np.repeat(c, len(part), axis=0))
                                for h, c in state1]) for part in parts]
        workers = model.workers(len(rows)) if len(rows) * _macs_per_row(model) >= \
            PAR_MIN_MACS else 1
        tails = {r: tail0 for r in rows}
        logits = [np.repeat(logits1, len(g.rows), axis=0) for g in groups]
        for t in range(length):
            rows_now = [r for g in groups for r in g.rows]
            lg = logits[0] if len(logits) == 1 else np.concatenate(logits)
            if argmax:
                ids = np.argmax(lg, axis=1)
            else:
                us = [rngs[r].random() for r in rows_now]
                ids = draw_rows(weights_rows(lg, temperature, top_k, top_p), us)
            chars = [vocab[i] for i in ids.tolist()]
            final = t + 1 == length
            done = [final] * len(rows_now)
            if stops:
                for j, (r, c) in enumerate(zip(rows_now, chars)):
                    tail = tails[r] = (tails[r] + c)[-keep:]
                    if not final and ends_with_any(tail, stops):
                        done[j] = True
            for r, c, d in zip(rows_now, chars, done):
                yield r, c, d
            if final:
                break
            # drop the finished rows, then advance every group one character
            todo, j = [], 0
            for g in groups:
                k = len(g.rows)
                live = [not d for d in done[j: j + k]]
                gids = ids[j: j + k]
                j += k
                if not any(live):
                    continue
                if not all(live):
                    g.keep(live)
                    gids = gids[np.flatnonzero(live)]
                todo.append((g, np.ascontiguousarray(gids)))
            groups = [g for g, _ in todo]
            if not groups:
                break
            logits = _step_groups(model, todo, workers)


def _macs_per_row(model: Model) -> int:
    """Multiply-adds of one sampling step for one sample."""
    cfg = model.cfg
    H, G = cfg.hidden_size, cfg.gates * cfg.hidden_size
    return cfg.num_layers * H * G + (cfg.num_layers - 1) * H * G + H * cfg.vocab_size


def _step_groups(model: Model, todo, workers: int) -> list:
    """Advance each (group, ids) by one character, the groups spread over
    ``workers`` threads; returns their logits in group order."""
    def step(pairs):
        out = []
        for g, gids in pairs:
            lgt, g.state = next_logits(model, g.state, gids)
            out.append(lgt)
        return out
    if workers <= 1 or len(todo) <= 1:
        return step(todo)
    # (Worker threads, not BLAS threads: a step is short, and OpenBLAS's
    # threads lose milliseconds per product when another process holds a core.)
    from charrnn.nn import blas
    from charrnn.nn import parallel
    shares = [todo[k::workers] for k in range(min(workers, len(todo)))]
    with blas.single_threaded():
        results = parallel.run([lambda s=s: step(s) for s in shares])
    logits = [None] * len(todo)
    for k, res in enumerate(results):
        logits[k::workers] = res
    return logits


def in_order(events: Iterable[tuple[int, str, bool]], n: int) -> Iterator[tuple[int, str]]:
    """Reorder iter_batch's events into the samples one after another:
    yields (i, text) with i going 0, 1, ..., n-1 (each at least once, the
    first time maybe with ""), as soon as sample i's text is known and
    samples before it are complete.  The earliest unfinished sample passes
    through character by character; later ones are held back until then."""
    front = 0
    held: dict[int, list[str]] = {}
    finished: set[int] = set()
    for i, c, last in events:
        if i != front:
            held.setdefault(i, []).append(c)
            if last:
                finished.add(i)
            continue
        yield i, c
        if not last:
            continue
        front += 1
        while front < n and front in held:
            yield front, "".join(held.pop(front))
            if front not in finished:
                break
            finished.discard(front)
            front += 1
