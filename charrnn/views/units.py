"""Which hidden units track something a reader can name.

For every character of a text we compute a few features (what a reader knows
after reading up to and including it) and score each unit by the Pearson
correlation between its activation after that character and the feature:

    quote    1 inside double quotes ("...", or “...”), 0 outside; the opening
             quote counts as inside, the closing one as outside
    bracket  1 inside (), [] or {} (any depth), 0 outside
    line     position in the line: 0 after a newline, then 1, 2, 3, ...
    word     position in the word: 1, 2, 3, ... along a run of letters, 0 elsewhere
    caps     1 while every letter so far in the line is a capital (a speaker's
             name in a play, a heading), 0 otherwise and before any letter

A unit's score is its largest |r| over the features that vary in the text.
Activations are h (the layer's output) or, for LSTMs, tanh(c) (the cell
state squashed to [-1, 1]); both lie in [-1, 1].
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FEATURES = ("quote", "bracket", "line", "word", "caps")
OPEN_QUOTES, CLOSE_QUOTES = "\u201c", "\u201d"
OPEN_BRACKETS, CLOSE_BRACKETS = "([{", ")]}"


def text_features(text: str) -> dict[str, np.ndarray]:
    """Feature name -> (N,) float64 value after reading each character."""
    n = len(text)
    quote, bracket, line, word, caps = (np.zeros(n) for _ in range(5))
    inq, depth, col, wpos = False, 0, 0, 0
    upper = lower = False           # letters of each case seen in this line
    for i, ch in enumerate(text):
        if ch == '"':
            inq = not inq
        elif ch in OPEN_QUOTES:
            inq = True
        elif ch in CLOSE_QUOTES:
            inq = False
        if ch in OPEN_BRACKETS:
            depth += 1
        elif ch in CLOSE_BRACKETS:
            depth = max(0, depth - 1)
        col = 0 if ch == "\n" else col + 1
        wpos = wpos + 1 if ch.isalpha() else 0
        if ch == "\n":
            upper = lower = False
        elif ch.isalpha():
            upper, lower = upper or ch.isupper(), lower or not ch.isupper()
        quote[i], bracket[i], line[i], word[i] = inq, depth > 0, col, wpos
        caps[i] = upper and not lower
    return {"quote": quote, "bracket": bracket, "line": line, "word": word, "caps": caps}


def unit_values(acts: list, layer: int, part: str) -> np.ndarray:
    """(N, H) activations of one layer in [-1, 1]: h, or tanh(c)."""
    a = acts[layer][part]
    return np.tanh(a) if part == "c" else a


def correlations(values: np.ndarray, feature: np.ndarray) -> np.ndarray:
    """Pearson r of every column of values (N, H) with feature (N,), over the
    rows where values are defined; 0 for constant columns; NaN when the
    feature is constant there."""
    ok = np.isfinite(values).all(axis=1)
    a, f = values[ok], feature[ok]
    if len(f) < 2 or np.ptp(f) == 0:
        return np.full(values.shape[1], np.nan)
    varies = np.ptp(a, axis=0) > 0
    a = a - a.mean(axis=0)
    f = f - f.mean()
    den = np.sqrt((a * a).sum(axis=0) * (f * f).sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (a * f[:, None]).sum(axis=0) / den
    return np.where(varies & (den > 0), np.clip(r, -1.0, 1.0), 0.0)


@dataclass(frozen=True)
class Unit:
    layer: int
    part: str          # the state: "h" or "c"
    index: int
    feature: str | None = None   # the feature it follows best
    r: float | None = None       # its correlation with that feature

    def label(self) -> str:
        return f"layer {self.layer} {self.part}[{self.index}]"

    def to_dict(self) -> dict:
        return {"layer": self.layer, "state": self.part, "unit": self.index,
                "feature": self.feature, "r": self.r}


def score_units(acts: list, text: str, layers, part: str) -> list[Unit]:
    """Every unit of the given layers with its best feature and r, best first
    (by |r|; units with no varying feature come last)."""
    feats = text_features(text)
    out = []
    for layer in layers:
        vals = unit_values(acts, layer, part)
        rs = {name: correlations(vals, f) for name, f in feats.items()}
        for u in range(vals.shape[1]):
            best, best_r = None, None
            for name in FEATURES:
                r = rs[name][u]
                if np.isfinite(r) and (best_r is None or abs(r) > abs(best_r)):
                    best, best_r = name, float(r)
            out.append(Unit(layer, part, u, best, best_r))
    out.sort(key=lambda x: -abs(x.r) if x.r is not None else 1.0)
    return out


def pick_units(ranked: list[Unit], n: int) -> list[Unit]:
    """The n most interesting units: first the best unit for each feature (in
    order of |r|), then the next best overall."""
    picked, seen = [], set()
    for u in ranked:
        if u.feature is not None and u.feature not in seen:
            seen.add(u.feature)
            picked.append(u)
    picked = picked[:n]
    for u in ranked:
        if len(picked) >= n:
            break
        if u not in picked:
            picked.append(u)
    picked.sort(key=lambda x: -abs(x.r) if x.r is not None else 1.0)
    return picked


def describe(unit: Unit, text: str, acts: list) -> Unit:
    """A chosen unit with its best feature and r filled in."""
    ranked = score_units([{unit.part: _column(acts, unit)}], text, [0], unit.part)
    best = ranked[0]
    return Unit(unit.layer, unit.part, unit.index, best.feature, best.r)


def _column(acts, unit):
    return acts[unit.layer][unit.part][:, unit.index: unit.index + 1]
