"""Which parts of a generated text were copied verbatim from the training text.

For each sample, ``find_copies`` reports

- the longest span of the sample that occurs verbatim in the training text
  (its length, where it starts in the sample and in the text, and the text's
  line there), when it is at least ``min_len`` characters long;
- the characters of the sample that lie inside copied spans of at least
  ``min_len`` characters (their count and the spans, merged).

Memory is bounded by the sample, not the text: the text is read once, as a
stream of pieces, in chunks of about ``chunk_chars`` characters, each
preceded by the last (longest sample - 1) characters of the text before it,
so that every copy (never longer than the sample) lies whole in some chunk.
What is kept is the index of the sample: the hashes of its windows of
``min_len`` characters, sorted (and a bit table over their top bits that
turns most of a chunk away before the sorted search).

In a chunk, every window of ``min_len`` characters is hashed (a polynomial
hash modulo 2**64, built by doubling: O(log min_len) passes); a window whose
hash is one of the sample's is a candidate pair (text position j, sample
position a), checked character by character, so a hash collision never
counts.  A verified pair marks sample window a as copied (the share).
Verified pairs on one diagonal (j - a constant) at consecutive j form one
copy of (run length + min_len - 1) characters, maximal in the chunk; the
longest copy is the longest such run over all chunks.  Pairs are made in
batches of at most ``pair_batch`` (a run that reaches the end of a batch is
carried into the next), so a text whose windows match the sample very often
costs time, not memory.

Ties: of the longest copies, the one that ends first in the text is
reported, at the smallest sample offset.  Offsets count characters (code
points) of the training text as training read it (newlines normalised,
documents joined, see sources.py); lines are 1-based.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

import numpy as np

from charrnn.text import data

CHUNK_CHARS = 1 << 20       # text characters hashed at a time (~50 MB of arrays at most)
PAIR_BATCH = 1 << 20        # candidate (text, sample) pairs checked at a time
FILTER_BITS = 20            # the bit table over the top bits of the sample's hashes
_BASE = 0x9E3779B97F4A7C15  # odd multiplier of the polynomial hash
_MASK = (1 << 64) - 1


@dataclass
class Copy:
    """One copied span: ``length`` characters at ``sample_offset`` in the
    sample, found at ``text_offset`` in the training text, on ``text_line``."""
    length: int
    sample_offset: int
    text_offset: int
    text_line: int


@dataclass
class Report:
    """What find_copies says of one sample of ``chars`` characters."""
    chars: int
    min_len: int
    copied: int = 0                              # characters inside copied spans
    spans: list = field(default_factory=list)    # merged [start, end) sample offsets
    longest: Copy | None = None                  # None: no copy of min_len or more

    @property
    def share(self) -> float:
        """copied / chars (0 for an empty sample)."""
        return self.copied / self.chars if self.chars else 0.0


def _pow(k: int) -> np.uint64:
    return np.uint64(pow(_BASE, k, 1 << 64))


def window_hashes(x: np.ndarray, n: int) -> np.ndarray:
    """(len(x) - n + 1,) uint64: the hash of every window of n values of x
    (sum of x[j + t] * BASE**(n - 1 - t) modulo 2**64)."""
    x = x.astype(np.uint64)
    if len(x) < n:
        return np.empty(0, dtype=np.uint64)
    out, out_len = None, 0          # hashes of windows of out_len values
    cur, cur_len = x, 1             # hashes of windows of cur_len values
    k = n
    while k:
        if k & 1:
            if out is None:
                out, out_len = cur, cur_len
            else:
                m = len(x) - out_len - cur_len + 1
                out = out[:m] * _pow(cur_len) + cur[out_len:out_len + m]
                out_len += cur_len
        k >>= 1
        if k:
            m = len(x) - 2 * cur_len + 1
            cur = cur[:m] * _pow(cur_len) + cur[cur_len:cur_len + m]
            cur_len *= 2
    return out


class CopyFinder:
    """Streams a training text past the samples (see the module's docstring):
    feed(piece) for each piece of the text in order, then reports()."""

    def __init__(self, samples: list[str], min_len: int = 20, chunk_chars: int = CHUNK_CHARS,
                 pair_batch: int = PAIR_BATCH):
        if min_len < 1:
            raise ValueError("min_len must be >= 1")
        self.N, self.chunk_chars, self.pair_batch = min_len, max(1, chunk_chars), max(1, pair_batch)
        parts, starts, pos = [], [], 0
        for k, s in enumerate(samples):
            if k:
                parts.append(np.array([-1], dtype=np.int64))      # no copy spans two samples
                pos += 1
            starts.append(pos)
            parts.append(data.code_points(s).astype(np.int64))
            pos += len(s)
        self.s = np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)
        self.lens = [len(s) for s in samples]
        self.starts = np.array(starts, dtype=np.int64)
        self.overlap = max(self.lens, default=0) - 1
        N = self.N
        h = window_hashes(self.s, N)
        if len(h):
            ok = np.ones(len(h), dtype=bool)
            for b in np.flatnonzero(self.s < 0):
                ok[max(0, b - N + 1):b + 1] = False       # windows across a barrier
            pos_ok = np.flatnonzero(ok)
            order = np.argsort(h[pos_ok], kind="stable")
            self.order = pos_ok[order]                     # sample positions, by hash
            self.hs = h[self.order]
        else:
            self.order = np.empty(0, dtype=np.int64)
            self.hs = np.empty(0, dtype=np.uint64)
        self.shift = np.uint64(64 - FILTER_BITS)
        self.filter = np.zeros(1 << FILTER_BITS, dtype=bool)
        self.filter[(self.hs >> self.shift).astype(np.int64)] = True
        self.occ = np.zeros(max(len(h), 0), dtype=bool)   # sample window a is copied
        n = len(samples)
        self.best_len = np.zeros(n, dtype=np.int64)
        self.best = [None] * n
        self.tail = np.empty(0, dtype=np.uint32)
        self.buffer, self.buffered = [], 0
        self.consumed = 0           # text characters before self.tail's end
        self.lines_before_tail = 0  # newlines in the text before self.tail's start
        self.chars = 0

    # ------------------------------------------------------------ input
    def feed(self, text: str) -> None:
        """The next piece of the training text."""
        while text:
            room = self.chunk_chars - self.buffered
            piece, text = text[:room], text[room:]
            self.buffer.append(piece)
            self.buffered += len(piece)
            if self.buffered >= self.chunk_chars:
                self._flush()

    def reports(self) -> list[Report]:
        """The reports, one per sample, once the whole text was fed."""
        self._flush()
        N = self.N
        cover = np.zeros(len(self.s) + 1, dtype=np.int64)
        a = np.flatnonzero(self.occ)
        np.add.at(cover, a, 1)
        np.add.at(cover, a + N, -1)
        covered = np.cumsum(cover[:-1]) > 0
        out = []
        for k, (start, n) in enumerate(zip(self.starts.tolist(), self.lens)):
            c = covered[start:start + n]
            edges = np.flatnonzero(np.diff(np.concatenate(([0], c.astype(np.int8), [0]))))
            spans = [(int(b), int(e)) for b, e in zip(edges[::2], edges[1::2])]
            best = self.best[k]
            if best is not None:
                best = Copy(best.length, best.sample_offset - start, best.text_offset,
                            best.text_line)
            out.append(Report(chars=n, min_len=N, copied=int(c.sum()), spans=spans,
                              longest=best))
        return out

    # ------------------------------------------------------------ chunks
    def _flush(self) -> None:
        if not self.buffer:
            return
        text = "".join(self.buffer)
        self.buffer, self.buffered = [], 0
        self.chars += len(text)
        new = data.code_points(text)
        chunk = np.concatenate([self.tail, new]) if len(self.tail) else new
        base = self.consumed - len(self.tail)       # text offset of chunk[0]
        self._chunk(chunk, base, len(self.tail))
        keep = min(self.overlap, len(chunk)) if self.overlap > 0 else 0
        gone = chunk[:len(chunk) - keep]
        self.lines_before_tail += int(np.count_nonzero(gone == 10))
        self.tail = chunk[len(chunk) - keep:].copy() if keep else chunk[:0].copy()
        self.consumed += len(new)

    def _chunk(self, c: np.ndarray, base: int, new_start: int) -> None:
        """Find the copies in chunk c (c[0] at text offset base); only copies
        that end at or after c[new_start] are candidates for the longest."""
        N = self.N
        if len(c) < N or not len(self.hs):
            return
        H = window_hashes(c, N)
        cand = np.flatnonzero(self.filter[(H >> self.shift).astype(np.int64)])
        if not len(cand):
            return
        Hc = H[cand]
        lo = np.searchsorted(self.hs, Hc, "left")
        hi = np.searchsorted(self.hs, Hc, "right")
        hit = hi > lo
        J, lo, cnt = cand[hit], lo[hit], (hi - lo)[hit]
        if not len(J):
            return
        # batches of whole text positions with at most pair_batch pairs (or one position)
        ends = np.cumsum(cnt)
        carry = (np.empty(0, np.int64),) * 3
        i = 0
        while i < len(J):
            j = int(np.searchsorted(ends, (ends[i - 1] if i else 0) + self.pair_batch, "right"))
            j = max(j, i + 1)
            carry = self._batch(c, base, new_start, J[i:j], lo[i:j], cnt[i:j], carry)
            i = j

    def _batch(self, c, base, new_start, J, lo, cnt, carry):
        N = self.N
        total = int(cnt.sum())
        first = np.repeat(np.cumsum(cnt) - cnt, cnt)
        A = self.order[np.repeat(lo, cnt) + np.arange(total) - first]
        Jp = np.repeat(J, cnt)
        ok = np.ones(total, dtype=bool)
        for t in range(N):                        # exact check: no hash collision counts
            ok &= c[Jp + t] == self.s[A + t]
        Jp, A = Jp[ok], A[ok]
        self.occ[A] = True
        # runs of verified pairs on a diagonal; carried runs come first, with their start
        cj, ca, cs = carry
        Jr = np.concatenate([cj, Jp])
        Ar = np.concatenate([ca, A])
        Sr = np.concatenate([cs, Jp])
        if not len(Jr):
            return carry
        d = Jr - Ar
        o = np.lexsort((Jr, d))
        Jr, Ar, Sr, d = Jr[o], Ar[o], Sr[o], d[o]
        brk = np.ones(len(Jr), dtype=bool)
        brk[1:] = (d[1:] != d[:-1]) | (Jr[1:] != Jr[:-1] + 1)
        first_i = np.flatnonzero(brk)
        last_i = np.append(first_i[1:], len(Jr)) - 1
        start_j, end_j, end_a = Sr[first_i], Jr[last_i], Ar[last_i]
        length = end_j - start_j + N
        a0 = end_a - (end_j - start_j)
        last = J[-1]
        nxt = end_j == last                        # may go on in the next batch
        new_carry = (end_j[nxt], end_a[nxt], start_j[nxt])
        fits = end_j + N - 1 >= new_start
        self._candidates(c, base, length[fits], end_j[fits], a0[fits], start_j[fits])
        return new_carry

    def _candidates(self, c, base, length, end_j, a0, start_j):
        if not len(length):
            return
        sid = np.searchsorted(self.starts, a0, "right") - 1
        o = np.lexsort((a0, end_j, -length, sid))
        sid, length, end_j, a0, start_j = sid[o], length[o], end_j[o], a0[o], start_j[o]
        top = np.ones(len(sid), dtype=bool)
        top[1:] = sid[1:] != sid[:-1]
        for k, L, a, sj in zip(sid[top].tolist(), length[top].tolist(), a0[top].tolist(),
                               start_j[top].tolist()):
            if L > self.best_len[k]:
                self.best_len[k] = L
                line = 1 + self.lines_before_tail + int(np.count_nonzero(c[:sj] == 10))
                self.best[k] = Copy(int(L), int(a), int(base + sj), line)


def find_copies(samples, text_pieces: Iterable[str], min_len: int = 20,
                chunk_chars: int = CHUNK_CHARS, pair_batch: int = PAIR_BATCH) -> list[Report]:
    """One Report per sample (a str or a list of str) against the training
    text given as an iterable of pieces (see the module's docstring)."""
    samples = [samples] if isinstance(samples, str) else list(samples)
    f = CopyFinder(samples, min_len, chunk_chars, pair_batch)
    for piece in text_pieces:
        f.feed(piece)
    return f.reports()
