"""The batched model against the per-character reference and finite differences."""
import numpy as np
import pytest

from charrnn.nn import optim
from charrnn.nn.model import Model, ModelConfig, init_params, param_shapes, zero_state
from charrnn.runs.trainer import Trainer, TrainConfig

from reference_rnn import clip_and_adagrad, loss_and_grads as ref_loss_and_grads
from helpers import corpus, numeric_grad, rel_error  # noqa: F401

TEXT = ("The quick brown fox jumps over the lazy dog; "
        "pack my box with five dozen liquor jugs! ") * 6


def test_batch1_float64_matches_reference_over_several_steps(tmp_path):
    """Loss, every gradient and the Adagrad-updated weights agree to 1e-8."""
    T, H, steps = 12, 20, 8
    cfg = TrainConfig(hidden_size=H, seq_len=T, batch_size=1, dtype="float64", lr=0.1,
                      clip=5.0, val_frac=0.0, seed=7)
    tr = Trainer(cfg, corpus(TEXT), str(tmp_path))
    p = tr.model.params
    # the same initialisation, in the reference's orientation
    Wxh, Whh, Why = p["l0.Wx"].T.copy(), p["l0.Wh"].T.copy(), p["out.W"].T.copy()
    bh, by = p["l0.b"][:, None].copy(), p["out.b"][:, None].copy()
    ref = [Wxh, Whh, Why, bh, by]
    mems = [np.zeros_like(a) for a in ref]
    hprev = np.zeros((H, 1))
    ids = tr.streams.x[0]
    targets_all = tr.streams.y[0]
    for k in range(steps):
        inputs = [int(i) for i in ids[k * T:(k + 1) * T]]
        targets = [int(i) for i in targets_all[k * T:(k + 1) * T]]
        loss_r, *grads_r, hlast = ref_loss_and_grads(inputs, targets, hprev, *ref)
        x, y = tr.streams.chunk(tr.chunk)
        loss, grads, _ = tr.model.loss_and_grads(x, y, tr.hidden)
        assert loss * T == pytest.approx(loss_r, abs=1e-8)
        mine = [grads["l0.Wx"].T, grads["l0.Wh"].T, grads["out.W"].T,
                grads["l0.b"][:, None], grads["out.b"][:, None]]
        for a, b in zip(mine, grads_r):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-8)
        tr.train_step()                                   # the real training step
        clip_and_adagrad(ref, grads_r, mems, lr=0.1, clip=5.0)
        hprev = hlast
        np.testing.assert_allclose(tr.hidden[0][0][0], hprev[:, 0], atol=1e-8)
        np.testing.assert_allclose(p["l0.Wh"].T, Whh, atol=1e-8)
        np.testing.assert_allclose(p["l0.Wx"].T, Wxh, atol=1e-8)
        np.testing.assert_allclose(p["out.W"].T, Why, atol=1e-8)
    assert tr.iteration == steps


def test_clipping_actually_bites_in_reference_comparison(tmp_path):
    """A tiny clip threshold makes gradients exceed it; both still agree."""
    T, H = 10, 8
    cfg = TrainConfig(hidden_size=H, seq_len=T, batch_size=1, dtype="float64", lr=0.5,
                      clip=0.05, val_frac=0.0, seed=3)
    tr = Trainer(cfg, corpus(TEXT), str(tmp_path))
    p = tr.model.params
    ref = [p["l0.Wx"].T.copy(), p["l0.Wh"].T.copy(), p["out.W"].T.copy(),
           p["l0.b"][:, None].copy(), p["out.b"][:, None].copy()]
    mems = [np.zeros_like(a) for a in ref]
    hprev = np.zeros((H, 1))
    clipped = False
    for k in range(4):
        inputs = [int(i) for i in tr.streams.x[0, k * T:(k + 1) * T]]
        targets = [int(i) for i in tr.streams.y[0, k * T:(k + 1) * T]]
        _, *grads_r, hprev = ref_loss_and_grads(inputs, targets, hprev, *ref)
        clipped |= any(np.abs(g).max() > 0.05 for g in grads_r)
        tr.train_step()
        clip_and_adagrad(ref, grads_r, mems, lr=0.5, clip=0.05)
    assert clipped
    np.testing.assert_allclose(p["l0.Wh"].T, ref[1], atol=1e-8)
    np.testing.assert_allclose(p["out.b"], ref[4][:, 0], atol=1e-8)


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_batched_loss_is_mean_of_single_streams(kind):
    """B streams in one batch behave exactly like B separate batch-1 runs."""
    rng = np.random.default_rng(0)
    cfg = ModelConfig(vocab_size=11, model=kind, hidden_size=6, num_layers=2, dtype="float64")
    m = Model(cfg, init_params(cfg, rng))
    B, T = 4, 7
    x = rng.integers(0, 11, size=(B, T))
    y = rng.integers(0, 11, size=(B, T))
    state = zero_state(cfg, B)
    loss, grads, new_state = m.loss_and_grads(x, y, state)
    singles = [m.loss_and_grads(x[b:b + 1], y[b:b + 1], zero_state(cfg, 1)) for b in range(B)]
    assert loss == pytest.approx(np.mean([s[0] for s in singles]), rel=1e-12)
    for name in grads:
        np.testing.assert_allclose(grads[name], np.mean([s[1][name] for s in singles], axis=0),
                                   atol=1e-12)
    for b in range(B):
        np.testing.assert_allclose(new_state[-1][0][b], singles[b][2][-1][0][0], atol=1e-12)


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("layers,embed,dropout", [(1, 0, 0.0), (2, 0, 0.0), (2, 5, 0.3), (3, 4, 0.0)])
def test_model_loss_gradient_matches_finite_differences(kind, layers, embed, dropout):
    rng = np.random.default_rng(1)
    cfg = ModelConfig(vocab_size=7, model=kind, hidden_size=4, num_layers=layers,
                      embed_size=embed, dropout=dropout, dtype="float64")
    params = init_params(cfg, rng)
    for k in params:                        # larger weights: a harder test
        params[k] += rng.normal(0, 0.3, params[k].shape)
    m = Model(cfg, params)
    B, T = 2, 5
    x = rng.integers(0, 7, size=(B, T))
    y = rng.integers(0, 7, size=(B, T))
    state = [(rng.normal(0, 0.5, (B, 4)), rng.normal(0, 0.5, (B, 4)) if kind == "lstm" else None)
             for _ in range(layers)]
    drop_rng = lambda: np.random.default_rng(99) if dropout else None  # same mask every call

    _, grads, _ = m.loss_and_grads(x, y, state, drop_rng())
    assert set(grads) == set(param_shapes(cfg))

    def f():
        loss, _, _ = m.loss_and_grads(x, y, state, drop_rng())
        return loss * T        # loss is nats/char; grads are of the per-stream sum
    for name, p in params.items():
        num = numeric_grad(f, p)
        assert rel_error(grads[name], num) <= 1e-6, name


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_gradients_with_chunk_masks_and_weight_drop_match_finite_differences(kind):
    """Variational output masks and DropConnect on Wh: the same masks on
    every call (same rng seed), so the loss is a smooth function of the weights."""
    rng = np.random.default_rng(3)
    cfg = ModelConfig(vocab_size=6, model=kind, hidden_size=4, num_layers=2, dropout=0.3,
                      dropout_mask="chunk", weight_drop=0.4, dtype="float64")
    params = init_params(cfg, rng)
    for k in params:
        params[k] += rng.normal(0, 0.3, params[k].shape)
    m = Model(cfg, params)
    B, T = 3, 5
    x, y = rng.integers(0, 6, size=(B, T)), rng.integers(0, 6, size=(B, T))
    state = zero_state(cfg, B)
    _, grads, _ = m.loss_and_grads(x, y, state, np.random.default_rng(7))

    def f():
        return m.loss_and_grads(x, y, state, np.random.default_rng(7))[0] * T
    for name, p in params.items():
        assert rel_error(grads[name], numeric_grad(f, p)) <= 1e-6, name


def test_weight_drop_is_a_model_whose_wh_is_masked():
    """Against a hand-built expectation: the loss with weight_drop equals the
    loss of a plain model whose Wh is Wh * M (M the chunk's mask: 0 or
    1/keep), and the gradient of Wh is M times that model's."""
    rng = np.random.default_rng(4)
    cfg = ModelConfig(vocab_size=5, model="gru", hidden_size=6, num_layers=2, weight_drop=0.5,
                      dtype="float64")
    params = init_params(cfg, rng)
    m = Model(cfg, params)
    x, y = rng.integers(0, 5, size=(2, 7)), rng.integers(0, 5, size=(2, 7))
    loss, grads, _ = m.loss_and_grads(x, y, zero_state(cfg, 2), np.random.default_rng(11))
    masks = m._masks(np.random.default_rng(11), 7, 2)
    assert masks.outs() is None and len(masks.whs) == 2
    for M in masks.whs:
        assert M.shape == (6, 18) and set(np.unique(M)) == {0.0, 2.0}
    plain_cfg = ModelConfig(vocab_size=5, model="gru", hidden_size=6, num_layers=2,
                            dtype="float64")
    masked = {k: v * masks.whs[int(k[1])] if k.endswith(".Wh") else v for k, v in params.items()}
    ref_loss, ref_grads, _ = Model(plain_cfg, masked).loss_and_grads(x, y, zero_state(cfg, 2))
    assert loss == pytest.approx(ref_loss, rel=1e-12)
    for k in params:
        want = ref_grads[k] * masks.whs[int(k[1])] if k.endswith(".Wh") else ref_grads[k]
        np.testing.assert_allclose(grads[k], want, rtol=1e-10, atol=1e-14)
    assert not np.array_equal(grads["l0.Wh"], ref_grads["l0.Wh"])     # the mask bites


def test_chunk_masks_are_one_mask_over_all_steps_and_step_masks_are_not():
    cfg = ModelConfig(vocab_size=5, model="lstm", hidden_size=50, num_layers=2, dropout=0.3,
                      dropout_mask="chunk")
    m = Model(cfg, init_params(cfg, np.random.default_rng(0)))
    outs = m._masks(np.random.default_rng(1), 8, 4).outs()
    keep = 1 - 0.3
    for mk in outs:
        assert mk.shape == (8, 4, 50)
        assert (mk == mk[0]).all()                                   # the same at every step
        assert set(np.unique(mk)) == {0.0, np.float32(1 / keep)}
        assert abs((mk[0] == 0).mean() - 0.3) < 0.08                 # 200 draws per layer
    assert not np.array_equal(outs[0][0], outs[1][0])                # a mask per layer
    step = Model(ModelConfig(vocab_size=5, model="lstm", hidden_size=50, num_layers=2,
                             dropout=0.3), m.params)._masks(np.random.default_rng(1), 8, 4).outs()
    assert not (step[0] == step[0][0]).all()                         # fresh at each step


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("mode", ["step", "chunk"])
def test_a_streams_masks_do_not_depend_on_who_draws_them(dtype, mode):
    """Each entry is 0 or 1/(1-p) in the model's dtype, about p of them 0;
    the masks of streams 13..20 are the same drawn alone as drawn with all
    40 (what lets each worker thread draw its own share); streams, layers
    and chunk keys differ; the Wh masks are drawn once and shared."""
    cfg = ModelConfig(vocab_size=5, model="gru", hidden_size=16, num_layers=2, dropout=0.3,
                      dropout_mask=mode, weight_drop=0.2, dtype=dtype)
    m = Model(cfg, init_params(cfg, np.random.default_rng(0)))
    T, scale = 9, np.dtype(dtype).type(1 / 0.7)
    masks = m._masks(np.random.default_rng(1), T, 40)
    whole = masks.outs()
    assert len(whole) == 2
    for k in whole:
        assert k.shape == (T, 40, 16) and k.dtype == dtype
        assert set(np.unique(k).tolist()) == {0.0, float(scale)}
        assert abs(np.mean(k[0] == 0) - 0.3) < 0.06                # 640 draws
        assert (k == k[0]).all() == (mode == "chunk")
    part = masks.streams(slice(13, 21))
    np.testing.assert_array_equal(part.streams(slice(2, 5)).outs()[1], whole[1][:, 15:18])
    for a, b in zip(whole, part.outs()):
        np.testing.assert_array_equal(a[:, 13:21], b)
    assert part.whs is masks.whs
    assert not np.array_equal(whole[0][:, 0], whole[0][:, 1])      # streams differ
    assert not np.array_equal(whole[0], whole[1])                  # layers differ
    other = m._masks(np.random.default_rng(2), T, 40)
    assert not np.array_equal(other.outs()[0], whole[0])           # so do chunks
    assert not np.array_equal(other.whs[0], masks.whs[0])
    for w in masks.whs:
        assert set(np.unique(w).tolist()) == {0.0, float(np.dtype(dtype).type(1 / 0.8))}


def test_the_kept_fraction_follows_p_for_every_threshold():
    """_kept keeps a word when it is below (1-p) * 2^32: the fraction kept
    over 200,000 draws is 1-p within 4 standard deviations, at both ends too."""
    from charrnn.nn.model import _kept
    n = 200_000
    for p in (0.01, 0.1, 0.3, 0.5, 0.9, 0.99):
        got = _kept(np.random.SeedSequence(5), n, p).mean()
        assert abs(got - (1 - p)) < 4 * np.sqrt(p * (1 - p) / n), p
    assert _kept(np.random.SeedSequence(5), 7, 0.3).shape == (7,)       # odd n


def test_dropout_is_off_without_rng_and_masks_with_it():
    rng = np.random.default_rng(2)
    cfg = ModelConfig(vocab_size=5, model="lstm", hidden_size=8, num_layers=2, dropout=0.5,
                      dtype="float64")
    m = Model(cfg, init_params(cfg, rng))
    x = rng.integers(0, 5, size=(3, 6))
    y = rng.integers(0, 5, size=(3, 6))
    a, _, _ = m.loss_and_grads(x, y, zero_state(cfg, 3))
    b, _ = m.loss(x, y, zero_state(cfg, 3))
    c, _, _ = m.loss_and_grads(x, y, zero_state(cfg, 3), np.random.default_rng(5))
    assert a == pytest.approx(b, rel=1e-12)      # eval == train without dropout
    assert abs(c - a) > 1e-6                      # masks change the loss


def test_step_matches_chunk_forward():
    """Sampling's one-step path gives the same logits as the chunk forward."""
    rng = np.random.default_rng(4)
    for kind in ("rnn", "lstm", "gru"):
        cfg = ModelConfig(vocab_size=9, model=kind, hidden_size=5, num_layers=2, embed_size=3,
                          dtype="float64")
        m = Model(cfg, init_params(cfg, rng))
        ids = rng.integers(0, 9, size=6)
        state = zero_state(cfg, 1)
        step_logits = []
        for i in ids:
            lg, state = m.advance(np.array([i]), state)
            step_logits.append(lg[0])
        top, _, _, _ = m._run(ids[:, None], zero_state(cfg, 1), None, train=False)
        chunk_logits = top[:, 0] @ m.params["out.W"] + m.params["out.b"]
        np.testing.assert_allclose(np.array(step_logits), chunk_logits, atol=1e-12)


def test_adagrad_matches_formula_and_norm_clip():
    p = {"w": np.array([1.0, -2.0, 3.0])}
    g = {"w": np.array([0.5, -4.0, 10.0])}
    opt = optim.make("adagrad", p)
    optim.clip_({"w": g["w"]}, "value", 5.0)
    assert list(g["w"]) == [0.5, -4.0, 5.0]
    opt.update(p, g, 0.1)
    expect = np.array([1.0, -2.0, 3.0]) - 0.1 * g["w"] / np.sqrt(g["w"] ** 2 + 1e-8)
    np.testing.assert_allclose(p["w"], expect, rtol=1e-12)
    g2 = {"a": np.array([3.0, 4.0]), "b": np.array([12.0])}
    norm = optim.clip_(g2, "norm", 6.5)
    assert norm == pytest.approx(13.0)
    assert np.sqrt(sum((v ** 2).sum() for v in g2.values())) == pytest.approx(6.5)
