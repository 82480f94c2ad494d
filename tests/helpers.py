"""Helpers several test modules share: how to run the installed charrnn
command, and an environment free of the developer's charrnn settings."""
from __future__ import annotations

import os
import shutil
from importlib import metadata

import pytest

NOT_INSTALLED = ("charrnn is not installed (pip install -e .): the tests that run the "
                 "charrnn command need its console script")


def charrnn_command() -> list[str]:
    """[path of the charrnn console script].  When the package is installed
    but the script is not on PATH, that is a broken install: fail, never fall
    back to `python -m charrnn` (which would leave the entry point untested).
    When the package is not installed at all, skip, saying so."""
    exe = shutil.which("charrnn")
    if exe:
        return [exe]
    try:
        metadata.distribution("charrnn")
    except metadata.PackageNotFoundError:
        pytest.skip(NOT_INSTALLED, allow_module_level=True)
    pytest.fail("charrnn is installed but its console script 'charrnn' is not on PATH "
                "(activate the virtual environment it was installed into)", pytrace=False)


def clean_env(**extra) -> dict:
    """os.environ without CHARRNN_DEBUG and CHARRNN_CHECKPOINT_DIR, plus extra."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("CHARRNN_DEBUG", "CHARRNN_CHECKPOINT_DIR")}
    env.update(extra)
    return env


CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable",
                  "chrome", "headless_shell")


def find_chromium() -> str | None:
    """A Chromium or Chrome executable: $CHROMIUM if set, else the first of its
    usual names on PATH, else Debian's /usr/bin/chromium."""
    env = os.environ.get("CHROMIUM")
    if env and shutil.which(env):
        return shutil.which(env)
    for name in CHROMIUM_NAMES:
        exe = shutil.which(name)
        if exe:
            return exe
    return "/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None
