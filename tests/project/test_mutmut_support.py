"""bench/mutmut_support/sitecustomize.py hands a method mutant's name to
subprocesses under an ASCII locale (LC_ALL=C, PYTHONUTF8=0), where Python
decodes the environment as ASCII and U+01C1 in the name arrives garbled."""
import importlib.util
import os
import subprocess
import sys

import pytest

from helpers import ROOT

SUPPORT = os.path.join(ROOT, "bench", "mutmut_support")
NAME = "charrnn.cli.commands.x\u01c1ArgvText\u01c1convert__mutmut_2"


def run_child(code: str, name: str) -> list[str]:
    """Run `code` in a fresh Python with the support folder on its path,
    under the C locale, MUTANT_UNDER_TEST=`name` (as mutmut writes it, UTF-8).
    Returns the lines the child printed (ASCII, via ascii()), then its stderr."""
    env = {os.fsencode(k): os.fsencode(v) for k, v in os.environ.items()
           if k not in ("PYTHONIOENCODING", "PYTHONUTF8", "PYTHONPATH", "MUTANT_UNDER_TEST")
           and not k.startswith("LC_")}
    env.update({b"LC_ALL": b"C", b"LANG": b"C", b"PYTHONUTF8": b"0",
                b"PYTHONPATH": os.fsencode(SUPPORT),
                b"MUTANT_UNDER_TEST": name.encode("utf-8")})
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr.decode("utf-8", "replace")
    return out.stdout.decode("ascii").splitlines() + [out.stderr.decode("ascii")]


def test_the_c_locale_garbles_the_name_and_the_support_recovers_it():
    env_value, recovered, encoding, _ = run_child(
        "import os, sys, sitecustomize as s\n"
        "print(ascii(os.environ['MUTANT_UNDER_TEST']))\n"
        "print(ascii(s._mutant_name_as_written()))\n"
        "print(sys.getfilesystemencoding())\n", NAME)
    if encoding != "ascii":                          # e.g. musl, whose C locale is UTF-8
        assert (env_value, recovered) == (ascii(NAME), "None")
        pytest.skip(f"the C locale here decodes as {encoding}: nothing to recover")
    assert env_value != ascii(NAME)                  # the C locale garbles the name
    assert "\\udcc7\\udc81" in env_value             # U+01C1 as two escaped bytes
    assert recovered == ascii(NAME)


def test_an_ascii_name_is_left_to_mutmut_as_it_is():
    recovered, err = run_child(
        "import sitecustomize as s\nprint(ascii(s._mutant_name_as_written()))\n",
        "charrnn.cli.commands.x_unescape__mutmut_10")
    assert recovered == "None"
    assert err == ""                                 # nothing to hand over, no warning


@pytest.mark.skipif(importlib.util.find_spec("mutmut") is None,
                    reason="mutmut is a development extra (pip install -e .[mutation])")
def test_mutmut_trampolines_see_the_name_as_written():
    seen, other, err = run_child(
        "import os\nfrom mutmut.mutation import trampoline as t\n"
        "print(ascii(t.get_mutant_under_test()))\n"
        "os.environ['MUTANT_UNDER_TEST'] = 'stats'\n"   # a later change still wins
        "print(ascii(t.get_mutant_under_test()))\n", NAME)
    assert seen == ascii(NAME)
    assert other == ascii("stats")
    assert err == ""
