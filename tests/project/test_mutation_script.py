"""bench/mutation.py: which mutants a resumed run hands to mutmut (--not-checked,
--defer), with mutmut itself replaced by a fake."""
import importlib.util
import json
import os
import types

import pytest

from helpers import ROOT


@pytest.fixture
def script(monkeypatch, tmp_path):
    spec = importlib.util.spec_from_file_location(
        "bench_mutation", os.path.join(ROOT, "bench", "mutation.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    monkeypatch.setattr(mod, "ROOT", tmp_path)
    (tmp_path / "charrnn" / "store").mkdir(parents=True)
    (tmp_path / "charrnn" / "store" / "checkpoint.py").write_text("")
    meta = tmp_path / "mutants" / "charrnn" / "store" / "checkpoint.py.meta"
    meta.parent.mkdir(parents=True)
    codes = {"x_load__mutmut_1": 1, "x_load__mutmut_2": None, "x_load__mutmut_3": None,
             "x__get__mutmut_7": None, "x__get__mutmut_8": 0}
    meta.write_text(json.dumps({
        "exit_code_by_key": {f"charrnn.store.checkpoint.{k}": c for k, c in codes.items()},
        "durations_by_key": {}}))
    calls = []

    def fake_run(argv, **kw):
        calls.append(argv)
        return types.SimpleNamespace(returncode=0, stdout="")
    monkeypatch.setattr(mod.subprocess, "run", fake_run)
    monkeypatch.setattr(mod, "_mutmut_version", lambda: "3")    # mutmut: a dev extra only
    return mod, calls


def test_a_resumed_run_hands_mutmut_only_the_unchecked_mutants_not_deferred(script):
    mod, calls = script
    out = mod.run_module("store", {}, only_unchecked=True, defer=["x__get__*", "x_load__mutmut_3"])
    run = [c for c in calls if c[1:4] == ["-m", "mutmut", "run"]]
    assert len(run) == 1
    assert run[0][-1:] == ["charrnn.store.checkpoint.x_load__mutmut_2"]
    assert out["not_checked"] == 3 and out["killed"] == 1 and out["survived"] == 1


def test_without_defer_every_unchecked_mutant_is_run(script):
    mod, calls = script
    mod.run_module("store", {}, only_unchecked=True)
    run = [c for c in calls if c[1:4] == ["-m", "mutmut", "run"]][0]
    assert sorted(run[6:]) == ["charrnn.store.checkpoint.x__get__mutmut_7",
                               "charrnn.store.checkpoint.x_load__mutmut_2",
                               "charrnn.store.checkpoint.x_load__mutmut_3"]


def test_again_adds_mutants_with_a_result_and_leaves_the_rest(script):
    mod, calls = script
    mod.run_module("store", {}, only_unchecked=True, defer=["x_load__*"],
                   again=["x_load__mutmut_1", "x__get__mutmut_8"])
    run = [c for c in calls if c[1:4] == ["-m", "mutmut", "run"]][0]
    assert sorted(run[6:]) == ["charrnn.store.checkpoint.x__get__mutmut_7",
                               "charrnn.store.checkpoint.x__get__mutmut_8",
                               "charrnn.store.checkpoint.x_load__mutmut_1"]


@pytest.mark.parametrize("flag", ["--defer", "--again"])
def test_defer_and_again_without_not_checked_are_refused(script, capsys, flag):
    mod, _ = script
    with pytest.raises(SystemExit) as e:
        mod.main([flag, "x_*", "store"])
    assert e.value.code == 2
    assert f"{flag} works with --not-checked only" in capsys.readouterr().err
