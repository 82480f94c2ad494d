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
What is kept besides one chunk is an index of the samples:

- their windows of N = ``min_len`` characters, grouped into classes of equal
  windows, and the classes' hashes, sorted (with a bit table over the hashes'
  top bits that turns most of a chunk away before the sorted search);
- per sample, a suffix automaton over its sequence of window classes.

In a chunk, every window of N characters is hashed (a polynomial hash
modulo 2**64, built by doubling: O(log N) vectorised passes); a window whose
hash is a class's is checked character by character against that class, so
a hash collision never counts.  A checked window marks its class as copied:
every sample window of the class lies in a copy (the share).  A copy of
N + k - 1 characters is k consecutive text windows matching k consecutive
sample windows, so the longest copy is the longest common run of window
classes: the matching statistics of the text's runs of checked windows,
walked through the sample's automaton (the classic longest-common-substring
walk, one step per window).  Only runs longer than the longest copy found
so far are walked, so after the first copies the walk costs little, and a
sample that repeats one pattern costs no more than any other.

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
FILTER_BITS = 20            # the bit table over the top bits of the sample's hashes
_BASE = 0x9E3779B97F4A7C15  # odd multiplier of the polynomial hash
_TRIES = 8                  # multipliers tried until equal hashes mean equal windows


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


def window_hashes(x: np.ndarray, n: int, base: int = _BASE) -> np.ndarray:
    """(len(x) - n + 1,) uint64: the hash of every window of n values of x
    (sum of x[j + t] * base**(n - 1 - t) modulo 2**64)."""
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
                out = out[:m] * np.uint64(pow(base, cur_len, 1 << 64)) + cur[out_len:out_len + m]
                out_len += cur_len
        k >>= 1
        if k:
            m = len(x) - 2 * cur_len + 1
            cur = cur[:m] * np.uint64(pow(base, cur_len, 1 << 64)) + cur[cur_len:cur_len + m]
            cur_len *= 2
    return out


class _Automaton:
    """The suffix automaton of a sequence (of window classes): transitions,
    suffix links, longest lengths and the first end position of each state."""

    def __init__(self, seq):
        self.next, self.link, self.len, self.first = [{}], [-1], [0], [-1]
        last = 0
        for i, ch in enumerate(seq):
            cur = self._state(self.len[last] + 1, -1, i, {})
            p = last
            while p != -1 and ch not in self.next[p]:
                self.next[p][ch] = cur
                p = self.link[p]
            if p == -1:
                self.link[cur] = 0
            else:
                q = self.next[p][ch]
                if self.len[p] + 1 == self.len[q]:
                    self.link[cur] = q
                else:
                    clone = self._state(self.len[p] + 1, self.link[q], self.first[q],
                                        dict(self.next[q]))
                    while p != -1 and self.next[p].get(ch) == q:
                        self.next[p][ch] = clone
                        p = self.link[p]
                    self.link[q] = self.link[cur] = clone
            last = cur

    def _state(self, length, link, first, nxt) -> int:
        self.next.append(nxt)
        self.link.append(link)
        self.len.append(length)
        self.first.append(first)
        return len(self.len) - 1

    def walk(self, seq):
        """For each element of seq: (length of the longest suffix of seq up to
        it that occurs in the sequence, first end position of that suffix)."""
        nxt, link, ln, first = self.next, self.link, self.len, self.first
        state = length = 0
        for ch in seq:
            if ch in nxt[state]:
                state, length = nxt[state][ch], length + 1
            else:
                while state != -1 and ch not in nxt[state]:
                    state = link[state]
                if state == -1:
                    state = length = 0
                else:
                    state, length = nxt[state][ch], ln[state] + 1
            yield length, first[state]


class CopyFinder:
    """Streams a training text past the samples (see the module's docstring):
    feed(piece) for each piece of the text in order, then reports()."""

    def __init__(self, samples: list[str], min_len: int = 20, chunk_chars: int = CHUNK_CHARS):
        if min_len < 1:
            raise ValueError("min_len must be >= 1")
        self.N, self.chunk_chars = min_len, max(1, chunk_chars)
        N = min_len
        self.lens = [len(s) for s in samples]
        self.starts = np.cumsum([0] + [n + 1 for n in self.lens[:-1]]).astype(np.int64)
        parts = []
        for k, s in enumerate(samples):
            if k:
                parts.append(np.array([-1], dtype=np.int64))      # no copy spans two samples
            parts.append(data.code_points(s).astype(np.int64))
        self.s = np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)
        # the windows of each sample (none across the -1 between samples)
        ok = np.zeros(max(len(self.s) - N + 1, 0), dtype=bool)
        for start, n in zip(self.starts.tolist(), self.lens):
            ok[start:start + n - N + 1] = True
        self.windows = np.flatnonzero(ok)                          # their positions in self.s
        self.base, h = self._classes(self.windows)
        self.hashes, first, cls = np.unique(h, return_index=True, return_inverse=True)
        self.rep = self.windows[first]                 # a sample position of each class
        self.cls = cls.reshape(-1)                     # the class of each window
        self.shift = np.uint64(64 - FILTER_BITS)
        self.filter = np.zeros(1 << FILTER_BITS, dtype=bool)
        self.filter[(self.hashes >> self.shift).astype(np.int64)] = True
        self.found = np.zeros(len(self.hashes), dtype=bool)        # class seen in the text
        self.autos, self.member = [], []
        for start, n in zip(self.starts.tolist(), self.lens):
            sel = (self.windows >= start) & (self.windows < start + n)
            seq = self.cls[sel].tolist()
            self.autos.append(_Automaton(seq))
            mask = np.zeros(len(self.hashes), dtype=bool)
            mask[seq] = True
            self.member.append(mask)
        self.best = [None] * len(samples)
        self.best_w = [0] * len(samples)               # longest copy so far, in windows
        self.overlap = max(max(self.lens, default=0), N) - 1
        self.tail = np.empty(0, dtype=np.uint32)
        self.buffer, self.buffered = [], 0
        self.consumed = 0           # text characters before self.tail's end
        self.lines_before_tail = 0  # newlines in the text before self.tail's start
        self.chars = 0

    def _classes(self, windows):
        """(multiplier, hash of each window) such that equal hashes mean equal
        windows among the samples' (checked; another multiplier on a clash)."""
        N = self.N
        for i in range(_TRIES):
            base = _BASE + 2 * i
            h = window_hashes(self.s, N, base)[windows] if len(windows) else \
                np.empty(0, dtype=np.uint64)
            order = np.argsort(h, kind="stable")
            same = h[order][1:] == h[order][:-1]
            a, b = windows[order][1:][same], windows[order][:-1][same]
            if all((self.s[a + t] == self.s[b + t]).all() for t in range(N)):
                return base, h
        raise RuntimeError("window hashes clash within the sample")

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
        a = self.windows[self.found[self.cls]] if len(self.windows) else self.windows
        np.add.at(cover, a, 1)
        np.add.at(cover, a + N, -1)
        covered = np.cumsum(cover[:-1]) > 0
        out = []
        for k, (start, n) in enumerate(zip(self.starts.tolist(), self.lens)):
            c = covered[start:start + n]
            edges = np.flatnonzero(np.diff(np.concatenate(([0], c.astype(np.int8), [0]))))
            spans = [(int(b), int(e)) for b, e in zip(edges[::2], edges[1::2])]
            out.append(Report(chars=n, min_len=N, copied=int(c.sum()), spans=spans,
                              longest=self.best[k]))
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
        self._chunk(chunk, len(self.tail))
        keep = min(self.overlap, len(chunk))
        self.lines_before_tail += int(np.count_nonzero(chunk[:len(chunk) - keep] == 10))
        self.tail = chunk[len(chunk) - keep:].copy()
        self.consumed += len(new)

    def _chunk(self, c: np.ndarray, new_start: int) -> None:
        """The copies in chunk c, whose first new_start characters are the end
        of the text before it: windows there are context for the walk, and
        were counted with the chunk before."""
        N = self.N
        if len(c) < N or not len(self.hashes):
            return
        H = window_hashes(c, N, self.base)
        cand = np.flatnonzero(self.filter[(H >> self.shift).astype(np.int64)])
        if not len(cand):
            return
        Hc = H[cand]
        g = np.minimum(np.searchsorted(self.hashes, Hc), len(self.hashes) - 1)
        hit = self.hashes[g] == Hc
        J, g = cand[hit], g[hit]
        same = np.ones(len(J), dtype=bool)
        for t in range(N):                        # exact check: no hash collision counts
            same &= c[J + t] == self.s[self.rep[g] + t]
        J, g = J[same], g[same]
        if not len(J):
            return
        self.found[g] = True
        first_new = max(0, new_start - N + 1)     # the first window not seen before
        base = self.consumed - new_start          # text offset of c[0]
        for k, auto in enumerate(self.autos):
            mine = self.member[k][g]
            Jk, gk = J[mine], g[mine]
            if not len(Jk):
                continue
            brk = np.flatnonzero(np.diff(Jk) != 1) + 1
            run_a = np.concatenate(([0], brk))
            run_b = np.concatenate((brk, [len(Jk)]))
            for a, b in zip(run_a.tolist(), run_b.tolist()):
                if b - a <= self.best_w[k] or Jk[b - 1] < first_new:
                    continue                      # cannot beat the longest so far
                self._walk(k, auto, c, base, Jk[a:b], gk[a:b].tolist(), first_new)

    def _walk(self, k, auto, c, base, J, seq, first_new):
        for i, (length, end) in enumerate(auto.walk(seq)):
            if length > self.best_w[k] and J[i] >= first_new:
                self.best_w[k] = length
                start = int(J[i]) - length + 1                    # chunk-local
                line = 1 + self.lines_before_tail + int(np.count_nonzero(c[:start] == 10))
                self.best[k] = Copy(length + self.N - 1, end - length + 1, base + start, line)


def find_copies(samples, text_pieces: Iterable[str], min_len: int = 20,
                chunk_chars: int = CHUNK_CHARS) -> list[Report]:
    """One Report per sample (a str or a list of str) against the training
    text given as an iterable of pieces (see the module's docstring)."""
    samples = [samples] if isinstance(samples, str) else list(samples)
    f = CopyFinder(samples, min_len, chunk_chars)
    for piece in text_pieces:
        f.feed(piece)
    return f.reports()
