"""Many samples side by side (``--num-samples N``): one model step per
character position advances every unfinished sample at once (matrix-matrix
products), and each sample draws from its own generator (sample.sample_rng),
so a sample's text does not depend on the others.  Loaded only when more
than one sample is asked for (start-up of `charrnn sample`)."""
from __future__ import annotations

from typing import Iterable, Iterator, Sequence

import numpy as np

from charrnn.errors import CharRNNError
from charrnn.generate.sample import (check_prime, check_temperature, default_prime,
                                     ends_with_any, next_logits, prime_state)
from charrnn.nn.model import Model

BATCH_ROWS = 128          # samples generated side by side at most; later ones wait
BATCH_CHARS = 1 << 22     # and at most this many characters (rows x --len): samples
                          # after the first are held in memory until their turn
GROUP_ROWS = 32           # samples that step together in one set of products
PAR_MIN_MACS = 1 << 26    # multiply-adds per step from which groups run in worker threads


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
