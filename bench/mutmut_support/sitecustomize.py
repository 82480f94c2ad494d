"""Imported at start-up by every Python process bench/mutation.py runs
(this folder is on their PYTHONPATH); does nothing outside mutmut's stats run.

mutmut learns which tests reach which function by counting calls in its own
process while the suite runs once (MUTANT_UNDER_TEST=stats).  Many charrnn
tests run the `charrnn` command in a subprocess, whose calls mutmut would
never see: such a subprocess imports the mutated copy too (mutants/ is first
on PYTHONPATH), so its calls are counted in it, and here they are written at
exit to MUTMUT_HITS_DIR, one file per process, for the pytest plugin
mutmut_subprocess_hits to hand to the test that started it."""
import os


def _install(hits_dir: str, root: str) -> None:
    import atexit

    from mutmut.configuration import config
    from mutmut.state import state

    here = os.getcwd()
    os.chdir(root)              # mutmut reads its configuration from the project's folder
    try:
        config()
    finally:
        os.chdir(here)

    def write_hits():
        hits = state()._stats
        if hits:
            path = os.path.join(hits_dir, f"{os.getpid()}.hits")
            with open(path + ".tmp", "w", encoding="utf-8") as f:
                f.write("\n".join(sorted(hits)))
            os.replace(path + ".tmp", path)
    atexit.register(write_hits)


if (os.environ.get("MUTANT_UNDER_TEST") == "stats" and os.environ.get("MUTMUT_HITS_DIR")
        and os.environ.get("MUTMUT_PROJECT_ROOT")):
    try:
        _install(os.environ["MUTMUT_HITS_DIR"], os.environ["MUTMUT_PROJECT_ROOT"])
    except Exception as e:      # never break the process under test
        import sys
        sys.stderr.write(f"mutmut subprocess hits: not recorded ({e})\n")
