"""Gradient flow through time (charrnn.gradflow) against finite differences:
the gradient of the loss at position t with respect to a layer's state at
position t - k, found by perturbing that state in the float64 reference
forward pass (tests/reference_lm.py) and watching L_t."""
from __future__ import annotations

import numpy as np
import pytest

from charrnn.nn import cells
from charrnn.nn import gradflow
from charrnn.nn.model import Model, ModelConfig, init_params

import reference_lm

V = 7


def _model(kind, layers=2, H=5, seed=0, scale=1.0):
    cfg = ModelConfig(vocab_size=V, model=kind, hidden_size=H, num_layers=layers, dtype="float64")
    params = init_params(cfg, np.random.default_rng(seed))
    # weights of a trained size, so gradients neither vanish at once nor explode
    params = {k: v * scale if k != "out.b" else v for k, v in params.items()}
    return Model(cfg, params)


def _loss_at(model, ids, t, perturb):
    _, _, logps = reference_lm.forward(model.params, model.cfg, ids, perturb)
    return -logps[t][ids[t + 1]]


def _fd_grad(model, ids, t, layer, s, part, eps=1e-6):
    H = model.cfg.hidden_size
    g = np.zeros(H)
    for i in range(H):
        e = np.zeros(H)
        e[i] = eps
        g[i] = (_loss_at(model, ids, t, {(layer, s, part): e})
                - _loss_at(model, ids, t, {(layer, s, part): -e})) / (2 * eps)
    return g


@pytest.mark.parametrize("kind", list(cells.CELLS))
@pytest.mark.parametrize("layers", [1, 2])
def test_state_gradients_match_finite_differences(kind, layers):
    scale = 6.0 if kind == "rnn" else 2.0
    model = _model(kind, layers, scale=scale)
    rng = np.random.default_rng(1)
    ids = [int(i) for i in rng.integers(0, V, size=11)]
    lags = 6
    got = {}
    for k, layer, dh, dc in gradflow.state_gradients(model, np.array(ids), lags):
        for row, t in enumerate(range(k, len(ids) - 1)):
            got[k, layer, t, "h"] = dh[row]
            if dc is not None:
                got[k, layer, t, "c"] = dc[row]
    parts = ("h", "c") if kind == "lstm" else ("h",)
    checked = 0
    for t in (3, 6, 9):
        for k in (0, 1, 3, 6):
            if k > t:
                continue
            for layer in range(layers):
                for part in parts:
                    want = _fd_grad(model, ids, t, layer, t - k, part)
                    np.testing.assert_allclose(got[k, layer, t, part], want, rtol=1e-5,
                                               atol=1e-9, err_msg=f"{kind} t={t} k={k} "
                                               f"layer {layer} {part}")
                    checked += 1
    assert checked >= 10
    # positions t < k have no state k steps back
    assert (lags + 1, 0, 0, "h") not in got and (5, 0, 4, "h") not in got


def test_the_mean_norms_are_the_norms_of_those_gradients():
    model = _model("lstm", 2, scale=2.0)
    ids = np.random.default_rng(2).integers(0, V, size=30)
    flow = gradflow.gradient_flow(model, ids, lags=8, block=7)       # blocks of 7 jobs
    rows = {}
    for k, layer, dh, dc in gradflow.state_gradients(model, ids, 8):
        rows.setdefault((k, layer), []).append((np.linalg.norm(dh, axis=1),
                                                np.linalg.norm(dc, axis=1)))
    assert flow["count"] == [29 - k for k in range(9)]
    for (k, layer), parts in rows.items():
        h = np.concatenate([a for a, _ in parts])
        c = np.concatenate([b for _, b in parts])
        assert flow["layers"][layer]["h"][k] == pytest.approx(h.mean(), rel=1e-12)
        assert flow["layers"][layer]["c"][k] == pytest.approx(c.mean(), rel=1e-12)
    assert set(flow["layers"][0]) == {"h", "c"}
    assert set(gradflow.gradient_flow(_model("gru"), ids, 3)["layers"][1]) == {"h"}


def test_a_vanilla_rnn_with_small_recurrent_weights_forgets_fast():
    """A known value: an rnn whose recurrent matrix has spectral norm 0.5 (and
    |tanh'| <= 1) must lose at least half its gradient per step back."""
    model = _model("rnn", 1, H=6)
    Wh = np.random.default_rng(3).normal(size=(6, 6))
    model.params["l0.Wh"] = 0.5 * Wh / np.linalg.norm(Wh, 2)
    ids = np.random.default_rng(4).integers(0, V, size=60)
    norms = {k: np.linalg.norm(dh, axis=1) for k, _, dh, _ in
             gradflow.state_gradients(model, ids, 10)}
    for k in range(10):
        # row r of lag k is position t = k + r; at lag k+1 that t is row r - 1
        assert np.all(norms[k + 1] <= 0.5 * norms[k][1:] * (1 + 1e-9))
        assert norms[k + 1].max() > 0


# ------------------------------------------------------------------ the views
def _flow_by_hand():
    return {"lags": 4, "positions": 10, "count": [10, 9, 8, 7, 6],
            "layers": [{"h": [1.0, 0.1, 0.01, 0.001, 0.0001]},
                       {"h": [1.0, 1.0, 1.0, 1.0, 1.0], "c": [0.5, 0.5, 0.5, 0.5, 0.5]}]}


def test_text_chart_is_on_a_log_scale_one_mark_per_series():
    from charrnn.views import gradview
    lines = gradview.text_chart(_flow_by_hand(), width=5, height=5)
    assert "0 layer 0 h" in lines[0] and "1 layer 1 h" in lines[0] and "b layer 1 c" in lines[0]
    rows = [line.split("|", 1)[1].ljust(5) for line in lines[1:6]]
    # decades 1e0 .. 1e-4 on 5 rows: layer 0's h falls one row per lag
    assert [r[0] for r in rows] == ["*", " ", " ", " ", " "]      # 0 and 1 overlap at k=0
    assert [rows[k][k] for k in range(1, 5)] == ["0", "0", "0", "0"]
    assert all(rows[0][k] in "1*" for k in range(5))
    assert lines[1].startswith("1e+0") and lines[5].startswith("1e-4")
    assert "\x1b[" not in "".join(lines)
    coloured = gradview.text_chart(_flow_by_hand(), width=5, height=5, colour=True)
    assert "\x1b[38;5;" in "".join(coloured)


def test_summary_lines_give_the_ratio_over_the_lags():
    from charrnn.views import gradview
    lines = gradview.summary_lines(_flow_by_hand())
    assert lines[1].startswith("layer 0 h") and lines[1].endswith("1.0e-04")
    assert lines[2].startswith("layer 1 h") and lines[2].endswith("1.0e+00")
    assert lines[3].startswith("layer 1 c")


def test_plot_writes_a_log_scale_image(tmp_path):
    pytest.importorskip("matplotlib")
    from charrnn.views import gradview
    gradview.plot(_flow_by_hand(), str(tmp_path / "g.svg"), title="t")
    svg = (tmp_path / "g.svg").read_text()
    assert "<svg" in svg and "layer 1 c" in svg


# -------------------------------------------------------------------- the CLI
def test_inspect_gradients_through_the_cli(runner, trained, tmp_path):
    import json
    from charrnn.cli.commands import cli
    r = runner.invoke(cli, ["inspect", str(trained.latest), "--gradients", str(trained.corpus),
                            "--lags", "7", "--max-chars", "300", "--json"])
    assert r.exit_code == 0, r.stderr
    flow = json.loads(r.stdout)
    assert flow["lags"] == 7 and flow["chars_used"] == 300 and flow["positions"] == 299
    assert flow["count"] == [299 - k for k in range(8)]
    assert len(flow["layers"]) == 1 and len(flow["layers"][0]["h"]) == 8
    # the same numbers as the library function on the same characters
    from charrnn.store import checkpoint as ckpt
    from charrnn.generate.scoring import lenient_ids
    ck = ckpt.load(str(trained.latest))
    ids = lenient_ids(trained.text, ck.vocab)[:300]
    want = gradflow.gradient_flow(Model(ck.model_config, ck.params), ids, 7)
    assert flow["layers"] == want["layers"]
    plain = runner.invoke(cli, ["inspect", str(trained.latest), "--gradients",
                                str(trained.corpus), "--max-chars", "300", "--lags", "7"])
    assert plain.exit_code == 0 and "log scale" in plain.stdout and "layer 0 h" in plain.stdout
    assert "\x1b[" not in plain.stdout and plain.stderr == ""


@pytest.mark.parametrize("args, words", [(["--lags", "3"], "--lags goes with --gradients"),
                                         (["--max-chars", "9"], "--max-chars goes with"),
                                         (["--cells", "ab", "--gradients", "{corpus}"],
                                          "two views")])
def test_inspect_gradients_usage_errors(runner, trained, args, words):
    from charrnn.cli.commands import cli
    args = [a.format(corpus=trained.corpus) for a in args]
    r = runner.invoke(cli, ["inspect", str(trained.latest), *args])
    assert r.exit_code == 2 and words in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_inspect_gradients_on_text_outside_the_vocabulary_is_one_line(runner, trained, tmp_path):
    from charrnn.cli.commands import cli
    odd = tmp_path / "odd.txt"
    odd.write_text("\u4e00\u4e01\u4e02" * 10, encoding="utf-8")
    r = runner.invoke(cli, ["inspect", str(trained.latest), "--gradients", str(odd)])
    assert r.exit_code == 1 and "fewer than 2 characters" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
