"""A stack of recurrent layers with an input lookup and a softmax output.

Shapes (B streams, T steps, V vocabulary, E embedding, H hidden, G gates):
    embed      (V, E)        only when ``embed_size > 0``
    l{k}.Wx    (E|V|H, G*H)  layer 0 with ``embed_size == 0`` is a lookup table:
                             row v is the input projection of character v,
                             exactly the one-hot product of the reference
    l{k}.Wh    (H, G*H)
    l{k}.b     (G*H,)
    out.W      (H, V)
    out.b      (V,)

The loss of a chunk is the cross-entropy summed over time and averaged over
the B streams, so with B=1 the gradients are those of the classic
per-character script.  ``loss`` values returned are in nats per character.
"""
from __future__ import annotations

from dataclasses import dataclass, asdict

import numpy as np

from . import cells

DTYPES = ("float32", "float64")


@dataclass(frozen=True)
class ModelConfig:
    vocab_size: int
    model: str = "rnn"
    hidden_size: int = 100
    num_layers: int = 1
    embed_size: int = 0          # 0: direct lookup (one-hot equivalent)
    dropout: float = 0.0
    dtype: str = "float32"

    def to_dict(self):
        return asdict(self)

    @classmethod
    def from_dict(cls, d):
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})

    @property
    def gates(self):
        return cells.GATES[self.model]


def param_shapes(cfg: ModelConfig) -> dict[str, tuple[int, ...]]:
    """Name -> shape of every parameter, in a fixed order."""
    V, H, G = cfg.vocab_size, cfg.hidden_size, cfg.gates * cfg.hidden_size
    shapes: dict[str, tuple[int, ...]] = {}
    if cfg.embed_size > 0:
        shapes["embed"] = (V, cfg.embed_size)
    for k in range(cfg.num_layers):
        n_in = (cfg.embed_size or V) if k == 0 else H
        shapes[f"l{k}.Wx"] = (n_in, G)
        shapes[f"l{k}.Wh"] = (H, G)
        shapes[f"l{k}.b"] = (G,)
    shapes["out.W"] = (H, V)
    shapes["out.b"] = (V,)
    return shapes


def init_params(cfg: ModelConfig, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Fresh weights.

    rnn: N(0, 0.01^2) weights and zero biases, as in the classic script.
    lstm/gru: U(-1/sqrt(H), 1/sqrt(H)) weights, zero biases except the
    LSTM forget gate bias, which starts at 1.
    """
    H = cfg.hidden_size
    params = {}
    for name, shape in param_shapes(cfg).items():
        if name.endswith(".b"):
            p = np.zeros(shape)
            if cfg.model == "lstm" and name.startswith("l"):
                p[H:2 * H] = 1.0
        elif cfg.model == "rnn":
            p = rng.standard_normal(shape) * 0.01
        elif name == "embed":
            p = rng.standard_normal(shape) * 0.1
        else:
            bound = 1.0 / np.sqrt(H)
            p = rng.uniform(-bound, bound, size=shape)
        params[name] = p.astype(cfg.dtype)
    return params


def zero_state(cfg: ModelConfig, batch: int):
    """Per-layer (h, c) with h, c of shape (batch, H); c is None unless lstm."""
    H, dt = cfg.hidden_size, cfg.dtype
    return [(np.zeros((batch, H), dt), np.zeros((batch, H), dt) if cfg.model == "lstm" else None)
            for _ in range(cfg.num_layers)]


def _dropout_mask(rng, shape, p, dtype):
    keep = 1.0 - p
    return ((rng.random(shape, dtype=np.float64) < keep) / keep).astype(dtype)


def _log_softmax_nll(logits, y):
    """logits (N, V), y (N,) -> (summed nll, probs (N, V)); shift by the max."""
    logits -= logits.max(axis=1, keepdims=True)
    np.exp(logits, out=logits)
    sums = logits.sum(axis=1, keepdims=True)
    logits /= sums
    picked = logits[np.arange(len(y)), y]
    nll = -np.log(np.maximum(picked, np.finfo(logits.dtype).tiny), dtype=np.float64).sum()
    return float(nll), logits


class Model:
    """Parameters plus forward/backward for the stacked cells."""

    def __init__(self, cfg: ModelConfig, params: dict[str, np.ndarray]):
        self.cfg = cfg
        self.params = params

    # ---------------------------------------------------------------- forward
    def _inputs(self, x):
        """x (T, B) ids -> layer-0 input projection (T, B, G*H), plus layer-0 input."""
        p = self.params
        if self.cfg.embed_size > 0:
            emb = p["embed"][x]
            xw = emb @ p["l0.Wx"]
        else:
            emb = None
            xw = p["l0.Wx"][x]
        xw += p["l0.b"]
        return xw, emb

    def _run(self, x, state, rng, train):
        """Forward through all layers; returns top output (T, B, H) and caches."""
        cfg, p = self.cfg, self.params
        fwd = cells.FORWARD[cfg.model]
        xw, emb = self._inputs(x)
        new_state, caches = [], []
        inp = emb
        for k in range(cfg.num_layers):
            if k > 0:
                xw = inp @ p[f"l{k}.Wx"]
                xw += p[f"l{k}.b"]
            h0, c0 = state[k]
            hs, last, cache = fwd(xw, h0, c0, p[f"l{k}.Wh"])
            mask = None
            out = hs
            if train and cfg.dropout > 0 and rng is not None:
                mask = _dropout_mask(rng, hs.shape, cfg.dropout, hs.dtype)
                out = hs * mask
            caches.append((inp, cache, mask))
            new_state.append(last)
            inp = out
        return inp, new_state, caches, emb

    def loss(self, x, y, state):
        """Forward only. x, y (B, T) ids -> (nats/char, new state)."""
        T = x.shape[1]
        top, new_state, _, _ = self._run(x.T, state, None, train=False)
        logits = top.reshape(-1, self.cfg.hidden_size) @ self.params["out.W"]
        logits += self.params["out.b"]
        nll, _ = _log_softmax_nll(logits, y.T.reshape(-1))
        return nll / y.size, new_state

    def loss_and_grads(self, x, y, state, rng=None):
        """Forward and backward over one chunk.

        x, y: (B, T) integer ids (y is x shifted by one character).
        state: per-layer (h, c), see ``zero_state``.
        rng: draws the dropout masks (dropout is off when None).
        Returns (loss in nats/char, grads dict like params, new state).
        """
        cfg, p = self.cfg, self.params
        B, T = x.shape
        H = cfg.hidden_size
        xt = x.T
        top, new_state, caches, emb = self._run(xt, state, rng, train=True)
        top2 = top.reshape(T * B, H)
        logits = top2 @ p["out.W"]
        logits += p["out.b"]
        nll, probs = _log_softmax_nll(logits, y.T.reshape(-1))
        dlogits = probs
        dlogits[np.arange(T * B), y.T.reshape(-1)] -= 1.0
        dlogits *= 1.0 / B
        grads = {"out.W": top2.T @ dlogits, "out.b": dlogits.sum(axis=0)}
        dtop = (dlogits @ p["out.W"].T).reshape(T, B, H)

        bwd = cells.BACKWARD[cfg.model]
        for k in range(cfg.num_layers - 1, -1, -1):
            inp, cache, mask = caches[k]
            if mask is not None:
                dtop *= mask
            h0, c0 = state[k]
            dc = np.zeros_like(c0) if c0 is not None else None
            dxw, _, _, dWh = bwd(dtop, np.zeros_like(h0), dc, cache)
            grads[f"l{k}.Wh"] = dWh
            grads[f"l{k}.b"] = dxw.sum(axis=(0, 1))
            G = dxw.shape[2]
            dxw2 = dxw.reshape(T * B, G)
            if k > 0 or cfg.embed_size > 0:
                n_in = inp.shape[2]
                grads[f"l{k}.Wx"] = inp.reshape(T * B, n_in).T @ dxw2
                dtop = (dxw2 @ p[f"l{k}.Wx"].T).reshape(T, B, n_in)
            else:
                grads["l0.Wx"] = _scatter_rows(xt.reshape(-1), dxw2, cfg.vocab_size)
        if cfg.embed_size > 0:
            grads["embed"] = _scatter_rows(xt.reshape(-1), dtop.reshape(T * B, -1), cfg.vocab_size)
        return nll / (T * B), grads, new_state

    # --------------------------------------------------------------- sampling
    def step(self, ids, state):
        """One character for each of B streams: ids (B,) -> (logits (B, V), state)."""
        cfg, p = self.cfg, self.params
        xw, inp = self._inputs(ids[None])
        xw = xw[0]
        new_state = []
        for k in range(cfg.num_layers):
            if k > 0:
                xw = inp @ p[f"l{k}.Wx"]
                xw += p[f"l{k}.b"]
            h, c = cells.step(cfg.model, xw, *state[k], p[f"l{k}.Wh"])
            new_state.append((h, c))
            inp = h
        logits = inp @ p["out.W"]
        logits += p["out.b"]
        return logits, new_state


    # ------------------------------------------------------------ activations
    def activations(self, ids, state=None):
        """Forward only over one stream, for looking inside the model.

        ids (T,) integer ids; state: per-layer (h, c) with batch 1 (zero when None).
        Returns (acts, logits, state): acts[k] is a dict with "h" (T, H), the
        output of layer k after each character, and for lstm also "c" (T, H),
        the cell state; logits (T, V) score the character that follows each
        position; state is the state after the last character (for chunking).
        """
        cfg, p = self.cfg, self.params
        ids = np.asarray(ids).reshape(-1, 1)
        state = state if state is not None else zero_state(cfg, 1)
        fwd = cells.FORWARD[cfg.model]
        xw, inp = self._inputs(ids)
        acts, new_state = [], []
        for k in range(cfg.num_layers):
            if k > 0:
                xw = inp @ p[f"l{k}.Wx"]
                xw += p[f"l{k}.b"]
            h0, c0 = state[k]
            hs, last, _ = fwd(xw, h0, c0, p[f"l{k}.Wh"])
            layer = {"h": hs[:, 0].copy()}
            if cfg.model == "lstm":
                layer["c"] = _lstm_cells(xw[:, 0], hs[:, 0], h0[0], c0[0], p[f"l{k}.Wh"])
            acts.append(layer)
            new_state.append(last)
            inp = hs
        logits = inp[:, 0] @ p["out.W"]
        logits += p["out.b"]
        return acts, logits, new_state


def _scatter_rows(ids, rows, n):
    """Sum rows (N, D) into an (n, D) table by ids (N,): the lookup's gradient.

    Sort by id, then one segmented sum (np.add.at is several times slower)."""
    order = np.argsort(ids, kind="stable")
    sid = ids[order]
    starts = np.flatnonzero(np.concatenate(([True], sid[1:] != sid[:-1])))
    out = np.zeros((n, rows.shape[1]), dtype=rows.dtype)
    out[sid[starts]] = np.add.reduceat(rows[order], starts, axis=0)
    return out


def count_params(cfg: ModelConfig) -> int:
    return int(sum(np.prod(s) for s in param_shapes(cfg).values()))


def _lstm_cells(xw, hs, h0, c0, Wh):
    """Cell states (T, H) of an lstm layer from its outputs hs (T, H): the gates
    depend only on the input and the previous output, so they are recomputed
    in one product and c_t = f_t * c_{t-1} + i_t * g_t is unrolled."""
    H = hs.shape[1]
    hprev = np.concatenate([h0[None], hs[:-1]], axis=0)
    a = hprev @ Wh
    a += xw
    with np.errstate(over="ignore"):
        ifo = 1.0 / (1.0 + np.exp(-a[:, :3 * H]))
    g = np.tanh(a[:, 3 * H:])
    ig = ifo[:, :H] * g
    f = ifo[:, H:2 * H]
    cs = np.empty_like(hs)
    c = c0
    for t in range(len(hs)):
        c = f[t] * c + ig[t]
        cs[t] = c
    return cs
