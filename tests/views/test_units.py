"""Finding interpretable hidden units: features, scores, and a unit built by
hand to switch on inside quotes."""
from __future__ import annotations

import json

import numpy as np
import pytest

from charrnn.store import checkpoint as ckpt
from charrnn.cli.commands import cli
from charrnn.generate.scoring import lenient_ids, run_text
from charrnn.views.units import (Unit, correlations, pick_units, score_units, text_features,
                           unit_values)
from helpers import QUOTE_H as H, QUOTE_TEXT, QUOTE_UNIT, QUOTE_VOCAB as VOCAB, quote_lstm  # noqa: F401


def test_text_features_by_hand():
    f = text_features('a "b(c)" d\nxy “z”')
    #                  a   " b ( c ) "   d \n x y   “ z ”
    assert f["quote"].tolist() == [0, 0, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0]
    assert f["bracket"].tolist() == [0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
    assert f["line"].tolist() == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 0, 1, 2, 3, 4, 5, 6]
    assert f["word"].tolist() == [1, 0, 0, 1, 0, 1, 0, 0, 0, 1, 0, 1, 2, 0, 0, 1, 0]
    assert text_features("AB: c\nDE\nx")["caps"].tolist() == [1, 1, 1, 1, 0, 0, 1, 1, 0, 0]
    assert text_features(" A")["caps"].tolist() == [0, 1]


def test_correlations_match_numpy():
    rng = np.random.default_rng(1)
    vals = rng.standard_normal((50, 4))
    feat = rng.integers(0, 2, 50).astype(float)
    vals[:, 2] = feat * 0.7 - 0.2                       # perfectly correlated
    vals[:, 3] = 0.3                                    # constant: r = 0
    r = correlations(vals, feat)
    for u in range(3):
        assert r[u] == pytest.approx(np.corrcoef(vals[:, u], feat)[0, 1], abs=1e-12)
    assert r[2] == pytest.approx(1.0) and r[3] == 0.0
    assert np.isnan(correlations(vals, np.ones(50))).all()  # feature does not vary
    vals[3] = np.nan                                    # undefined rows are left out
    assert correlations(vals, feat)[2] == pytest.approx(1.0)


def test_the_hand_built_quote_unit_behaves_as_built():
    model = quote_lstm()
    run = run_text(model, lenient_ids(QUOTE_TEXT, VOCAB), keep_acts=True)
    c = unit_values(run.acts, 0, "c")[:, QUOTE_UNIT]
    inside = text_features(QUOTE_TEXT)["quote"] > 0
    first = QUOTE_TEXT.index('"')
    assert (c[inside] > 0.7).all()
    assert (c[~inside][np.arange(len(c))[~inside] > first] < -0.7).all()


def test_ranking_finds_the_quote_unit():
    model = quote_lstm()
    run = run_text(model, lenient_ids(QUOTE_TEXT, VOCAB), keep_acts=True)
    ranked = score_units(run.acts, QUOTE_TEXT, [0], "c")
    assert len(ranked) == H
    best = ranked[0]
    assert (best.layer, best.part, best.index, best.feature) == (0, "c", QUOTE_UNIT, "quote")
    assert best.r > 0.95
    assert all(abs(u.r) < best.r - 0.1 for u in ranked[1:])     # clearly the best
    picked = pick_units(ranked, 3)
    assert picked[0] == best and len(set(picked)) == 3
    # the best unit per feature comes first: every feature the text varies in appears
    assert {u.feature for u in picked} <= {"quote", "bracket", "line", "word", "caps"}


def test_ranking_finds_the_quote_unit_in_h_too_and_not_in_a_shuffled_model():
    model = quote_lstm()
    run = run_text(model, lenient_ids(QUOTE_TEXT, VOCAB), keep_acts=True)
    assert score_units(run.acts, QUOTE_TEXT, [0], "h")[0].index == QUOTE_UNIT
    # without the hand-set weights no unit follows quotes that well
    plain = quote_lstm(seed=3)
    plain.params["l0.Wx"][VOCAB.index('"')] = 0.0
    plain.params["l0.Wh"][QUOTE_UNIT] = 0.0
    run = run_text(plain, lenient_ids(QUOTE_TEXT, VOCAB), keep_acts=True)
    rs = [abs(u.r) for u in score_units(run.acts, QUOTE_TEXT, [0], "c") if u.feature == "quote"]
    assert max(rs, default=0) < 0.9


def test_pick_units_prefers_one_per_feature():
    ranked = [Unit(0, "h", 1, "line", 0.9), Unit(0, "h", 2, "line", -0.85),
              Unit(0, "h", 3, "quote", 0.5), Unit(0, "h", 4, "word", 0.4),
              Unit(0, "h", 5, None, None)]
    assert [u.index for u in pick_units(ranked, 2)] == [1, 3]
    assert [u.index for u in pick_units(ranked, 4)] == [1, 2, 3, 4]
    assert [u.index for u in pick_units(ranked, 9)] == [1, 2, 3, 4, 5]


def test_cli_cells_json_names_the_quote_unit(runner, tmp_path):
    model = quote_lstm()
    path = tmp_path / "q.npz"
    ckpt.save(str(path), ckpt.Checkpoint(config={"model": model.cfg.to_dict(), "train": {}},
                                         vocab=VOCAB, params=model.params))
    res = runner.invoke(cli, ["inspect", str(path), "--cells", QUOTE_TEXT, "--top", "2",
                              "--json"])
    assert res.exit_code == 0, res.output
    view = json.loads(res.stdout)
    u = view["units"][0]
    assert (u["layer"], u["state"], u["unit"], u["feature"]) == (0, "c", QUOTE_UNIT, "quote")
    assert len(view["units"]) == 2 and len(u["values"]) == len(QUOTE_TEXT)
    # chosen by hand, the unit is described the same way
    res = runner.invoke(cli, ["inspect", str(path), "--cells", QUOTE_TEXT, "--unit",
                              str(QUOTE_UNIT), "--json"])
    v2 = json.loads(res.stdout)
    assert [x["unit"] for x in v2["units"]] == [QUOTE_UNIT]
    assert v2["units"][0]["r"] == pytest.approx(u["r"])
    assert v2["units"][0]["values"] == u["values"]
