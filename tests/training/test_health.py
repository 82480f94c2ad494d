"""Run-health curves recorded at each evaluation, against figures computed
here from what the trainer did (weights before and after each step, the
gradient before clipping) and from the model at the end."""
from __future__ import annotations

import math

import numpy as np
import pytest

from charrnn.store import checkpoint as ckpt
from charrnn.nn import gradflow
from charrnn.runs import health
from charrnn.runs.config import TrainConfig
from charrnn.runs.trainer import Trainer

from helpers import corpus, resume_trainer


@pytest.mark.parametrize("model, clip_mode, clip", [("rnn", "value", 0.05), ("lstm", "norm", 1.0),
                                                    ("gru", "norm", 0.0), ("lstm", "value", 1.5)])
def test_span_figures_are_what_the_steps_did(tmp_path, model, clip_mode, clip):
    cfg = TrainConfig(model=model, hidden_size=8, num_layers=2, embed_size=3, seq_len=8,
                      batch_size=4, optimizer="adam" if model != "rnn" else "adagrad",
                      lr=0.01, clip_mode=clip_mode, clip=clip, eval_every=5, max_iters=10,
                      dtype="float64", seed=2)
    tr = Trainer(cfg, corpus(), str(tmp_path))
    norms, clipped, ratios, over_only = [], [], [], []
    real_step = tr.train_step

    def step():
        x, y = tr.streams.chunk(tr.chunk)
        _, raw, _ = tr.model.loss_and_grads(x, y, tr.hidden, None)
        norm = math.sqrt(sum(float(np.vdot(g, g)) for g in raw.values()))
        before = {k: v.copy() for k, v in tr.model.params.items()}
        loss = real_step()
        groups = {}
        for k, w in before.items():
            g = groups.setdefault(k.split(".")[0], [0.0, 0.0])
            g[0] += float(np.sum((tr.model.params[k] - w) ** 2))
            g[1] += float(np.sum(w ** 2))
        groups[""] = [sum(g[0] for g in groups.values()), sum(g[1] for g in groups.values())]
        ratios.append({k: math.sqrt(u / w) for k, (u, w) in groups.items()})
        norms.append(norm)
        peak = max(float(np.abs(g).max()) for g in raw.values())
        clipped.append(clip > 0 and (norm > clip if clip_mode == "norm" else peak > clip))
        over_only.append(norm > clip >= peak)      # value mode: nothing to clip
        return loss
    tr.train_step = step
    tr.run(progress=False)
    h = tr.history
    assert h["iter"] == [5, 10]
    for row, span in enumerate((slice(0, 5), slice(5, 10))):
        assert h["grad_norm"][row] == pytest.approx(np.mean(norms[span]), rel=1e-9)
        assert h["clip_share"][row] == pytest.approx(np.mean(clipped[span]))
        for g in ("", "embed", "l0", "l1", "out"):
            key = "update_ratio" + (f"/{g}" if g else "")
            want = np.mean([r[g] for r in ratios[span]])
            assert h[key][row] == pytest.approx(want, rel=1e-6), key
    if clip == 0:
        assert h["clip_share"] == [0.0, 0.0]
    elif model == "rnn":
        assert h["clip_share"] == [1.0, 1.0]          # 0.05 clips every step of a fresh rnn
    elif clip_mode == "value":
        # 1.5 lies between the largest entry and the norm on some steps: in
        # value mode those steps clip nothing and must not count as clipped
        assert all(n > clip for n in norms) and any(over_only)
        assert 0.0 < min(h["clip_share"]) and max(h["clip_share"]) < 1.0


def test_evaluation_figures_are_measured_on_the_model_at_that_evaluation(tmp_path):
    cfg = TrainConfig(model="lstm", hidden_size=8, num_layers=2, seq_len=8, batch_size=4,
                      optimizer="adam", lr=0.01, eval_every=5, max_iters=10, seed=2,
                      dtype="float64")
    tr = Trainer(cfg, corpus(), str(tmp_path))
    tr.run(progress=False)
    sat = health.saturation(tr.model, tr.val_ids)
    for k in ("saturation", "saturation/l0", "saturation/l1"):
        assert tr.history[k][-1] == sat[k]
        assert 0.0 <= sat[k] <= 1.0
    flow = gradflow.gradient_flow(tr.model, tr.val_ids[:health.MEMORY_CHARS], 20)
    c = flow["layers"][0]["c"]
    assert tr.history["memory"][-1] == pytest.approx(c[20] / c[0], rel=1e-12)
    assert 0 < tr.history["memory"][-1] < 1


def test_recorded_curves_reach_the_checkpoint_and_inspect(tmp_path):
    from charrnn.views.inspect import summary
    cfg = TrainConfig(model="gru", hidden_size=8, seq_len=8, batch_size=4, eval_every=5,
                      max_iters=10, seed=2)
    tr = Trainer(cfg, corpus(), str(tmp_path))
    tr.run(progress=False)
    ck = ckpt.load(str(tmp_path / "latest.npz"))
    assert set(ck.history) == set(ckpt.HISTORY_KEYS) | set(ckpt.health_keys(tr.mcfg))
    s = summary(ck)
    assert s["history"]["clip_share"] == [pytest.approx(x) for x in tr.history["clip_share"]]


def test_a_checkpoint_from_before_the_health_curves_loads_and_resumes(tmp_path):
    cfg = TrainConfig(model="rnn", hidden_size=8, seq_len=8, batch_size=4, eval_every=5,
                      max_iters=10, seed=2)
    Trainer(cfg, corpus(), str(tmp_path)).run(progress=False)
    ck = ckpt.load(str(tmp_path / "latest.npz"))
    ck.history = {k: v for k, v in ck.history.items() if k in ckpt.HISTORY_KEYS}
    ckpt.save(str(tmp_path / "old.npz"), ck)
    old = ckpt.load(str(tmp_path / "old.npz"))
    assert set(old.history) == set(ckpt.HISTORY_KEYS)
    tr = resume_trainer(old, corpus(), {"max_iters": 15}, {"max_iters"}, str(tmp_path))
    tr.run(progress=False)
    assert tr.history["iter"] == [5, 10, 15]
    assert math.isnan(tr.history["grad_norm"][0]) and math.isnan(tr.history["memory"][1])
    assert math.isfinite(tr.history["grad_norm"][2]) and math.isfinite(tr.history["memory"][2])


def test_an_unknown_history_curve_is_still_refused(tmp_path):
    cfg = TrainConfig(model="rnn", hidden_size=8, seq_len=8, batch_size=4, eval_every=5,
                      max_iters=5, seed=2)
    Trainer(cfg, corpus(), str(tmp_path)).run(progress=False)
    ck = ckpt.load(str(tmp_path / "latest.npz"))
    ck.history["saturation/l7"] = ck.history["saturation"]        # the model has 1 layer
    ckpt.save(str(tmp_path / "bad.npz"), ck)
    with pytest.raises(ckpt.CheckpointError, match="saturation/l7"):
        ckpt.load(str(tmp_path / "bad.npz"))


@pytest.mark.parametrize("length, shape", [
    (2, (1, 1)),           # one character to read: one stream of one
    (17, (16, 1)),         # 16: one stream (at least 16 characters per stream)
    (33, (16, 2)),         # 32: two streams of 16
    (100, (16, 6)),
    (10_000, (256, 8))])   # at most 8 streams of 256
def test_saturation_reads_its_streams_from_the_start_in_inference(length, shape):
    """The layout saturation reads: n = len - 1 characters (at most 8 x 256)
    as B = n // 16 streams (1 to 8) of n // B, time-major, without dropout."""
    from charrnn.nn.model import Model, ModelConfig, init_params
    cfg = ModelConfig(vocab_size=5, model="gru", hidden_size=6, num_layers=2, dropout=0.3)
    model = Model(cfg, init_params(cfg, np.random.default_rng(0)))
    seen = []
    real = model._run

    def run(x, state, rng, train):
        seen.append((x.copy(), train))
        return real(x, state, rng, train=train)
    model._run = run
    ids = np.arange(length) % 5
    out = health.saturation(model, ids)
    (x, train), = seen
    T, B = shape
    assert train is False and x.shape == (T, B)
    assert np.array_equal(x.T, ids[:B * T].reshape(B, T))
    assert set(out) == {"saturation", "saturation/l0", "saturation/l1"}
    assert all(0.0 <= v <= 1.0 for v in out.values())


def test_saturation_of_a_text_too_short_is_not_a_number_per_layer():
    from charrnn.nn.model import Model, ModelConfig, init_params
    cfg = ModelConfig(vocab_size=5, model="gru", hidden_size=6, num_layers=2)
    model = Model(cfg, init_params(cfg, np.random.default_rng(0)))
    out = health.saturation(model, np.array([3]))
    assert set(out) == {"saturation", "saturation/l0", "saturation/l1"}
    assert all(math.isnan(v) for v in out.values())


def test_a_span_without_steps_or_with_zero_weights_has_no_ratio_not_an_error():
    empty = health.Span().figures()
    assert set(empty) == {"grad_norm", "clip_share"} and all(map(math.isnan, empty.values()))
    s = health.Span()
    s.add(2.0, True, {"Wxh": (4.0, 0.0)})        # a weight group at zero: no ratio
    s.add(4.0, False, {"Wxh": (1.0, 0.0)})
    f = s.figures()
    assert (f["grad_norm"], f["clip_share"]) == (3.0, 0.5)
    ratios = {k: v for k, v in f.items() if k.startswith("update_ratio")}
    assert ratios and all(math.isnan(v) for v in ratios.values())


def test_saturation_of_the_model_is_that_of_its_layers_together():
    """Layers of one width read as many activations, so the model's share is
    their mean (weights scaled up, so each layer saturates its own share)."""
    from charrnn.nn.model import Model, ModelConfig, init_params
    cfg = ModelConfig(vocab_size=7, model="rnn", hidden_size=16, num_layers=2)
    params = {k: v * 100 for k, v in init_params(cfg, np.random.default_rng(1)).items()}
    out = health.saturation(Model(cfg, params), np.arange(400) % 7)
    layers = [out["saturation/l0"], out["saturation/l1"]]
    assert 0 < min(layers) and max(layers) < 1 and layers[0] != layers[1]
    assert out["saturation"] == pytest.approx(sum(layers) / 2, rel=1e-12)


def test_memory_needs_the_lag_and_two_more_characters_and_no_recurrence_is_none():
    """memory: gradient surviving MEMORY_LAG (20) characters back, as a share
    of the gradient at lag 0; NaN on a text shorter than the lag + 2; 0 (not
    NaN) for a model whose recurrent weights are zero."""
    from charrnn.nn.gradflow import gradient_flow
    from charrnn.nn.model import Model, ModelConfig, init_params
    cfg = ModelConfig(vocab_size=7, model="rnn", hidden_size=8, num_layers=1)
    params = {k: v * 30 for k, v in init_params(cfg, np.random.default_rng(0)).items()}
    model = Model(cfg, params)
    assert health.MEMORY_LAG == 20
    assert math.isnan(health.memory(model, np.arange(21) % 7))
    ids = np.arange(22) % 7
    curve = gradient_flow(model, ids, 20)["layers"][0]["h"]
    assert health.memory(model, ids) == curve[20] / curve[0] > 0
    params["l0.Wh"][:] = 0.0
    assert health.memory(Model(cfg, params), np.arange(60) % 7) == 0.0
    params["out.W"][:] = 0.0                       # no gradient at all: unknown, not an error
    assert math.isnan(health.memory(Model(cfg, params), np.arange(60) % 7))
