"""Gradient flow through time: how much the loss at one position still
depends on each layer's state k characters earlier.

For a text of ids read as one stream from a zero state, L_t is the loss
(nats) of predicting ids[t+1] after position t.  For each layer l and lag
k = 0..K the figure is

    flow[l][k] = mean over t >= k of || dL_t / dh^l_{t-k} ||_2

(and the same for an lstm's cell state c), the total derivative: through
the recurrence and through the layers above.  A vanilla RNN's curve falls by
orders of magnitude within tens of steps (vanishing gradients); an LSTM's
cell state keeps it alive.

Every position is its own backward pass, K steps long; the passes run side
by side: at lag k, job t steps back through position t - k, so one batched
single-step backward per layer and lag serves all of them (cells.Cell.cache_at
gathers each job's step from the forward cache).
"""
from __future__ import annotations

import numpy as np

from charrnn.nn.model import Model, zero_state


def state_gradients(model: Model, ids, lags: int, block: int = 4096):
    """Yield (k, l, dh, dc) for k = 0..lags and layers l top to bottom:
    dh (n_k, H) holds dL_t/dh^l_{t-k} for t = k..N-2 (N = len(ids)), dc the
    same for the c state (None unless the cell has one).  Positions are
    processed in blocks of ``block`` jobs, so one lag may be yielded once per
    block."""
    cfg, p = model.cfg, model.params
    cell, L = cfg.cell, cfg.num_layers
    ids = np.asarray(ids)
    n_loss = len(ids) - 1
    if n_loss < 1:
        return
    x = ids[:-1].reshape(-1, 1)
    top, _, caches, _ = model._run(x, zero_state(cfg, 1), None, train=False)
    top = top[:, 0]                                                # (N, H)
    logits = top @ p["out.W"]
    logits += p["out.b"]
    logits -= logits.max(axis=1, keepdims=True)
    np.exp(logits, out=logits)
    logits /= logits.sum(axis=1, keepdims=True)
    logits[np.arange(n_loss), ids[1:]] -= 1.0
    dtop = logits @ p["out.W"].T                                   # dL_t/dtop_t
    WxT = [p[f"l{k}.Wx"].T for k in range(L)]
    for start in range(0, n_loss, block):
        t = np.arange(start, min(start + block, n_loss))
        dh = [np.zeros((len(t), cfg.hidden_size), dtype=top.dtype) for _ in range(L)]
        dc = [np.zeros_like(dh[0]) if cell.has_c else None for _ in range(L)]
        dh[L - 1] = dtop[t].copy()
        for k in range(lags + 1):
            live = t >= k
            if not live.any():
                break
            if not live.all():
                t = t[live]
                dh = [d[live] for d in dh]
                dc = [None if d is None else d[live] for d in dc]
            s = t - k
            for layer in range(L - 1, -1, -1):
                step = cell.cache_at(caches[layer][1], s)
                c_total = cell.c_grad(dh[layer], dc[layer], step) if cell.has_c else None
                yield k, layer, dh[layer], c_total
                zeros = np.zeros((1,) + dh[layer].shape, dtype=dh[layer].dtype)
                dxw, dh_prev, dc_prev, _ = cell.backward_steps(zeros, dh[layer], dc[layer], step)
                if layer:
                    dh[layer - 1] += dxw[0] @ WxT[layer]
                dh[layer], dc[layer] = dh_prev, dc_prev


def gradient_flow(model: Model, ids, lags: int = 50, block: int = 4096) -> dict:
    """Mean state-gradient norms by lag, as JSON-ready lists.

    Returns {"lags": K, "positions": N-1, "count": [positions averaged at
    lag k], "layers": [{"h": [K+1 floats], "c": [...] (lstm only)}]}; the
    norms are L2 norms of gradients of nats, averaged over positions."""
    cfg = model.cfg
    L = cfg.num_layers
    sums = {(l, part): np.zeros(lags + 1) for l in range(L)
            for part in (("h", "c") if cfg.cell.has_c else ("h",))}
    count = np.zeros(lags + 1, dtype=np.int64)
    for k, layer, dh, dc in state_gradients(model, ids, lags, block):
        sums[layer, "h"][k] += np.linalg.norm(dh.astype(np.float64), axis=1).sum()
        if dc is not None:
            sums[layer, "c"][k] += np.linalg.norm(dc.astype(np.float64), axis=1).sum()
        if layer == 0:
            count[k] += len(dh)
    with np.errstate(invalid="ignore", divide="ignore"):
        layers = [{part: (sums[l, part] / count).tolist() for part in ("h", "c")
                   if (l, part) in sums} for l in range(L)]
    return {"lags": lags, "positions": max(len(ids) - 1, 0), "count": count.tolist(),
            "layers": layers}
