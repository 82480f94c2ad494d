"""Imported at start-up by every Python process bench/mutation.py runs
(this folder is on their PYTHONPATH); does nothing outside mutmut's stats run.

mutmut learns which tests reach which function by counting calls in its own
process while the suite runs once (MUTANT_UNDER_TEST=stats).  Many charrnn
tests run the `charrnn` command in a subprocess, whose calls mutmut would
never see: such a subprocess imports the mutated copy too (mutants/ is first
on PYTHONPATH), so its calls are counted in it, and here they are written at
exit to MUTMUT_HITS_DIR, one file per process, for the pytest plugin
mutmut_subprocess_hits to hand to the test that started it.

It also keeps method mutants alive in subprocesses under an ASCII locale
(LC_ALL=C, PYTHONUTF8=0): mutmut names a method's mutants with U+01C1
(`x\u01c1Class\u01c1method__mutmut_2`), such a process decodes
MUTANT_UNDER_TEST as ASCII with surrogates, and the garbled name would match
no mutant, so the process would run the original code."""
import os


def _mutant_name_as_written() -> str | None:
    """MUTANT_UNDER_TEST decoded as UTF-8, mutmut's own encoding, when this
    process's locale garbled it; None when it arrived intact or is unset."""
    name = os.environ.get("MUTANT_UNDER_TEST")
    if not name:
        return None
    try:
        name.encode("utf-8")
        return None                     # decoded right (or plain ASCII)
    except UnicodeEncodeError:
        pass
    try:
        return os.fsencode(name).decode("utf-8")
    except UnicodeDecodeError:
        return None


def _answer_with(name: str) -> None:
    """Make mutmut's trampolines see `name` while the environment still holds
    the garbled copy (children of this process inherit the bytes unchanged)."""
    from mutmut.mutation import trampoline

    garbled = os.environ["MUTANT_UNDER_TEST"]
    as_environment_says = trampoline.get_mutant_under_test

    def get_mutant_under_test() -> str:
        current = as_environment_says()
        return name if current == garbled else current
    trampoline.get_mutant_under_test = get_mutant_under_test


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


_written = _mutant_name_as_written()
if _written is not None:
    try:
        _answer_with(_written)
    except Exception as e:      # never break the process under test
        import sys
        sys.stderr.write(f"mutmut mutant name: not recovered ({e})\n")
