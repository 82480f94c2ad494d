"""bench/quality.py --grid: the queue of (budget, text, configuration), the
per-text configurations (NAME@TEXT), the resumable results file and the
comparison table -- with the training subprocess replaced by a fake."""
import importlib.util
import json
import os
import sys

import pytest

from helpers import ROOT

BENCH = str(ROOT / "bench")


@pytest.fixture
def quality(monkeypatch, tmp_path):
    spec = importlib.util.spec_from_file_location("bench_quality", os.path.join(BENCH, "quality.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    monkeypatch.syspath_prepend(BENCH)
    import texts
    monkeypatch.setattr(texts, "text_path", lambda name: f"/texts/{name}.txt")
    monkeypatch.setattr(mod, "LOCK", str(tmp_path / "bench.lock"))
    calls = []

    def fake_run(text, seconds, extra, core=None):
        calls.append((os.path.basename(text), seconds, extra))
        loss = 1.0 + 0.1 * len(extra) + seconds / 1000
        return {"best": loss, "last": loss + 0.01, "iters": 10, "wall": seconds,
                "chars_per_s": 1000.0, "size": "2x8", "dropout": 0.0}
    monkeypatch.setattr(mod, "budget_run", fake_run)
    mod.calls = calls
    yield mod
    sys.modules.pop("bench_quality", None)


def test_the_grid_queues_budgets_then_texts_and_keeps_per_text_configs(quality, tmp_path):
    path = str(tmp_path / "grid.json")
    configs = {"auto": "--model gru", "d1@b": "--model gru --dropout 0.1"}
    results = quality.run_grid(path, "a,b", [60.0, 120.0], configs)
    assert quality.calls == [
        ("a.txt", 60.0, ["--model", "gru"]), ("b.txt", 60.0, ["--model", "gru"]),
        ("b.txt", 60.0, ["--model", "gru", "--dropout", "0.1"]),
        ("a.txt", 120.0, ["--model", "gru"]), ("b.txt", 120.0, ["--model", "gru"]),
        ("b.txt", 120.0, ["--model", "gru", "--dropout", "0.1"])]
    assert sorted(results) == ["a|120|auto", "a|60|auto", "b|120|auto", "b|120|d1",
                               "b|60|auto", "b|60|d1"]
    assert results["b|60|d1"]["label"] == "d1" and results["b|60|d1"]["text"] == "b"
    assert json.load(open(path)) == results


def test_a_rerun_of_the_grid_skips_what_the_results_file_has(quality, tmp_path):
    path = str(tmp_path / "grid.json")
    quality.run_grid(path, "a", [60.0], {"auto": "--model gru"})
    quality.calls.clear()
    quality.run_grid(path, "a,b", [60.0], {"auto": "--model gru", "x": "--dropout 0"})
    assert quality.calls == [("a.txt", 60.0, ["--dropout", "0"]),
                             ("b.txt", 60.0, ["--model", "gru"]),
                             ("b.txt", 60.0, ["--dropout", "0"])]


def test_the_grid_table_compares_auto_with_the_best_hand_set_run(quality, tmp_path):
    results = quality.run_grid(str(tmp_path / "g.json"), "b", [60.0],
                               {"auto": "--model gru", "short": "-q",
                                "long": "--model gru --dropout 0.1"})
    table = quality.format_grid(results)
    # auto (2 options) 1.26, short (1 option) 1.16: auto is 0.1 behind
    assert "auto - best hand-set (short): +0.1000 nats/char" in table


@pytest.mark.parametrize("r, shape", [
    ({"shape": "16x32", "options": "--model gru"}, "16x32"),      # recorded by the run
    ({"options": "--model gru", "choices": {"batch_size": 16, "seq_len": 32}}, "16x32"),
    ({"options": "--model gru"}, "32x64"),                       # older: the --model's own
    ({"options": ""}, "32x50"),
    ({"options": "--model gru --batch-size 16"}, "16x64"),       # older, set by hand
    ({"options": "--model lstm --seq-len 32 --batch-size 8"}, "8x32")])
def test_the_grid_shows_each_runs_batch_shape(quality, r, shape):
    assert quality.shape_of(r) == shape
    row = {"text": "t", "budget": 60.0, "label": "x", "best": 1.0, "last": 1.0, "iters": 1,
           "chars_per_s": 1.0, "size": "2x8", "dropout": 0.0, **r}
    assert f" b{shape} " in quality.format_grid({"k": row})
