"""Plant mutmut's mutants ahead of a mutmut run: quick verdicts, to find gaps.

    python bench/mutation_plant.py 'charrnn.runs.budget.*' --budget 10
    python bench/mutation_plant.py 'charrnn.runs.*' --names undecided.txt \\
        --tests tests/training/test_budget.py::test_a_plan --budget 60

Needs mutants/ as `bench/mutation.py` leaves it (mutmut's mutated copy, its
.meta files and mutants/mutmut-stats.json).  pytest collects the test files
once in this process; then each mutant is switched on (MUTANT_UNDER_TEST)
in a forked child, which runs the tests that reach its function (mutmut's
stats, or --tests), quickest first, and stops at the first failure, within
--budget seconds of wall time.  A killed mutant costs about a second here,
against the minutes mutmut spends on a survivor, which runs every test that
reaches it.  Prints one line per mutant:

    KILLED|SURVIVED|UNDECIDED|ERROR(exit=N) name seconds tests

ERROR: the child did not end as pytest does (exit 3: a test raised
KeyboardInterrupt, as a signal with no handler in place does).
UNDECIDED: the budget ran out (plant it again against the tests of its own
module with a longer budget; an endless loop stays undecided and is a
timeout for mutmut).  "Quickest" is measured once by an unmutated run of
the collected tests, setup included (kept in --baseline).  Not a verdict
mutmut will agree with in every case: only mutmut's run counts in
bench/results/ (a mutant caught only by a test outside the chosen ones
survives here).
"""
from __future__ import annotations

import argparse
import fnmatch
import json
import os
import signal
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ERROR = 3       # a planting child's exit code when a test escaped pytest (KeyboardInterrupt)


def mutant_names(mutants: Path, glob: str) -> list[str]:
    """Every mutant in mutants/'s .meta files whose full name matches glob."""
    names = []
    for meta in sorted(mutants.rglob("*.py.meta")):
        names += json.loads(meta.read_text(encoding="utf-8"))["exit_code_by_key"]
    return [n for n in names if fnmatch.fnmatch(n, glob)]


def _short(name: str) -> str:
    return name.rsplit(".", 1)[-1]


def pick(names: list[str], want=None, skip=None) -> list[str]:
    """names in ``want`` (full or short names; all when None), not in ``skip``."""
    return [n for n in names if (want is None or n in want or _short(n) in want)
            and not (skip and (n in skip or _short(n) in skip))]


class Planter:
    """A pytest plugin: takes over the test loop once the tests are collected."""

    def __init__(self, plan, budget: float, baseline: Path, out=sys.stdout):
        self.plan, self.budget, self.baseline, self.out = plan, budget, baseline, out
        self.cost = json.loads(baseline.read_text()) if baseline.exists() else {}

    def pytest_runtestloop(self, session):
        items = {item.nodeid: item for item in session.items}
        unseen = [it for it in session.items if it.nodeid not in self.cost]
        if unseen:
            self._measure(session, unseen)
        for name, tests in self.plan:
            chosen = [items[t] for t in tests if t in items]
            prefixes = tuple(t for t in tests if t not in items)     # files, test names
            if prefixes:
                chosen += [it for it in session.items
                           if it.nodeid not in tests and it.nodeid.startswith(prefixes)]
            chosen.sort(key=lambda it: self.cost.get(it.nodeid, 1e9))
            self._plant(session, name, chosen)
        return True

    def _child(self, session, items, mutant, times=None) -> int:
        """In a forked child: run items (stop at the first failure)."""
        if mutant is not None:
            os.environ["MUTANT_UNDER_TEST"] = mutant
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 1)
        os.dup2(null, 2)
        for i, item in enumerate(items):
            t0 = time.monotonic()
            item.config.hook.pytest_runtest_protocol(
                item=item, nextitem=items[i + 1] if i + 1 < len(items) else None)
            if times is not None:
                times[item.nodeid] = round(time.monotonic() - t0, 4)
            elif session.testsfailed:
                return 1
        return 0

    def _measure(self, session, items):
        part = self.baseline.with_suffix(".part")
        pid = os.fork()
        if pid == 0:
            times = {}
            try:
                self._child(session, items, None, times)
            finally:
                part.write_text(json.dumps(times))
                os._exit(0)
        os.waitpid(pid, 0)
        self.cost.update(json.loads(part.read_text()))
        part.unlink()
        self.baseline.write_text(json.dumps(self.cost))

    def _plant(self, session, name, items):
        if not items:
            print("UNDECIDED", name, 0, 0, "(no tests)", file=self.out, flush=True)
            return
        t0 = time.monotonic()
        pid = os.fork()
        if pid == 0:
            os.setpgid(0, 0)
            code = ERROR
            try:
                code = self._child(session, items, name)
            finally:            # a KeyboardInterrupt from a test must not leave the child in pytest
                os._exit(code)
        status = None
        while time.monotonic() < t0 + self.budget:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            time.sleep(0.02)
        else:
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            os.waitpid(pid, 0)
            status = None
        if status is None:
            verdict = "UNDECIDED"
        elif os.WIFEXITED(status) and os.WEXITSTATUS(status) in (0, 1):
            verdict = ("SURVIVED", "KILLED")[os.WEXITSTATUS(status)]
        elif os.WIFEXITED(status):
            verdict = f"ERROR(exit={os.WEXITSTATUS(status)})"
        else:
            verdict = f"ERROR(signal={os.WTERMSIG(status)})"
        print(verdict, name, f"{time.monotonic() - t0:.1f}", len(items), file=self.out,
              flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("glob", help="mutants whose full name matches, e.g. 'charrnn.runs.guard.*'")
    ap.add_argument("--budget", type=float, default=10.0,
                    help="seconds of wall time per mutant (default 10)")
    ap.add_argument("--names", type=Path, help="a file of mutant names to plant (only these)")
    ap.add_argument("--skip", type=Path, help="a file of mutant names to leave out")
    ap.add_argument("--tests", nargs="*", default=[],
                    help="test ids or id prefixes to run instead of mutmut's selection")
    ap.add_argument("--within", nargs="*", default=[],
                    help="keep only the selected tests whose id starts with one of these")
    ap.add_argument("--mutants", type=Path, default=ROOT / "mutants")
    ap.add_argument("--baseline", type=Path, default=None,
                    help="per-test seconds of the unmutated run (default mutants/plant-baseline.json)")
    args = ap.parse_args(argv)
    mutants = args.mutants.resolve()
    read = lambda p: set(p.read_text().split()) if p else None  # noqa: E731
    names = pick(mutant_names(mutants, args.glob), read(args.names), read(args.skip))
    stats = {}
    if not args.tests:
        stats = json.loads((mutants / "mutmut-stats.json").read_text())
    reach = stats.get("tests_by_mangled_function_name", {})

    def tests_for(name):
        if args.tests:
            return list(args.tests)
        from mutmut.utils.format_utils import mangled_name_from_mutant_name
        tests = reach.get(mangled_name_from_mutant_name(name), [])
        return [t for t in tests if not args.within or t.startswith(tuple(args.within))]
    plan = [(n, tests_for(n)) for n in names]
    files = sorted({t.split("::")[0] for _, ts in plan for t in ts})
    print(f"# {len(plan)} mutants, {len(files)} test files", flush=True)
    if not files:
        return 0
    os.chdir(mutants)
    sys.path[:0] = [str(mutants), str(ROOT / "bench" / "mutmut_support")]
    os.environ["PYTHONPATH"] = os.pathsep.join(sys.path[:2])
    os.environ["PYTHONDONTWRITEBYTECODE"] = "1"
    import pytest
    planter = Planter(plan, args.budget, args.baseline or mutants / "plant-baseline.json")
    pytest.main(["--rootdir=.", "-o", "addopts=", "-p", "no:cacheprovider", "-p", "no:terminal",
                 *files], plugins=[planter])
    return 0


if __name__ == "__main__":
    sys.exit(main())
