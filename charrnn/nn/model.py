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

from _thread import get_ident     # (threading itself costs start-up time)
from dataclasses import dataclass, asdict, replace
from functools import partial

import numpy as np

from charrnn.nn import blas
from charrnn.nn import cells
from charrnn.nn import parallel



@dataclass(frozen=True)
class ModelConfig:
    vocab_size: int
    model: str = "rnn"
    hidden_size: int = 100
    num_layers: int = 1
    embed_size: int = 0          # 0: direct lookup (one-hot equivalent)
    dropout: float = 0.0
    dtype: str = "float32"
    dropout_mask: str = "step"   # "step": a fresh output mask per time step; "chunk": one per chunk
    weight_drop: float = 0.0     # DropConnect on each layer's Wh, one mask per chunk

    def to_dict(self):
        return asdict(self)

    @property
    def draws_masks(self) -> bool:
        """Whether training draws dropout masks (dropout or weight_drop on)."""
        return self.dropout > 0 or self.weight_drop > 0

    @classmethod
    def from_dict(cls, d):
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})

    @property
    def cell(self) -> cells.Cell:
        return cells.CELLS[self.model]

    @property
    def gates(self):
        return self.cell.gates


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
    LSTM forget gate bias, which starts at 1 (see cells.Cell).
    """
    H, cell = cfg.hidden_size, cfg.cell
    params = {}
    for name, shape in param_shapes(cfg).items():
        if name == "out.b":
            p = np.zeros(shape)
        elif name.endswith(".b"):
            p = cell.init_bias(H)
        elif not cell.gated:
            p = rng.standard_normal(shape) * 0.01
        elif name == "embed":
            p = rng.standard_normal(shape) * 0.1
        else:
            bound = 1.0 / np.sqrt(H)
            p = rng.uniform(-bound, bound, size=shape)
        params[name] = p.astype(cfg.dtype)
    return params


def zero_state(cfg: ModelConfig, batch: int):
    """Per-layer (h, c) with h, c of shape (batch, H); c is None unless the
    cell carries one (lstm)."""
    H, dt, has_c = cfg.hidden_size, cfg.dtype, cfg.cell.has_c
    return [(np.zeros((batch, H), dt), np.zeros((batch, H), dt) if has_c else None)
            for _ in range(cfg.num_layers)]


@dataclass(frozen=True)
class Masks:
    """One chunk's dropout, scaled by 1/keep.

    Output masks are drawn where they are used: ``outs()`` draws those of
    the streams ``part`` (a worker thread's share, see ``streams(s)``),
    per layer (T, n, H) of the model's dtype (a read-only broadcast of
    (1, n, H) when one mask covers the chunk, ``per_step`` False).  Stream b
    draws from its own generator (PCG64 seeded by the chunk's ``key`` and
    b), so its masks do not depend on which thread draws them or with which
    other streams.  whs: per layer, the mask of its Wh (H, G*H), shared by
    all streams, drawn once per chunk, or None."""
    key: tuple
    p: float                # output dropout (0: no output masks)
    per_step: bool
    T: int
    H: int
    layers: int
    dtype: str
    part: slice             # the chunk's streams these masks are for
    whs: list | None

    def streams(self, s: slice) -> "Masks":
        """The masks of streams s (a worker thread's share)."""
        start = self.part.start + s.start
        return replace(self, part=slice(start, start + s.stop - s.start))

    def outs(self) -> list | None:
        """Per layer the output mask (T, n, H) of these n streams, or None."""
        if self.p <= 0:
            return None
        steps = self.T if self.per_step else 1
        per_stream = self.layers * steps * self.H
        b0, b1 = self.part.start, self.part.stop
        kept = np.empty((b1 - b0, self.layers, steps, self.H), bool)
        for j, b in enumerate(range(b0, b1)):
            kept[j] = _kept(np.random.SeedSequence(self.key, spawn_key=(0, b)),
                            per_stream, self.p).reshape(self.layers, steps, self.H)
        scale = np.dtype(self.dtype).type(1.0 / (1.0 - self.p))
        outs = []
        for k in range(self.layers):
            m = np.empty((steps, b1 - b0, self.H), self.dtype)
            np.multiply(kept[:, k].transpose(1, 0, 2), scale, out=m)
            outs.append(m if self.per_step else np.broadcast_to(m, (self.T,) + m.shape[1:]))
        return outs


def _kept(seed: np.random.SeedSequence, n: int, p: float) -> np.ndarray:
    """(n,) bool, each True with probability 1-p: 32-bit words of a PCG64
    seeded with seed (its raw 64-bit outputs read as two 32-bit halves,
    little-endian) kept when below (1-p) * 2^32.  Cheaper than float64 or
    float32 uniforms (bench/step_cost.py)."""
    below = np.uint32(min(int((1.0 - p) * 2.0 ** 32), 2 ** 32 - 1))
    words = np.random.PCG64(seed).random_raw((n + 1) // 2).view("<u4")[:n]
    return words < below


def _wh_mask(key, k: int, shape, p: float, dtype) -> np.ndarray:
    """Layer k's DropConnect mask of Wh (shape), 0 or 1/(1-p), from the chunk's key."""
    kept = _kept(np.random.SeedSequence(key, spawn_key=(1, k)), int(np.prod(shape)), p)
    return np.multiply(kept.reshape(shape), np.dtype(dtype).type(1.0 / (1.0 - p)), dtype=dtype)


def _project(x, W, out=None):
    """x (..., n) @ W (n, m) -> (..., m) as one 2-D GEMM over all leading
    rows (a chunk's T*B), not one product per time step; ``out`` (..., m)
    C-contiguous receives it when given."""
    n, m = W.shape
    rows = x.reshape(-1, n)
    y = np.matmul(rows, W, out=None if out is None else out.reshape(-1, m))
    return y.reshape(*x.shape[:-1], m)


def log_softmax(logits) -> np.ndarray:
    """(..., V) logits -> (..., V) float64 log-probabilities (over the last axis)."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def _log_softmax_nll(logits, y):
    """logits (V, N) -- one column per character --, y (N,) -> (summed nll,
    probs (V, N), in place).  Column layout: the max and sum over V run as
    whole-row operations instead of N short reductions."""
    logits -= logits.max(axis=0)
    np.exp(logits, out=logits)
    logits /= logits.sum(axis=0)
    picked = logits[y, np.arange(len(y))]
    nll = -np.log(np.maximum(picked, np.finfo(logits.dtype).tiny), dtype=np.float64).sum()
    return float(nll), logits


def _logits_t(top2, p):
    """top2 (N, H) -> logits (V, N) = (top2 @ out.W + out.b).T"""
    logits = np.matmul(p["out.W"].T, top2.T)
    logits += p["out.b"][:, None]
    return logits


# Data parallelism (charrnn.parallel): a chunk's B streams are split across
# worker threads when each step has enough arithmetic for threads to pay off.
PAR_MIN_MACS = 1 << 21        # per time step: B * H * G*H multiply-adds
PAR_MIN_STREAMS = 8           # per worker
OVERLAP_MIN_MACS = 1 << 23    # per chunk (dWh's size) to compute weight gradients aside


class Model:
    """Parameters plus forward/backward for the stacked cells.

    ``threads``: worker threads for one chunk (None: as many as there are
    CPUs, used only for models big enough to gain; see ``workers``)."""

    def __init__(self, cfg: ModelConfig, params: dict[str, np.ndarray], threads: int | None = None):
        self.cfg = cfg
        self.params = params
        self.threads = threads
        self._step_ws = {}

    def workers(self, batch: int) -> int:
        """How many threads share a chunk of ``batch`` streams."""
        cfg = self.cfg
        n = self.threads if self.threads is not None else parallel.max_workers()
        if self.threads is None:
            macs = batch * cfg.hidden_size * cfg.gates * cfg.hidden_size
            if macs < PAR_MIN_MACS:
                return 1
        return max(1, min(n, batch // PAR_MIN_STREAMS))

    def overlaps(self, batch: int, seq_len: int) -> bool:
        """Whether one chunk's weight gradients run in a second thread beside
        the backward recursion (when the streams are not split: small models)."""
        cfg = self.cfg
        n = self.threads if self.threads is not None else parallel.max_workers()
        macs = batch * seq_len * cfg.hidden_size * cfg.gates * cfg.hidden_size
        return n > 1 and macs >= OVERLAP_MIN_MACS

    # ---------------------------------------------------------------- forward
    def _inputs(self, x):
        """x (T, B) ids -> layer-0 input projection (T, B, G*H), plus layer-0 input."""
        p = self.params
        if self.cfg.embed_size > 0:
            emb = p["embed"][x]
            xw = _project(emb, p["l0.Wx"])
        else:
            emb = None
            xw = p["l0.Wx"][x]
        xw += p["l0.b"]
        return xw, emb

    def _masks(self, rng, T, B):
        """One chunk's dropout masks (None when rng is None or the model has
        no dropout): one key of two 64-bit words drawn from rng, from which
        each stream's output masks and each layer's Wh mask are drawn (Masks)."""
        cfg = self.cfg
        if rng is None or not cfg.draws_masks:
            return None
        key = tuple(rng.integers(0, 1 << 64, size=2, dtype=np.uint64).tolist())
        whs = None
        if cfg.weight_drop > 0:
            whs = [_wh_mask(key, k, self.params[f"l{k}.Wh"].shape, cfg.weight_drop, cfg.dtype)
                   for k in range(cfg.num_layers)]
        return Masks(key, cfg.dropout, cfg.dropout_mask == "step", T, cfg.hidden_size,
                     cfg.num_layers, cfg.dtype, slice(0, B), whs)

    def _layers(self, xw, inp, state, layer, xw_buf=None):
        """The one loop over the stacked layers, shared by training, scoring,
        sampling and the views.

        xw: layer 0's input projection, bias added; inp: layer 0's input (the
        embedding, or None for the direct lookup); state: per-layer (h, c).
        ``layer(k, xw, h0, c0)`` runs layer k and returns (out, last, extra):
        out feeds layer k+1 as ``out @ l{k+1}.Wx + l{k+1}.b`` (written into
        xw_buf when given), last is the layer's new (h, c), extra whatever
        the caller keeps.  Returns (top output, new state, [(inp, extra)])."""
        p = self.params
        new_state, kept = [], []
        for k in range(self.cfg.num_layers):
            if k:
                xw = _project(inp, p[f"l{k}.Wx"], out=xw_buf)
                xw += p[f"l{k}.b"]
            out, last, extra = layer(k, xw, *state[k])
            kept.append((inp, extra))
            new_state.append(last)
            inp = out
        return inp, new_state, kept

    def _run(self, x, state, rng, train, masks=None):
        """Forward over a chunk x (T, B) ids; returns (top output (T, B, H), new
        state, per-layer (input, cell cache, dropout mask), embedded input).
        Dropout masks: ``masks`` if given, else drawn from rng when training."""
        p, forward = self.params, self.cfg.cell.forward
        if masks is None and train:
            masks = self._masks(rng, *x.shape)

        outs = masks.outs() if masks is not None else None      # drawn in this thread
        whs = masks.whs if masks is not None else None

        def layer(k, xw, h0, c0):
            Wh = p[f"l{k}.Wh"] if whs is None else p[f"l{k}.Wh"] * whs[k]
            hs, last, cache = forward(xw, h0, c0, Wh)
            mask = outs[k] if outs is not None else None
            return (hs if mask is None else hs * mask), last, (cache, mask)
        xw, emb = self._inputs(x)
        top, new_state, kept = self._layers(xw, emb, state, layer)
        return top, new_state, [(inp, cache, mask) for inp, (cache, mask) in kept], emb

    def _split(self, fn, x, y, state, masks):
        """fn(x, y, state, masks) on the streams split across worker threads
        (or whole): the list of results, one per part, in stream order."""
        B = x.shape[0]
        W = self.workers(B)
        if W == 1:
            return [fn(x, y, state, masks)]
        tasks = []
        for s in parallel.splits(B, W):
            st = [(h[s], None if c is None else c[s]) for h, c in state]
            ms = None if masks is None else masks.streams(s)
            tasks.append(partial(fn, x[s], y[s], st, ms))
        with blas.single_threaded():
            return parallel.run(tasks)

    @staticmethod
    def _join_states(parts):
        if len(parts) == 1:
            return parts[0]
        return [(np.concatenate([p[k][0] for p in parts]),
                 None if parts[0][k][1] is None else np.concatenate([p[k][1] for p in parts]))
                for k in range(len(parts[0]))]

    def loss(self, x, y, state):
        """Forward only. x, y (B, T) ids -> (nats/char, new state)."""
        res = self._split(self._nll, x, y, state, None)
        return sum(r[0] for r in res) / y.size, self._join_states([r[1] for r in res])

    def _nll(self, x, y, state, masks):
        top, new_state, _, _ = self._run(x.T, state, None, train=False)
        logits = _logits_t(top.reshape(-1, self.cfg.hidden_size), self.params)
        nll, _ = _log_softmax_nll(logits, y.T.reshape(-1))
        return nll, new_state

    def nll_rows(self, x, y, state):
        """Forward only. x, y (B, T) ids -> (nll (B, T) float64 nats of each
        target, new state): per-character losses, for scoring with masks."""
        res = self._split(self._nll_rows, x, y, state, None)
        nll = res[0][0] if len(res) == 1 else np.concatenate([r[0] for r in res])
        return nll, self._join_states([r[1] for r in res])

    def _nll_rows(self, x, y, state, masks):
        B, T = x.shape
        top, new_state, _, _ = self._run(x.T, state, None, train=False)
        z = _logits_t(top.reshape(-1, self.cfg.hidden_size), self.params).astype(np.float64)
        z -= z.max(axis=0)
        picked = z[y.T.reshape(-1), np.arange(T * B)]
        np.exp(z, out=z)
        nll = np.log(z.sum(axis=0)) - picked
        return nll.reshape(T, B).T, new_state

    def loss_and_grads(self, x, y, state, rng=None):
        """Forward and backward over one chunk.

        x, y: (B, T) integer ids (y is x shifted by one character).
        state: per-layer (h, c), see ``zero_state``.
        rng: draws the dropout masks (dropout is off when None).
        Returns (loss in nats/char, grads dict like params, new state).
        """
        B, T = x.shape
        masks = self._masks(rng, T, B)
        if self.workers(B) == 1 and self.overlaps(B, T):
            with blas.single_threaded():
                res = [self._grads(x, y, state, masks, 1.0 / B, overlap=True)]
        else:
            res = self._split(partial(self._grads, scale=1.0 / B), x, y, state, masks)
        grads = res[0][1]
        for r in res[1:]:
            for name, g in r[1].items():
                grads[name] += g
        nll = sum(r[0] for r in res)
        return nll / (T * B), grads, self._join_states([r[2] for r in res])

    def _grads(self, x, y, state, masks, scale, overlap=False):
        """(summed nll, grads of scale * summed nll, new state) for streams x, y (B, T).

        overlap: compute the weight gradients (off the critical path) in a
        worker thread while this one carries on with the backward recursion."""
        cfg, p = self.cfg, self.params
        B, T = x.shape
        H = cfg.hidden_size
        xt = x.T
        grads, pending = {}, {}

        def weight_grad(name, fn, *args):
            if overlap:
                pending[name] = parallel.submit(fn, *args)
            else:
                grads[name] = fn(*args)

        top, new_state, caches, emb = self._run(xt, state, None, train=True, masks=masks)
        top2 = top.reshape(T * B, H)
        yt = y.T.reshape(-1)
        dtop = np.empty((T * B, H), dtype=top2.dtype)

        def head(rows):
            """Softmax layer on rows of top2: nll, dlogits (V, n); fills dtop[rows]."""
            nll, dlogits = _log_softmax_nll(_logits_t(top2[rows], p), yt[rows])
            dlogits[yt[rows], np.arange(rows.stop - rows.start)] -= 1.0
            dlogits *= scale
            np.matmul(dlogits.T, p["out.W"].T, out=dtop[rows])
            return nll, dlogits

        parts = parallel.splits(T * B, 2 if overlap else 1)
        heads = parallel.run([partial(head, r) for r in parts])
        nll = sum(h[0] for h in heads)
        grads["out.b"] = sum(h[1].sum(axis=1) for h in heads)
        weight_grad("out.W", _sum_of_products, [top2[r].T for r in parts], [h[1].T for h in heads])
        dtop = dtop.reshape(T, B, H)

        cell = cfg.cell
        for k in range(cfg.num_layers - 1, -1, -1):
            inp, cache, mask = caches[k]
            if mask is not None:
                dtop *= mask
            h0, c0 = state[k]
            dc = np.zeros_like(c0) if c0 is not None else None
            dxw, _, _, dgh = cell.backward_steps(dtop, np.zeros_like(h0), dc, cache)
            weight_grad(f"l{k}.Wh", cell.dWh, cache, dgh)
            G = dxw.shape[2]
            dxw2 = dxw.reshape(T * B, G)
            if k > 0 or cfg.embed_size > 0:
                grads[f"l{k}.b"] = dxw2.sum(axis=0)
                n_in = inp.shape[2]
                weight_grad(f"l{k}.Wx", np.matmul, inp.reshape(T * B, n_in).T, dxw2)
                dtop = (dxw2 @ p[f"l{k}.Wx"].T).reshape(T, B, n_in)
            else:       # in this thread: overlaps with dWh in the other one
                grads["l0.Wx"] = _scatter_rows(xt.reshape(-1), dxw2, cfg.vocab_size)
        if cfg.embed_size > 0:
            grads["embed"] = _scatter_rows(xt.reshape(-1), dtop.reshape(T * B, -1), cfg.vocab_size)
        for name, future in pending.items():
            grads[name] = future.result()
        if masks is not None and masks.whs is not None:    # the gradient of Wh * mask
            for k, m in enumerate(masks.whs):
                grads[f"l{k}.Wh"] *= m
        if cfg.embed_size == 0:
            # each row of dxw belongs to exactly one id, so the bias
            # gradient is the sum of the lookup table's gradient rows
            grads["l0.b"] = grads["l0.Wx"].sum(axis=0)
        return nll, {name: grads[name] for name in p}, new_state

    # --------------------------------------------------------------- sampling
    def advance(self, ids, state):
        """One character for each of B streams: ids (B,) -> (logits (B, V), state).

        Returns new state arrays; the gate buffers are kept from call to
        call (per batch size and thread), so a step allocates only its outputs."""
        cfg, p = self.cfg, self.params
        B = len(ids)
        key = (B, get_ident())         # batched sampling steps groups in threads
        ws = self._step_ws.get(key)
        if ws is None:
            if len(self._step_ws) >= 16:         # batch sizes shrink as samples finish
                self._step_ws.clear()
            G, dt = cfg.gates * cfg.hidden_size, p["out.W"].dtype
            ws = self._step_ws[key] = (np.empty((B, G), dt), np.empty((B, G), dt),
                                       np.empty((B, G), dt))
        xw, a, b = ws
        if cfg.embed_size > 0:
            np.matmul(p["embed"][ids], p["l0.Wx"], out=xw)
        else:
            np.take(p["l0.Wx"], ids, axis=0, out=xw)
        xw += p["l0.b"]
        step_into = cfg.cell.step_into

        def layer(k, xw, h, c):
            h1, c1 = np.empty_like(h), None if c is None else np.empty_like(c)
            step_into(xw, h, c, p[f"l{k}.Wh"], a, b, h1, c1)
            return h1, (h1, c1), None
        top, new_state, _ = self._layers(xw, None, state, layer, xw_buf=xw)
        logits = top @ p["out.W"]
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
        top, new_state, caches, _ = self._run(ids, state, None, train=False)
        acts = [{name: a[:, 0].copy() for name, a in cfg.cell.states(cache).items()}
                for _, cache, _ in caches]
        logits = top[:, 0] @ p["out.W"]
        logits += p["out.b"]
        return acts, logits, new_state


def _sum_of_products(lefts, rights):
    """sum_k lefts[k] @ rights[k]"""
    out = lefts[0] @ rights[0]
    for a, b in zip(lefts[1:], rights[1:]):
        out += a @ b
    return out


def _scatter_rows(ids, rows, n):
    """Sum rows (N, D) into an (n, D) table by ids (N,): the lookup's gradient.

    Sort by id, gather, then one contiguous column sum per distinct id:
    faster than np.add.at, np.add.reduceat or a one-hot (n, N) @ rows GEMM
    on this project's shapes (figures: bench/results/NOTES.md)."""
    N, D = rows.shape
    order = np.argsort(ids, kind="stable")
    sid = ids[order]
    srt = rows[order]
    starts = np.flatnonzero(np.concatenate(([True], sid[1:] != sid[:-1])))
    ends = np.append(starts[1:], N)
    out = np.zeros((n, D), dtype=rows.dtype)
    add = np.add.reduce
    for a, b in zip(starts.tolist(), ends.tolist()):
        add(srt[a:b], 0, None, out[sid[a]])
    return out


def count_params(cfg: ModelConfig) -> int:
    return int(sum(np.prod(s) for s in param_shapes(cfg).values()))
