"""bench/mutation_plant.py: each mutant switched on in a forked child, its
verdict from the tests it ran; here on a made-up mutants/ folder whose test
fails under one mutant name, hangs under another and is interrupted under a
third."""
import json
import os
import subprocess
import sys

from helpers import ROOT

TEST = '''
import os
import time


def test_reads_the_mutant_it_runs_under():
    name = os.environ.get("MUTANT_UNDER_TEST", "")
    if name.endswith("_3"):
        time.sleep(60)
    if name.endswith("_4"):
        raise KeyboardInterrupt
    assert not name.endswith("_1")
'''


def test_each_mutant_is_killed_survives_or_runs_out_of_time(tmp_path):
    mutants = tmp_path / "mutants"
    (mutants / "charrnn").mkdir(parents=True)
    (mutants / "tests").mkdir()
    (mutants / "tests" / "test_fake.py").write_text(TEST)
    names = [f"charrnn.fake.x_f__mutmut_{k}" for k in (1, 2, 3, 4)]
    (mutants / "charrnn" / "fake.py.meta").write_text(
        json.dumps({"exit_code_by_key": {n: None for n in names + ["charrnn.other.x_g__mutmut_1"]}}))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "MUTANT"))}
    r = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "mutation_plant.py"),
                        "charrnn.fake.*", "--mutants", str(mutants), "--tests",
                        "tests/test_fake.py", "--budget", "3"],
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    lines = [ln.split() for ln in r.stdout.splitlines() if not ln.startswith("#")]
    assert [(v, n) for v, n, *_ in lines] == [("KILLED", names[0]), ("SURVIVED", names[1]),
                                             ("UNDECIDED", names[2]),
                                             ("ERROR(exit=3)", names[3])]
    assert float(lines[2][2]) >= 3.0
    baseline = json.loads((mutants / "plant-baseline.json").read_text())
    assert list(baseline) == ["tests/test_fake.py::test_reads_the_mutant_it_runs_under"]
