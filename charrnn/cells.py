"""Recurrent cells as pure functions over one chunk of T time steps.

Every cell works on a precomputed input projection ``xw = x @ Wx + b`` of the
whole chunk, shape (T, B, G*H), where G is the number of gate blocks, so the
only per-step matrix product is the recurrent one ``h @ Wh`` with
Wh of shape (H, G*H).

    forward(xw, h0, c0, Wh)          -> hs (T, B, H), (hT, cT), cache
    backward(dhs, dhT, dcT, cache)   -> dxw (T, B, G*H), dh0, dc0, dWh

``c`` is the LSTM cell state; the other cells pass ``None`` for it.

Gate layouts (blocks of H columns):
    rnn   [a]              h = tanh(a)
    lstm  [i, f, o, g]     c = f*c_prev + i*g,  h = o*tanh(c)
    gru   [z, r, n]        reset-after variant (as in cuDNN): the reset gate
                           scales the recurrent product, n = tanh(xn + r*(h@Wn)),
                           so one fused GEMM per step serves all three gates;
                           h = (1-z)*n + z*h_prev.
"""
from __future__ import annotations

import numpy as np

GATES = {"rnn": 1, "lstm": 4, "gru": 3}
KINDS = tuple(GATES)


def _sigmoid(x, out):
    """Logistic function written into ``out`` (stable enough for float32)."""
    np.negative(x, out=out)
    np.exp(out, out=out)
    out += 1.0
    np.reciprocal(out, out=out)
    return out


# --------------------------------------------------------------------- rnn
def rnn_forward(xw, h0, c0, Wh):
    T, B, H = xw.shape
    hs = np.empty((T, B, H), dtype=xw.dtype)
    h = h0
    for t in range(T):
        out = hs[t]
        np.matmul(h, Wh, out=out)
        out += xw[t]
        np.tanh(out, out=out)
        h = out
    return hs, (hs[-1].copy(), None), (h0, hs, Wh)


def rnn_backward(dhs, dhT, dcT, cache):
    h0, hs, Wh = cache
    T, B, H = hs.shape
    da = np.empty_like(hs)
    dh = dhT.copy()
    for t in range(T - 1, -1, -1):
        dh += dhs[t]
        d = da[t]
        np.multiply(hs[t], hs[t], out=d)
        np.subtract(1.0, d, out=d)
        d *= dh
        dh = d @ Wh.T
    hprev = _shifted(h0, hs)
    dWh = hprev.reshape(T * B, H).T @ da.reshape(T * B, H)
    return da, dh, None, dWh


# -------------------------------------------------------------------- lstm
def lstm_forward(xw, h0, c0, Wh):
    T, B, G = xw.shape
    H = G // 4
    gates = np.empty((T, B, G), dtype=xw.dtype)   # activated i, f, o, g
    cs = np.empty((T, B, H), dtype=xw.dtype)
    tcs = np.empty((T, B, H), dtype=xw.dtype)     # tanh(c)
    hs = np.empty((T, B, H), dtype=xw.dtype)
    h, c = h0, c0
    tmp = np.empty((B, H), dtype=xw.dtype)
    for t in range(T):
        a = gates[t]
        np.matmul(h, Wh, out=a)
        a += xw[t]
        _sigmoid(a[:, :3 * H], out=a[:, :3 * H])
        np.tanh(a[:, 3 * H:], out=a[:, 3 * H:])
        ct = cs[t]
        np.multiply(a[:, H:2 * H], c, out=ct)
        np.multiply(a[:, :H], a[:, 3 * H:], out=tmp)
        ct += tmp
        np.tanh(ct, out=tcs[t])
        np.multiply(a[:, 2 * H:3 * H], tcs[t], out=hs[t])
        h, c = hs[t], ct
    return hs, (hs[-1].copy(), cs[-1].copy()), (h0, c0, hs, cs, tcs, gates, Wh)


def lstm_backward(dhs, dhT, dcT, cache):
    h0, c0, hs, cs, tcs, gates, Wh = cache
    T, B, H = hs.shape
    da = np.empty_like(gates)
    dh = dhT.copy()
    dc = dcT.copy()
    tmp = np.empty((B, H), dtype=hs.dtype)
    for t in range(T - 1, -1, -1):
        dh += dhs[t]
        g = gates[t]
        i, f, o, cand = g[:, :H], g[:, H:2 * H], g[:, 2 * H:3 * H], g[:, 3 * H:]
        d = da[t]
        di, df, do, dg = d[:, :H], d[:, H:2 * H], d[:, 2 * H:3 * H], d[:, 3 * H:]
        tc = tcs[t]
        # dc += dh * o * (1 - tanh(c)^2)
        np.multiply(tc, tc, out=tmp)
        np.subtract(1.0, tmp, out=tmp)
        tmp *= o
        tmp *= dh
        dc += tmp
        c_prev = cs[t - 1] if t > 0 else c0
        # pre-activation gradients
        np.multiply(dh, tc, out=do)
        do *= o
        do *= 1.0 - o
        np.multiply(dc, cand, out=di)
        di *= i
        di *= 1.0 - i
        np.multiply(dc, c_prev, out=df)
        df *= f
        df *= 1.0 - f
        np.multiply(cand, cand, out=dg)
        np.subtract(1.0, dg, out=dg)
        dg *= i
        dg *= dc
        dc *= f
        dh = d @ Wh.T
    hprev = _shifted(h0, hs)
    dWh = hprev.reshape(T * B, H).T @ da.reshape(T * B, 4 * H)
    return da, dh, dc, dWh


# --------------------------------------------------------------------- gru
def gru_forward(xw, h0, c0, Wh):
    T, B, G = xw.shape
    H = G // 3
    zrn = np.empty((T, B, G), dtype=xw.dtype)    # activated z, r and n
    ghn = np.empty((T, B, H), dtype=xw.dtype)    # recurrent part of n, h@Wn
    hs = np.empty((T, B, H), dtype=xw.dtype)
    gh = np.empty((B, G), dtype=xw.dtype)
    h = h0
    for t in range(T):
        a = zrn[t]
        np.matmul(h, Wh, out=gh)
        np.add(xw[t, :, :2 * H], gh[:, :2 * H], out=a[:, :2 * H])
        _sigmoid(a[:, :2 * H], out=a[:, :2 * H])
        ghn[t] = gh[:, 2 * H:]
        n = a[:, 2 * H:]
        np.multiply(a[:, H:2 * H], gh[:, 2 * H:], out=n)
        n += xw[t, :, 2 * H:]
        np.tanh(n, out=n)
        # h = n + z*(h_prev - n)
        ht = hs[t]
        np.subtract(h, n, out=ht)
        ht *= a[:, :H]
        ht += n
        h = ht
    return hs, (hs[-1].copy(), None), (h0, hs, zrn, ghn, Wh)


def gru_backward(dhs, dhT, dcT, cache):
    h0, hs, zrn, ghn, Wh = cache
    T, B, H = hs.shape
    dx = np.empty_like(zrn)     # gradient wrt input projection
    dgh = np.empty_like(zrn)    # gradient wrt recurrent product h@Wh
    dh = dhT.copy()
    for t in range(T - 1, -1, -1):
        dh += dhs[t]
        a = zrn[t]
        z, r, n = a[:, :H], a[:, H:2 * H], a[:, 2 * H:]
        h_prev = hs[t - 1] if t > 0 else h0
        d = dx[t]
        dz, dr, dn = d[:, :H], d[:, H:2 * H], d[:, 2 * H:]
        # dn_pre = dh * (1 - z) * (1 - n^2)
        np.multiply(n, n, out=dn)
        np.subtract(1.0, dn, out=dn)
        dn *= 1.0 - z
        dn *= dh
        # dz_pre = dh * (h_prev - n) * z * (1 - z)
        np.subtract(h_prev, n, out=dz)
        dz *= dh
        dz *= z
        dz *= 1.0 - z
        # dr_pre = dn_pre * ghn * r * (1 - r)
        np.multiply(dn, ghn[t], out=dr)
        dr *= r
        dr *= 1.0 - r
        g = dgh[t]
        g[:, :2 * H] = d[:, :2 * H]
        np.multiply(dn, r, out=g[:, 2 * H:])
        dh_prev = dh * z
        dh_prev += g @ Wh.T
        dh = dh_prev
    hprev = _shifted(h0, hs)
    dWh = hprev.reshape(T * B, H).T @ dgh.reshape(T * B, 3 * H)
    return dx, dh, None, dWh


def _shifted(h0, hs):
    """(T, B, H): the state entering each step, h0 then hs[:-1]."""
    out = np.empty_like(hs)
    out[0] = h0
    out[1:] = hs[:-1]
    return out


FORWARD = {"rnn": rnn_forward, "lstm": lstm_forward, "gru": gru_forward}
BACKWARD = {"rnn": rnn_backward, "lstm": lstm_backward, "gru": gru_backward}


def step(kind, xw, h, c, Wh):
    """One step for sampling: xw (B, G*H), h, c (B, H) -> (h, c)."""
    hs, (h1, c1), _ = FORWARD[kind](xw[None], h, c, Wh)
    return h1, c1
