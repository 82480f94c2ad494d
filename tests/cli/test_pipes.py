"""charrnn as a Unix filter: real pipelines in a subprocess (bytes, exit codes,
stderr), sampling and decoding flags, training text from stdin, encodings,
and the conventions (env var, exit codes, completion, --version)."""
from __future__ import annotations

import io
import os
import re
import shlex
import signal
import subprocess
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest

import charrnn
from charrnn.store import checkpoint as ckpt
from charrnn.cli.commands import EscapedText, cli, unescape
from charrnn.api.verbs import load_model
from charrnn.cli.output import write_text
from charrnn.generate.sample import beam_search

from conftest import TINY_TRAIN_ARGS, make_corpus
from helpers import charrnn_command, ROOT
from helpers import assert_ok, assert_one_line_error, invoke

BIG = str(10 ** 9)          # a length that would take hours if it were not cut short


def _command() -> list[str]:
    return charrnn_command()


CHARRNN = shlex.join(_command())


def _env(**extra):
    env = {k: v for k, v in os.environ.items()
           if k not in ("CHARRNN_DEBUG", "CHARRNN_CHECKPOINT_DIR")}
    env.update(extra)
    return env


def sh(pipeline: str, cwd, env=None, input=None) -> subprocess.CompletedProcess:
    """Run a bash pipeline.  Callers that need every stage's exit code append
    `; echo "rc=${PIPESTATUS[*]}" >&2` and read it back with pipestatus()."""
    return subprocess.run(["bash", "-c", pipeline], capture_output=True, cwd=cwd,
                          env=env or _env(), timeout=120, input=input)


def pipestatus(r) -> list[int]:
    m = re.search(rb"rc=([\d ]+)\n?$", r.stderr)
    assert m, r.stderr
    return [int(x) for x in m.group(1).split()]


def stderr_without_rc(r) -> bytes:
    return re.sub(rb"rc=[\d ]+\n?$", b"", r.stderr)


def sample_bytes(runner, *args) -> bytes:
    r = invoke(runner, "sample", *args)
    assert_ok(r)
    return r.stdout_bytes


# ====================================================== pipelines (subprocess)
@pytest.mark.parametrize("extra", [[], ["--stream"]])
def test_sample_into_head_ends_quietly_with_exit_0(trained_ascii, tmp_path, extra):
    """`charrnn sample --len 1000000 | head -c 10`: no traceback, no 'Broken
    pipe', exit 0 (the documented code for a reader that went away), and it
    stops early instead of generating everything."""
    cmd = f"{CHARRNN} sample --len {BIG} --seed 1 --checkpoint {trained_ascii.latest} " \
          f"{' '.join(extra)}"
    r = sh(f'{cmd} | head -c 10; echo "rc=${{PIPESTATUS[*]}}" >&2', tmp_path)
    assert len(r.stdout) == 10
    assert pipestatus(r) == [0, 0]
    assert stderr_without_rc(r) == b""


def test_stream_into_head_returns_the_same_text_as_a_normal_run(runner, trained_ascii,
                                                                  tmp_path):
    r = sh(f'{CHARRNN} sample --len {BIG} --stream --seed 7 --checkpoint '
           f'{trained_ascii.latest} | head -c 100; echo "rc=${{PIPESTATUS[*]}}" >&2', tmp_path)
    assert pipestatus(r) == [0, 0] and stderr_without_rc(r) == b""
    whole = sample_bytes(runner, "--len", 300, "--seed", 7, "--checkpoint", trained_ascii.latest)
    assert r.stdout == whole[:100]


@pytest.mark.parametrize("args", [
    ["sample", "--len", "20"],                 # everything waits for the flush at exit
    ["sample", "--len", "20", "--stream"],
    ["sample", "--len", "50000"],
    ["--version"],
    ["sample", "--help"],
    ["--help"],
])
def test_reader_gone_before_the_first_write_is_quiet(trained_ascii, tmp_path, args):
    """The read end is closed before charrnn even starts, so the very first
    write or the final flush meets EPIPE: still no message and exit 0."""
    ck = ["--checkpoint", str(trained_ascii.latest), "--seed", "1"] if args[0] == "sample" \
        and "--help" not in args else []
    p = subprocess.Popen(_command() + args + ck, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, cwd=tmp_path, env=_env())
    p.stdout.close()
    err = p.stderr.read()
    p.stderr.close()
    assert p.wait(timeout=60) == 0
    assert err == b"", err


def test_train_keeps_training_when_the_reader_of_its_samples_goes_away(corpus_file, tmp_path):
    p = subprocess.Popen(_command() + ["train", str(corpus_file), "--checkpoint-dir", "ck",
                                       "--sample-every", "5", *TINY_TRAIN_ARGS],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path,
                         env=_env())
    p.stdout.close()
    err = p.stderr.read().decode()
    p.stderr.close()
    assert p.wait(timeout=60) == 0
    assert err == "charrnn: stdout was closed; training goes on without samples\n"
    assert ckpt.load(str(tmp_path / "ck" / "latest.npz")).state["iteration"] == 30


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
@pytest.mark.parametrize("buffered", [True, False], ids=["buffered", "unbuffered"])
@pytest.mark.parametrize("args", [["sample", "--len", "10"], ["sample", "--len", "50000"],
                                  ["sample", "--len", "10", "--stream"], ["--version"],
                                  ["inspect"]])
def test_a_full_disk_on_stdout_is_one_line_exit_1(trained_ascii, tmp_path, args, buffered):
    """Block-buffered stdout (a user's shell) surfaces the error at a later
    flush, possibly the interpreter's own at exit; PYTHONUNBUFFERED at the
    write itself.  Either way: one line, exit 1."""
    env = _env(CHARRNN_CHECKPOINT_DIR=str(trained_ascii.dir))
    env.pop("PYTHONUNBUFFERED", None)
    if not buffered:
        env["PYTHONUNBUFFERED"] = "1"
    with open("/dev/full", "wb") as full:
        r = subprocess.run(_command() + args, stdout=full, stderr=subprocess.PIPE, cwd=tmp_path,
                           env=env, timeout=60)
    assert r.returncode == 1
    lines = r.stderr.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith("charrnn: error:"), r.stderr
    assert "No space left" in lines[0]


def test_prime_from_stdin_in_a_pipeline(runner, trained_ascii, tmp_path):
    ck = f"--checkpoint {trained_ascii.latest}"
    r = sh(f"printf 'The q' | {CHARRNN} sample --prime-file - --len 30 --seed 3 {ck}", tmp_path)
    assert r.returncode == 0 and r.stderr == b""
    assert r.stdout.startswith(b"The q") and len(r.stdout) == 5 + 30 + 1
    assert r.stdout == sample_bytes(runner, "--prime", "The q", "--len", 30, "--seed", 3,
                                    "--checkpoint", trained_ascii.latest)
    quiet = sh(f"printf 'The q' | {CHARRNN} sample --prime-file - --no-echo-prime --len 30 "
               f"--seed 3 {ck}", tmp_path)
    assert quiet.returncode == 0 and quiet.stdout == r.stdout[5:]


def test_prime_file_keeps_its_bytes_verbatim(runner, trained_ascii, tmp_path):
    f = tmp_path / "prime.txt"
    f.write_bytes(b"the quick\n")                 # the trailing newline is part of the prime
    out = sample_bytes(runner, "--prime-file", f, "--len", 12, "--seed", 2,
                       "--checkpoint", trained_ascii.latest)
    assert out == sample_bytes(runner, "--prime", "the quick\n", "--len", 12, "--seed", 2,
                               "--checkpoint", trained_ascii.latest)
    assert out.startswith(b"the quick\n") and len(out) == 10 + 12 + 1


def test_train_from_stdin_equals_train_from_the_file(tmp_path, corpus_file):
    args = shlex.join(TINY_TRAIN_ARGS)
    a = sh(f"cat {corpus_file} | {CHARRNN} train - --checkpoint-dir ck_stdin {args}", tmp_path)
    b = sh(f"{CHARRNN} train {corpus_file} --checkpoint-dir ck_file {args}", tmp_path)
    assert a.returncode == 0 and b.returncode == 0, (a.stderr, b.stderr)
    assert a.stdout == b"" and a.stderr == b""
    sa = ckpt.load(str(tmp_path / "ck_stdin" / "latest.npz"))
    sb = ckpt.load(str(tmp_path / "ck_file" / "latest.npz"))
    assert sa.config["data"]["sources"] == ["<stdin>"]
    assert sb.config["data"]["sources"] == [str(corpus_file.resolve())]
    assert sa.config["data"]["chars"] == len(corpus_file.read_text(encoding="utf-8"))
    assert sa.vocab == sb.vocab
    for name in sb.params:                       # the same text gives the same model
        np.testing.assert_array_equal(sa.params[name], sb.params[name])


def test_bad_bytes_on_stdin_name_the_offset_and_the_remedy(tmp_path):
    r = sh(f"printf 'abc\\377def' | {CHARRNN} train - --checkpoint-dir ck", tmp_path)
    assert r.returncode == 1 and r.stdout == b""
    lines = r.stderr.decode().splitlines()
    assert len(lines) == 1 and "Traceback" not in lines[0]
    assert "<stdin>" in lines[0] and "byte 3" in lines[0] and "--errors replace" in lines[0]
    assert not (tmp_path / "ck").exists() or not list((tmp_path / "ck").glob("*.npz"))


@pytest.mark.parametrize("env", [{"PYTHONIOENCODING": "ascii"},
                                 {"LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0"}])
def test_non_ascii_text_is_utf8_on_stdout_whatever_the_locale(trained, tmp_path, env):
    # (An ASCII prime: under LC_ALL=C without UTF-8 mode Python itself decodes
    # non-ASCII argv as surrogates; a non-ASCII prime can come in by --prime-file.)
    args = ["sample", "--len", "3000", "--seed", "0", "--checkpoint", str(trained.best),
            "--prime", "the "]
    plain = subprocess.run(_command() + args, capture_output=True, cwd=tmp_path,
                           env=_env(PYTHONIOENCODING="utf-8"), timeout=60)
    odd = subprocess.run(_command() + args, capture_output=True, cwd=tmp_path,
                         env=_env(**env), timeout=60)
    assert odd.returncode == 0 and odd.stderr == b"", odd.stderr
    text = odd.stdout.decode("utf-8")                 # strict: must be valid UTF-8
    assert any(ord(c) > 127 for c in text)
    assert odd.stdout == plain.stdout


def test_ctrl_c_while_streaming_exits_130_with_one_line(trained_ascii, tmp_path):
    p = subprocess.Popen(_command() + ["sample", "--len", BIG, "--stream", "--seed", "1",
                                       "--checkpoint", str(trained_ascii.latest)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path,
                         env=_env(),
                         # a background shell may have left SIGINT ignored
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    first = p.stdout.read(20)                     # it is really generating
    p.send_signal(signal.SIGINT)
    p.stdout.close()
    err = p.stderr.read().decode()
    p.stderr.close()
    assert p.wait(timeout=60) == 130
    assert len(first) == 20
    assert err.strip() == "charrnn: interrupted", err


def test_env_var_chooses_the_checkpoint_folder(trained_ascii, tmp_path):
    r = subprocess.run(_command() + ["sample", "--len", "5", "--seed", "1"], capture_output=True,
                       cwd=tmp_path, timeout=60,
                       env=_env(CHARRNN_CHECKPOINT_DIR=str(trained_ascii.dir)))
    assert r.returncode == 0 and len(r.stdout) == 6
    bare = subprocess.run(_command() + ["sample", "--len", "5"], capture_output=True,
                          cwd=tmp_path, timeout=60, env=_env())
    assert bare.returncode == 1 and b"checkpoints/" in bare.stderr


def test_version_is_the_package_version(tmp_path):
    r = subprocess.run(_command() + ["--version"], capture_output=True, text=True, cwd=tmp_path,
                       env=_env(), timeout=60)
    assert r.returncode == 0 and r.stderr == ""
    assert r.stdout == f"charrnn, version {charrnn.__version__}\n"
    assert metadata.version("charrnn") == charrnn.__version__


# =========================================================== shell completion
def _readme() -> str:
    return (ROOT / "README.md").read_text(encoding="utf-8")


def test_readme_explains_completion_for_bash_zsh_and_fish(tmp_path):
    lines = [l for l in _readme().splitlines() if "_CHARRNN_COMPLETE=" in l]
    shells = {m for l in lines for m in re.findall(r"_CHARRNN_COMPLETE=(\w+)_source", l)}
    assert shells == {"bash", "zsh", "fish"}
    for shell in shells:
        r = subprocess.run(_command(), capture_output=True, text=True, cwd=tmp_path, timeout=60,
                           env=_env(_CHARRNN_COMPLETE=f"{shell}_source"))
        assert r.returncode == 0 and "charrnn" in r.stdout, (shell, r.stderr)
        assert {"bash": "complete -o", "zsh": "compdef", "fish": "complete"}[shell] in r.stdout


def test_bash_completion_completes_verbs_and_options(tmp_path):
    line = next(l.strip() for l in _readme().splitlines() if "_CHARRNN_COMPLETE=bash_source" in l)
    script = f"""
        PATH={shlex.quote(str(Path(_command()[0]).parent))}:$PATH
        {line.split('#')[0]}
        complete -p charrnn >&2
        COMPREPLY=(); COMP_WORDS=(charrnn sa); COMP_CWORD=1
        _charrnn_completion charrnn; echo "${{COMPREPLY[@]}}"
        COMPREPLY=(); COMP_WORDS=(charrnn sample --top); COMP_CWORD=2
        _charrnn_completion charrnn; echo "${{COMPREPLY[@]}}"
    """
    charrnn_command()               # the completion script names the installed command
    r = subprocess.run(["bash", "-c", script], capture_output=True, text=True, cwd=tmp_path,
                       env=_env(), timeout=60)
    assert r.returncode == 0, r.stderr
    assert "_charrnn_completion" in r.stderr          # registered for `charrnn`
    verbs, opts = r.stdout.splitlines()
    assert verbs.split() == ["sample"]
    assert sorted(opts.split()) == ["--top-k", "--top-p"]


# ================================================================ --help
def test_every_checkpoint_dir_option_documents_its_env_var(runner):
    with_dir = [name for name, cmd in cli.commands.items()
                if any(p.name == "checkpoint_dir" for p in cmd.params)]
    assert {"train", "sample", "inspect"} <= set(with_dir)
    for name in with_dir:
        h = invoke(runner, name, "--help")
        assert_ok(h)
        assert "CHARRNN_CHECKPOINT_DIR" in h.stdout, name


# (every option is documented in docs/cli.md, generated from the code and
# checked by tests/project/test_docs.py)


# ============================================================ sample flags
def test_num_samples_and_separator_go_between_samples(runner, trained_ascii):
    ck = ["--checkpoint", trained_ascii.latest, "--seed", 11, "--len", 15, "--no-echo-prime",
          "--prime", "the "]
    glued = sample_bytes(runner, *ck, "--num-samples", 3, "--separator", "").decode()
    assert glued.endswith("\n") and len(glued) == 3 * 15 + 1
    s = [glued[i * 15:(i + 1) * 15] for i in range(3)]
    assert s[0] != s[1] != s[2]
    assert sample_bytes(runner, *ck).decode() == s[0] + "\n"         # the first is the one alone
    default = sample_bytes(runner, *ck, "--num-samples", 3).decode()
    assert default == s[0] + "\n\n" + s[1] + "\n\n" + s[2] + "\n"    # a blank line between
    custom = sample_bytes(runner, *ck, "--num-samples", 3, "--separator", r"\t--\n").decode()
    assert custom == s[0] + "\t--\n" + s[1] + "\t--\n" + s[2] + "\n"
    echoed = sample_bytes(runner, *ck[:-3], "--prime", "the ", "--num-samples", 2).decode()
    assert echoed == "the " + s[0] + "\n\nthe " + s[1] + "\n"


@pytest.mark.parametrize("extra", [[], ["--top-k", 3], ["--top-p", 0.6], ["--argmax"],
                                   ["--temperature", 0.5, "--until", "e"],
                                   ["--beam-width", 4, "--num-samples", 2],
                                   ["--num-samples", 3, "--top-k", 5]])
def test_no_echo_prime_prints_exactly_the_continuation(runner, trained, extra):
    base = ["--checkpoint", trained.best, "--seed", 5, "--len", 40, "--prime", "café ", *extra]
    echoed = sample_bytes(runner, *base).decode()
    bare = sample_bytes(runner, *base, "--no-echo-prime").decode()
    assert echoed.replace("café ", "") == bare
    assert echoed.count("café ") == (extra[extra.index("--num-samples") + 1]
                                     if "--num-samples" in extra else 1)


@pytest.mark.parametrize("extra", [["--top-k", 4], ["--top-p", 0.8], ["--temperature", 1.7],
                                   ["--top-k", 10, "--top-p", 0.9, "--num-samples", 2]])
def test_same_seed_same_bytes_other_seed_other_bytes(runner, trained, extra):
    ck = ["--checkpoint", trained.best, "--len", 300, *extra]
    a = sample_bytes(runner, *ck, "--seed", 1)
    assert a == sample_bytes(runner, *ck, "--seed", 1)
    assert a != sample_bytes(runner, *ck, "--seed", 2)


def test_argmax_ignores_the_seed_and_top_k_narrows(runner, trained):
    ck = ["--checkpoint", trained.best, "--len", 200]
    g = sample_bytes(runner, *ck, "--argmax", "--seed", 1)
    assert g == sample_bytes(runner, *ck, "--argmax", "--seed", 2) == sample_bytes(
        runner, *ck, "--argmax")
    # top-k 1 is greedy too, whatever the seed.
    assert sample_bytes(runner, *ck, "--top-k", 1, "--seed", 9) == g


def test_until_stops_after_the_stop_string(runner, trained_ascii):
    ck = ["--checkpoint", trained_ascii.latest, "--seed", 4, "--len", 500, "--prime", "The "]
    full = sample_bytes(runner, *ck).decode()[:-1]
    assert "\n" in full[4:] and " t" in full[4:]
    out = sample_bytes(runner, *ck, "--until", r"\n").decode()
    assert out == full[:full.index("\n", 4) + 1] + "\n"
    two = sample_bytes(runner, *ck, "--until", r"\n", "--until", " t").decode()
    cut = min(full.index("\n", 4) + 1, full.index(" t", 3) + 2)
    assert two == full[:cut] + "\n"


def test_no_newline_and_len_zero(runner, trained_ascii):
    ck = ["--checkpoint", trained_ascii.latest, "--seed", 4]
    out = sample_bytes(runner, *ck, "--len", 30, "--no-newline")
    assert out == sample_bytes(runner, *ck, "--len", 30)[:-1] and len(out) == 30
    assert sample_bytes(runner, *ck, "--len", 0, "--prime", "ab") == b"ab\n"
    assert sample_bytes(runner, *ck, "--len", 0, "--no-newline") == b""


def test_stream_writes_the_same_bytes(runner, trained):
    ck = ["--checkpoint", trained.best, "--seed", 8, "--len", 500, "--num-samples", 2]
    assert sample_bytes(runner, *ck, "--stream") == sample_bytes(runner, *ck)


def test_samples_that_stop_at_different_times_come_out_in_order(runner, trained_ascii):
    ck = ["--checkpoint", trained_ascii.latest, "--seed", 3, "--len", 400, "--until", r"\n",
          "--prime", "The ", "--separator", "|"]
    out = sample_bytes(runner, *ck, "--num-samples", 6, "--stream").decode()
    assert out == sample_bytes(runner, *ck, "--num-samples", 6).decode()
    samples = out[:-1].split("|")
    assert len(samples) == 6 and len({len(x) for x in samples}) > 1
    assert all(x.startswith("The ") and x.endswith("\n") for x in samples)
    assert samples[0] + "\n" == sample_bytes(runner, *ck).decode()       # the first is the lone one
    assert out.startswith(sample_bytes(runner, *ck, "--num-samples", 3).decode()[:-1])


def test_beam_search_from_the_command_line(runner, trained_ascii):
    ck = ["--checkpoint", trained_ascii.best, "--len", 12, "--prime", "the ", "--no-echo-prime"]
    out = sample_bytes(runner, *ck, "--beam-width", 5, "--num-samples", 3,
                       "--separator", "|").decode()
    model, c = load_model(str(trained_ascii.best))
    expect = [t for t, _ in beam_search(model, c.vocab, 12, 5, "the ", n_best=3)]
    assert out == "|".join(expect) + "\n"
    assert len(set(expect)) == 3
    assert out == sample_bytes(runner, *ck, "--beam-width", 5, "--num-samples", 3,
                               "--separator", "|", "--seed", 99).decode()


@pytest.mark.parametrize("args", [
    ["--top-k", "0"], ["--top-p", "0"], ["--top-p", "1.5"], ["--num-samples", "0"],
    ["--beam-width", "0"], ["--until", ""],
])
def test_bad_sample_flags_are_usage_errors(runner, trained, args):
    line = assert_one_line_error(invoke(runner, "sample", "--checkpoint", trained.latest, *args), 2)
    assert args[0] in line


_BEAM = "--beam-width searches instead of sampling; drop "
_ARGMAX = "--argmax always takes the most likely character; drop "


@pytest.mark.parametrize("args, message", [
    ("--prime a --prime-file p.txt", "--prime and --prime-file cannot be used together"),
    ("--beam-width 2 --temperature 0.5", _BEAM + "--temperature"),
    ("--beam-width 2 --top-k 3", _BEAM + "--top-k"),
    ("--top-p 0.5 --beam-width 2", _BEAM + "--top-p"),
    ("--beam-width 2 --argmax", _BEAM + "--argmax"),
    ("--argmax --temperature 2", _ARGMAX + "--temperature"),
    ("--top-k 2 --argmax", _ARGMAX + "--top-k"),
    ("--argmax --top-p 0.5", _ARGMAX + "--top-p"),
    ("--num-samples 3 --beam-width 2", "--num-samples 3 needs --beam-width of at least 3"),
])
def test_conflicting_sample_flags_name_the_flag_to_drop(runner, trained, args, message):
    r = invoke(runner, "sample", "--checkpoint", trained.latest, *args.split())
    line = assert_one_line_error(r, 2)
    prog = line.split(" ", 1)[0]        # CliRunner's program name
    assert line == f"{prog} sample: error: {message} (see '{prog} sample --help')"


def test_flags_that_do_not_conflict_sample(runner, trained_ascii):
    ck = ["--checkpoint", trained_ascii.best, "--len", 6, "--prime", "the ", "--no-echo-prime"]
    # as many samples as beams: the W best
    out = sample_bytes(runner, *ck, "--beam-width", 3, "--num-samples", 3,
                       "--separator", "|").decode()
    model, c = load_model(str(trained_ascii.best))
    assert out == "|".join(t for t, _ in beam_search(model, c.vocab, 6, 3, "the ",
                                                      n_best=3)) + "\n"
    # a seed goes with greedy decoding and with beams (it changes nothing)
    assert sample_bytes(runner, *ck, "--argmax", "--seed", 4) == \
        sample_bytes(runner, *ck, "--argmax")
    assert sample_bytes(runner, *ck, "--beam-width", 2, "--seed", 4) == \
        sample_bytes(runner, *ck, "--beam-width", 2)


def test_prime_file_problems_are_runtime_errors(runner, trained, tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"the \xe9")
    outside = tmp_path / "outside.txt"
    outside.write_text("#~{")
    cases = [(tmp_path / "missing.txt", "no such file"), (bad, "byte 4"),
             (outside, "vocabulary")]
    for path, words in cases:
        line = assert_one_line_error(invoke(runner, "sample", "--checkpoint", trained.latest,
                                            "--prime-file", path), 1)
        assert words in line


def test_escaped_text_allows_empty_text_unless_told_not_to():
    """Built here (the options' own instances exist before any test runs)."""
    import click
    assert EscapedText().convert("", None, None) == ""
    assert EscapedText().convert(r"a\tb", None, None) == "a\tb"
    with pytest.raises(click.BadParameter, match="^must not be empty$"):
        EscapedText(allow_empty=False).convert("", None, None)


def test_escapes():
    assert unescape(r"a\nb\tc\\n\r\q") == "a\nb\tc\\n\r\\q"
    assert unescape("\\") == "\\" and unescape("") == ""
    assert unescape(r"ends\n") == "ends\n" and unescape(r"\t") == "\t"      # at the very end


def test_write_text_streams_flush_after_every_piece():
    class Recorder(io.BytesIO):
        def __init__(self):
            super().__init__()
            self.seen_at_flush = []

        def flush(self):
            self.seen_at_flush.append(self.getvalue())

    out = Recorder()
    assert write_text(iter(["a", "é", "😀"]), out, flush_each=True) == 1 + 2 + 4
    assert out.seen_at_flush[:3] == [b"a", "aé".encode(), "aé😀".encode()]
    lazy = Recorder()
    write_text(iter(["a", "é"]), lazy)
    assert lazy.seen_at_flush == ["aé".encode()]


# ============================================================ training input
def test_several_files_are_concatenated(runner, tmp_path):
    a, b = make_corpus(2500, seed=3), make_corpus(2500, seed=4, non_ascii=False) + "Zz#"
    (tmp_path / "a.txt").write_text(a, encoding="utf-8")
    (tmp_path / "b.txt").write_text(b, encoding="utf-8")
    (tmp_path / "ab.txt").write_text(a + b, encoding="utf-8")
    for ck, files in (("two", ["a.txt", "b.txt"]), ("one", ["ab.txt"])):
        assert_ok(invoke(runner, "train", *[tmp_path / f for f in files], "--checkpoint-dir",
                         tmp_path / ck, *TINY_TRAIN_ARGS))
    two = ckpt.load(str(tmp_path / "two" / "latest.npz"))
    one = ckpt.load(str(tmp_path / "one" / "latest.npz"))
    assert two.config["data"]["sources"] == [str(tmp_path / "a.txt"), str(tmp_path / "b.txt")]
    assert two.config["data"]["chars"] == len(a) + len(b)
    assert two.vocab == one.vocab and "#" in two.vocab
    for name in one.params:
        np.testing.assert_array_equal(two.params[name], one.params[name])


def test_train_stdin_with_click_input_records_stdin(runner, tmp_path, corpus_text):
    r = invoke(runner, "train", "-", "--checkpoint-dir", tmp_path / "ck", *TINY_TRAIN_ARGS,
               input=corpus_text.encode("utf-8"))
    assert_ok(r)
    c = ckpt.load(str(tmp_path / "ck" / "latest.npz"))
    assert c.config["data"]["sources"] == ["<stdin>"]
    assert c.config["data"]["encoding"] == "utf-8" and c.config["data"]["errors"] == "strict"


def test_empty_stdin_is_one_line_exit_1(runner, tmp_path):
    line = assert_one_line_error(invoke(runner, "train", "-", "--checkpoint-dir", tmp_path / "ck",
                                        input=b""), 1)
    assert "<stdin>" in line and "empty" in line


def test_encoding_and_errors(runner, tmp_path, corpus_text):
    ascii_text = make_corpus(3000, seed=5, non_ascii=False)
    latin = tmp_path / "latin.txt"
    latin.write_bytes((ascii_text + "déjà vu, ¿qué?\n").encode("latin-1"))
    strict = assert_one_line_error(invoke(runner, "train", latin, "--checkpoint-dir",
                                          tmp_path / "s", *TINY_TRAIN_ARGS), 1)
    first_bad = (ascii_text + "d").encode("latin-1").__len__()
    assert f"byte {first_bad}" in strict and "--errors replace" in strict
    assert_ok(invoke(runner, "train", latin, "--encoding", "latin-1", "--checkpoint-dir",
                     tmp_path / "l", *TINY_TRAIN_ARGS))
    vocab = ckpt.load(str(tmp_path / "l" / "latest.npz")).vocab
    assert {"é", "à", "¿"} <= set(vocab) and "\ufffd" not in vocab
    assert_ok(invoke(runner, "train", latin, "--errors", "replace", "--checkpoint-dir",
                     tmp_path / "r", *TINY_TRAIN_ARGS))
    c = ckpt.load(str(tmp_path / "r" / "latest.npz"))
    assert "\ufffd" in c.vocab and c.config["data"]["errors"] == "replace"
    assert c.config["data"]["chars"] == len(ascii_text) + len("déjà vu, ¿qué?\n")
    assert_ok(invoke(runner, "train", latin, "--errors", "ignore", "--checkpoint-dir",
                     tmp_path / "i", *TINY_TRAIN_ARGS))
    c = ckpt.load(str(tmp_path / "i" / "latest.npz"))
    assert "\ufffd" not in c.vocab and c.config["data"]["chars"] == len(ascii_text) + 11


@pytest.mark.parametrize("args", [["--encoding", "no-such-codec"], ["--encoding", "base64"],
                                  ["--errors", "skip"]])
def test_bad_encoding_flags_are_usage_errors(runner, corpus_file, tmp_path, args):
    line = assert_one_line_error(invoke(runner, "train", corpus_file, "--checkpoint-dir",
                                        tmp_path / "ck", *args), 2)
    assert args[0] in line
    assert not (tmp_path / "ck").exists()
