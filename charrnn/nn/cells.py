"""Recurrent cells as pure functions over one chunk of T time steps.

Every cell works on a precomputed input projection ``xw = x @ Wx + b`` of the
whole chunk, shape (T, B, G*H), where G is the number of gate blocks, so the
only per-step matrix product is the recurrent one ``h @ Wh`` with
Wh of shape (H, G*H).

    forward(xw, h0, c0, Wh)          -> hs (T, B, H), (hT, cT), cache
    backward(dhs, dhT, dcT, cache)   -> dxw (T, B, G*H), dh0, dc0, dWh

``c`` is the LSTM cell state; the other cells pass ``None`` for it.

One time step is a separate function writing into caller-owned buffers
(``*_step``): the chunk forward loops over it, and sampling calls it
directly, so the two cannot disagree.  Per step the loops allocate nothing:
every product and gate lands in a preallocated slice (``out=``), the
sigmoid is computed as ``0.5 + 0.5*tanh(x/2)`` in place (tanh is the
cheapest transcendental numpy has), and gates that share a factor are
updated as one contiguous block.

Gate layouts (blocks of H columns):
    rnn   [a]              h = tanh(a)
    lstm  [i, f, o, g]     c = f*c_prev + i*g,  h = o*tanh(c)
    gru   [z, r, n]        reset-after variant (as in cuDNN): the reset gate
                           scales the recurrent product, n = tanh(xn + r*(h@Wn)),
                           so one fused GEMM per step serves all three gates;
                           h = (1-z)*n + z*h_prev.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np



def _sigmoid_(x):
    """Logistic function of x, in place: 0.5 + 0.5*tanh(x/2)."""
    x *= 0.5
    np.tanh(x, out=x)
    x *= 0.5
    x += 0.5
    return x


def _dWh(h0, hs, da):
    """sum_t h_{t-1}^T da_t: (H, G) from h0 (B, H), hs (T, B, H), da (T, B, G)."""
    T, B, H = hs.shape
    dWh = h0.T @ da[0]
    if T > 1:
        dWh += hs[:-1].reshape((T - 1) * B, H).T @ da[1:].reshape((T - 1) * B, -1)
    return dWh


# --------------------------------------------------------------------- rnn
def rnn_step(xw_t, h, Wh, h_out):
    """h_out (B, H) = tanh(xw_t + h @ Wh); h_out must not be h."""
    np.matmul(h, Wh, out=h_out)
    h_out += xw_t
    np.tanh(h_out, out=h_out)
    return h_out


def rnn_forward(xw, h0, c0, Wh):
    T, B, H = xw.shape
    hs = np.empty((T, B, H), dtype=xw.dtype)
    matmul, add, tanh = np.matmul, np.add, np.tanh     # rnn_step, inlined:
    h = h0                                             # small models are
    for t in range(T):                                 # call-bound
        out = hs[t]
        matmul(h, Wh, out)
        add(out, xw[t], out)
        tanh(out, out)
        h = out
    return hs, (hs[-1].copy(), None), (h0, hs, Wh)


def rnn_backward_steps(dhs, dhT, dcT, cache):
    """The step-by-step part of the backward pass: (dxw, dh0, dc0, da),
    where dWh = _dWh(h0, hs, da) (see BACKWARD_STEPS)."""
    h0, hs, Wh = cache
    T, B, H = hs.shape
    da = np.multiply(hs, hs)                 # 1 - h^2 for the whole chunk,
    np.subtract(1.0, da, out=da)             # times dh step by step below
    WhT = Wh.T
    matmul, add, mul = np.matmul, np.add, np.multiply
    dh = add(dhT, dhs[T - 1])
    for t in range(T - 1, 0, -1):
        d = da[t]
        mul(d, dh, d)
        matmul(d, WhT, dh)
        add(dh, dhs[t - 1], dh)
    mul(da[0], dh, da[0])
    matmul(da[0], WhT, dh)
    return da, dh, None, da


# -------------------------------------------------------------------- lstm
def lstm_step(xw_t, h, c, Wh, a, c_out, tc_out, h_out):
    """One LSTM step into buffers: a (B, 4H) activated [i, f, o, g],
    c_out = f*c + i*g, tc_out = tanh(c_out), h_out = o*tc_out.
    h_out may be h and c_out may be c (in-place stepping)."""
    H = c.shape[1]
    np.matmul(h, Wh, out=a)
    a += xw_t
    s = a[:, :3 * H]
    s *= 0.5                                  # sigmoid via tanh: one tanh
    np.tanh(a, out=a)                         # call for all four blocks
    s *= 0.5
    s += 0.5
    np.multiply(a[:, H:2 * H], c, out=c_out)
    np.multiply(a[:, :H], a[:, 3 * H:], out=h_out)
    c_out += h_out
    np.tanh(c_out, out=tc_out)
    np.multiply(a[:, 2 * H:3 * H], tc_out, out=h_out)
    return h_out, c_out


def lstm_forward(xw, h0, c0, Wh):
    T, B, G = xw.shape
    H = G // 4
    gates = np.empty((T, B, G), dtype=xw.dtype)   # activated i, f, o, g
    cs = np.empty((T, B, H), dtype=xw.dtype)
    tcs = np.empty((T, B, H), dtype=xw.dtype)     # tanh(c)
    hs = np.empty((T, B, H), dtype=xw.dtype)
    h, c = h0, c0
    for t in range(T):
        h, c = lstm_step(xw[t], h, c, Wh, gates[t], cs[t], tcs[t], hs[t])
    return hs, (hs[-1].copy(), cs[-1].copy()), (h0, c0, hs, cs, tcs, gates, Wh)


def lstm_backward_steps(dhs, dhT, dcT, cache):
    h0, c0, hs, cs, tcs, gates, Wh = cache
    T, B, H = hs.shape
    da = np.empty_like(gates)
    WhT = Wh.T
    dh = np.add(dhT, dhs[T - 1])
    dc = dcT.copy()
    tmp = np.empty((B, H), dtype=hs.dtype)
    tmp2 = np.empty((B, 2 * H), dtype=hs.dtype)
    for t in range(T - 1, -1, -1):
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
        # do = dh * tanh(c) * o(1-o)
        np.subtract(1.0, o, out=do)
        do *= o
        do *= tc
        do *= dh
        # [di, df] = dc * [g, c_prev] * s(1-s), s = [i, f]
        sif = g[:, :2 * H]
        np.subtract(1.0, sif, out=tmp2)
        tmp2 *= sif
        np.multiply(dc, cand, out=di)
        np.multiply(dc, cs[t - 1] if t else c0, out=df)
        d[:, :2 * H] *= tmp2
        # dg = dc * i * (1 - g^2)
        np.multiply(cand, cand, out=dg)
        np.subtract(1.0, dg, out=dg)
        dg *= i
        dg *= dc
        dc *= f
        np.matmul(d, WhT, out=dh)
        if t:
            dh += dhs[t - 1]
    return da, dh, dc, da


# --------------------------------------------------------------------- gru
def gru_step(xw_t, h, Wh, gh, a, h_out):
    """One GRU step into buffers: gh (B, 3H) = h @ Wh (kept for backward),
    a (B, 3H) activated [z, r, n], h_out = n + z*(h - n); h_out may be h."""
    H = h.shape[1]
    np.matmul(h, Wh, out=gh)
    zr = a[:, :2 * H]
    np.add(xw_t[:, :2 * H], gh[:, :2 * H], out=zr)
    _sigmoid_(zr)
    n = a[:, 2 * H:]
    np.multiply(a[:, H:2 * H], gh[:, 2 * H:], out=n)
    n += xw_t[:, 2 * H:]
    np.tanh(n, out=n)
    np.subtract(h, n, out=h_out)
    h_out *= a[:, :H]
    h_out += n
    return h_out


def gru_forward(xw, h0, c0, Wh):
    T, B, G = xw.shape
    H = G // 3
    zrn = np.empty((T, B, G), dtype=xw.dtype)    # activated z, r and n
    ghs = np.empty((T, B, G), dtype=xw.dtype)    # recurrent products h @ Wh
    hs = np.empty((T, B, H), dtype=xw.dtype)
    h = h0
    for t in range(T):
        h = gru_step(xw[t], h, Wh, ghs[t], zrn[t], hs[t])
    return hs, (hs[-1].copy(), None), (h0, hs, zrn, ghs, Wh)


def gru_backward_steps(dhs, dhT, dcT, cache):
    h0, hs, zrn, ghs, Wh = cache
    T, B, H = hs.shape
    dx = np.empty_like(zrn)     # gradient wrt input projection
    dgh = np.empty_like(zrn)    # gradient wrt recurrent product h@Wh
    WhT = Wh.T
    dh = np.add(dhT, dhs[T - 1])
    dh_rec = np.empty_like(dh)
    tmp = np.empty_like(dh)
    for t in range(T - 1, -1, -1):
        a = zrn[t]
        z, r, n = a[:, :H], a[:, H:2 * H], a[:, 2 * H:]
        h_prev = hs[t - 1] if t else h0
        d = dx[t]
        dz, dr, dn = d[:, :H], d[:, H:2 * H], d[:, 2 * H:]
        # dn_pre = dh * (1 - z) * (1 - n^2)
        np.multiply(n, n, out=dn)
        np.subtract(1.0, dn, out=dn)
        np.subtract(1.0, z, out=tmp)
        dn *= tmp
        dn *= dh
        # dz_pre = dh * (h_prev - n) * z * (1 - z);  tmp still holds 1 - z
        np.subtract(h_prev, n, out=dz)
        dz *= dh
        dz *= z
        dz *= tmp
        # dr_pre = dn_pre * ghn * r * (1 - r)
        np.subtract(1.0, r, out=dr)
        dr *= r
        dr *= ghs[t][:, 2 * H:]
        dr *= dn
        g = dgh[t]
        g[:, :2 * H] = d[:, :2 * H]
        np.multiply(dn, r, out=g[:, 2 * H:])
        # dh_prev = dh * z + g @ Wh^T
        np.matmul(g, WhT, out=dh_rec)
        dh *= z
        dh += dh_rec
        if t:
            dh += dhs[t - 1]
    return dx, dh, None, dgh


# ------------------------------------------------------------ the records
def _rnn_step_into(xw_t, h, c, Wh, a, b, h_out, c_out):
    rnn_step(xw_t, h, Wh, h_out)


def _lstm_step_into(xw_t, h, c, Wh, a, b, h_out, c_out):
    lstm_step(xw_t, h, c, Wh, a, c_out, b[:, :h.shape[1]], h_out)


def _gru_step_into(xw_t, h, c, Wh, a, b, h_out, c_out):
    gru_step(xw_t, h, Wh, b, a, h_out)


def _lstm_c_grad(dh, dc, step_cache):
    """dc + dh * o * (1 - tanh(c)^2) for a T = 1 lstm cache (B, H)."""
    h0, c0, hs, cs, tcs, gates, Wh = step_cache
    H = dh.shape[1]
    o, tc = gates[0][:, 2 * H:3 * H], tcs[0]
    return dc + dh * o * (1.0 - tc * tc)


@dataclass(frozen=True)
class Cell:
    """One cell type: everything the model, training, sampling and the views
    ask of it, so nothing else tests the cell's name.

    gates        G: blocks of H columns in Wx (n_in, G*H), Wh (H, G*H), b (G*H,)
    has_c        carries a cell state c (B, H) beside h (the lstm)
    forward      (xw, h0, c0, Wh) -> hs (T, B, H), (hT, cT), cache
    backward_steps (dhs, dhT, dcT, cache) -> dxw, dh0, dc0, da; dWh = dWh(cache, da)
    step_into    (xw_t, h, c, Wh, a, b, h_out, c_out): one step for B streams;
                 a, b (B, G*H) scratch; h_out must not be h for the rnn
    gated        weights start U(-1/sqrt(H), 1/sqrt(H)); else N(0, 0.01^2), as
                 in the classic script
    forget_bias  the second gate block's bias starts at 1 (lstm forget gate)
    """
    name: str
    gates: int
    forward: Callable
    backward_steps: Callable
    step_into: Callable
    gated: bool
    forget_bias: bool
    _hs_in_cache: int
    _cs_in_cache: int | None = None       # set for a cell with a c state
    _c_grad: Callable | None = None       # (dh, dc, one step's cache) -> total dL/dc
    _cache_layout: tuple = ()      # per cache entry: "h0", "c0", "t" (per step) or "W"
    _acts_in_cache: tuple = ()     # cache entries holding activated blocks (T, B, n*H)
    _block_kinds: tuple = ()       # "sigmoid" or "tanh" per H-column block of those entries

    @property
    def has_c(self) -> bool:
        """Carries a cell state c (B, H) beside h (the lstm)."""
        return self._cs_in_cache is not None

    def saturation(self, cache) -> tuple[int, int]:
        """(saturated, total) activation values of a forward cache: tanh
        outputs with |x| > 0.99, sigmoid gates below 0.01 or above 0.99."""
        kinds = iter(self._block_kinds)
        H = cache[self._hs_in_cache].shape[-1]
        sat = total = 0
        for i in self._acts_in_cache:
            a = cache[i]
            for j in range(a.shape[-1] // H):
                blk = a[..., j * H:(j + 1) * H]
                if next(kinds) == "tanh":
                    sat += int(np.count_nonzero(np.abs(blk) > 0.99))
                else:
                    sat += int(np.count_nonzero((blk < 0.01) | (blk > 0.99)))
                total += blk.size
        return sat, total

    def states(self, cache) -> dict:
        """{"h": hs (T, B, H)} from a forward cache, and "c" (T, B, H) for a
        cell with a c state."""
        d = {"h": cache[self._hs_in_cache]}
        if self._cs_in_cache is not None:
            d["c"] = cache[self._cs_in_cache]
        return d

    def dWh(self, cache, da):
        """(H, G*H) recurrent weight gradient from a forward cache and da."""
        return _dWh(cache[0], cache[self._hs_in_cache], da)

    def backward(self, dhs, dhT, dcT, cache):
        """-> dxw (T, B, G*H), dh0, dc0, dWh (H, G*H)"""
        dxw, dh0, dc0, da = self.backward_steps(dhs, dhT, dcT, cache)
        return dxw, dh0, dc0, self.dWh(cache, da)

    def cache_at(self, cache, times):
        """The cache of one step per job from the cache of a forward over one
        stream (B = 1): job j is the step at times[j].  Gives T = 1, B = len(times),
        so backward_steps runs n independent single steps at once."""
        times = np.asarray(times)
        prev = np.maximum(times - 1, 0)
        first = (times == 0)[:, None]
        out = []
        for slot, a in zip(self._cache_layout, cache):
            if slot == "t":
                out.append(a[times, 0][None])
            elif slot == "W":
                out.append(a)
            else:
                seq = cache[self._hs_in_cache if slot == "h0" else self._cs_in_cache]
                out.append(np.where(first, a[0], seq[prev, 0]))
        return tuple(out)

    def c_grad(self, dh, dc, step_cache):
        """Total gradient wrt the c state of one step (B, H): what flows in from
        the next step (dc) plus the route through this step's h."""
        return self._c_grad(dh, dc, step_cache)

    def init_bias(self, H: int) -> np.ndarray:
        b = np.zeros(self.gates * H)
        if self.forget_bias:
            b[H:2 * H] = 1.0
        return b


CELLS = {
    "rnn": Cell("rnn", 1, rnn_forward, rnn_backward_steps, _rnn_step_into,
                gated=False, forget_bias=False, _hs_in_cache=1,
                _cache_layout=("h0", "t", "W"), _acts_in_cache=(1,), _block_kinds=("tanh",)),
    "lstm": Cell("lstm", 4, lstm_forward, lstm_backward_steps, _lstm_step_into,
                 gated=True, forget_bias=True, _hs_in_cache=2, _cs_in_cache=3,
                 _c_grad=_lstm_c_grad, _cache_layout=("h0", "c0", "t", "t", "t", "t", "W"),
                 _acts_in_cache=(5, 4),
                 _block_kinds=("sigmoid", "sigmoid", "sigmoid", "tanh", "tanh")),
    "gru": Cell("gru", 3, gru_forward, gru_backward_steps, _gru_step_into,
                gated=True, forget_bias=False, _hs_in_cache=1,
                _cache_layout=("h0", "t", "t", "t", "W"), _acts_in_cache=(2,),
                _block_kinds=("sigmoid", "sigmoid", "tanh")),
}
