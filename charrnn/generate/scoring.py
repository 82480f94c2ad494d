"""Scoring any text with a trained model: loss per character, and what the
model predicted and computed along the way.

Characters outside the model's vocabulary cannot be fed to it nor scored.
They are counted and handled one of two ways (``oov``):

    skip   (default) the character is left out: the model reads on as if it
           were not there, and the character after it is scored from the
           state before it.
    reset  the text is cut at the character: each piece between unknown
           characters is read from a fresh (zero) state.

The first character of each piece has no context, so it is read but not
scored ("context only"): a text of N known characters in one piece scores
N - 1 of them, as the validation loss of training does.

Two ways to compute the figure:

    exact      each piece is read as one stream, one character after another
               (run_text): the definition above, at batch-1 speed.
    segmented  (default) long pieces are cut into segments that are read side
               by side, ROWS at a time (matrix-matrix products); each segment
               is first warmed up on at least the WARMUP characters before it,
               from the start of a line (read, not scored; see
               plan_segments), so its state is practically the one the single
               stream would have there.  Every character is scored exactly
               once, as in exact; the figure differs from the exact one only
               by what WARMUP characters of context cannot carry (for a
               2x256 LSTM on tiny Shakespeare, about 1e-5 nats/char).
               A text too short to be worth cutting (under MIN_SEGMENT
               characters per segment) is read whole: exact.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from collections import Counter

import numpy as np

from charrnn.text import data
from charrnn.errors import DataError
from charrnn.nn.model import Model, log_softmax, zero_state

from charrnn.generate import OOV_MODES  # noqa: E402
LN2 = math.log(2.0)
ROWS = 128                # segments read side by side
WARMUP = 500              # characters read, not scored, before a segment's first scored one
MIN_SEGMENT = 4 * WARMUP  # scored characters per segment at least
CHUNK_STEPS = 64          # characters per forward call
LINE_LOOKBACK = 1000      # how far back a warm-up may start to begin at a line


def lenient_ids(text: str, vocab: str) -> np.ndarray:
    """(N,) int64 ids of text's characters in vocab; -1 for characters outside it."""
    codes = data.vocab_to_codes(vocab).astype(np.uint32)
    cps = data.code_points(text)
    if not len(cps):
        return np.zeros(0, dtype=np.int64)
    idx = np.minimum(np.searchsorted(codes, cps), len(codes) - 1)
    return np.where(codes[idx] == cps, idx, -1).astype(np.int64)


def pieces(ids: np.ndarray, oov: str = "skip") -> list[np.ndarray]:
    """Positions (into ids) read as one continuous stream each, see the module notes."""
    if oov not in OOV_MODES:
        raise ValueError(f"oov must be one of {OOV_MODES}, got {oov!r}")
    known = ids >= 0
    if oov == "skip":
        pos = np.flatnonzero(known)
        return [pos] if len(pos) else []
    # reset: runs of known characters
    edges = np.diff(np.concatenate(([0], known.astype(np.int8), [0])))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return [np.arange(s, e) for s, e in zip(starts, ends)]


@dataclass
class TextRun:
    """What the model did on one text of N characters.

    ids        (N,) int64, -1 outside the vocabulary
    losses     (N,) float64 nats the model lost on each character; NaN where
               not scored (outside the vocabulary, or context only)
    top_ids    (N, k) int64 the k likeliest characters the model predicted
               for each position, -1 where not scored (k = top_k, maybe 0)
    top_probs  (N, k) float64 their probabilities
    acts       per layer, {"h": (N, H)[, "c": (N, H)]} float64 activations
               after reading each character; NaN rows outside the vocabulary
               (only when keep_acts)
    """
    ids: np.ndarray
    losses: np.ndarray
    top_ids: np.ndarray
    top_probs: np.ndarray
    acts: list = field(default_factory=list)

    @property
    def scored(self) -> np.ndarray:
        return np.isfinite(self.losses)


def run_text(model: Model, ids: np.ndarray, oov: str = "skip", top_k: int = 0,
             keep_acts: bool = False, chunk: int = 1024, progress=None) -> TextRun:
    """Read ids (see lenient_ids) through the model in chunks of ``chunk``
    characters, carrying the state within each piece.  ``progress(n)`` is
    called with the number of characters read after every chunk."""
    N = len(ids)
    V = model.cfg.vocab_size
    k = min(top_k, V)
    losses = np.full(N, np.nan)
    top_ids = np.full((N, k), -1, dtype=np.int64)
    top_probs = np.full((N, k), np.nan)
    acts = []
    if keep_acts:
        H = model.cfg.hidden_size
        names = ("h", "c") if model.cfg.cell.has_c else ("h",)
        acts = [{n: np.full((N, H), np.nan) for n in names} for _ in range(model.cfg.num_layers)]
    for pos in pieces(ids, oov):
        state, prev = None, None          # prev: logits (V,) predicting the next position
        for s in range(0, len(pos), chunk):
            p = pos[s: s + chunk]
            layer_acts, logits, state = model.activations(ids[p], state)
            if keep_acts:
                for dst, src in zip(acts, layer_acts):
                    for n, a in src.items():
                        dst[n][p] = a
            # logits row j predicts p[j+1]; prev predicts p[0]
            if prev is None:
                pred, targets = logits[:-1], p[1:]
            else:
                pred, targets = np.concatenate([prev[None], logits[:-1]]), p
            prev = logits[-1]
            if progress is not None:
                progress(len(p))
            if len(targets):
                logp = log_softmax(pred)
                losses[targets] = -logp[np.arange(len(targets)), ids[targets]]
                if k:
                    best = np.argsort(-logp, axis=1, kind="stable")[:, :k]
                    top_ids[targets] = best
                    top_probs[targets] = np.exp(np.take_along_axis(logp, best, axis=1))
    return TextRun(ids=ids, losses=losses, top_ids=top_ids, top_probs=top_probs, acts=acts)


def loss_summary(run: TextRun, text: str, oov: str) -> dict:
    """Counts and the mean loss of a TextRun as plain JSON-ready values."""
    scored = run.scored
    return _summary(run.ids, text, oov, float(run.losses[scored].sum()), int(scored.sum()))


def _summary(ids, text: str, oov: str, total: float, n: int) -> dict:
    unknown = ids < 0
    counts = Counter(text[i] for i in np.flatnonzero(unknown)) if unknown.any() else Counter()
    nats = total / n if n else None
    return {
        "chars": int(len(ids)),
        "chars_scored": n,
        "chars_context_only": int(len(ids) - n - unknown.sum()),
        "oov": {"count": int(unknown.sum()), "handling": oov,
                "chars": dict(counts.most_common())},
        "nats_per_char": nats,
        "bits_per_char": None if nats is None else nats / LN2,
        "perplexity": None if nats is None else math.exp(nats),
    }


# ------------------------------------------------------------ segmented
def plan_segments(parts: list, rows: int = ROWS, warmup: int = WARMUP,
                  min_segment: int = MIN_SEGMENT, ids: np.ndarray | None = None,
                  line_id: int | None = None) -> list[tuple[np.ndarray, int]]:
    """Cut pieces (position arrays, see ``pieces``) into jobs (positions read,
    index in them of the first scored position).

    The targets of a piece are its positions 1..m-1.  A piece with more
    targets than a segment (about total / rows, at least min_segment) is
    cut into near-equal runs of targets; each run's job starts ``warmup``
    positions before its first target (or at the piece's start), and only
    the run's own targets are scored.  A job whose first scored index is 1
    reads its piece from the start: exactly the single stream.

    With ids and line_id (the id of "\n"), a warm-up starts at the beginning
    of a line: up to LINE_LOOKBACK positions further back, just after a
    newline.  A model read from a fresh state mid-word can fall into a state
    it never leaves (a 2 x 256 LSTM trained 10 minutes on tiny Shakespeare,
    started at the "f" of "Pomfret", predicts at 4.8 nats/char for the next
    9,000 characters, against 1.3 from the line's start); the single stream
    starts at a line start too."""
    total = sum(max(len(p) - 1, 0) for p in parts)
    seg = max(min_segment, -(-total // max(rows, 1)), 1)
    jobs = []
    for p in parts:
        n_t = len(p) - 1
        if n_t < 1:
            continue
        k = max(1, round(n_t / seg))
        bounds = [1 + n_t * i // k for i in range(k + 1)]
        for a, b in zip(bounds[:-1], bounds[1:]):
            start = max(0, a - 1 - warmup)
            if start > 0 and line_id is not None and ids is not None:
                back = ids[p[max(0, start - LINE_LOOKBACK):start]]
                nl = np.flatnonzero(back == line_id)
                if len(nl):
                    start = start - len(back) + int(nl[-1]) + 1
            jobs.append((p[start:b], a - start))
    return jobs


def score_jobs(model: Model, ids: np.ndarray, jobs, rows: int = ROWS, chunk: int = CHUNK_STEPS,
               progress=None) -> tuple[float, int]:
    """(summed nats, characters scored) of jobs (see plan_segments) read side
    by side, up to ``rows`` at a time, each from a fresh state; a row takes
    the next job (longest first) when its job ends.  ``progress(n)`` gets
    the number of characters scored after every chunk."""
    order = sorted(range(len(jobs)), key=lambda j: -len(jobs[j][0]))
    queue = iter(order)
    R = min(rows, len(jobs))
    if R == 0:
        return 0.0, 0
    state = zero_state(model.cfg, R)
    cur: list = [None] * R
    off = [0] * R
    total, count = 0.0, 0

    def assign(r):
        j = next(queue, None)
        cur[r] = None if j is None else jobs[j]
        off[r] = 0
        for h, c in state:
            h[r] = 0
            if c is not None:
                c[r] = 0
    for r in range(R):
        assign(r)
    x = np.zeros((R, chunk), dtype=np.int64)
    y = np.zeros((R, chunk), dtype=np.int64)
    w = np.zeros((R, chunk), dtype=bool)
    while any(job is not None for job in cur):
        # as many steps as the longest remaining job needs, up to chunk
        T = min(chunk, max(len(job[0]) - 1 - off[r] for r, job in enumerate(cur)
                           if job is not None))
        x[:, :T] = 0
        y[:, :T] = 0
        w[:, :T] = False
        for r, job in enumerate(cur):
            if job is None:
                continue
            pos, first = job
            a = off[r]
            b = min(len(pos) - 1, a + T)
            L = b - a
            x[r, :L] = ids[pos[a:b]]
            y[r, :L] = ids[pos[a + 1:b + 1]]
            w[r, max(0, first - 1 - a):L] = True        # target index a+1+t >= first
            off[r] = b
        nll, state = model.nll_rows(x[:, :T], y[:, :T], state)
        state = [(np.array(h), None if c is None else np.array(c)) for h, c in state]
        k = int(w[:, :T].sum())
        total += float(nll[w[:, :T]].sum())
        count += k
        if progress is not None:
            progress(k)
        for r, job in enumerate(cur):
            if job is not None and off[r] >= len(job[0]) - 1:
                assign(r)
    return total, count


def score_text(model: Model, vocab: str, text: str, oov: str = "skip",
                  progress=None, exact: bool = False, rows: int = ROWS,
                  warmup: int = WARMUP, min_segment: int = MIN_SEGMENT) -> dict:
    """Mean loss of the model on text (nats/char, bits/char, perplexity), the
    character counts and how the figure was computed ("method": exact or
    segmented, "segments", "warmup_chars"; see the module notes); raises
    DataError when nothing can be scored."""
    ids = lenient_ids(text, vocab)
    if exact:
        run = run_text(model, ids, oov, progress=progress)
        s = loss_summary(run, text, oov)
        how = {"method": "exact", "segments": sum(1 for p in pieces(ids, oov) if len(p) > 1),
               "warmup_chars": 0}
    else:
        jobs = plan_segments(pieces(ids, oov), rows, warmup, min_segment, ids,
                             vocab.index("\n") if "\n" in vocab else None)
        total, n = score_jobs(model, ids, jobs, rows, progress=progress)
        s = _summary(ids, text, oov, total, n)
        cut = any(first > 1 for _, first in jobs)
        how = {"method": "segmented" if cut else "exact", "segments": len(jobs),
               "warmup_chars": warmup if cut else 0}
    if not s["chars_scored"]:
        known = len(ids) - s["oov"]["count"]
        raise DataError(f"nothing to score: the text has {len(ids)} characters, {known} of them "
                        f"in the model's vocabulary; scoring needs at least 2 in a row")
    return {**s, **how}


def format_result(r: dict) -> str:
    """The human-readable report of an evaluation; one fact per line."""
    o = r["oov"]
    lines = [
        f"file         {r['file']}",
        f"checkpoint   {r['checkpoint']}",
        f"characters   {r['chars']:,} read, {r['chars_scored']:,} scored, "
        f"{r['chars_context_only']:,} context only, {o['count']:,} outside the vocabulary",
    ]
    if o["count"]:
        shown = ", ".join(f"{c!r} x{n:,}" for c, n in list(o["chars"].items())[:8])
        more = ", ..." if len(o["chars"]) > 8 else ""
        how = ("skipped (read on as if absent)" if o["handling"] == "skip"
               else "reset the model (fresh state after each)")
        lines.append(f"outside      {shown}{more}: {how}")
    if r.get("method") == "segmented":
        lines.append(f"method       segmented: {r['segments']:,} segments read side by side, each "
                     f"warmed up on at least the {r['warmup_chars']:,} characters before it, "
                     f"from a line start "
                     f"(--exact reads one stream)")
    elif r.get("method") == "exact":
        lines.append("method       exact: read as one stream" if r["segments"] <= 1 else
                     f"method       exact: {r['segments']:,} pieces, each read as one stream")
    lines.append(f"loss         {r['nats_per_char']:.4f} nats/char, {r['bits_per_char']:.4f} "
                 f"bits/char, perplexity {r['perplexity']:.3f}")
    return "\n".join(lines)
