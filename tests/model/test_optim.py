"""Optimizers and clipping against straightforward reference formulas."""
import math

import numpy as np
import pytest

from charrnn.nn import optim


def _problem(seed=0):
    rng = np.random.default_rng(seed)
    params = {"a": rng.normal(size=(3, 4)), "b": rng.normal(size=(5,))}
    grads = [{k: rng.normal(scale=2.0, size=v.shape) for k, v in params.items()} for _ in range(6)]
    return params, grads


def _ref_adagrad(p, gs, lrs, eps=1e-8):
    mem = np.zeros_like(p)
    for g, lr in zip(gs, lrs):
        mem = mem + g * g
        p = p - lr * g / np.sqrt(mem + eps)
    return p


def _ref_rmsprop(p, gs, lrs, alpha=0.95, eps=1e-8):
    ms = np.zeros_like(p)
    for g, lr in zip(gs, lrs):
        ms = alpha * ms + (1 - alpha) * g * g
        p = p - lr * g / (np.sqrt(ms) + eps)
    return p


def _ref_adam(p, gs, lrs, b1=0.9, b2=0.999, eps=1e-8):
    """Algorithm 1 of Kingma & Ba with the bias corrections spelled out.  The
    implementation folds them into the step size (the paper's 'more
    efficient' ordering), which is the same as using eps / sqrt(1 - b2^t)
    here."""
    m, v = np.zeros_like(p), np.zeros_like(p)
    for t, (g, lr) in enumerate(zip(gs, lrs), start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        mhat, vhat = m / (1 - b1 ** t), v / (1 - b2 ** t)
        p = p - lr * mhat / (np.sqrt(vhat) + eps / math.sqrt(1 - b2 ** t))
    return p


REFS = {"adagrad": _ref_adagrad, "rmsprop": _ref_rmsprop, "adam": _ref_adam}


@pytest.mark.parametrize("kind", list(optim.OPTIMIZERS))
def test_optimizer_matches_reference_formula_over_several_steps(kind):
    """Six steps with a changing learning rate (as a schedule gives)."""
    params, grads = _problem()
    start = {k: v.copy() for k, v in params.items()}
    opt = optim.make(kind, params)
    lrs = [0.1, 0.05, 0.05, 0.02, 0.1, 0.01]
    for g, lr in zip(grads, lrs):
        opt.update(params, {k: v.copy() for k, v in g.items()}, lr)
    for name in params:
        expect = REFS[kind](start[name], [g[name] for g in grads], lrs)
        np.testing.assert_allclose(params[name], expect, rtol=1e-12, atol=1e-13)
        assert np.abs(params[name] - start[name]).min() > 1e-4      # every entry moved


def test_adam_first_step_moves_every_entry_by_lr():
    """Bias correction makes Adam's first update lr * sign(g), whatever |g|."""
    p = {"w": np.array([0.0, 1.0, -1.0, 2.0])}
    g = {"w": np.array([0.05, -5.0, 300.0, -0.2])}
    optim.make("adam", p).update(p, g, 0.01)
    np.testing.assert_allclose(p["w"], [-0.01, 1.01, -1.01, 2.01], rtol=1e-5)


@pytest.mark.parametrize("kind", list(optim.OPTIMIZERS))
def test_state_names_and_shapes_are_declared(kind):
    params, grads = _problem(1)
    opt = optim.make(kind, params)
    opt.update(params, grads[0], 0.1)
    shapes = optim.OPTIMIZERS[kind].state_shapes(params)
    assert {k: v.shape for k, v in opt.state.items()} == shapes
    for slot in optim.OPTIMIZERS[kind].slots:
        for name in params:
            assert f"{slot}.{name}" in shapes
    if kind == "adam":
        assert int(opt.state["t"]) == 1 and opt.state["t"].dtype == np.int64


@pytest.mark.parametrize("kind", list(optim.OPTIMIZERS))
def test_float32_params_stay_float32(kind):
    p = {"w": np.ones(4, np.float32)}
    opt = optim.make(kind, p)
    for _ in range(3):
        opt.update(p, {"w": np.full(4, 0.5, np.float32)}, 0.1)
    assert p["w"].dtype == np.float32
    assert all(v.dtype == np.float32 for k, v in opt.state.items() if k != "t")


@pytest.mark.parametrize("kind", list(optim.OPTIMIZERS))
def test_update_records_the_squared_norms_of_each_update_and_weight(kind):
    """sizes={} (the run-health curves' update/weight ratio): per parameter,
    (||p_after - p_before||^2, ||p_before||^2), as measured from outside."""
    params, grads = _problem(seed=3)
    opt = optim.make(kind, params)
    for g in grads[:2]:
        before = {k: v.copy() for k, v in params.items()}
        sizes = {}
        opt.update(params, {k: v.copy() for k, v in g.items()}, 0.05, sizes=sizes)
        assert sizes.keys() == params.keys()
        for k in params:
            want = (float(np.sum((params[k] - before[k]) ** 2)), float(np.sum(before[k] ** 2)))
            assert sizes[k] == pytest.approx(want, rel=1e-9), k


def test_value_clip_bounds_each_entry():
    g = {"a": np.array([-9.0, 0.3, 7.0]), "b": np.array([[5.5, -5.0]])}
    norm = optim.clip_(g, "value", 5.0)
    assert norm == pytest.approx(math.sqrt(81 + 0.09 + 49 + 5.5 ** 2 + 25))
    np.testing.assert_array_equal(g["a"], [-5.0, 0.3, 5.0])
    np.testing.assert_array_equal(g["b"], [[5.0, -5.0]])


def test_value_clip_reports_a_clip_only_when_an_entry_was_over():
    g = {"a": np.array([3.0, -4.0]), "b": np.array([[2.0]])}     # norm sqrt(29), peak 4
    assert optim.clip_report_(g, "value", 4.5) == (pytest.approx(math.sqrt(29)), False)
    np.testing.assert_array_equal(g["a"], [3.0, -4.0])
    assert optim.clip_report_(g, "value", 3.5) == (pytest.approx(math.sqrt(29)), True)
    np.testing.assert_array_equal(g["a"], [3.0, -3.5])
    assert optim.clip_report_(g, "value", 6.0)[1] is False             # under the norm too
    # at the limit is not over it: nothing changes, nothing counts as clipped
    g = {"a": np.array([3.0, -4.0])}                                   # norm 5, peak 4
    assert optim.clip_report_(g, "value", 4.0) == (5.0, False)
    assert optim.clip_report_(g, "norm", 5.0) == (5.0, False)
    np.testing.assert_array_equal(g["a"], [3.0, -4.0])


def test_norm_clip_rescales_only_when_over_and_keeps_direction():
    g = {"a": np.array([3.0, 4.0]), "b": np.array([12.0])}     # norm 13
    assert optim.clip_(g, "norm", 20.0) == pytest.approx(13.0)
    np.testing.assert_array_equal(g["a"], [3.0, 4.0])            # under: untouched
    optim.clip_(g, "norm", 6.5)
    np.testing.assert_allclose(np.concatenate([g["a"], g["b"]]), np.array([3, 4, 12]) / 2)


def test_clip_zero_is_off_and_nan_norm_is_reported():
    g = {"a": np.array([1e6, -1e6])}
    optim.clip_(g, "value", 0.0)
    assert g["a"][0] == 1e6
    bad = {"a": np.array([1.0, np.nan])}
    assert math.isnan(optim.clip_(bad, "norm", 5.0))


def test_the_weight_average_and_its_warm_up_by_the_formula():
    from charrnn.nn.optim import average_, average_decay
    assert [average_decay(0.999, t) for t in (0, 1, 8, 90)] == \
        pytest.approx([1 / 10, 2 / 11, 9 / 18, 91 / 100])
    assert average_decay(0.9, 1000) == 0.9 and average_decay(0.5, 20) == 0.5
    rng = np.random.default_rng(0)
    a, w = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    avg = {"x": a.copy()}
    average_(avg, {"x": w}, 0.7)
    np.testing.assert_allclose(avg["x"], 0.7 * a + 0.3 * w, rtol=1e-14)


def test_adam_with_another_beta2_matches_the_reference_formula():
    params, grads = _problem()
    start = {k: v.copy() for k, v in params.items()}
    opt = optim.make("adam", params, beta2=0.99)
    lrs = [0.1, 0.05, 0.05, 0.02, 0.1, 0.01]
    for g, lr in zip(grads, lrs):
        opt.update(params, {k: v.copy() for k, v in g.items()}, lr)
    for name in params:
        expect = _ref_adam(start[name], [g[name] for g in grads], lrs, b2=0.99)
        np.testing.assert_allclose(params[name], expect, rtol=1e-12, atol=1e-13)
        default = _ref_adam(start[name], [g[name] for g in grads], lrs)
        assert np.abs(expect - default).max() > 1e-6        # beta2 makes a difference here
    assert optim.make("adagrad", {"w": np.zeros(2)}, beta2=0.99).__class__ is optim.Adagrad
