"""The README and the pages of docs/ cannot drift from the code.

* docs/cli.md is what `python -m charrnn.cli.docgen` writes from the click
  definitions (every command and option, their defaults and choices); no
  page repeats an options table by hand.
* Defaults stated in running text ("`--val-frac` (default 0.1)") are the
  code's, per-model defaults read from charrnn.runs.config.
* Every CHARRNN_* environment variable the pages name exists in the code,
  and every one the code reads is documented.
* Every documented exit code is produced by a real trigger.
* The short shell examples of the README and of docs/sampling.md and
  docs/training.md run against a tiny checkpoint trained here; the long
  ones are listed with a reason.
* CONTRIBUTING.md's layout lists every module; every page is linked from the
  README; every relative link and anchor of the pages resolves; the README
  stays short and renders on a package index (no relative images).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from charrnn.cli.commands import cli
from charrnn.runs.config import MODELS, PER_MODEL, model_defaults
from charrnn.runs.sizing import CHOSEN_FIELDS

from helpers import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")
CONTRIBUTING = (ROOT / "CONTRIBUTING.md").read_text(encoding="utf-8")
DOCS = {p.relative_to(ROOT).as_posix(): p.read_text(encoding="utf-8")
        for p in sorted((ROOT / "docs").glob("*.md"))}
# Every page a user or contributor reads (docs/cli.md is generated).
PAGES = {"README.md": README, "CONTRIBUTING.md": CONTRIBUTING,
         "bench/README.md": (ROOT / "bench" / "README.md").read_text(encoding="utf-8"),
         **DOCS}

# Documented defaults of options whose click default is None (or False, or
# empty for a repeatable option): the value is absent or computed at run time.
NOTHING = {"none", "off", "all", "random", "ranked"}


OPTIONS_HEADER = re.compile(r"^\|\s*option\s*\|")


def _cells(line: str) -> list[str]:
    """Cells of a markdown table row; `\\|` is a literal bar inside a cell."""
    inner = line.strip()
    inner = inner[1:] if inner.startswith("|") else inner
    inner = inner[:-1] if inner.endswith("|") and not inner.endswith("\\|") else inner
    return [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", inner)]


def _params(command: click.Command) -> dict:
    """Every spelling (--x, -x, --no-x) of the command's options -> the option."""
    names = {}
    help_names = set(command.get_help_option_names(click.Context(command)))
    for p in command.params:
        if isinstance(p, click.Option):
            for n in p.opts + p.secondary_opts:
                if n not in help_names:
                    names[n] = p
    return names


# ----------------------------------------------------------------- values
def _literal(doc: str) -> str:
    """The value a default cell states: its first `code` span, else the text
    before any parenthesis."""
    m = re.search(r"`([^`]*)`", doc)
    return m.group(1) if m else doc.split(" (")[0].strip()


def _same(doc: str, value) -> bool:
    doc = _literal(doc)
    if isinstance(value, bool):
        return doc == ("on" if value else "off")
    if isinstance(value, (int, float)):
        try:
            return float(doc) == float(value)
        except ValueError:
            return False
    return doc == str(value)


def _per_model(doc: str) -> dict | None:
    """'0.03 rnn, 0.008 lstm, 0.004 gru' -> {'rnn': '0.03', ...}; None if
    the cell is not in that form."""
    names = "|".join(MODELS)
    out = {}
    for part in doc.split(","):
        m = re.fullmatch(rf"\s*(.+?)\s+((?:{names})(?:/(?:{names}))*)\s*", part)
        if not m:
            return None
        for model in m.group(2).split("/"):
            if model in out:
                return None
            out[model] = m.group(1)
    return out


def _show(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def effective_default(param: click.Option, command: click.Command):
    """The value an option has when not given (click 8.2+ marks 'no default'
    with a sentinel; older versions with None)."""
    value = param.get_default(click.Context(command), call=False)
    if type(value).__name__ == "Sentinel":
        return () if param.multiple else None
    return value


CHOSEN = "chosen for the budget; else "     # the sizes runs/sizing.py chooses


def default_problem(param: click.Option, doc: str, default) -> str | None:
    """Why the documented default `doc` is not param's `default` (None if it is)."""
    if param.name in CHOSEN_FIELDS and not doc.startswith(CHOSEN):
        return f"runs/sizing.py chooses {param.name} for a budget, but README does not say so"
    if doc.startswith(CHOSEN):
        if param.name not in CHOSEN_FIELDS:
            return f"README says {CHOSEN!r}, but runs/sizing.py does not choose {param.name}"
        doc = doc[len(CHOSEN):]
    if param.name in PER_MODEL:
        expected = {m: model_defaults(m)[param.name] for m in MODELS}
        per = _per_model(doc)
        if per is None:
            per = {m: doc for m in MODELS}
        missing = [m for m in MODELS if m not in per]
        if missing:
            return f"no default given for {', '.join(missing)}"
        wrong = [f"{m}: README {_literal(per[m])}, code {_show(expected[m])}"
                 for m in MODELS if not _same(per[m], expected[m])]
        if default is not None:
            wrong.append(f"click default {default!r} would hide the per-model defaults")
        return "; ".join(wrong) or None
    if _per_model(doc) is not None and len(_per_model(doc)) > 1:
        return (f"README gives per-model defaults, but {param.name} is not a per-model "
                f"setting (charrnn.runs.config.PER_MODEL); code default {default!r}")
    if default in (None, (), "") or (param.is_flag and default is False):
        word = _literal(doc).lower()
        if word in NOTHING:
            return None
        if param.help and "default" in param.help.lower() and not re.fullmatch(r"[\d.]+", word):
            return None             # a computed default, described in --help too
        return (f"README {doc!r}, but the code has no default value; write one of "
                f"{', '.join(sorted(NOTHING))}")
    if not _same(doc, default):
        return f"README {_literal(doc)!r}, code {default!r}"
    return None


PROSE_DEFAULT = re.compile(r"`(--[\w-]+)(?: ([^`]+))?` \((?:the )?default(?: ([^)]+))?\)")


def prose_problems(markdown: str, group: click.Group) -> list[str]:
    """Defaults stated in running text: "`--val-frac` (default 0.1)" or
    "`--embed-size 0` (the default)" must be the default of that option in
    some command that has it."""
    problems = []
    for number, line in enumerate(markdown.splitlines(), 1):
        if line.lstrip().startswith("|"):
            continue                                    # tables are checked above
        for name, inline, after in PROSE_DEFAULT.findall(line):
            doc = inline or after
            options = [(cmd, _params(c)[name]) for cmd, c in sorted(group.commands.items())
                       if name in _params(c)]
            if not options:
                problems.append(f"README line {number}: {name} has no command")
            elif all(default_problem(p, doc, effective_default(p, group.commands[cmd]))
                     for cmd, p in options):
                problems.append(f"README line {number}: {name} default {doc!r} is not its "
                                f"default in charrnn {' or '.join(c for c, _ in options)}")
    return problems


def test_defaults_in_running_text_match():
    assert sum(len(PROSE_DEFAULT.findall(t)) for t in PAGES.values()) >= 3
    problems = [f"{name}: {p}" for name, text in PAGES.items()
                for p in prose_problems(text, cli)]
    assert not problems, "\n".join(problems)


def test_prose_check_can_fail():
    assert prose_problems("holds out `--val-frac` (default 0.2) of it", cli) == [
        "README line 1: --val-frac default '0.2' is not its default in charrnn train"]
    assert prose_problems("with `--embed-size 8` (the default)", cli)
    assert prose_problems("the `--top` (default 3) units", cli) == []


# ------------------------------------------------------- docs/cli.md
def test_cli_md_is_generated_from_the_click_definitions():
    from charrnn.cli.docgen import markdown
    page = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    assert page == markdown(), ("docs/cli.md differs from the code: run "
                                "python -m charrnn.cli.docgen > docs/cli.md")


def test_the_generated_reference_has_every_command_and_option():
    from charrnn.cli.docgen import markdown
    page = markdown()
    for name, command in cli.commands.items():
        assert f"## charrnn {name}\n" in page
        section = page.split(f"## charrnn {name}\n")[1].split("\n## charrnn ")[0]
        for p in command.params:
            if isinstance(p, click.Option):
                for opt in p.opts:
                    assert re.search(rf"[`, ]{re.escape(opt)}\b", section), (name, opt)
    assert "### Budget and schedule" in page and page.count("(*) Left unset") == 1


def test_no_page_repeats_an_options_table_by_hand():
    for name, text in PAGES.items():
        if name == "docs/cli.md":
            continue
        rows = [n for n, l in enumerate(text.splitlines(), 1) if OPTIONS_HEADER.match(l)]
        assert not rows, f"{name} line {rows[0]}: an options table; docs/cli.md has them all"


@pytest.mark.parametrize("name, doc, expected", [
    ("lr", "chosen for the budget; else 0.03 rnn, 0.002 lstm/gru",
     "lstm: README 0.002, code 0.008; gru: README 0.002, code 0.004"),
    ("batch_size", "chosen for the budget; else 32 rnn, 64 lstm/gru",
     "lstm: README 64, code 32; gru: README 64, code 32"),
    ("seq_len", "50 rnn, 64 lstm/gru", "runs/sizing.py chooses seq_len for a budget"),
    ("lr", "chosen for the budget; else 0.03 rnn, 0.008 lstm", "no default given for gru"),
    ("seed", "1 rnn, 2 lstm/gru", "seed is not a per-model setting"),
    ("lr_decay_every", "1000 rnn, 100 lstm/gru", "lstm: README 100, code 300"),
    ("val_frac", "0.2", "README '0.2', code 0.1"),
    ("val_frac", "0.1", None),
    ("lr", "chosen for the budget; else 0.03 rnn, 0.008 lstm, 0.004 gru", None),
])
def test_per_model_defaults_are_read_from_the_config(name, doc, expected):
    command = cli.commands["train"]
    param = next(p for p in command.params if p.name == name)
    problem = default_problem(param, doc, effective_default(param, command))
    if expected is None:
        assert problem is None
    else:
        assert problem and expected in problem, problem


# ------------------------------------------------- environment variables
ENV_NAME = re.compile(r"(?<![A-Za-z0-9_])CHARRNN_[A-Z0-9_]+")


def code_env_vars() -> set:
    names = set()
    for path in (ROOT / "charrnn").rglob("*.py"):
        names |= set(ENV_NAME.findall(path.read_text(encoding="utf-8")))
    return names


def env_problems(markdown: str, in_code: set) -> list[str]:
    documented = set(ENV_NAME.findall(markdown))
    return ([f"{n} is documented in the README or docs but nothing in charrnn/ reads it"
             for n in sorted(documented - in_code)] +
            [f"{n} is read by charrnn/ but not documented in the README or docs"
             for n in sorted(in_code - documented)])


def test_documented_environment_variables_exist_and_vice_versa():
    assert code_env_vars() >= {"CHARRNN_CHECKPOINT_DIR", "CHARRNN_DEBUG", "CHARRNN_THREADS",
                               "CHARRNN_CACHE_DIR"}
    problems = env_problems("\n".join(PAGES.values()), code_env_vars())
    assert not problems, "\n".join(problems)


def test_env_check_can_fail():
    assert env_problems("set `CHARRNN_COLOUR=1`", {"CHARRNN_DEBUG"}) == [
        "CHARRNN_COLOUR is documented in the README or docs but nothing in charrnn/ reads it",
        "CHARRNN_DEBUG is read by charrnn/ but not documented in the README or docs"]
    # click's completion variable is not one of ours
    assert env_problems("_CHARRNN_COMPLETE=bash_source", set()) == []


# ---------------------------------------------------------- exit codes
def documented_exit_codes(markdown: str) -> list[int]:
    lines = markdown.splitlines()
    start = next(i for i, l in enumerate(lines) if re.match(r"^\|\s*exit code\s*\|", l))
    codes = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        codes.append(int(_cells(line)[0]))
    return codes


def _command() -> list[str]:
    exe = shutil.which("charrnn", path=os.path.dirname(sys.executable))
    return [exe] if exe else [sys.executable, "-m", "charrnn"]


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("CHARRNN_DEBUG", "CHARRNN_CHECKPOINT_DIR")}
    env.update(extra)
    return env


def _run_cli(*args) -> int:
    return CliRunner(env={"CHARRNN_DEBUG": None, "CHARRNN_CHECKPOINT_DIR": None}).invoke(
        cli, list(args)).exit_code


def _interrupted_training(sig, tmp: Path) -> int:
    text = tmp / "t.txt"
    text.write_text("abcdefgh ijklmnop\n" * 400, encoding="utf-8")
    proc = subprocess.Popen(_command() + ["train", str(text), "--checkpoint-dir", str(tmp / "c"),
                                          "--hidden-size", "8", "--seq-len", "8",
                                          "--batch-size", "2", "--eval-every", "5",
                                          "--max-time", "60", "--quiet"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=_env())
    deadline = time.monotonic() + 60
    while not (tmp / "c" / "latest.npz").exists() and time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(sig)
    proc.communicate(timeout=60)
    return proc.returncode


EXIT_TRIGGERS = {
    0: lambda tmp: _run_cli("--version"),
    1: lambda tmp: _run_cli("sample", "--checkpoint", str(tmp / "missing.npz")),
    2: lambda tmp: _run_cli("sample", "--no-such-flag"),
    130: lambda tmp: _interrupted_training(signal.SIGINT, tmp),
    143: lambda tmp: _interrupted_training(signal.SIGTERM, tmp),
}


def test_exit_code_table_is_read():
    assert documented_exit_codes(README)[:3] == [0, 1, 2]


@pytest.mark.parametrize("code", documented_exit_codes(README))
def test_documented_exit_code_is_produced(code, tmp_path):
    assert code in EXIT_TRIGGERS, (f"exit code {code} is documented in the README but no "
                                   f"known trigger produces it (add one to EXIT_TRIGGERS)")
    assert EXIT_TRIGGERS[code](tmp_path) == code


# ------------------------------------------------- the pages' examples
EXAMPLE_SECTIONS = ("Everyday use", "Training", "Sampling", "Stopping, resuming and fine-tuning")
SKIPPED = {
    "charrnn train corpora/tinyshakespeare.txt --max-time 120 2> train.log":
        "two minutes on the shipped corpus: the README's first command (.ci/run runs it, "
        "shortened)",
    "charrnn train input.txt --max-time 10m":
        "trains for ten minutes (the tiny checkpoint below is trained the same way, shorter)",
    "charrnn train input.txt --max-iters 5000":
        "5000 iterations of the default model; the Ctrl-C part is interactive",
    "charrnn train input.txt --resume":
        "continues the interrupted 5000-iteration run of the line before (tests/resume/test_interrupt.py "
        "and tests/resume/test_resume.py resume for real)",
    "charrnn train input.txt --resume --max-iters 20000 --lr 0.01":
        "20,000 iterations",
    "charrnn train other.txt --init-from checkpoints/best.npz --checkpoint-dir tuned":
        "no stopping limit: trains until Ctrl-C",
}
# Extra expectations for some examples (beyond exit 0, empty stderr, some stdout).
EXPECT = {
    "charrnn inspect --json": lambda out: isinstance(json.loads(out), dict),
    "charrnn eval held-out.txt": lambda out: "nats/char" in out and "perplexity" in out,
    "charrnn sample --len 100000 --stream | head -c 100": lambda out: len(out.encode()) == 100,
    "charrnn sample --num-samples 5 --len 80 --separator '\\n---\\n'":
        lambda out: out.count("\n---\n") == 4,
    "charrnn sample --prime \"ROMEO:\" --seed 1": lambda out: out.startswith("ROMEO:"),
    "charrnn sample --prime \"ROMEO:\" --until '\\n\\n' --seed 1":
        lambda out: out.startswith("ROMEO:") and (out.endswith("\n\n\n") or len(out) == 207),
    "charrnn sample --prime \"The \" --beam-width 8 --len 40":
        lambda out: out.startswith("The ") and len(out) == 4 + 40 + 1,
    "printf 'ROMEO:' | charrnn sample --prime-file - --no-echo-prime":
        lambda out: not out.startswith("ROMEO:") and len(out) == 201,
}


def shell_examples(markdown: str, sections=EXAMPLE_SECTIONS) -> list[str]:
    """Command lines (comments removed) of the ```sh blocks in those sections."""
    commands, heading, fence, wanted = [], None, False, False
    for line in markdown.splitlines():
        if line.strip().startswith("```"):
            fence = not fence
            wanted = fence and line.strip() == "```sh" and heading in sections
        elif not fence and line.startswith("#"):
            heading = line.lstrip("#").strip()
        elif wanted and line.strip():
            commands.append(re.sub(r"\s+#\s.*$", "", line).strip())
    return commands


def test_example_parser_keeps_to_sh_blocks_of_the_sections():
    text = ("## Everyday use\n```sh\ncharrnn a   # note\n```\n```\n# not a heading\n```\n"
            "```sh\ncharrnn b\n```\n## Other\n```sh\ncharrnn c\n```\n")
    assert shell_examples(text) == ["charrnn a", "charrnn b"]


EXAMPLES = [line for page in ("README.md", "docs/sampling.md", "docs/training.md")
            for line in shell_examples(PAGES[page])]


def test_examples_are_found_and_skips_are_current():
    assert len(EXAMPLES) >= 10
    stale = set(SKIPPED) - set(EXAMPLES)
    assert not stale, f"skipped examples no longer in the pages: {stale}"


@pytest.fixture(scope="module")
def example_dir(tmp_path_factory) -> Path:
    """A folder like a user's: input.txt, held-out.txt, excerpt.txt and a tiny
    model trained on input.txt in checkpoints/ (a second or so)."""
    d = tmp_path_factory.mktemp("examples")
    shakespeare = (ROOT / "corpora" / "tinyshakespeare.txt").read_text(encoding="utf-8")
    (d / "input.txt").write_text(shakespeare[:20000], encoding="utf-8")
    (d / "held-out.txt").write_text(shakespeare[20000:22000] + "Thé énd.\n", encoding="utf-8")
    (d / "excerpt.txt").write_text(shakespeare[22000:22300], encoding="utf-8")
    r = subprocess.run(_command() + ["train", "input.txt", "--hidden-size", "16", "--seq-len",
                                     "16", "--batch-size", "8", "--max-iters", "30",
                                     "--eval-every", "10", "--quiet"],
                       cwd=d, capture_output=True, text=True, env=_env(), timeout=120)
    assert r.returncode == 0, r.stderr
    return d


@pytest.mark.parametrize("line", EXAMPLES)
def test_readme_example_runs(line, example_dir):
    if line in SKIPPED:
        pytest.skip(SKIPPED[line])
    bindir = os.path.dirname(_command()[0]) if len(_command()) == 1 else None
    env = _env(PATH=(bindir + os.pathsep if bindir else "") + os.environ.get("PATH", ""))
    r = subprocess.run(["bash", "-o", "pipefail", "-c", line], cwd=example_dir,
                       capture_output=True, env=env, timeout=120)
    out, err = r.stdout.decode("utf-8"), r.stderr.decode("utf-8")
    assert r.returncode == 0, f"{line}\nexit {r.returncode}\n{err}"
    assert out.strip(), f"{line}: nothing on stdout"
    if not line.startswith("charrnn train"):
        assert err == "", f"{line}: stderr {err!r}"
    if "charrnn sample" in line:
        vocab = set((example_dir / "input.txt").read_text(encoding="utf-8"))
        assert set(out) <= vocab, f"{line}: characters the model never saw in {out[:300]!r}"
    if line in EXPECT:
        assert EXPECT[line](out), f"{line}: unexpected output {out[:300]!r}"


# ------------------------------------------------------------- the layout
def layout_modules(markdown: str) -> set:
    """charrnn/... module paths listed in a page's Layout section."""
    section = markdown[markdown.index("## Layout"):]
    section = section[:section.index("\n## ", 1)] if "\n## " in section[1:] else section
    found, folder = set(), None
    for line in section.splitlines():
        m = re.match(r"^    (charrnn/(?:[a-z_]+/)?)(\S*)", line)
        if m:
            folder = m.group(1) if m.group(1).endswith("/") and not m.group(2) else None
            if m.group(2).endswith(".py"):
                found.add(m.group(1) + m.group(2))
            continue
        m = re.match(r"^      ([a-z_]+\.py)\s", line)
        if m and folder:
            found.add(folder + m.group(1))
    return found


def test_the_contributing_layout_lists_every_module_and_no_other():
    listed = layout_modules(CONTRIBUTING)
    real = {p.relative_to(ROOT).as_posix() for p in (ROOT / "charrnn").rglob("*.py")
            if not (p.name == "__init__.py" and p.parent.name != "charrnn"
                    and p.parent.name not in ("api",))}
    assert sorted(real - listed) == [], "modules missing from CONTRIBUTING.md's Layout"
    assert sorted(listed - real) == [], "CONTRIBUTING.md's Layout lists modules that do not exist"


def test_layout_check_can_fail():
    md = "## Layout\n\n    charrnn/a.py   x\n    charrnn/nn/\n      b.py   y\n\n## Next\n"
    assert layout_modules(md) == {"charrnn/a.py", "charrnn/nn/b.py"}


# ------------------------------------------------------ the pages themselves
README_MAX_LINES = 250


def test_the_readme_is_short_and_links_every_page():
    assert len(README.splitlines()) <= README_MAX_LINES
    linked = set(re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", README))
    pages = {name for name in PAGES if name != "README.md"}
    assert sorted(pages - linked) == [], "pages the README does not link"


def test_the_readme_renders_on_a_package_index():
    """The README is the package's long description: an image there must be an
    absolute URL (a relative one is broken on the index)."""
    images = re.findall(r"!\[[^\]]*\]\(([^)\s]+)", README) + \
        re.findall(r"<img[^>]+src=[\"']([^\"']+)", README)
    assert [u for u in images if not re.match(r"https?://", u)] == []


def _slug(heading: str) -> str:
    """The anchor a code host makes of a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(text: str) -> set:
    out, fence = set(), False
    for line in text.splitlines():
        if line.startswith("```"):
            fence = not fence
        elif not fence and re.match(r"^#{1,6} ", line):
            out.add(_slug(line.lstrip("#")))
    return out


def link_problems(pages: dict) -> list[str]:
    problems = []
    for name, text in pages.items():
        here = (ROOT / name).parent
        for target in re.findall(r"(?<!!)\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target):
                continue
            path, _, anchor = target.partition("#")
            dest = (here / path).resolve() if path else (ROOT / name).resolve()
            if not dest.exists():
                problems.append(f"{name}: link to {target}: no such file")
            elif anchor and dest.suffix == ".md":
                key = dest.relative_to(ROOT).as_posix()
                text2 = pages.get(key) or dest.read_text(encoding="utf-8")
                if anchor not in _anchors(text2):
                    problems.append(f"{name}: link to {target}: no such heading")
    return problems


def test_every_relative_link_and_anchor_resolves():
    assert not link_problems(PAGES), "\n".join(link_problems(PAGES))


def test_link_check_can_fail():
    pages = {"README.md": "[a](docs/nope.md) [b](docs/cli.md#no-such-heading) "
                          "[c](#more) [d](https://example.org/x)\n## More\n"}
    assert link_problems(pages) == ["README.md: link to docs/nope.md: no such file",
                                    "README.md: link to docs/cli.md#no-such-heading: "
                                    "no such heading"]
