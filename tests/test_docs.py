"""The README cannot drift from the code.

* Every options table (`| option | default | meaning |`, preceded by a
  `<!-- options: charrnn COMMAND -->` marker) is compared with that click
  command, generically: every option documented once and every documented
  option real, defaults equal (per-model defaults read from charrnn.runs.config),
  click.Choice values equal to the ones the row names.
* Every CHARRNN_* environment variable the README names exists in the code,
  and every one the code reads is documented.
* Every documented exit code is produced by a real trigger.
* The short shell examples of the Use, train and sample sections run against
  a tiny checkpoint trained here; the long ones are listed with a reason.
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
from dataclasses import dataclass
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from charrnn.cli.commands import cli
from charrnn.runs.config import MODELS, PER_MODEL, model_defaults
from charrnn.runs.sizing import CHOSEN_FIELDS

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")

MARKER = re.compile(r"<!--\s*options:\s*charrnn\s+(\S+)\s*-->")
OPTIONS_HEADER = re.compile(r"^\|\s*option\s*\|\s*default\s*\|\s*meaning\s*\|\s*$")
# Documented defaults of options whose click default is None (or False, or
# empty for a repeatable option): the value is absent or computed at run time.
NOTHING = {"none", "off", "all", "random", "ranked"}


# ---------------------------------------------------------------- parsing
@dataclass
class Row:
    line: int          # 1-based line number in the README
    option: str
    default: str
    meaning: str

    @property
    def text(self) -> str:
        return f"| {self.option} | {self.default} | {self.meaning} |"


@dataclass
class Table:
    command: str | None   # None: an options table without a marker
    line: int
    rows: list


def _cells(line: str) -> list[str]:
    """Cells of a markdown table row; `\\|` is a literal bar inside a cell."""
    inner = line.strip()
    inner = inner[1:] if inner.startswith("|") else inner
    inner = inner[:-1] if inner.endswith("|") and not inner.endswith("\\|") else inner
    return [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", inner)]


def options_tables(markdown: str) -> list[Table]:
    lines = markdown.splitlines()
    tables, pending = [], None
    i = 0
    while i < len(lines):
        m = MARKER.search(lines[i])
        if m:
            pending = m.group(1)
        if OPTIONS_HEADER.match(lines[i]):
            table = Table(pending, i + 1, [])
            pending = None
            i += 2                                   # the header and the --- line
            while i < len(lines) and lines[i].lstrip().startswith("|"):
                cells = _cells(lines[i])
                cells += [""] * (3 - len(cells))
                table.rows.append(Row(i + 1, cells[0], cells[1], " | ".join(cells[2:])))
                i += 1
            tables.append(table)
            continue
        if lines[i].startswith("#"):
            pending = None                           # a marker only applies in its section
        i += 1
    return tables


def _option_names(cell: str) -> list[str]:
    return re.findall(r"(?<![\w-])--?[A-Za-z][\w-]*", cell)


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


def _is_help(command, p) -> bool:
    return bool(set(p.opts) & set(command.get_help_option_names(click.Context(command))))


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


def choice_problems(param: click.Option, row: Row) -> list[str]:
    if not isinstance(param.type, click.Choice):
        return []
    choices = set(param.type.choices)
    words = set()
    for span in re.findall(r"`([^`]*)`", row.text):
        for piece in re.split(r"[\s|,]+", span):
            if re.fullmatch(r"[a-z][a-z0-9_]*", piece):
                words.add(piece)
    problems = [f"choice `{c}` is not mentioned" for c in sorted(choices - words)]
    problems += [f"`{w}` is not one of its choices ({', '.join(param.type.choices)})"
                 for w in sorted(words - choices)]
    return problems


# ------------------------------------------------------------- the check
def table_problems(markdown: str, group: click.Group) -> list[str]:
    """Every disagreement between the README's options tables and the click
    commands, one line each, naming the README line and the option."""
    problems = []
    documented: dict = {}
    for table in options_tables(markdown):
        if table.command is None:
            problems.append(f"README line {table.line}: options table without a "
                            f"'<!-- options: charrnn COMMAND -->' marker before it")
            continue
        command = group.commands.get(table.command)
        if command is None:
            problems.append(f"README line {table.line}: table for 'charrnn {table.command}', "
                            f"which is not a command")
            continue
        names = _params(command)
        for row in table.rows:
            where = f"README line {row.line} (charrnn {table.command} {row.option})"
            spelled = _option_names(row.option)
            if not spelled:
                problems.append(f"{where}: no option name in the first column")
                continue
            params = []
            for name in spelled:
                if name not in names:
                    problems.append(f"{where}: {name} is documented but 'charrnn "
                                    f"{table.command}' has no such option")
                elif names[name] not in params:
                    params.append(names[name])
            defaults = [d.strip() for d in row.default.split(",")]
            split = len(params) > 1 and len(defaults) == len(params) and \
                _per_model(row.default) is None
            for k, param in enumerate(params):
                key = (table.command, param.name)
                if key in documented:
                    problems.append(f"{where}: {param.opts[0]} is documented twice "
                                    f"(also on README line {documented[key]})")
                    continue
                documented[key] = row.line
                issue = default_problem(param, defaults[k] if split else row.default,
                                        effective_default(param, command))
                if issue:
                    problems.append(f"{where}: default of {param.opts[0]} differs: {issue}")
                for issue in choice_problems(param, row):
                    problems.append(f"{where}: {param.opts[0]}: {issue}")
    for name, command in sorted(group.commands.items()):
        for p in command.params:
            if isinstance(p, click.Option) and not _is_help(command, p) \
                    and (name, p.name) not in documented:
                problems.append(f"charrnn {name} {p.opts[0]} is not in any README options "
                                f"table for '{name}'")
    for p in group.params:
        if isinstance(p, click.Option) and not _is_help(group, p):
            if f"`{p.opts[0]}`" not in markdown and f"`charrnn {p.opts[0]}`" not in markdown:
                problems.append(f"charrnn {p.opts[0]} is not mentioned in the README")
    return problems


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
    assert len(PROSE_DEFAULT.findall(README)) >= 3
    problems = prose_problems(README, cli)
    assert not problems, "\n".join(problems)


def test_prose_check_can_fail():
    assert prose_problems("holds out `--val-frac` (default 0.2) of it", cli) == [
        "README line 1: --val-frac default '0.2' is not its default in charrnn train"]
    assert prose_problems("with `--embed-size 8` (the default)", cli)
    assert prose_problems("the `--top` (default 3) units", cli) == []


def test_readme_options_tables_match_the_click_commands():
    problems = table_problems(README, cli)
    assert not problems, "README.md disagrees with the code:\n" + "\n".join(problems)


def test_every_command_has_a_marked_options_table():
    marked = {t.command for t in options_tables(README)}
    assert set(cli.commands) <= marked


# The checker itself fails on wrong tables, naming the row and the difference.
GOOD_EVAL = """\
### eval
<!-- options: charrnn eval -->
| option | default | meaning |
| --- | --- | --- |
{rows}
"""


def _eval_rows(**override) -> str:
    rows = {"oov": "| `--oov` | skip | `skip` or `reset` |",
            "json": "| `--json` | off | one JSON object |",
            "ckpt": "| `--checkpoint PATH` | `best.npz`, else `latest.npz` | which model |",
            "dir": "| `--checkpoint-dir DIR` | `checkpoints` | the folder |",
            "exact": "| `--exact` | off | one stream |",
            "debug": "| `--debug` | off | tracebacks |"}
    rows.update(override)
    return GOOD_EVAL.format(rows="\n".join(r for r in rows.values() if r))


def _mini_cli(command_name: str) -> click.Group:
    group = click.Group("charrnn")
    group.add_command(cli.commands[command_name])
    return group


@pytest.mark.parametrize("override, expected", [
    ({}, None),
    ({"oov": "| `--oov` | reset | `skip` or `reset` |"},
     "line 5 (charrnn eval `--oov`): default of --oov differs: README 'reset', code 'skip'"),
    ({"oov": "| `--oov` | skip | `skip`, `reset` or `drop` |"},
     "--oov: `drop` is not one of its choices"),
    ({"oov": "| `--oov` | skip | `skip` only |"}, "--oov: choice `reset` is not mentioned"),
    ({"json": ""}, "charrnn eval --json is not in any README options table"),
    ({"json": "| `--json`, `--jsonl` | off | one JSON object |"},
     "--jsonl is documented but 'charrnn eval' has no such option"),
    ({"json": "| `--json` | off | one |\n| `--json` | off | twice |"},
     "--json is documented twice (also on README line 6)"),
    ({"dir": "| `--checkpoint-dir DIR` | `runs` | the folder |"},
     "default of --checkpoint-dir differs: README 'runs', code 'checkpoints'"),
    ({"ckpt": "", "dir": "| `--checkpoint`, `--checkpoint-dir` | none, `runs` | which |"},
     "default of --checkpoint-dir differs: README 'runs', code 'checkpoints'"),
    ({"ckpt": "| `--checkpoint PATH` | 3 | which model |"},
     "default of --checkpoint differs: README '3', but the code has no default value"),
])
def test_table_check_reports_the_row_and_the_difference(override, expected):
    problems = table_problems(_eval_rows(**override), _mini_cli("eval"))
    if expected is None:
        assert problems == []
    else:
        assert any(expected in p for p in problems), problems


def _train_table(row: str) -> str:
    """README's train table with one row replaced (by option name)."""
    table = next(t for t in options_tables(README) if t.command == "train")
    name = _option_names(row.split("|")[1])[0]
    lines = README.splitlines()
    start = table.line - 2
    body = [lines[r.line - 1] if _option_names(r.option)[0] != name else row for r in table.rows]
    return "\n".join([lines[start], lines[start + 1], lines[start + 2]] + body)


@pytest.mark.parametrize("row, expected", [
    ("| `--lr` | chosen for the budget; else 0.03 rnn, 0.002 lstm/gru | rate |",
     "default of --lr differs: lstm: README 0.002, code 0.008; gru: README 0.002, code 0.004"),
    ("| `--batch-size` | chosen for the budget; else 32 rnn, 64 lstm/gru | streams |",
     "lstm: README 64, code 32; gru: README 64, code 32"),
    ("| `--dropout` | chosen for the budget; else 0 | dropout |",
     "lstm: README 0, code 0.2; gru: README 0, code 0.1"),
    ("| `--seq-len` | 50 rnn, 64 lstm/gru | chunk |",
     "runs/sizing.py chooses seq_len for a budget, but README does not say so"),
    ("| `--lr` | chosen for the budget; else 0.03 rnn, 0.008 lstm | rate |",
     "no default given for gru"),
    ("| `--seed` | 1 rnn, 2 lstm/gru | seed |", "seed is not a per-model setting"),
    ("| `--lr-decay-every` | 1000 rnn, 100 lstm/gru | schedule |",
     "--lr-decay-every differs: lstm: README 100, code 300; gru: README 100, code 300"),
    ("| `--model` | rnn | `rnn` or `lstm` |", "--model: choice `gru` is not mentioned"),
])
def test_per_model_defaults_are_read_from_the_config(row, expected):
    problems = table_problems(_train_table(row), _mini_cli("train"))
    assert any(expected in p for p in problems), problems


def test_unmarked_or_unknown_tables_are_reported():
    text = "| option | default | meaning |\n| --- | --- | --- |\n| `--json` | off | x |\n"
    assert "without a '<!-- options: charrnn COMMAND -->' marker" in \
        table_problems(text, _mini_cli("eval"))[0]
    text = "<!-- options: charrnn frobnicate -->\n" + text
    assert "'charrnn frobnicate', which is not a command" in \
        table_problems(text, _mini_cli("eval"))[0]


# ------------------------------------------------- environment variables
ENV_NAME = re.compile(r"(?<![A-Za-z0-9_])CHARRNN_[A-Z0-9_]+")


def code_env_vars() -> set:
    names = set()
    for path in (ROOT / "charrnn").rglob("*.py"):
        names |= set(ENV_NAME.findall(path.read_text(encoding="utf-8")))
    return names


def env_problems(markdown: str, in_code: set) -> list[str]:
    documented = set(ENV_NAME.findall(markdown))
    return ([f"{n} is documented in the README but nothing in charrnn/ reads it"
             for n in sorted(documented - in_code)] +
            [f"{n} is read by charrnn/ but not documented in the README"
             for n in sorted(in_code - documented)])


def test_documented_environment_variables_exist_and_vice_versa():
    assert code_env_vars() >= {"CHARRNN_CHECKPOINT_DIR", "CHARRNN_DEBUG", "CHARRNN_THREADS",
                               "CHARRNN_CACHE_DIR"}
    problems = env_problems(README, code_env_vars())
    assert not problems, "\n".join(problems)


def test_env_check_can_fail():
    assert env_problems("set `CHARRNN_COLOUR=1`", {"CHARRNN_DEBUG"}) == [
        "CHARRNN_COLOUR is documented in the README but nothing in charrnn/ reads it",
        "CHARRNN_DEBUG is read by charrnn/ but not documented in the README"]
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


# ------------------------------------------------- the README's examples
EXAMPLE_SECTIONS = ("Use", "train", "Stopping, resuming and fine-tuning", "sample")
SKIPPED = {
    "charrnn train input.txt --max-time 10m":
        "trains for ten minutes (the tiny checkpoint below is trained the same way, shorter)",
    "charrnn train input.txt --max-iters 5000":
        "5000 iterations of the default model; the Ctrl-C part is interactive",
    "charrnn train input.txt --resume":
        "continues the interrupted 5000-iteration run of the line before (tests/test_interrupt.py "
        "and tests/test_resume.py resume for real)",
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
    text = ("## Use\n```sh\ncharrnn a   # note\n```\n```\n# not a heading\n```\n"
            "```sh\ncharrnn b\n```\n## Other\n```sh\ncharrnn c\n```\n")
    assert shell_examples(text) == ["charrnn a", "charrnn b"]


EXAMPLES = shell_examples(README)


def test_examples_are_found_and_skips_are_current():
    assert len(EXAMPLES) >= 10
    stale = set(SKIPPED) - set(EXAMPLES)
    assert not stale, f"skipped examples no longer in the README: {stale}"


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
    """charrnn/... module paths listed in the README's Layout section."""
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


def test_the_readme_layout_lists_every_module_and_no_other():
    listed = layout_modules(README)
    real = {p.relative_to(ROOT).as_posix() for p in (ROOT / "charrnn").rglob("*.py")
            if not (p.name == "__init__.py" and p.parent.name != "charrnn"
                    and p.parent.name not in ("api",))}
    assert sorted(real - listed) == [], "modules missing from README's Layout"
    assert sorted(listed - real) == [], "README's Layout lists modules that do not exist"


def test_layout_check_can_fail():
    md = "## Layout\n\n    charrnn/a.py   x\n    charrnn/nn/\n      b.py   y\n\n## Next\n"
    assert layout_modules(md) == {"charrnn/a.py", "charrnn/nn/b.py"}
