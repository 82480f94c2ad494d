"""pytest plugin (loaded through PYTEST_PLUGINS by bench/mutation.py): in
mutmut's stats run, the functions that a test's subprocesses reached (written
by sitecustomize.py here) count as reached by that test, so their mutants run
it.  Runs before mutmut's own teardown hook, which files the test's hits."""
import os

import pytest


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_teardown(item, nextitem):
    hits_dir = os.environ.get("MUTMUT_HITS_DIR")
    if not hits_dir or os.environ.get("MUTANT_UNDER_TEST") != "stats" or not os.path.isdir(hits_dir):
        return
    from mutmut.state import state
    for name in os.listdir(hits_dir):
        if name.endswith(".hits"):
            path = os.path.join(hits_dir, name)
            with open(path, encoding="utf-8") as f:
                state()._stats.update(line for line in f.read().splitlines() if line)
            os.unlink(path)
