"""Mutation testing with mutmut 3, one module at a time, resumable.

    pip install -e ".[test,mutation]"
    python bench/mutation.py                     # every module not done yet
    python bench/mutation.py nn.optim store      # these modules
    python bench/mutation.py --redo store        # again, even if done
    python bench/mutation.py --summary-only store    # the results of a stopped run
    python bench/mutation.py --summary-only --forget-stopped store
                                                 # ... the mutants it was running: not checked
    python bench/mutation.py --redo --not-checked store   # resume only what was not run
    python bench/mutation.py --redo --not-checked --defer 'x_f__mutmut_[37]' store
                                                 # ... leaving these for a later run
    python bench/mutation.py --redo --not-checked --defer-listed text
                                                 # ... leaving those judged equivalent

Modules: the code that holds users' data and results (MODULES below).  For
each, ``mutmut run`` mutates the module's functions (configuration: setup.cfg
[mutmut]); each mutant runs only the tests that reached the mutated function
during mutmut's one stats run of the suite (kept in mutants/mutmut-stats.json
and reused by later modules), at most 2 at a time.  Tests that run the
`charrnn` command in a subprocess count too: mutants/ comes first on the
subprocesses' PYTHONPATH, so they import the mutated copy with the mutant
switched on (MUTANT_UNDER_TEST is inherited), and bench/mutmut_support/
records during the stats run which functions they reached.  Missed: a
subprocess started with an environment of its own (env -i tests) runs the
unmutated code, and one killed by SIGKILL reports no functions.

Writes bench/results/mutation-<module>.json: mutants, killed, survived,
timed out, no tests, other, run time, seconds per mutant and the survivors;
a module whose file exists (and says complete) is skipped.  Each mutant's
result is kept in bench/results/mutation-state/<module>.json (with the
SHA-256 of the source file it was made from), so a run can resume in a new
clone: before mutmut starts, the results of every file still unchanged are
written back into mutants/ as mutmut's own .meta files.  Survivors judged equivalent are
listed with a reason in bench/results/mutation-equivalent.md.
"""
from __future__ import annotations

import argparse
import fnmatch
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
STATE = RESULTS / "mutation-state"
LISTED = RESULTS / "mutation-equivalent.md"
SUPPORT = ROOT / "bench" / "mutmut_support"
MAX_CHILDREN = 2                 # the machine has 2 cores; never more

# module -> (mutant name globs, source files); the files must be in setup.cfg's only_mutate
MODULES = {
    "nn.optim": (["charrnn.nn.optim.*"], ["charrnn/nn/optim.py"]),
    "store": (["charrnn.store.*"], ["charrnn/store/*.py"]),
    "text": (["charrnn.text.*"], ["charrnn/text/*.py"]),
    "runs": (["charrnn.runs.*"], ["charrnn/runs/*.py"]),
    "generate": (["charrnn.generate.*"], ["charrnn/generate/*.py"]),
    "api": (["charrnn.api.*"], ["charrnn/api/*.py"]),
    "cli": (["charrnn.cli.output.*", "charrnn.cli.commands.*", "charrnn.launch.*"],
            ["charrnn/cli/output.py", "charrnn/cli/commands.py", "charrnn/launch.py"]),
}

KILLED = {1, 3}
SURVIVED = {0}
TIMEOUT = {36, -24, 24, 152, 255}
NO_TESTS = {5, 33}


def environment() -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("MUTANT_UNDER_TEST", "CHARRNN_DEBUG", "CHARRNN_CHECKPOINT_DIR")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "mutants"), str(SUPPORT)])
    env["PYTEST_PLUGINS"] = "mutmut_subprocess_hits"
    env["MUTMUT_HITS_DIR"] = str(ROOT / "mutants" / ".subprocess-hits")
    env["MUTMUT_PROJECT_ROOT"] = str(ROOT)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def results_of(files: list[str]) -> dict:
    """{mutant name: (exit code, seconds)} from mutmut's .meta files of these sources."""
    out = {}
    for src in _sources(files):
        meta = _meta(src)
        if not meta.exists():
            continue
        m = json.loads(meta.read_text(encoding="utf-8"))
        for name, code in m["exit_code_by_key"].items():
            out[name] = (code, m["durations_by_key"].get(name))
    return out


def _sources(files: list[str]) -> list[Path]:
    return [p for pattern in files for p in sorted(ROOT.glob(pattern))]


def _meta(src: Path) -> Path:
    """mutmut's .meta file of a source file (absolute, under ROOT)."""
    return ROOT / "mutants" / (str(src.relative_to(ROOT)) + ".meta")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def save_state(module: str) -> Path:
    """Keep each mutant's result (exit code, seconds) of the module, per
    source file with that file's SHA-256, from mutmut's .meta files."""
    files = {}
    for src in _sources(MODULES[module][1]):
        meta = _meta(src)
        if not meta.exists():
            continue
        m = json.loads(meta.read_text(encoding="utf-8"))
        files[str(src.relative_to(ROOT))] = {
            "sha256": _sha256(src),
            "hash_by_function_name": m.get("hash_by_function_name", {}),
            "exit_code_by_key": m["exit_code_by_key"],
            "durations_by_key": {k: round(v, 2) for k, v in m["durations_by_key"].items()
                                 if v is not None},
        }
    STATE.mkdir(parents=True, exist_ok=True)
    path = STATE / f"{module}.json"
    path.write_text(json.dumps({"module": module, "mutmut": _mutmut_version(), "files": files},
                               indent=1, sort_keys=True, ensure_ascii=False) + "\n",
                    encoding="utf-8")
    return path


def seed(module: str) -> list[str]:
    """Write the kept results back as mutmut's .meta files where mutants/ has
    none and the source file is unchanged; returns the files whose results
    were kept but that have changed since (their mutants run again)."""
    path = STATE / f"{module}.json"
    if not path.exists():
        return []
    changed = []
    for name, kept in json.loads(path.read_text(encoding="utf-8"))["files"].items():
        src = ROOT / name
        meta = _meta(src)
        if meta.exists():
            continue
        if not src.exists() or _sha256(src) != kept["sha256"]:
            changed.append(name)
            continue
        meta.parent.mkdir(parents=True, exist_ok=True)
        meta.write_text(json.dumps({
            "exit_code_by_key": kept["exit_code_by_key"],
            "hash_by_function_name": kept["hash_by_function_name"],
            "type_check_error_by_key": {},
            "durations_by_key": kept["durations_by_key"],
            "estimated_durations_by_key": {},
        }, indent=1, ensure_ascii=False), encoding="utf-8")
    return changed


STOPPED = -9      # the exit code mutmut records for a mutant whose run was stopped (SIGKILL)


def forget_stopped(module: str) -> int:
    """Put back to "not checked" the mutants a stopped run was running (exit
    code STOPPED in mutmut's .meta files), so the next --not-checked run
    runs them.  Returns how many."""
    n = 0
    for src in _sources(MODULES[module][1]):
        meta = _meta(src)
        if not meta.exists():
            continue
        m = json.loads(meta.read_text(encoding="utf-8"))
        stopped = [k for k, c in m["exit_code_by_key"].items() if c == STOPPED]
        for k in stopped:
            m["exit_code_by_key"][k] = None
            m["durations_by_key"].pop(k, None)
        if stopped:
            meta.write_text(json.dumps(m, indent=1, ensure_ascii=False), encoding="utf-8")
        n += len(stopped)
    return n


def diff_of(name: str, env: dict) -> str:
    r = subprocess.run([sys.executable, "-m", "mutmut", "show", name], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=120)
    lines = [ln for ln in r.stdout.splitlines()
             if ln.startswith(("+", "-")) and not ln.startswith(("+++", "---"))]
    return "\n".join(lines)


def _default_sigint():
    # A script started in the background (nohup, &) inherits an ignored SIGINT;
    # the tests of Ctrl-C need Python's own handler in the processes they start.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _matches(name: str, patterns) -> bool:
    """Whether a mutant's name without its module (x_load__mutmut_3) matches a glob."""
    return any(fnmatch.fnmatch(name.rsplit(".", 1)[-1], p) for p in patterns)


def to_run(module: str, defer=(), again=()) -> list[str]:
    """The mutants a --not-checked run hands to mutmut: those mutants/ lists
    without a result, less the ones ``defer`` matches, and those with a
    result that ``again`` matches."""
    globs, files = MODULES[module]
    return sorted(k for k, (c, _) in results_of(files).items()
                  if any(fnmatch.fnmatch(k, g) for g in globs)
                  and (not _matches(k, defer) if c is None else _matches(k, again)))


def _unlisted(files: list[str]) -> list[Path]:
    """The module's source files that mutants/ has no .meta file for yet."""
    return [p for p in _sources(files) if not _meta(p).exists()]


def _generate(module: str, env: dict, log: Path) -> None:
    """Have mutmut make the mutants (and its stats, if it has none) without
    running any: asked for a mutant no module has, it lists every file's
    mutants in mutants/ and then stops, saying that nothing matches."""
    globs, files = MODULES[module]
    with open(log, "w", encoding="utf-8") as f:
        subprocess.run([sys.executable, "-m", "mutmut", "run", "--max-children",
                        str(MAX_CHILDREN), globs[0].rstrip("*") + "x_no_such__mutmut_0"],
                       cwd=ROOT, env=env, stdout=f, stderr=subprocess.STDOUT,
                       preexec_fn=_default_sigint)
    missing = _unlisted(files)
    if missing:
        raise SystemExit(f"mutmut made no mutants of {', '.join(map(str, missing))}; see {log}")


def listed_equivalent(module: str, md: str) -> list[str]:
    """The mutants (names without their module) that the module's section of
    mutation-equivalent.md lists as equivalent or not reachable.  A row's
    first cell names them: `x_f__mutmut_3, 5-7`, a later `9` adds to the
    name before it; its last cell is the verdict."""
    start = md.find(f"\n## {module} ")
    if start < 0:
        return []
    end = md.find("\n## ", start + 1)
    names = []
    for line in md[start:end if end >= 0 else None].splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.startswith("| `") or len(cells) < 2:
            continue
        if not cells[-1].lstrip("*").lower().startswith(("equivalent", "not reachable")):
            continue
        base = None
        for quoted in re.findall(r"`([^`]+)`", cells[0]):
            m = re.fullmatch(r"(.+__mutmut_)([\d, -]+)", quoted)
            if m:
                base, numbers = m.groups()
            elif base and re.fullmatch(r"[\d, -]+", quoted):
                numbers = quoted
            else:
                continue
            for part in re.split(r"[,\s]+", numbers.strip()):
                lo, _, hi = part.partition("-")
                names += [f"{base}{k}" for k in range(int(lo), int(hi or lo) + 1)]
    return sorted(set(names))


def run_module(module: str, env: dict, only_unchecked: bool = False, defer=(),
               again=()) -> dict:
    """Run mutmut over the module, or with only_unchecked over ``to_run``'s
    mutants (the deferred stay not checked, for a later run)."""
    globs, files = MODULES[module]
    had_stats = (ROOT / "mutants" / "mutmut-stats.json").exists()
    (ROOT / "mutants" / ".subprocess-hits").mkdir(parents=True, exist_ok=True)
    log = ROOT / "mutants" / f"run-{module}.log"
    t0 = time.monotonic()
    mode = "w"
    if only_unchecked:
        if _unlisted(files):
            _generate(module, env, log)
            mode = "a"
        globs = to_run(module, defer, again)
        if not globs:
            return summary(module, env)
    with open(log, mode, encoding="utf-8") as f:
        r = subprocess.run([sys.executable, "-m", "mutmut", "run", "--max-children",
                            str(MAX_CHILDREN), *globs], cwd=ROOT, env=env, stdout=f,
                           stderr=subprocess.STDOUT, preexec_fn=_default_sigint)
    seconds = time.monotonic() - t0
    if r.returncode != 0:
        raise SystemExit(f"mutmut run failed for {module} (exit {r.returncode}); see {log}")
    return summary(module, env, seconds, not had_stats)


def summary(module: str, env: dict, seconds=None, included_stats_run=None) -> dict:
    """The module's figures from mutmut's .meta files (mutants not run yet
    count as not_checked: a run that was stopped gives a partial summary)."""
    globs, files = MODULES[module]
    found = {k: v for k, v in results_of(files).items()
             if any(fnmatch.fnmatch(k, g) for g in globs)}
    if not found:
        raise SystemExit(f"no mutants of {module} in mutants/: run it first")
    codes = [c for c, _ in found.values()]
    survivors = sorted(k for k, (c, _) in found.items() if c in SURVIVED)
    per = [d for c, d in found.values() if d is not None and c is not None]
    known = KILLED | SURVIVED | TIMEOUT | NO_TESTS | {None}
    return {
        "module": module,
        "files": files,
        "complete": None not in codes,
        "mutants": len(found),
        "killed": sum(c in KILLED for c in codes),
        "survived": len(survivors),
        "timed_out": sum(c in TIMEOUT for c in codes),
        "no_tests": sum(c in NO_TESTS for c in codes),
        "not_checked": sum(c is None for c in codes),
        "other": sum(c not in known for c in codes),
        "run_seconds": None if seconds is None else round(seconds, 1),
        "included_stats_run": included_stats_run,
        "mutant_seconds_total": round(sum(per), 1),
        "mutant_seconds_mean": round(sum(per) / len(per), 2) if per else None,
        "max_children": MAX_CHILDREN,
        "survivors": {k: diff_of(k, env) for k in survivors},
        "not_killed": {k: c for k, (c, _) in found.items()
                       if c not in KILLED and c is not None},     # (not checked: counted above)
        "mutmut": _mutmut_version(),
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def _mutmut_version() -> str:
    from importlib.metadata import version
    return version("mutmut")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("modules", nargs="*", help=f"default: all of {', '.join(MODULES)}")
    ap.add_argument("--redo", action="store_true", help="run modules whose results exist")
    ap.add_argument("--not-checked", action="store_true",
                    help="run only the mutants a stopped run left without a result (mutmut "
                         "otherwise first runs every earlier survivor again when tests were "
                         "added); after a change to the module's code, run without it")
    ap.add_argument("--defer", action="append", default=[], metavar="GLOB",
                    help="with --not-checked: leave out the mutants whose name (without its "
                         "module, e.g. x_load__mutmut_3) matches GLOB, such as survivors already "
                         "judged equivalent by hand (about 5 minutes each); repeatable")
    ap.add_argument("--defer-listed", action="store_true",
                    help="with --not-checked: defer every mutant that "
                         "bench/results/mutation-equivalent.md lists as equivalent or not "
                         "reachable for the module")
    ap.add_argument("--again", action="append", default=[], metavar="GLOB",
                    help="with --not-checked: also run the mutants whose name matches GLOB "
                         "though they have a result, such as survivors a test added since "
                         "should kill; repeatable")
    ap.add_argument("--summary-only", action="store_true",
                    help="do not run mutmut: write the results file from what mutants/ holds "
                         "(of a run that was stopped: 'complete': false)")
    ap.add_argument("--forget-stopped", action="store_true",
                    help=f"first put the mutants a stopped run left with exit code {STOPPED} "
                         "back to not checked (not a verdict: mutmut was stopped while running "
                         "them; an out-of-memory kill looks the same)")
    args = ap.parse_args(argv)
    unknown = [m for m in args.modules if m not in MODULES]
    if unknown:
        ap.error(f"unknown module(s) {', '.join(unknown)}; choose from {', '.join(MODULES)}")
    for flag in ("defer", "again", "defer_listed"):
        if getattr(args, flag) and not args.not_checked:
            ap.error(f"--{flag.replace('_', '-')} works with --not-checked only")
    env = environment()
    # mutants/ must exist before mutmut starts: a PYTHONPATH entry that does not
    # exist yet is remembered as empty by the import system.
    (ROOT / "mutants").mkdir(exist_ok=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    for module in args.modules or list(MODULES):
        path = RESULTS / f"mutation-{module}.json"
        if path.exists() and not args.redo and not args.summary_only:
            if json.loads(path.read_text(encoding="utf-8")).get("complete", True):
                print(f"{module}: done ({path.relative_to(ROOT)}); --redo to run it again")
                continue
        for name in seed(module):
            print(f"{module}: {name} changed since its results were kept; its mutants run again",
                  flush=True)
        if args.forget_stopped:
            print(f"{module}: {forget_stopped(module)} stopped mutant(s) back to not checked",
                  flush=True)
        if args.summary_only:
            out = summary(module, env)
            if path.exists():       # keep the run time the run itself wrote
                before = json.loads(path.read_text(encoding="utf-8"))
                for key in ("run_seconds", "included_stats_run"):
                    out[key] = before.get(key)
        else:
            print(f"{module}: running mutmut ...", flush=True)
            defer = list(args.defer)
            if args.defer_listed:
                defer += listed_equivalent(module, LISTED.read_text(encoding="utf-8"))
            out = run_module(module, env, args.not_checked, defer, args.again)
        path.write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        save_state(module)
        print(f"{module}: {out['mutants']} mutants, {out['killed']} killed, {out['survived']} "
              f"survived, {out['timed_out']} timed out, {out['no_tests']} without tests, "
              f"{out['run_seconds'] or 0:.0f} s -> {path.relative_to(ROOT)}"
              + ("" if out["complete"] else f" (partial: {out['not_checked']} not checked yet)"),
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
