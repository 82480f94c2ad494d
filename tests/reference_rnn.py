"""A plain per-character vanilla RNN, written the way the classic minimal
script is: column vectors, one-hot inputs, dict-of-timesteps caches, a Python
loop over characters, float64.  The tests hold charrnn's batched model to it.

Weights use the classic orientation: Wxh (H, V), Whh (H, H), Why (V, H),
bh (H, 1), by (V, 1).
"""
import numpy as np


def loss_and_grads(inputs, targets, hprev, Wxh, Whh, Why, bh, by):
    """inputs, targets: lists of ints; hprev (H, 1).
    Returns summed loss (nats), dWxh, dWhh, dWhy, dbh, dby, last h."""
    V = Wxh.shape[1]
    xs, hs, ps = {}, {-1: np.copy(hprev)}, {}
    loss = 0.0
    for t, (i, j) in enumerate(zip(inputs, targets)):
        xs[t] = np.zeros((V, 1))
        xs[t][i] = 1.0
        hs[t] = np.tanh(Wxh @ xs[t] + Whh @ hs[t - 1] + bh)
        y = Why @ hs[t] + by
        e = np.exp(y - y.max())
        ps[t] = e / e.sum()
        loss -= np.log(ps[t][j, 0])
    dWxh, dWhh, dWhy = np.zeros_like(Wxh), np.zeros_like(Whh), np.zeros_like(Why)
    dbh, dby = np.zeros_like(bh), np.zeros_like(by)
    dhnext = np.zeros_like(hprev)
    for t in reversed(range(len(inputs))):
        dy = np.copy(ps[t])
        dy[targets[t]] -= 1.0
        dWhy += dy @ hs[t].T
        dby += dy
        dh = Why.T @ dy + dhnext
        draw = (1.0 - hs[t] * hs[t]) * dh
        dbh += draw
        dWxh += draw @ xs[t].T
        dWhh += draw @ hs[t - 1].T
        dhnext = Whh.T @ draw
    return loss, dWxh, dWhh, dWhy, dbh, dby, hs[len(inputs) - 1]


def clip_and_adagrad(params, grads, mems, lr, clip=5.0):
    """Elementwise clip to [-clip, clip], then the classic Adagrad update in place."""
    for p, g, m in zip(params, grads, mems):
        np.clip(g, -clip, clip, out=g)
        m += g * g
        p += -lr * g / np.sqrt(m + 1e-8)
