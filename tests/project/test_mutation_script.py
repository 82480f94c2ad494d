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
    monkeypatch.setattr(mod, "STATE", tmp_path / "state")
    monkeypatch.setattr(mod, "RESULTS", tmp_path / "results")
    (tmp_path / "charrnn" / "store").mkdir(parents=True)
    (tmp_path / "charrnn" / "store" / "checkpoint.py").write_text("")
    meta = tmp_path / "mutants" / "charrnn" / "store" / "checkpoint.py.meta"
    meta.parent.mkdir(parents=True)
    codes = {"x_load__mutmut_1": 1, "x_load__mutmut_2": None, "x_load__mutmut_3": None,
             "x__get__mutmut_7": None, "x__get__mutmut_8": 0}
    meta.write_text(json.dumps({
        "exit_code_by_key": {f"charrnn.store.checkpoint.{k}": c for k, c in codes.items()},
        "hash_by_function_name": {"x_load": "h1", "x__get": "h2"},
        "durations_by_key": {"charrnn.store.checkpoint.x_load__mutmut_1": 1.234,
                             "charrnn.store.checkpoint.x__get__mutmut_8": 300.0}}))
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


@pytest.mark.parametrize("flag", ["--defer", "--again", "--defer-listed"])
def test_defer_and_again_without_not_checked_are_refused(script, capsys, flag):
    mod, _ = script
    with pytest.raises(SystemExit) as e:
        mod.main([flag, *(["x_*"] if flag != "--defer-listed" else []), "store"])
    assert e.value.code == 2
    assert f"{flag} works with --not-checked only" in capsys.readouterr().err


def _run_args(calls):
    return [c for c in calls if c[1:4] == ["-m", "mutmut", "run"]]


def test_kept_results_come_back_in_a_new_clone(script, tmp_path):
    """save_state, then mutants/ deleted (a new clone): seed writes the
    results back, so a resumed run hands mutmut the same mutants and the
    summary counts the same."""
    mod, calls = script
    before = mod.summary("store", {})
    kept = json.loads(mod.save_state("store").read_text(encoding="utf-8"))
    entry = kept["files"]["charrnn/store/checkpoint.py"]
    assert entry["exit_code_by_key"]["charrnn.store.checkpoint.x_load__mutmut_1"] == 1
    assert entry["durations_by_key"] == {"charrnn.store.checkpoint.x_load__mutmut_1": 1.23,
                                         "charrnn.store.checkpoint.x__get__mutmut_8": 300.0}
    import shutil
    shutil.rmtree(tmp_path / "mutants")
    assert mod.seed("store") == []
    meta = json.loads((tmp_path / "mutants/charrnn/store/checkpoint.py.meta").read_text())
    assert meta["hash_by_function_name"] == {"x_load": "h1", "x__get": "h2"}
    after = mod.summary("store", {})
    for key in ("mutants", "killed", "survived", "not_checked", "not_killed"):
        assert after[key] == before[key], key
    mod.run_module("store", {}, only_unchecked=True, defer=["x__get__*"])
    assert [c[6:] for c in _run_args(calls)] == [["charrnn.store.checkpoint.x_load__mutmut_2",
                                                  "charrnn.store.checkpoint.x_load__mutmut_3"]]


def test_results_of_a_changed_file_are_not_brought_back(script, tmp_path):
    mod, _ = script
    mod.save_state("store")
    (tmp_path / "mutants/charrnn/store/checkpoint.py.meta").unlink()
    (tmp_path / "charrnn/store/checkpoint.py").write_text("x = 1\n")
    assert mod.seed("store") == ["charrnn/store/checkpoint.py"]
    assert not (tmp_path / "mutants/charrnn/store/checkpoint.py.meta").exists()


def test_seed_leaves_results_mutants_already_holds(script, tmp_path):
    mod, _ = script
    mod.save_state("store")
    meta = tmp_path / "mutants/charrnn/store/checkpoint.py.meta"
    newer = meta.read_text().replace('"x_load__mutmut_2": null', '"x_load__mutmut_2": 1')
    meta.write_text(newer)
    assert mod.seed("store") == []
    assert meta.read_text() == newer


def test_a_resumed_run_without_mutants_has_mutmut_make_them_first(script, tmp_path, monkeypatch):
    """With no .meta for a file, --not-checked first asks mutmut for a mutant
    that does not exist (mutmut makes every mutant, then stops), then hands it
    the unchecked ones."""
    mod, calls = script
    meta = tmp_path / "mutants/charrnn/store/checkpoint.py.meta"
    kept = meta.read_text()
    meta.unlink()

    def fake_run(argv, **kw):
        calls.append(argv)
        first = not meta.exists()
        meta.write_text(kept)                     # what mutmut's generation writes
        return types.SimpleNamespace(returncode=1 if first else 0, stdout="")
    monkeypatch.setattr(mod.subprocess, "run", fake_run)
    mod.run_module("store", {}, only_unchecked=True, defer=["x__get__*", "x_load__mutmut_3"])
    runs = _run_args(calls)
    assert len(runs) == 2
    assert runs[0][-1] == "charrnn.store.x_no_such__mutmut_0"
    assert runs[1][-1:] == ["charrnn.store.checkpoint.x_load__mutmut_2"]


def test_mutmut_that_makes_no_mutants_is_one_error(script, tmp_path):
    mod, calls = script
    (tmp_path / "mutants/charrnn/store/checkpoint.py.meta").unlink()
    with pytest.raises(SystemExit, match="mutmut made no mutants of .*checkpoint.py; see "):
        mod.run_module("store", {}, only_unchecked=True)
    assert len(_run_args(calls)) == 1


def test_the_script_keeps_results_and_brings_them_back_itself(script, tmp_path):
    """main: --summary-only keeps each mutant's result; in a clone without
    mutants/ it brings them back before counting."""
    mod, _ = script
    assert mod.main(["--summary-only", "store"]) == 0
    first = json.loads((tmp_path / "results/mutation-store.json").read_text())
    assert (tmp_path / "state/store.json").exists()
    import shutil
    shutil.rmtree(tmp_path / "mutants")
    assert mod.main(["--summary-only", "store"]) == 0
    again = json.loads((tmp_path / "results/mutation-store.json").read_text())
    assert (again["mutants"], again["killed"], again["survived"], again["not_checked"]) == \
        (first["mutants"], first["killed"], first["survived"], first["not_checked"]) == (5, 1, 1, 3)


SAMPLE_MD = """# survivors

## store (run of today)

| mutant | change | verdict |
|---|---|---|
| `x_load__mutmut_3, 5-7`, `x__get__mutmut_2` | a change | equivalent: the same bytes |
| `xǁRǁread__mutmut_4`, `9` | another | not reachable without a failing disk |
| `x_load__mutmut_1` | a gap | killed since: `tests/x.py::test_y` |
| `x_load__mutmut_11` | a loop | undecided: a timeout |
| `x_load__mutmut_12` | a gap | **a gap, not answered yet** |

## text (planted)

| `x_read__mutmut_1` | a change | equivalent: the same text |
"""


def test_the_equivalent_rows_of_a_module_are_read_from_the_table(script):
    mod, _ = script
    assert mod.listed_equivalent("store", SAMPLE_MD) == sorted([
        "x_load__mutmut_3", "x_load__mutmut_5", "x_load__mutmut_6", "x_load__mutmut_7",
        "x__get__mutmut_2", "xǁRǁread__mutmut_4", "xǁRǁread__mutmut_9"])
    assert mod.listed_equivalent("text", SAMPLE_MD) == ["x_read__mutmut_1"]
    assert mod.listed_equivalent("runs", SAMPLE_MD) == []


def test_defer_listed_leaves_out_what_the_table_lists(script, tmp_path, monkeypatch):
    mod, calls = script
    listed = tmp_path / "equivalent.md"
    listed.write_text(SAMPLE_MD, encoding="utf-8")
    monkeypatch.setattr(mod, "LISTED", listed)
    assert mod.main(["--not-checked", "--defer-listed", "store"]) == 0
    run = _run_args(calls)
    assert [c[6:] for c in run] == [["charrnn.store.checkpoint.x__get__mutmut_7",
                                     "charrnn.store.checkpoint.x_load__mutmut_2"]]


def test_a_summary_keeps_the_run_time_the_run_wrote(script, tmp_path):
    mod, _ = script
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "mutation-store.json").write_text(
        json.dumps({"run_seconds": 3892.0, "included_stats_run": False, "killed": 0}))
    assert mod.main(["--summary-only", "store"]) == 0
    out = json.loads((tmp_path / "results" / "mutation-store.json").read_text())
    assert (out["run_seconds"], out["included_stats_run"], out["killed"]) == (3892.0, False, 1)


def test_forget_stopped_puts_a_stopped_runs_mutants_back_to_not_checked(script, tmp_path):
    mod, _ = script
    meta = tmp_path / "mutants" / "charrnn" / "store" / "checkpoint.py.meta"
    m = json.loads(meta.read_text())
    m["exit_code_by_key"]["charrnn.store.checkpoint.x_load__mutmut_2"] = -9
    m["durations_by_key"]["charrnn.store.checkpoint.x_load__mutmut_2"] = 12.0
    meta.write_text(json.dumps(m))
    before = mod.summary("store", {})
    assert before["not_checked"] == 2
    assert mod.main(["--summary-only", "--forget-stopped", "store"]) == 0
    m = json.loads(meta.read_text())
    assert m["exit_code_by_key"]["charrnn.store.checkpoint.x_load__mutmut_2"] is None
    assert "charrnn.store.checkpoint.x_load__mutmut_2" not in m["durations_by_key"]
    assert m["exit_code_by_key"]["charrnn.store.checkpoint.x_load__mutmut_1"] == 1
    out = json.loads((tmp_path / "results" / "mutation-store.json").read_text())
    assert out["not_checked"] == 3
