"""Non-ASCII text on the command line under a C/POSIX locale (LC_ALL=C,
PYTHONUTF8=0, no PYTHONIOENCODING): Python decodes argv as ASCII with
surrogateescape; charrnn recovers the UTF-8 the terminal sent, and refuses
bytes that are not UTF-8 with one line pointing to the --*-file option.
Real subprocesses, argv passed as raw bytes."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from charrnn.cli.commands import argv_text


def _command() -> list[bytes]:
    exe = shutil.which("charrnn", path=os.path.dirname(sys.executable))
    return [os.fsencode(exe)] if exe else [os.fsencode(sys.executable), b"-m", b"charrnn"]


def c_locale() -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONIOENCODING", "PYTHONUTF8", "CHARRNN_DEBUG",
                        "CHARRNN_CHECKPOINT_DIR") and not k.startswith("LC_")}
    env.update(LC_ALL="C", LANG="C", PYTHONUTF8="0")
    return env


def utf8_locale() -> dict:
    env = c_locale()
    env.update(LC_ALL="C.UTF-8", LANG="C.UTF-8")
    return env


def run(env, *args) -> subprocess.CompletedProcess:
    argv = [a if isinstance(a, bytes) else str(a).encode("utf-8") for a in args]
    return subprocess.run(_command() + argv, capture_output=True, env=env, timeout=120)


def test_the_c_locale_really_mangles_argv():
    """The premise: without the fix, 'café' reaches Python as surrogates."""
    r = subprocess.run([sys.executable, "-c", "import sys; print(ascii(sys.argv[1]), "
                        "sys.getfilesystemencoding())", "café".encode("utf-8")],
                       capture_output=True, env=c_locale())
    got, encoding = r.stdout.decode().split()
    if encoding != "ascii":                          # e.g. musl, whose C locale is UTF-8
        assert got == ascii("café")
        pytest.skip(f"the C locale here decodes as {encoding}: argv arrives intact")
    assert got == ascii("caf\udcc3\udca9")


def test_argv_text_recovers_utf8_and_refuses_other_bytes():
    assert argv_text("plain") == "plain"
    assert argv_text("caf\udcc3\udca9") == "café"
    assert argv_text("\udce6\udc97\udca5") == "日"
    with pytest.raises(UnicodeError):
        argv_text("caf\udce9")                        # latin-1 é: not UTF-8
    for lone in ("\udc80", "\udcff"):                  # the first and last escaped byte
        with pytest.raises(UnicodeError):
            argv_text("x" + lone)


@pytest.mark.parametrize("prime", ["café", "日本語 ", "Ωmega"])
def test_non_ascii_prime_works_under_the_c_locale(trained, prime):
    args = ["sample", "--checkpoint", trained.latest, "--prime", prime, "--len", 30,
            "--seed", 3]
    c, u = run(c_locale(), *args), run(utf8_locale(), *args)
    assert c.returncode == 0, c.stderr.decode()
    assert c.stderr == b""
    assert c.stdout.startswith(prime.encode("utf-8"))
    assert c.stdout == u.stdout                      # the same text as under a UTF-8 locale


def test_non_ascii_until_and_cells_work_under_the_c_locale(trained):
    args = ["sample", "--checkpoint", trained.latest, "--len", 400, "--seed", 2,
            "--until", "é", "--prime", "x"]
    c, u = run(c_locale(), *args), run(utf8_locale(), *args)
    assert c.returncode == 0 and c.stdout == u.stdout, c.stderr.decode()
    args = ["inspect", trained.latest, "--cells", "naïve café", "--json", "--top", "1"]
    c, u = run(c_locale(), *args), run(utf8_locale(), *args)
    assert c.returncode == 0, c.stderr.decode()
    assert json.loads(c.stdout)["text"] == "naïve café" == json.loads(u.stdout)["text"]


def test_text_written_to_stdout_is_utf8_under_the_c_locale(trained):
    """Python would write stdout as ASCII there; the text views (block
    characters, the cells' text) come out as UTF-8 all the same."""
    args = ["inspect", trained.latest, "--cells", "naïve café", "--top", "1"]
    c, u = run(c_locale(), *args), run(utf8_locale(), *args)
    assert c.returncode == 0 and c.stderr == b"", c.stderr.decode("utf-8", "replace")
    assert "naïve café".encode("utf-8") in c.stdout
    assert c.stdout == u.stdout


@pytest.mark.parametrize("option, where, extra", [
    ("--prime", "; put the text in a UTF-8 file and pass --prime-file FILE",
     ["sample", "--len", "5"]),
    ("--cells", "; put the text in a UTF-8 file and pass --cells-file FILE", ["inspect"]),
    ("--until", "; use UTF-8 text", ["sample", "--len", "5"]),        # no file option
])
def test_bytes_that_are_not_utf8_get_one_line_pointing_to_the_file_option(
        trained, option, where, extra):
    r = run(c_locale(), *extra, "--checkpoint-dir", trained.dir, option, b"caf\xe9")
    enc = subprocess.run([sys.executable, "-c", "import sys; print(sys.getfilesystemencoding())"],
                         capture_output=True, text=True, env=c_locale()).stdout.strip()
    verb = extra[0]
    assert r.returncode == 2
    assert r.stdout == b""
    assert r.stderr.decode("utf-8", "replace") == (
        f"charrnn {verb}: error: Invalid value for '{option}': the command line's bytes are "
        f"not UTF-8 (locale encoding {enc}){where} (see 'charrnn {verb} --help')\n")
