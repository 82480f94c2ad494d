"""The command line as a user meets it: stdout holds only text, errors are one
stderr line with a meaningful exit code, checkpoints are never lost."""
from __future__ import annotations

import errno
import io
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from charrnn.store import checkpoint as ckpt
from charrnn.errors import CharRNNError, CheckpointError, DataError

from conftest import TINY_TRAIN_ARGS
from helpers import charrnn_command, ROOT
from helpers import invoke, assert_ok, assert_one_line_error  # noqa: F401


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.fixture
def run_copy(trained, tmp_path) -> Path:
    """A private copy of the session's trained checkpoint folder."""
    dst = tmp_path / "run"
    shutil.copytree(trained.dir, dst)
    return dst


# ================================================================== train
def test_train_writes_latest_and_best_and_nothing_on_stdout(runner, corpus_file, tmp_path):
    ckdir = tmp_path / "ck"
    # Not --quiet: the progress bar and summary must still stay off stdout.
    args = [a for a in TINY_TRAIN_ARGS if a != "--quiet"]
    result = invoke(runner, "train", corpus_file, "--checkpoint-dir", ckdir,
                    "--sample-every", "0", *args)
    assert_ok(result)
    assert result.stdout == ""
    assert "saved" in result.stderr and "latest.npz" in result.stderr
    assert sorted(os.listdir(ckdir)) == ["best.npz", "latest.npz"]
    latest = ckpt.load(str(ckdir / "latest.npz"))
    best = ckpt.load(str(ckdir / "best.npz"))
    assert latest.state["iteration"] == 30
    assert list(latest.history["iter"]) == [10, 20, 30]
    assert best.state["best_val"] == min(latest.history["val_loss"])
    assert latest.vocab == "".join(sorted(set(corpus_file.read_text(encoding="utf-8"))))


def test_train_quiet_is_quiet(runner, corpus_file, tmp_path):
    result = invoke(runner, "train", corpus_file, "--checkpoint-dir", tmp_path / "ck",
                    *TINY_TRAIN_ARGS)
    assert_ok(result)
    assert result.stdout == "" and result.stderr == ""


def test_train_sample_every_prints_samples_to_stdout(runner, corpus_file, tmp_path):
    result = invoke(runner, "train", corpus_file, "--checkpoint-dir", tmp_path / "ck",
                    "--sample-every", "10", *TINY_TRAIN_ARGS)
    assert_ok(result)
    heads = re.findall(r"^--- sample at iteration (\d+) ---$", result.stdout, re.M)
    assert heads == ["10", "20", "30"]
    vocab = set(corpus_file.read_text(encoding="utf-8"))
    body = re.sub(r"^--- sample at iteration \d+ ---$", "", result.stdout, flags=re.M)
    assert len(body) > 3 * 200 and set(body) <= vocab | {"\n"}


@pytest.mark.parametrize("present", [("latest.npz", "best.npz"), ("latest.npz",), ("best.npz",)])
def test_train_refuses_to_replace_an_earlier_run(runner, corpus_file, run_copy, present):
    for name in {"latest.npz", "best.npz"} - set(present):
        (run_copy / name).unlink()
    before = snapshot(run_copy)
    result = invoke(runner, "train", corpus_file, "--checkpoint-dir", run_copy,
                    *TINY_TRAIN_ARGS)
    line = assert_one_line_error(result, 1)
    assert "--overwrite" in line and present[0] in line
    assert snapshot(run_copy) == before          # byte for byte, and nothing added


def test_train_overwrite_replaces_the_earlier_run(runner, corpus_file, run_copy):
    before = snapshot(run_copy)
    result = invoke(runner, "train", corpus_file, "--checkpoint-dir", run_copy,
                    "--overwrite", "--seed", "7", *TINY_TRAIN_ARGS)
    assert_ok(result)
    after = snapshot(run_copy)
    assert sorted(after) == ["best.npz", "latest.npz"]
    for name in after:
        assert after[name] != before[name]
        assert ckpt.load(str(run_copy / name)).config["train"]["seed"] == 7


def test_overwrite_leaves_no_stale_best_from_the_earlier_run(runner, corpus_file, run_copy):
    """A new run without validation writes no best.npz; the old run's best.npz
    must not survive it, or `sample` would quietly use the old model."""
    result = invoke(runner, "train", corpus_file, "--checkpoint-dir", run_copy, "--overwrite",
                    "--seed", "7", "--val-frac", "0", *TINY_TRAIN_ARGS)
    assert_ok(result)
    for p in run_copy.glob("*.npz"):
        assert ckpt.load(str(p)).config["train"]["seed"] == 7, p.name
    from charrnn.api.verbs import find_checkpoint
    chosen = find_checkpoint(None, str(run_copy))          # what `sample` would use
    assert ckpt.load(chosen).config["train"]["seed"] == 7


def test_train_overwrite_with_bad_input_keeps_the_earlier_run(runner, tmp_path, run_copy):
    before = snapshot(run_copy)
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    result = invoke(runner, "train", empty, "--checkpoint-dir", run_copy, "--overwrite",
                    *TINY_TRAIN_ARGS)
    assert_one_line_error(result, 1)
    assert snapshot(run_copy) == before


@pytest.mark.parametrize("args", [
    ["--hidden-size", "0"], ["--lr", "-1"], ["--lr", "0"], ["--max-time", "abc"],
    ["--max-time", "-5m"], ["--batch-size", "two"], ["--seq-len", "-3"], ["--val-frac", "1"],
    ["--eval-every", "0"], ["--max-iters", "1.5"], ["--dtype", "float16"], ["--clip", "-1"],
    ["--no-such-flag"],
])
def test_train_bad_numbers_are_usage_errors(runner, corpus_file, tmp_path, args):
    ckdir = tmp_path / "ck"
    result = invoke(runner, "train", corpus_file, "--checkpoint-dir", ckdir, *args)
    line = assert_one_line_error(result, 2)
    assert args[0] in line
    assert not ckdir.exists()


def test_train_without_files_is_a_usage_error(runner, tmp_path):
    assert_one_line_error(invoke(runner, "train", "--checkpoint-dir", tmp_path / "ck"), 2)


def _bad_inputs(tmp_path):
    missing = tmp_path / "missing.txt"
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("plain text then caf\u00e9".encode("latin-1"))
    short = tmp_path / "short.txt"
    short.write_text("a few words\n" * 3)     # 36 chars: 32 after the val split, 33 needed
    return {"missing": (missing, "no such file"), "empty": (empty, "empty"),
            "latin1": (latin1, "byte 19"), "short": (short, "too short")}


@pytest.mark.parametrize("case", ["missing", "empty", "latin1", "short"])
def test_train_unusable_text_is_one_line_exit_1(runner, tmp_path, case):
    path, words = _bad_inputs(tmp_path)[case]
    ckdir = tmp_path / "ck"
    result = invoke(runner, "train", path, "--checkpoint-dir", ckdir, *TINY_TRAIN_ARGS)
    line = assert_one_line_error(result, 1)
    assert words in line
    if case != "short":
        assert path.name in line
    assert not ckdir.exists() or not list(ckdir.glob("*.npz"))


def test_train_on_a_folder_is_refused(runner, tmp_path):
    result = invoke(runner, "train", tmp_path, "--checkpoint-dir", tmp_path / "ck")
    assert result.exit_code in (1, 2)
    assert_one_line_error(result, result.exit_code)


@pytest.mark.parametrize("case", ["latin1", "short"])
def test_error_advice_only_names_flags_that_exist(runner, tmp_path, case):
    path, _ = _bad_inputs(tmp_path)[case]
    line = assert_one_line_error(invoke(runner, "train", path, "--checkpoint-dir",
                                        tmp_path / "ck", *TINY_TRAIN_ARGS), 1)
    help_text = invoke(runner, "train", "--help").stdout
    for flag in re.findall(r"--[a-z][a-z-]*", line):
        assert re.search(rf"{flag}\b", help_text), f"{line!r} suggests {flag}, which does not exist"


# ================================================================= sample
@pytest.mark.parametrize("n", [0, 1, 57, 400])
def test_sample_writes_exactly_n_vocabulary_characters(runner, trained, n):
    result = invoke(runner, "sample", "--len", n, "--seed", 3, "--checkpoint", trained.latest)
    assert_ok(result)
    assert result.stderr == ""
    out = result.stdout
    assert len(out) == n + 1 and out.endswith("\n")
    assert set(out[:-1]) <= set(trained.vocab)


def test_sample_uses_the_whole_vocabulary_range(runner, trained):
    """A barely trained model spreads probability widely: a long sample reaches
    beyond ASCII, proving non-ASCII characters come out intact."""
    out = invoke(runner, "sample", "--len", 3000, "--seed", 0, "--checkpoint", trained.best).stdout
    assert set(out[:-1]) <= set(trained.vocab)
    assert any(ord(c) > 127 for c in out)


def test_sample_same_seed_same_text_other_seed_other_text(runner, trained):
    a = invoke(runner, "sample", "--len", 200, "--seed", 42, "--checkpoint-dir", trained.dir)
    b = invoke(runner, "sample", "--len", 200, "--seed", 42, "--checkpoint-dir", trained.dir)
    c = invoke(runner, "sample", "--len", 200, "--seed", 43, "--checkpoint-dir", trained.dir)
    for r in (a, b, c):
        assert_ok(r)
    assert a.stdout == b.stdout
    assert a.stdout != c.stdout


def test_sample_defaults_to_best_then_latest(runner, run_copy):
    best = invoke(runner, "sample", "--len", 100, "--seed", 5, "--checkpoint",
                  run_copy / "best.npz").stdout
    latest = invoke(runner, "sample", "--len", 100, "--seed", 5, "--checkpoint",
                    run_copy / "latest.npz").stdout
    default = invoke(runner, "sample", "--len", 100, "--seed", 5, "--checkpoint-dir", run_copy)
    assert_ok(default)
    assert default.stdout == best
    (run_copy / "best.npz").unlink()
    fallback = invoke(runner, "sample", "--len", 100, "--seed", 5, "--checkpoint-dir", run_copy)
    assert fallback.stdout == latest


@pytest.mark.parametrize("prime", ["The ", "caf\u00e9 ", "\n", "😀"])
def test_prime_is_echoed_and_not_counted(runner, trained, prime):
    assert set(prime) <= set(trained.vocab)
    n = 40
    result = invoke(runner, "sample", "--len", n, "--seed", 9, "--prime", prime,
                    "--checkpoint", trained.latest)
    assert_ok(result)
    out = result.stdout
    assert out.startswith(prime)
    assert len(out) == len(prime) + n + 1 and out.endswith("\n")
    assert set(out[len(prime):-1]) <= set(trained.vocab)
    again = invoke(runner, "sample", "--len", n, "--seed", 9, "--prime", prime,
                   "--checkpoint", trained.latest)
    assert again.stdout == out


@pytest.mark.parametrize("prime", ["Zebra#", "\u00ff", "\x00"])
def test_prime_outside_the_vocabulary_is_one_line_exit_1(runner, trained, prime):
    assert not set(prime) <= set(trained.vocab)
    result = invoke(runner, "sample", "--prime", prime, "--checkpoint", trained.latest)
    line = assert_one_line_error(result, 1)
    assert "vocabulary" in line


@pytest.mark.parametrize("args", [["--temperature", "0"], ["--temperature", "-1"],
                                  ["--temperature", "hot"], ["--len", "-1"], ["--seed", "-2"],
                                  ["--len"]])
def test_sample_bad_options_are_usage_errors(runner, trained, args):
    result = invoke(runner, "sample", "--checkpoint", trained.latest, *args)
    line = assert_one_line_error(result, 2)
    assert args[0] in line


def test_low_temperature_is_accepted_and_more_repetitive(runner, trained):
    cold = invoke(runner, "sample", "--len", 300, "--seed", 1, "--temperature", "0.05",
                  "--checkpoint", trained.best)
    hot = invoke(runner, "sample", "--len", 300, "--seed", 1, "--temperature", "2",
                 "--checkpoint", trained.best)
    assert_ok(cold)
    assert_ok(hot)
    assert len(set(cold.stdout)) < len(set(hot.stdout))


@pytest.mark.parametrize("verb", ["sample", "inspect"])
def test_missing_checkpoint_is_one_line_exit_1(runner, tmp_path, verb):
    for args in (["--checkpoint-dir", tmp_path / "nowhere"],
                 ["--checkpoint" if verb == "sample" else "", tmp_path / "missing.npz"]):
        result = invoke(runner, verb, *[a for a in args if a != ""])
        line = assert_one_line_error(result, 1)
        assert "charrnn train" in line or "no such" in line


@pytest.mark.parametrize("verb", ["sample", "inspect"])
def test_damaged_checkpoint_is_one_line_exit_1(runner, tmp_path, run_copy, verb):
    p = run_copy / "latest.npz"
    p.write_bytes(p.read_bytes()[:1000])
    args = ["--checkpoint", p] if verb == "sample" else [p]
    line = assert_one_line_error(invoke(runner, verb, *args), 1)
    assert str(p) in line


# ================================================================ inspect
def _best_val_line(text):
    lines = [l for l in text.splitlines() if l.startswith("best val")]
    assert len(lines) == 1, text
    return lines[0]


def test_inspect_best_val_matches_json(runner, trained):
    text = invoke(runner, "inspect", "--checkpoint-dir", trained.dir)
    js = invoke(runner, "inspect", "--checkpoint-dir", trained.dir, "--json")
    assert_ok(text)
    assert_ok(js)
    assert text.stderr == "" and js.stderr == ""
    s = json.loads(js.stdout)
    line = _best_val_line(text.stdout)
    m = re.match(r"best val\s+(\d+\.\d+) nats/char \((\d+\.\d+) bits/char\) at iteration (\d+)",
                 line)
    assert m, line
    best = s["best_val"]
    assert float(m.group(1)) == pytest.approx(best["nats_per_char"], abs=5e-5)
    assert float(m.group(2)) == pytest.approx(best["bits_per_char"], abs=5e-5)
    assert int(m.group(3)) == best["iteration"]
    # ... and the number is the training history's real minimum.
    ck = ckpt.load(str(trained.latest))
    assert best["nats_per_char"] == pytest.approx(float(min(ck.history["val_loss"])))


def test_inspect_numbers_are_in_json(runner, trained):
    text = invoke(runner, "inspect", trained.best).stdout
    s = json.loads(invoke(runner, "inspect", trained.best, "--json").stdout)
    assert s["checkpoint"] == str(trained.best)
    assert f"parameters   {s['model']['parameters']:,}" in text
    assert f"vocabulary   {s['vocab']['size']} characters" in text
    assert s["vocab"]["chars"] == trained.vocab                     # non-ASCII survives JSON
    assert f"{s['progress']['iterations']:,} iterations" in text
    assert s["model"]["hidden_size"] == 16 and s["train"]["seq_len"] == 8


def test_inspect_defaults_to_latest(runner, run_copy):
    s = json.loads(invoke(runner, "inspect", "--checkpoint-dir", run_copy, "--json").stdout)
    assert s["checkpoint"].endswith("latest.npz")
    (run_copy / "latest.npz").unlink()
    s = json.loads(invoke(runner, "inspect", "--checkpoint-dir", run_copy, "--json").stdout)
    assert s["checkpoint"].endswith("best.npz")


# ================================================================== debug
def test_debug_lets_the_exception_propagate(runner, tmp_path):
    args = ["sample", "--checkpoint", tmp_path / "missing.npz"]
    plain = invoke(runner, *args)
    assert_one_line_error(plain, 1)
    debug = invoke(runner, "--debug", *args)
    assert isinstance(debug.exception, CheckpointError)
    assert debug.exit_code != 0
    via_env = invoke(runner, *args, env={"CHARRNN_DEBUG": "1"})
    assert isinstance(via_env.exception, CheckpointError)


def test_debug_propagates_data_errors_too(runner, tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    result = invoke(runner, "--debug", "train", empty, "--checkpoint-dir", tmp_path / "ck")
    assert isinstance(result.exception, DataError)
    assert isinstance(result.exception, CharRNNError)


def test_version_and_help(runner):
    v = invoke(runner, "--version")
    assert_ok(v)
    assert "charrnn" in v.stdout and v.stderr == ""
    for verb in ("train", "sample", "inspect"):
        h = invoke(runner, verb, "--help")
        assert_ok(h)
        assert "Usage" in h.stdout


# ========================================== the installed console script
def _command() -> list[str]:
    return charrnn_command()


def _env():
    return {k: v for k, v in os.environ.items()
            if k not in ("CHARRNN_DEBUG", "CHARRNN_CHECKPOINT_DIR")}


def _bash(pipeline: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", "set -o pipefail; " + pipeline], capture_output=True,
                          cwd=cwd, env=_env(), timeout=60)


def test_console_script_len_counts_characters(trained_ascii, tmp_path):
    cmd = shlex.join(_command() + ["sample", "--len", "50", "--seed", "1",
                                   "--checkpoint", str(trained_ascii.latest)])
    r = _bash(f"{cmd} | wc -c", tmp_path)
    assert r.returncode == 0, r.stderr
    assert int(r.stdout.strip()) == 51
    assert r.stderr == b""


def test_console_script_stops_quietly_when_the_reader_goes_away(trained_ascii, tmp_path):
    """`charrnn sample | head -c 10`: no traceback, no 'Broken pipe', exit 0."""
    p1 = subprocess.Popen(_command() + ["sample", "--len", "100000", "--seed", "1",
                                        "--checkpoint", str(trained_ascii.latest)],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path,
                          env=_env())
    p2 = subprocess.Popen(["head", "-c", "10"], stdin=p1.stdout, stdout=subprocess.PIPE)
    p1.stdout.close()                       # only head holds the read end now
    head_out, _ = p2.communicate(timeout=60)
    err = p1.stderr.read().decode("utf-8", "replace")
    p1.stderr.close()
    code = p1.wait(timeout=60)
    assert len(head_out) == 10
    assert "Traceback" not in err and "Broken pipe" not in err and "BrokenPipe" not in err, err
    assert err == ""
    assert code == 0


def test_console_script_errors_and_debug_tracebacks(tmp_path):
    missing = str(tmp_path / "missing.npz")
    plain = subprocess.run(_command() + ["inspect", missing], capture_output=True, text=True,
                           cwd=tmp_path, env=_env(), timeout=60)
    assert plain.returncode == 1 and plain.stdout == ""
    assert len(plain.stderr.splitlines()) == 1 and "Traceback" not in plain.stderr
    debug = subprocess.run(_command() + ["--debug", "inspect", missing], capture_output=True,
                           text=True, cwd=tmp_path, env=_env(), timeout=60)
    assert debug.returncode != 0 and debug.stdout == ""
    assert "Traceback" in debug.stderr and "CheckpointError" in debug.stderr


# ------------------------------------------------- no arguments at all
def test_a_bare_charrnn_prints_the_help_and_exits_0(runner):
    r = invoke(runner, prog_name="charrnn")
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith("Usage: charrnn [OPTIONS] COMMAND")
    assert "train" in r.stdout and "sample" in r.stdout and r.stderr == ""
    assert "error" not in r.output.lower()


@pytest.mark.parametrize("verb, usage", [("train", "FILES..."), ("eval", "FILE")])
def test_a_verb_without_its_file_gives_a_one_line_hint_exit_2(runner, verb, usage):
    r = invoke(runner, verb, prog_name="charrnn")
    assert r.exit_code == 2 and r.stdout == ""
    assert r.stderr == (f"usage: charrnn {verb} [OPTIONS] {usage} "
                        f"(see 'charrnn {verb} --help')\n")


def _click_817(tmp_path_factory):
    """A folder holding click 8.1.7 (the oldest the range click>=8.1 allows
    that is still published), or None when pip cannot get it."""
    target = tmp_path_factory.mktemp("click817")
    try:
        r = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                            "--disable-pip-version-check", "--target", str(target),
                            "click==8.1.7"], capture_output=True, text=True, timeout=180)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return target if r.returncode == 0 and (target / "click").is_dir() else None


@pytest.fixture(scope="module")
def click_versions(tmp_path_factory):
    """{label: PYTHONPATH prefix} for the installed click and click 8.1.7."""
    old = _click_817(tmp_path_factory)
    return {"installed": "", "8.1.7": str(old) if old else None}


@pytest.mark.parametrize("which", ["installed", "8.1.7"])
def test_no_arguments_behave_the_same_with_the_newest_and_oldest_click(click_versions, which):
    prefix = click_versions[which]
    if prefix is None:
        pytest.skip("pip could not install click==8.1.7 (no index reachable?)")
    root = str(ROOT)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHARRNN_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (prefix, root) if p)
    code = ("import sys, click, importlib.metadata as m; "
            "sys.stderr.write('click ' + m.version('click') + ' ' + click.__file__ + '\\n'); "
            "from charrnn.cli.commands import main; main()")

    def run(*args):
        return subprocess.run([sys.executable, "-c", code, *args], capture_output=True,
                              text=True, env=env, timeout=60)
    bare = run()
    version_line, *rest = bare.stderr.splitlines()
    if which == "8.1.7":
        assert version_line.startswith("click 8.1.7 ") and prefix in version_line
    assert bare.returncode == 0 and rest == []
    assert bare.stdout.startswith("Usage: charrnn [OPTIONS] COMMAND")
    assert "error" not in bare.stdout.lower()
    train = run("train")
    assert train.returncode == 2 and train.stdout == ""
    assert train.stderr.splitlines()[1:] == [
        "usage: charrnn train [OPTIONS] FILES... (see 'charrnn train --help')"]
    unknown = run("--no-such-flag")
    assert unknown.returncode == 2 and "no such option" in unknown.stderr.lower()


# ------------------------------------------------- OS errors that no verb put into words
@pytest.mark.parametrize("error, line", [
    (OSError(errno.EIO, "Input/output error", "out.html"),
     "charrnn: error: out.html: Input/output error"),
    (OSError(errno.ENOSPC, "No space left on device"),
     "charrnn: error: cannot write output: No space left on device"),
    (OSError("the disk said no"), "charrnn: error: cannot write output: the disk said no"),
])
def test_an_os_error_a_verb_let_through_is_one_line_exit_1(runner, monkeypatch, tmp_path,
                                                            error, line):
    from charrnn.api import verbs

    def fail(*args, **kw):
        raise error
    monkeypatch.setattr(verbs, "export", fail)
    assert assert_one_line_error(invoke(runner, "export", tmp_path / "out.html"), 1) == line
    assert invoke(runner, "--debug", "export", tmp_path / "out.html").exception is error


class _Stdout:
    """A stdout whose flush fails with ``error`` (and that has no file descriptor)."""

    def __init__(self, error=None):
        self.error, self.flushes = error, 0

    def flush(self):
        self.flushes += 1
        if self.error is not None:
            raise self.error

    def fileno(self):
        raise io.UnsupportedOperation("no file descriptor")


def test_the_last_flush_turns_a_full_disk_into_exit_1_and_one_line(monkeypatch, capsys):
    """The flush before exit (so the interpreter's own never fails): a full
    disk makes a success exit 1 and keeps a failure's code; a reader that went
    away changes nothing; no stdout, nothing to flush."""
    from charrnn.cli.commands import _flush_stdout
    fine = _Stdout()
    monkeypatch.setattr(sys, "stdout", fine)
    assert (_flush_stdout(0), _flush_stdout(2), fine.flushes) == (0, 2, 2)
    monkeypatch.setattr(sys, "stdout", _Stdout(BrokenPipeError(errno.EPIPE, "Broken pipe")))
    assert (_flush_stdout(0), _flush_stdout(130)) == (0, 130)
    monkeypatch.setattr(sys, "stdout", None)
    assert _flush_stdout(0) == 0
    assert capsys.readouterr().err == ""
    full = _Stdout(OSError(errno.ENOSPC, "No space left on device"))
    monkeypatch.setattr(sys, "stdout", full)
    assert (_flush_stdout(0), _flush_stdout(130), full.flushes) == (1, 130, 2)
    assert capsys.readouterr().err == \
        "charrnn: error: cannot write to stdout (No space left on device)\n" * 2


@pytest.mark.parametrize("args, flag, value", [("train corpus.txt --lr nan", "--lr", "nan"),
                                               ("sample --temperature inf", "--temperature",
                                                "inf")])
def test_a_float_that_is_not_finite_is_refused_by_name(runner, args, flag, value):
    verb = args.split()[0]
    r = invoke(runner, *args.split(), prog_name="charrnn")
    assert assert_one_line_error(r, 2) == (
        f"charrnn {verb}: error: Invalid value for '{flag}': {value} is not a finite number "
        f"(see 'charrnn {verb} --help')")


def test_the_program_is_called_charrnn_unless_named(capsys):
    """Whatever started the process (here pytest), messages say 'charrnn'."""
    from charrnn.cli.commands import cli
    assert cli.main(["sample", "--temperature", "nan"], standalone_mode=False) == 2
    assert capsys.readouterr().err.startswith("charrnn sample: error: Invalid value for ")
    assert cli.main(["sample", "--top-k", "0"], prog_name="demo", standalone_mode=False) == 2
    assert capsys.readouterr().err.startswith("demo sample: error: Invalid value for ")


def test_a_command_that_returns_nothing_exits_0(trained, capsys):
    from charrnn.cli.commands import cli
    assert cli.main(["inspect", str(trained.latest)], standalone_mode=False) == 0
    assert "iteration" in capsys.readouterr().out


def test_ctrl_c_in_a_verb_is_one_line_exit_130(runner, monkeypatch, tmp_path):
    from charrnn.api import verbs

    def interrupted(*args, **kw):
        raise KeyboardInterrupt
    monkeypatch.setattr(verbs, "export", interrupted)
    r = invoke(runner, "export", tmp_path / "out.html")
    assert (r.exit_code, r.stdout, r.stderr) == (130, "", "charrnn: interrupted\n")


def test_binary_stdout_is_the_byte_stream_under_stdout(monkeypatch):
    from charrnn.cli.output import binary_stdout
    text = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    text.write("ab")
    monkeypatch.setattr(sys, "stdout", text)
    assert binary_stdout() is text.buffer
    assert text.buffer.getvalue() == b"ab"             # what was written as text comes first
    raw = io.BytesIO()
    monkeypatch.setattr(sys, "stdout", raw)             # no .buffer: the stream itself
    assert binary_stdout() is raw
    monkeypatch.setattr(sys, "stdout", None)            # started with fd 1 closed
    with pytest.raises(CharRNNError) as e:
        binary_stdout()
    assert str(e.value) == "standard output is closed; redirect it to a file or a pipe"
