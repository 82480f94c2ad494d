"""The README's first two commands: they must work pasted as they stand where
pip may not touch the system Python (PEP 668), so every step runs from a
.venv the command itself creates or reuses; .ci/run runs them, read from
README.md (the full check, in a fresh clone: see .ci/run)."""
from __future__ import annotations

import runpy
import shlex

from helpers import ROOT


def _commands():
    mod = runpy.run_path(str(ROOT / ".ci" / "readme_commands.py"))
    return mod["readme_commands"](str(ROOT / "README.md"))


def test_each_readme_command_creates_its_venv_and_runs_only_from_it():
    cmds = _commands()
    assert len(cmds) == 2
    for cmd in cmds:
        steps = [shlex.split(s) for s in cmd.split("&&")]
        assert steps[0] == ["python3", "-m", "venv", ".venv"], cmd
        for step in steps[1:]:
            assert step[0].startswith(".venv/bin/"), (step, cmd)   # never a system pip
    install, train, sample = (shlex.split(s) for s in cmds[0].split("&&")[1:])
    assert install == [".venv/bin/pip", "install", "-e", "."]
    assert train[:3] == [".venv/bin/charrnn", "train", "corpora/tinyshakespeare.txt"]
    assert (ROOT / train[2]).is_file()
    assert sample[:2] == [".venv/bin/charrnn", "sample"]
    assert shlex.split(cmds[1].split("&&")[-1]) == [".venv/bin/python", "-m", "pytest", "-q"]


def test_ci_runs_the_readme_commands_themselves():
    ci = (ROOT / ".ci" / "run").read_text()
    assert ".ci/readme_commands.py README.md" in ci
    assert 'bash -c "${CMDS[1]}"' in ci              # the test command, unchanged
    assert 'bash -c "$FIRST"' in ci and "git clone" in ci
