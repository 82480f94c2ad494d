"""Generation: feed a prime, then draw one character at a time from the softmax."""
from __future__ import annotations

import numpy as np

from . import data
from .errors import CharRNNError
from .model import Model, zero_state


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
        logits, state = model.step(np.array([i]), state)
    return logits, state


def iter_chars(model: Model, vocab: str, length: int, temperature: float = 1.0,
               prime: str = "", rng: np.random.Generator | None = None):
    """Yield ``length`` generated characters (the prime is not included)."""
    if not temperature > 0:           # also refuses nan
        raise CharRNNError(f"temperature must be > 0, got {temperature}")
    check_prime(prime, vocab)
    rng = rng if rng is not None else np.random.default_rng()
    logits, state = prime_state(model, vocab, prime or default_prime(vocab))
    ids = np.zeros(1, dtype=np.int64)
    for n in range(length):
        # Shift first, then divide: (z - max) / t is <= 0 and never overflows,
        # so a tiny temperature is greedy instead of nan (1/t may be inf).
        z = logits[0].astype(np.float64)
        z -= z.max()
        with np.errstate(over="ignore"):           # -> -inf: probability 0
            z /= temperature
        np.exp(z, out=z)
        cdf = np.cumsum(z)
        i = int(np.searchsorted(cdf, rng.random() * cdf[-1], side="right"))
        i = min(i, len(vocab) - 1)
        yield vocab[i]
        if n + 1 < length:
            ids[0] = i
            logits, state = model.step(ids, state)


def generate(model: Model, vocab: str, length: int, temperature: float = 1.0,
             prime: str = "", rng: np.random.Generator | None = None) -> str:
    """The ``length`` characters that follow prime, as one string."""
    return "".join(iter_chars(model, vocab, length, temperature, prime, rng))
