"""docs/cli.md, written from the click definitions themselves:

    python -m charrnn.cli.docgen > docs/cli.md

Every command with its usage, its help text and its options, under the same
headings and in the same words as `--help` (tests/project/test_docs.py checks that
the file in the repository is this output)."""
from __future__ import annotations

import click

from charrnn.cli.commands import CTX, CharRNNCommand, cli

HEADER = """# Command-line reference

Generated from the click definitions by `python -m charrnn.cli.docgen > docs/cli.md`
(tests/project/test_docs.py fails when this file and the code disagree): every command,
every option, its default, as `charrnn COMMAND --help` prints them.
"""


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _help_text(text: str) -> list[str]:
    """A click help text as Markdown: paragraphs, with '\\b' blocks kept as
    they are written (indented code)."""
    out = []
    for para in (text or "").strip().split("\n\n"):
        lines = para.splitlines()
        if lines and lines[0].strip() == "\b":
            out += ["    " + l.strip() for l in lines[1:]] + [""]
        else:
            out += [" ".join(l.strip() for l in lines), ""]
    return out


def _table(records) -> list[str]:
    rows = ["| option | meaning |", "| --- | --- |"]
    rows += [f"| `{_cell(name)}` | {_cell(help_)} |" for name, help_ in records]
    return rows + [""]


def markdown(group: click.Group = cli) -> str:
    root = click.Context(group, info_name="charrnn", **CTX)
    lines = [HEADER, "## charrnn", "", f"    charrnn {' '.join(group.collect_usage_pieces(root))}",
             ""]
    lines += _help_text(group.help)
    lines += _table([p.get_help_record(root) for p in group.get_params(root)
                     if isinstance(p, click.Option) and p.get_help_record(root)])
    first = [n for n in ("train", "sample", "inspect", "eval") if n in group.commands]
    for name in first + sorted(set(group.commands) - set(first)):
        command = group.commands[name]
        ctx = click.Context(command, info_name=name, parent=root, **command.context_settings)
        lines += [f"## charrnn {name}", "",
                  f"    charrnn {name} {' '.join(command.collect_usage_pieces(ctx))}", ""]
        lines += _help_text(command.help)
        sections = command.option_sections(ctx) if isinstance(command, CharRNNCommand) else \
            [("Options", None, [p.get_help_record(ctx) for p in command.get_params(ctx)
                                if p.get_help_record(ctx)])]
        for title, text, records in sections:
            if len(sections) > 1:
                lines += [f"### {title}", ""]
                if text:
                    lines += [text, ""]
            lines += _table(records)
    return "\n".join(lines).rstrip("\n") + "\n"


def main() -> None:
    import sys
    sys.stdout.write(markdown())


if __name__ == "__main__":
    main()
