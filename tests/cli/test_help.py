"""What --help says: `charrnn train --help` groups its options under
headings, says the planner's sentence once, every command summary of
`charrnn --help` is whole, and --debug goes before or after the command."""
from __future__ import annotations

import re

import click
import pytest
from click.testing import CliRunner

from charrnn.api.options import CHOSEN, DEFAULT_GROUP, HELP_GROUPS, PLANNED_NOTE, GroupedOption
from charrnn.cli.commands import DEBUG_HELP, CharRNNCommand, GroupedCommand, cli
from charrnn.errors import CharRNNError, DataError
from charrnn.runs.sizing import EMBED_FIELDS, SHAPE_FIELDS, SIZE_FIELDS

from conftest import CLEAN_ENV

TITLES = [title for title, _ in HELP_GROUPS.values()]


def _help(*args, width=80) -> str:
    r = CliRunner(env=CLEAN_ENV).invoke(cli, [*args, "--help"], prog_name="charrnn",
                                        terminal_width=width)
    assert r.exit_code == 0, r.output
    return r.stdout


def sections(text: str) -> dict:
    """Heading -> the option names listed under it (a heading is a line
    'Title:' at the left margin, after the usage)."""
    out, current = {}, None
    for line in text.splitlines()[1:]:
        m = re.fullmatch(r"([A-Z][A-Za-z ]*):", line)
        if m:
            assert m.group(1) not in out, f"heading {m.group(1)!r} twice"
            current = out.setdefault(m.group(1), [])
        elif current is not None and re.match(r"  -", line):
            current += re.findall(r"(?<![\w-])(--?[a-z][\w-]*)", line.split("  ")[1])
    return out


def test_train_help_groups_every_option_under_the_headings_in_order():
    found = sections(_help("train"))
    assert list(found) == ["Model", "Budget and schedule", "Optimizer", "Data", "Checkpoints",
                           "Output"]
    assert list(found) == TITLES
    listed = [name for names in found.values() for name in names]
    command = cli.commands["train"]
    real = [o for p in command.params if isinstance(p, click.Option) for o in p.opts]
    assert sorted(listed) == sorted(real + ["-h", "--help"])        # each once
    assert found["Model"][0] == "--model"
    assert found["Budget and schedule"][:2] == ["--max-time", "--max-iters"]
    assert "--lr" in found["Optimizer"] and "--encoding" in found["Data"]
    assert "--resume" in found["Checkpoints"] and "--quiet" in found["Output"]
    assert "--debug" in found["Output"] and "--help" in found["Output"]


def test_the_planner_sentence_is_said_once_and_marks_the_options_it_covers():
    text = _help("train", width=200)            # one line per option: no wrapped marks
    assert text.count("chosen for the text and the budget") == 1
    assert PLANNED_NOTE in text
    marked = {p.name for p in cli.commands["train"].params
              if isinstance(p, click.Option) and p.help and p.help.endswith(CHOSEN)}
    assert marked == set(SIZE_FIELDS + SHAPE_FIELDS + EMBED_FIELDS)
    for name in marked:
        line = next(l for l in text.splitlines() if f"--{name.replace('_', '-')} " in l)
        assert "(*)" in line, line


def test_an_option_without_a_group_falls_into_the_default_group():
    """What another branch's new option (no group declared) looks like."""
    def nothing(**kw):
        pass
    cmd = GroupedCommand("demo", callback=nothing, params=[
        GroupedOption(["--size"], group="model", help="A size."),
        click.Option(["--plain"], help="Declared with click alone."),
        GroupedOption(["--odd"], group="novel", help="A group with no heading yet."),
    ])
    text = CliRunner().invoke(cmd, ["--help"]).stdout
    found = sections(text)
    assert found["Model"] == ["--size"]
    assert found[DEFAULT_GROUP[0]] == ["--plain"]
    assert found["Novel"] == ["--odd"]
    assert list(found).index("Novel") < list(found).index(DEFAULT_GROUP[0])


def test_every_command_class_adds_a_debug_flag_that_marks_the_context():
    """Built here, in the test (the verbs are built when the module loads)."""
    seen = []

    def callback(**kw):
        seen.append((kw, click.get_current_context().meta.get("charrnn.debug")))
    cmd = CharRNNCommand("demo", callback=callback, params=[click.Option(["--n"], default=1)])
    assert CliRunner().invoke(cmd, ["--debug"]).exit_code == 0
    assert CliRunner().invoke(cmd, []).exit_code == 0
    assert seen == [({"n": 1}, True), ({"n": 1}, None)]
    text = CliRunner().invoke(GroupedCommand("demo", callback=callback), ["--help"]).stdout
    assert sections(text) == {"Output": ["--debug", "--help"]}
    assert DEBUG_HELP in " ".join(text.split())


def test_other_commands_keep_one_options_list():
    found = sections(_help("sample"))
    assert list(found) == ["Options"]
    assert found["Options"][-3:] == ["--debug", "-h", "--help"]
    assert "--temperature" in found["Options"]


def test_every_command_summary_fits_its_line():
    """Whole on its line of an 80-column `charrnn --help`, not cut with '...'."""
    text = _help(width=80)
    block = text[text.index("Commands:"):].splitlines()[1:]
    assert len(block) == len(cli.commands)
    for name, command in cli.commands.items():
        line = next(l for l in block if l.split()[0] == name)
        assert "..." not in line and len(line) <= 80, line
        assert command.short_help and line.split(None, 1)[1] == command.short_help


def _missing(tmp_path):
    return str(tmp_path / "missing.txt")


@pytest.mark.parametrize("where", ["before", "after"])
def test_debug_works_before_or_after_the_command(tmp_path, where):
    args = ["train", _missing(tmp_path), "--checkpoint-dir", str(tmp_path / "ck")]
    args = ["--debug"] + args if where == "before" else args[:1] + ["--debug"] + args[1:]
    r = CliRunner(env=CLEAN_ENV).invoke(cli, args, prog_name="charrnn")
    assert isinstance(r.exception, DataError), (r.exception, r.output)


@pytest.mark.parametrize("verb", ["sample", "inspect", "eval"])
def test_every_command_takes_debug(tmp_path, verb):
    args = {"sample": ["sample", "--checkpoint", _missing(tmp_path), "--debug"],
            "inspect": ["inspect", _missing(tmp_path), "--debug"],
            "eval": ["eval", _missing(tmp_path), "--debug"]}[verb]
    r = CliRunner(env=CLEAN_ENV).invoke(cli, args, prog_name="charrnn")
    assert isinstance(r.exception, CharRNNError), (r.exception, r.output)
    plain = CliRunner(env=CLEAN_ENV).invoke(cli, [a for a in args if a != "--debug"],
                                            prog_name="charrnn")
    assert plain.exit_code == 1 and plain.stderr.startswith("charrnn: error: ")
