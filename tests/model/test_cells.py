"""Each cell's chunk backward pass against finite differences (float64)."""
import numpy as np
import pytest

from charrnn.nn import cells

from helpers import numeric_grad, rel_error


@pytest.mark.parametrize("kind", list(cells.CELLS))
def test_cell_backward_matches_finite_differences(kind):
    rng = np.random.default_rng(11)
    T, B, H = 4, 3, 5
    G = cells.CELLS[kind].gates * H
    xw = rng.normal(0, 0.8, (T, B, G))
    h0 = rng.normal(0, 0.5, (B, H))
    c0 = rng.normal(0, 0.5, (B, H)) if kind == "lstm" else None
    Wh = rng.normal(0, 0.5, (H, G))
    # a random linear functional of every output, so each output's gradient counts
    w_hs, w_hT = rng.normal(size=(T, B, H)), rng.normal(size=(B, H))
    w_cT = rng.normal(size=(B, H)) if kind == "lstm" else None

    def f():
        hs, (hT, cT), _ = cells.CELLS[kind].forward(xw, h0, c0, Wh)
        v = (hs * w_hs).sum() + (hT * w_hT).sum()
        return v + ((cT * w_cT).sum() if cT is not None else 0.0)

    hs, _, cache = cells.CELLS[kind].forward(xw, h0, c0, Wh)
    dxw, dh0, dc0, dWh = cells.CELLS[kind].backward(w_hs, w_hT, w_cT, cache)
    assert rel_error(dxw, numeric_grad(f, xw)) <= 1e-6
    assert rel_error(dh0, numeric_grad(f, h0)) <= 1e-6
    assert rel_error(dWh, numeric_grad(f, Wh)) <= 1e-6
    if kind == "lstm":
        assert rel_error(dc0, numeric_grad(f, c0)) <= 1e-6
    else:
        assert dc0 is None


def test_lstm_forget_gate_bias_starts_at_one():
    from charrnn.nn.model import ModelConfig, init_params
    cfg = ModelConfig(vocab_size=4, model="lstm", hidden_size=3, num_layers=2)
    p = init_params(cfg, np.random.default_rng(0))
    for k in range(2):
        b = p[f"l{k}.b"]
        assert list(b[3:6]) == [1.0, 1.0, 1.0]
        assert not b[:3].any() and not b[6:].any()


def test_gru_reset_after_semantics():
    """n = tanh(xn + r * (h @ Wn)): with z = 0 the output is exactly that."""
    rng = np.random.default_rng(3)
    B, H = 2, 3
    xw = rng.normal(size=(1, B, 3 * H))
    xw[0, :, :H] = -50.0                    # z ~ 0: h = n
    h0 = rng.normal(size=(B, H))
    Wh = rng.normal(size=(H, 3 * H))
    hs, _, _ = cells.gru_forward(xw, h0, None, Wh)
    r = 1 / (1 + np.exp(-(xw[0, :, H:2 * H] + h0 @ Wh[:, H:2 * H])))
    n = np.tanh(xw[0, :, 2 * H:] + r * (h0 @ Wh[:, 2 * H:]))
    np.testing.assert_allclose(hs[0], n, atol=1e-12)


@pytest.mark.parametrize("kind", list(cells.CELLS))
def test_saturation_counts_by_hand(kind):
    """Saturated activations counted against a direct count over the values
    the reference gate formulas give (|tanh| > 0.99, sigmoid < 0.01 or > 0.99)."""
    cell = cells.CELLS[kind]
    rng = np.random.default_rng(5)
    T, B, H = 4, 3, 5
    G = cell.gates * H
    xw = rng.normal(scale=4.0, size=(T, B, G))            # large: many saturate
    h0 = rng.normal(size=(B, H))
    c0 = rng.normal(size=(B, H)) if cell.has_c else None
    Wh = rng.normal(size=(H, G))
    hs, _, cache = cell.forward(xw, h0, c0, Wh)
    sig = lambda v: 1 / (1 + np.exp(-v))                   # noqa: E731
    acts = []                                              # (values, "tanh" | "sigmoid")
    h, c = h0, c0
    for t in range(T):
        a = xw[t] + h @ Wh
        if kind == "rnn":
            h = np.tanh(a)
            acts.append((h, "tanh"))
        elif kind == "lstm":
            i, f, o, g = (sig(a[:, :H]), sig(a[:, H:2 * H]), sig(a[:, 2 * H:3 * H]),
                          np.tanh(a[:, 3 * H:]))
            c = f * c + i * g
            h = o * np.tanh(c)
            acts += [(i, "sigmoid"), (f, "sigmoid"), (o, "sigmoid"), (g, "tanh"),
                     (np.tanh(c), "tanh")]
        else:
            rh = h @ Wh
            z, r = sig(xw[t][:, :H] + rh[:, :H]), sig(xw[t][:, H:2 * H] + rh[:, H:2 * H])
            n = np.tanh(xw[t][:, 2 * H:] + r * rh[:, 2 * H:])
            h = (1 - z) * n + z * h
            acts += [(z, "sigmoid"), (r, "sigmoid"), (n, "tanh")]
    want = sum(int(np.count_nonzero(np.abs(v) > 0.99 if how == "tanh" else (v < 0.01) | (v > 0.99)))
               for v, how in acts)
    total = sum(v.size for v, _ in acts)
    assert cell.saturation(cache) == (want, total)
    assert 0 < want < total
