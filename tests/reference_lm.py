"""A plain per-character forward pass of charrnn's stacked cells, written from
the gate formulas (see charrnn/nn/cells.py) with a Python loop over characters
and vectors in float64, for holding the chunked code to."""
import math

import numpy as np


def _sig(x):
    return 1.0 / (1.0 + np.exp(-x))


def forward(params, cfg, ids, perturb=None):
    """Read ids (list of ints) from a zero state.

    Returns (hs, cs, logps): hs[k] and cs[k] are (T, H) arrays of layer k's
    output and (lstm) cell state after each character; logps (T, V) the
    log-probabilities of the next character after each one.
    perturb: {(layer, position, "h" or "c"): vector} added to that state right
    after it is computed (for finite differences with respect to a state)."""
    perturb = perturb or {}
    P = {k: np.asarray(v, dtype=np.float64) for k, v in params.items()}
    H, L = cfg.hidden_size, cfg.num_layers
    h = [np.zeros(H) for _ in range(L)]
    c = [np.zeros(H) for _ in range(L)]
    hs = [[] for _ in range(L)]
    cs = [[] for _ in range(L)]
    logps = []
    for i in ids:
        x = P["embed"][i] if cfg.embed_size else None
        for k in range(L):
            if k == 0:
                xw = (x @ P["l0.Wx"] if x is not None else P["l0.Wx"][i]) + P["l0.b"]
            else:
                xw = h[k - 1] @ P[f"l{k}.Wx"] + P[f"l{k}.b"]
            Wh = P[f"l{k}.Wh"]
            if cfg.model == "rnn":
                h[k] = np.tanh(xw + h[k] @ Wh)
            elif cfg.model == "lstm":
                a = xw + h[k] @ Wh
                gi, gf, go = _sig(a[:H]), _sig(a[H:2 * H]), _sig(a[2 * H:3 * H])
                gg = np.tanh(a[3 * H:])
                c[k] = gf * c[k] + gi * gg
                h[k] = go * np.tanh(c[k])
            else:  # gru, reset-after
                rh = h[k] @ Wh
                z = _sig(xw[:H] + rh[:H])
                r = _sig(xw[H:2 * H] + rh[H:2 * H])
                n = np.tanh(xw[2 * H:] + r * rh[2 * H:])
                h[k] = (1 - z) * n + z * h[k]
            pos = len(hs[k])
            if (k, pos, "c") in perturb:
                c[k] = c[k] + perturb[k, pos, "c"]
                h[k] = _sig(a[2 * H:3 * H]) * np.tanh(c[k])
            if (k, pos, "h") in perturb:
                h[k] = h[k] + perturb[k, pos, "h"]
            hs[k].append(h[k].copy())
            cs[k].append(c[k].copy())
        y = h[-1] @ P["out.W"] + P["out.b"]
        m = y.max()
        logps.append(y - m - math.log(np.exp(y - m).sum()))
    return [np.array(a) for a in hs], [np.array(a) for a in cs], np.array(logps)


def mean_loss(params, cfg, ids):
    """(summed nats, count): each character after the first, scored from the
    ones before it."""
    _, _, logps = forward(params, cfg, ids)
    total = -sum(logps[t - 1][ids[t]] for t in range(1, len(ids)))
    return total, len(ids) - 1
