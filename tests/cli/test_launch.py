"""Ctrl-C while Python is still importing the CLI (the first fraction of a
second): a real SIGINT, delivered to a real `charrnn` process from inside the
import of click, gives one line and exit 130, no traceback -- through the
installed console script and through `python -m charrnn`."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

STUB = """\
import os, signal, time
os.kill(os.getpid(), signal.SIGINT)     # Ctrl-C arrives while click is being imported
time.sleep(30)
raise SystemExit("the signal never arrived")
"""


def _commands() -> list:
    found = [[sys.executable, "-m", "charrnn"]]
    exe = shutil.which("charrnn", path=os.path.dirname(sys.executable))
    if exe:
        found.insert(0, [exe])
    return found


@pytest.mark.parametrize("command", _commands(), ids=lambda c: " ".join(map(os.path.basename, c)))
def test_ctrl_c_during_import_is_one_line_and_exit_130(command, tmp_path):
    (tmp_path / "click").mkdir()
    (tmp_path / "click" / "__init__.py").write_text(STUB)
    env = {k: v for k, v in os.environ.items() if k != "CHARRNN_DEBUG"}
    env["PYTHONPATH"] = str(tmp_path)
    r = subprocess.run(command + ["sample", "--len", "10"], capture_output=True, text=True,
                       env=env, timeout=60)
    assert r.returncode == 130, r.stderr
    assert r.stderr == "charrnn: interrupted\n"
    assert r.stdout == ""


def test_console_script_enters_through_launch():
    exe = shutil.which("charrnn", path=os.path.dirname(sys.executable))
    if exe is None:
        pytest.skip("no charrnn console script next to this Python")
    assert "from charrnn.launch import main" in open(exe, encoding="utf-8").read()
