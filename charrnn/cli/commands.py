"""Command line: parsing, validation and friendly errors only; logic lives elsewhere."""
from __future__ import annotations

import json
import math
import os
import sys

import click

from charrnn import __version__
from charrnn.errors import CharRNNError
from charrnn.cli.output import silence_stdout
from charrnn.api.options import (DEFAULT_GROUP, HELP_GROUPS, POSITIVE_INT, GroupedOption,
                                 checkpoint_dir_option, train_params)
from charrnn.generate import OOV_MODES
from charrnn.nn.names import STATE_PARTS
from charrnn.cli.progress import is_terminal as _is_tty
CTX = {"help_option_names": ["-h", "--help"], "show_default": True}


class _UserError(click.ClickException):
    """A CharRNNError on its way out: one line, its own exit code."""

    def __init__(self, message, exit_code=1):
        super().__init__(message)
        self.exit_code = exit_code


# Exit code when the reader of stdout goes away (`charrnn sample | head`): the
# reader asked for less, which is not a failure, so `set -o pipefail` scripts
# keep working.
PIPE_CLOSED_EXIT = 0


class _UsageHint(Exception):
    """A command run without its required arguments: one line, exit 2."""

    def __init__(self, message):
        super().__init__(message)
        self.message = message


class _Interrupted(Exception):
    """Ctrl-C outside the training loop (which handles it itself)."""


DEBUG_HELP = "Show full tracebacks instead of one-line messages."


def _set_debug(ctx, param, value):
    if value:
        ctx.meta["charrnn.debug"] = True


class CharRNNCommand(click.Command):
    """A command whose float options must be finite: click's FloatRange lets
    'nan' through every bound, and 'inf' through open ones.  Every command
    takes --debug too (`charrnn train --debug` as `charrnn --debug train`),
    and with grouped_help, --help lists the options under the headings of
    HELP_GROUPS (each GroupedOption names its own; the others go under
    DEFAULT_GROUP)."""

    grouped_help = False

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.params.append(GroupedOption(["--debug"], is_flag=True, expose_value=False,
                                         callback=_set_debug, group="output", help=DEBUG_HELP))

    def option_sections(self, ctx) -> list[tuple[str, str | None, list]]:
        """[(heading, text under it, [(option, help) records])] as --help
        shows them: one "Options" section, or with grouped_help the
        HELP_GROUPS in order, groups they do not name, then DEFAULT_GROUP."""
        rows: dict = {}
        help_option = self.get_help_option(ctx)
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx) if isinstance(param, click.Option) else None
            if record is not None:
                group = "output" if param is help_option else getattr(param, "help_group", None)
                rows.setdefault(group if self.grouped_help else None, []).append(record)
        if not self.grouped_help:
            return [("Options", None, rows.get(None, []))]
        order = list(HELP_GROUPS) + sorted(k for k in rows if k and k not in HELP_GROUPS)
        out = []
        for key in order + [None]:
            if key in rows:
                title, text = HELP_GROUPS.get(key, (str(key).capitalize(), None)) if key \
                    else DEFAULT_GROUP
                out.append((title, text, rows[key]))
        return out

    def format_options(self, ctx, formatter):
        for title, text, records in self.option_sections(ctx):
            with formatter.section(title):
                if text:
                    formatter.write_text(text)
                formatter.write_dl(records)

    def parse_args(self, ctx, args):
        if not args and not ctx.resilient_parsing and any(
                isinstance(p, click.Argument) and p.required for p in self.params):
            # `charrnn train` alone: a one-line hint, exit 2 (whatever click's version)
            raise _UsageHint(f"usage: {ctx.command_path} "
                             f"{' '.join(self.collect_usage_pieces(ctx))} "
                             f"(see '{ctx.command_path} --help')")
        rest = super().parse_args(ctx, args)
        for param in self.params:
            value = ctx.params.get(param.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise click.BadParameter(f"{value} is not a finite number", ctx=ctx, param=param)
        return rest


class GroupedCommand(CharRNNCommand):
    """A command whose --help groups its options under headings."""

    grouped_help = True


class CharRNNGroup(click.Group):
    """Turns every failure into one stderr line and a meaningful exit code:
    0 ok (also when the reader of stdout goes away), 1 runtime error, 2 usage
    error, 130 interrupted."""

    def make_context(self, *args, **kw):
        # --version and --help print while the arguments are parsed.
        try:
            return super().make_context(*args, **kw)
        except BrokenPipeError:
            silence_stdout()
            raise click.exceptions.Exit(PIPE_CLOSED_EXIT)
        except OSError as e:
            raise _os_error(e)

    command_class = CharRNNCommand

    def parse_args(self, ctx, args):
        # A bare `charrnn` asks what there is: the help on stdout, exit 0.
        # (click 8.2+ would call it a usage error, exit 2; 8.1 printed help.)
        if not args and not ctx.resilient_parsing:
            click.echo(ctx.get_help(), color=ctx.color)
            ctx.exit(0)
        return super().parse_args(ctx, args)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except CharRNNError as e:
            if _debug(ctx):
                raise
            raise _UserError(str(e), e.exit_code)
        except KeyboardInterrupt:
            if _debug(ctx):
                raise
            raise _Interrupted()
        except BrokenPipeError:
            # Handled here, before click's own EPIPE handling (which exits 1).
            silence_stdout()
            raise click.exceptions.Exit(PIPE_CLOSED_EXIT)
        except OSError as e:
            # Verbs turn their own file errors into CharRNNError; what is left
            # is mostly stdout refusing text (a full disk): one line, exit 1.
            if _debug(ctx):
                raise
            raise _os_error(e)

    def main(self, args=None, prog_name=None, standalone_mode=True, **extra):
        try:
            rv = super().main(args=args, prog_name=prog_name or "charrnn",
                              standalone_mode=False, **extra)
            code = rv if isinstance(rv, int) else 0
        except _UsageHint as e:
            click.echo(e.message, err=True)
            code = 2
        except click.UsageError as e:
            where = e.ctx.command_path if e.ctx else "charrnn"
            click.echo(f"{where}: error: {e.format_message()} (see '{where} --help')", err=True)
            code = 2
        except click.ClickException as e:
            click.echo(f"charrnn: error: {e.format_message()}", err=True)
            code = e.exit_code
        except (click.Abort, _Interrupted):
            click.echo("charrnn: interrupted", err=True)
            code = 130
        except BrokenPipeError:
            # The reader went away (e.g. `| head`): stop quietly, like a Unix filter.
            silence_stdout()
            code = PIPE_CLOSED_EXIT
        code = _flush_stdout(code)
        if not standalone_mode:
            return code
        sys.exit(code)


def _os_error(e: OSError) -> "_UserError":
    silence_stdout()        # the interpreter's last flush would fail the same way
    what = e.strerror or str(e)
    return _UserError(f"{e.filename}: {what}" if e.filename else f"cannot write output: {what}", 1)


def _flush_stdout(code: int) -> int:
    """Flush now, so a closed pipe is not first noticed by the interpreter's
    flush at exit (which would print 'Exception ignored' and exit 120).
    Returns the exit code: unchanged when the reader went away, 1 when
    stdout cannot take the text (e.g. a full disk)."""
    try:
        if sys.stdout is not None:
            sys.stdout.flush()
    except BrokenPipeError:
        silence_stdout()
    except OSError as e:
        click.echo(f"charrnn: error: cannot write to stdout ({e.strerror})", err=True)
        silence_stdout()
        return code or 1
    return code


def _debug(ctx):
    """--debug given before the command (the group's) or after it (the command's)."""
    root = ctx.find_root()
    return bool(root.params.get("debug")) or bool(ctx.meta.get("charrnn.debug"))


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\"}


def unescape(text: str) -> str:
    """Turn the escapes \\n, \\t, \\r and \\\\ into their characters; leave any other
    backslash alone."""
    out, i = [], 0
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text) and text[i + 1] in _ESCAPES:
            out.append(_ESCAPES[text[i + 1]])
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def argv_text(value: str) -> str:
    """Command-line text as the user typed it.

    Under a C/POSIX locale (LC_ALL=C without UTF-8 mode) Python decodes argv
    as ASCII with surrogateescape, so 'café' arrives as 'caf\\udcc3\\udca9'.
    os.fsencode gives the original bytes back, read here as UTF-8 (what
    terminals send).  Raises UnicodeError when the bytes are not UTF-8.
    """
    if not any("\udc80" <= c <= "\udcff" for c in value):
        return value
    return os.fsencode(value).decode("utf-8")


class ArgvText(click.ParamType):
    """Free text from the command line, recovered under a C locale (argv_text);
    text that is not UTF-8 is refused with a pointer to FILE_OPTION."""
    name = "TEXT"

    def __init__(self, file_option: str | None = None):
        self.file_option = file_option

    def convert(self, value, param, ctx):
        try:
            return argv_text(value)
        except UnicodeError:
            where = (f"; put the text in a UTF-8 file and pass {self.file_option} FILE"
                     if self.file_option else "; use UTF-8 text")
            self.fail(f"the command line's bytes are not UTF-8 (locale encoding "
                      f"{sys.getfilesystemencoding()}){where}", param, ctx)


class EscapedText(ArgvText):
    """A string in which \\n, \\t, \\r and \\\\ stand for newline, tab, CR, backslash."""
    name = "TEXT"

    def __init__(self, allow_empty=True):
        super().__init__()
        self.allow_empty = allow_empty

    def convert(self, value, param, ctx):
        text = unescape(super().convert(value, param, ctx))
        if not text and not self.allow_empty:
            self.fail("must not be empty", param, ctx)
        return text



def dir_option(f):
    """The --checkpoint-dir option of the verbs that read checkpoints."""
    f.__dict__.setdefault("__click_params__", []).append(checkpoint_dir_option())
    return f


@click.group(cls=CharRNNGroup, context_settings=CTX)
@click.version_option(__version__, prog_name="charrnn")
@click.option("--debug", is_flag=True, envvar="CHARRNN_DEBUG", show_envvar=True,
              help=DEBUG_HELP)
def cli(debug):
    """Train character-level language models on your text and sample from them.

    \b
      charrnn train input.txt --max-time 10m   # checkpoints land in checkpoints/
      charrnn sample --len 500                 # text to stdout
      charrnn inspect                          # what a checkpoint holds
      charrnn eval held-out.txt                # loss on any text
    """


@cli.command(cls=GroupedCommand, context_settings=CTX, params=train_params(),
             short_help="Train a model on FILES and save checkpoints.")
@click.argument("files", nargs=-1, required=True, type=click.Path(allow_dash=True))
@click.option("-q", "--quiet", is_flag=True, cls=GroupedOption, group="output",
              help="No progress bar or summary on stderr.")
def train(files, quiet, **options):
    """Train a model on FILES (files and folders) and save checkpoints.

    Each file is a document; they are read in the order given, a folder's
    text files recursively, sorted by path (hidden and binary files are
    skipped, one line each), and each document starts on a new line.  '-'
    reads the text from stdin (cat corpus.txt | charrnn train -).

    latest.npz is written at every evaluation and at the end; best.npz holds
    the lowest validation loss so far.  Ctrl-C (or SIGTERM) stops cleanly after
    saving latest.npz; `charrnn train FILES --resume` continues from it.
    """
    from charrnn import api
    from charrnn.cli.progress import TrainPrinter
    from charrnn.runs.signals import StopFlag
    ctx = click.get_current_context()
    if options["resume"] is not None and options["init_from"] is not None:
        raise click.UsageError("--resume continues a run and --init-from starts a new one; "
                               "pass only one of them", ctx=ctx)
    # What the user set (command line or environment), as charrnn.train's
    # keyword arguments: the rest takes the library's defaults, which are
    # these options' defaults; only these may contradict a resumed checkpoint.
    given = {k: v for k, v in options.items() if _given(ctx, k)}
    if given.get("doc_separator") is not None:
        try:
            given["doc_separator"] = unescape(argv_text(given["doc_separator"]))
        except UnicodeError:
            raise click.BadParameter("the command line's bytes are not UTF-8", ctx=ctx,
                                     param_hint="--doc-separator")
    if not quiet and "-" in files and _is_tty(sys.stdin):
        print("reading the training text from stdin (end it with Ctrl-D)", file=sys.stderr)
    printer = TrainPrinter(quiet)
    # Signals stay deferred until the final line is out: a second Ctrl-C
    # neither cuts the last save short nor adds a traceback.
    with StopFlag(linger=_STANDALONE) as stop:
        try:
            result = api.train(list(files), progress=printer, _stop=stop, **given)
        finally:
            printer.close()
        code = printer.finish(result)
    ctx.exit(code)


@cli.command(context_settings=CTX, short_help="Write generated text to stdout.")
@click.option("--checkpoint", type=click.Path(), default=None,
              help="Checkpoint to sample from  [default: best.npz, else latest.npz, "
                   "in --checkpoint-dir]")
@dir_option
@click.option("--len", "length", type=click.IntRange(min=0), default=200,
              help="Number of characters to generate per sample (an echoed prime is extra).")
@click.option("--temperature", type=click.FloatRange(min=0, min_open=True), default=1.0,
              help="Softmax temperature: lower is safer, higher is wilder; must be > 0.")
@click.option("--prime", type=ArgvText("--prime-file"), default="",
              help="Text to start from; it is echoed before the sample.")
@click.option("--seed", type=click.IntRange(min=0), default=None,
              help="Seed for the random draws (default: different every run).")
# -- decoding and pipeline controls --------------------------------------
@click.option("--prime-file", type=click.Path(dir_okay=False, allow_dash=True), default=None,
              help="Read the prime from this UTF-8 file, verbatim; '-' reads stdin.")
@click.option("--no-echo-prime", "no_echo", is_flag=True,
              help="Do not print the prime; the continuation is the same as with it.")
@click.option("--top-k", type=POSITIVE_INT, default=None,
              help="Draw only from the K most likely characters (default: all).")
@click.option("--top-p", type=click.FloatRange(0, 1, min_open=True), default=None,
              help="Nucleus sampling: draw only from the smallest set of most likely "
                   "characters whose probability adds up to >= P (default: all).")
@click.option("--argmax", is_flag=True,
              help="Greedy: always the most likely character (ignores --seed).")
@click.option("--beam-width", type=POSITIVE_INT, default=None,
              help="Beam search with W beams for the most likely continuation, instead "
                   "of sampling (deterministic).")
@click.option("--num-samples", type=POSITIVE_INT, default=1,
              help="How many samples, generated side by side (with --beam-width: the N best "
                   "beams, N <= W).")
@click.option("--separator", type=EscapedText(), default="\\n\\n",
              help="Written between samples (not after the last); \\n, \\t, \\r and \\\\ "
                   "are escapes.")
@click.option("--until", "until", type=EscapedText(allow_empty=False), multiple=True,
              metavar="STRING",
              help="Stop a sample right after STRING appears (kept); repeatable; "
                   "escapes as in --separator.")
@click.option("--stream", is_flag=True,
              help="Write each character as soon as it is generated (flushed); with "
                   "--num-samples, each sample once the ones before it are written.")
@click.option("--no-newline", is_flag=True, help="No newline after the last sample.")
@click.option("--copies", "copies_min", type=POSITIVE_INT, is_flag=False, flag_value=20,
              default=None, metavar="[N]",
              help="Once the sample is written, say on stderr how much of it (without the "
                   "prime) was copied verbatim from the checkpoint's training text: the "
                   "longest copy and the share in copies of N or more characters  [default "
                   "N: 20; see 'charrnn copies']")
@click.pass_context
def sample(ctx, checkpoint, checkpoint_dir, length, temperature, prime, seed, prime_file,
           no_echo, top_k, top_p, argmax, beam_width, num_samples, separator, until, stream,
           no_newline, copies_min):
    """Write generated text to stdout (UTF-8) and nothing else.

    \b
      charrnn sample --len 500 --temperature 0.8 --top-p 0.95
      printf 'ROMEO:' | charrnn sample --prime-file - --until '\\n\\n'
      charrnn sample --len 100000 --stream | head -c 100
    """
    from charrnn.api import verbs as commands
    from charrnn.cli.output import binary_stdout, write_text
    _check_sample_options(ctx, prime_file, beam_width, num_samples)
    if prime_file is not None:
        if prime_file == "-" and _is_tty(sys.stdin):
            print("reading the prime from stdin (end it with Ctrl-D)", file=sys.stderr)
        prime = commands.read_prime(prime_file)
    record, text = None, None
    if copies_min is not None:
        # the training text is found (or refused) before anything is generated
        checkpoint = commands.find_checkpoint(checkpoint, checkpoint_dir)
        text, record = commands.training_text(checkpoint), []
    pieces = commands.sample_pieces(
        checkpoint, checkpoint_dir, length, temperature, prime, seed, top_k=top_k, top_p=top_p,
        argmax=argmax, num_samples=num_samples, separator=separator, until=until,
        echo_prime=not no_echo, beam_width=beam_width,
        newline=not no_newline, record=record)
    write_text(pieces, binary_stdout(), flush_each=stream)
    if text is not None:
        from charrnn.views.copies import sample_line
        sys.stdout.flush()
        reports = commands.copy_reports(["".join(p) for p in record], text, copies_min)
        for k, r in enumerate(reports):
            click.echo(sample_line(r, k + 1 if len(reports) > 1 else None), err=True)


def _given(ctx, name) -> bool:
    """Was option ``name`` set on the command line or by an env var (not a default)?"""
    src = ctx.get_parameter_source(name)
    return src is not None and src not in (click.core.ParameterSource.DEFAULT,
                                           click.core.ParameterSource.DEFAULT_MAP)


def _check_sample_options(ctx, prime_file, beam_width, num_samples):
    """Flags that contradict each other are usage errors (exit 2), never silently ignored."""
    if prime_file is not None and _given(ctx, "prime"):
        raise click.UsageError("--prime and --prime-file cannot be used together", ctx)
    if beam_width:
        for name in ("temperature", "top_k", "top_p", "argmax"):
            if _given(ctx, name):
                flag = "--" + name.replace("_", "-")
                raise click.UsageError(f"--beam-width searches instead of sampling; drop {flag}",
                                       ctx)
        if num_samples > beam_width:
            raise click.UsageError(f"--num-samples {num_samples} needs --beam-width of at "
                                   f"least {num_samples}", ctx)
    elif _given(ctx, "argmax"):
        for name in ("temperature", "top_k", "top_p"):
            if _given(ctx, name):
                flag = "--" + name.replace("_", "-")
                raise click.UsageError(f"--argmax always takes the most likely character; "
                                       f"drop {flag}", ctx)


@cli.command(context_settings=CTX,
             short_help="What a checkpoint holds and how its training went.")
@click.argument("checkpoint", required=False, type=click.Path())
@dir_option
@click.option("--json", "as_json", is_flag=True, help="Print everything as one JSON object.")
@click.option("--plot", type=click.Path(dir_okay=False), default=None,
              help="Also write the loss curves to this .png, .svg or .pdf "
                   "(needs: pip install 'charrnn[plot]').")
@click.option("--cells", "cells_text", type=ArgvText("--cells-file"), default=None,
              metavar="TEXT",
              help="Run the model over TEXT and show hidden units and surprise instead.")
@click.option("--cells-file", type=click.Path(dir_okay=False, allow_dash=True), default=None,
              help="Like --cells, with the text of a UTF-8 file ('-': stdin).")
@click.option("--unit", "unit_ids", type=click.IntRange(min=0), multiple=True,
              help="Unit to show (repeatable; default: the most interesting ones).")
@click.option("--layer", type=click.IntRange(min=0), default=None,
              help="Layer of --unit, 0 next to the input  [default: the top layer; "
                   "all layers when ranking]")
@click.option("--state", "part", type=click.Choice(STATE_PARTS), default=None,
              help="Show outputs h, or LSTM cell states c (as tanh(c))  [default: c for lstm]")
@click.option("--top", type=click.IntRange(min=0), default=3,
              help="Without --unit: how many units to pick.  Each unit is scored by its "
                   "largest |Pearson r| with five features of the text: inside quotes, "
                   "inside brackets, position in the line, position in the word, in a line "
                   "of capitals so far; the best "
                   "unit for each feature comes first, then the next best overall.")
@click.option("--surprise", is_flag=True,
              help="Also colour each character by the model's loss on it and list "
                   "top predictions.")
@click.option("--at", "positions", type=click.IntRange(min=0), multiple=True,
              help="List the predictions for the character at this position, 0-based "
                   "(repeatable; implies --surprise, which otherwise lists the 5 most "
                   "surprising characters).")
@click.option("--top-k", type=click.IntRange(min=1), default=5,
              help="Predictions listed per position.")
@click.option("--html", "html_out", type=click.Path(dir_okay=False), default=None,
              help="Write a self-contained HTML page of the view; hover shows predictions.")
@click.option("--gradients", "gradients_file", type=click.Path(dir_okay=False, allow_dash=True),
              default=None, metavar="TEXT_FILE",
              help="Show how the gradient of the loss flows back through time on this text: "
                   "per layer, the mean norm of dL_t/dstate(t-k) for k = 0..--lags (log scale).")
@click.option("--lags", type=click.IntRange(min=1, max=1000), default=50, show_default=True,
              help="With --gradients: how many characters back.")
@click.option("--max-chars", type=click.IntRange(min=2), default=10_000, show_default=True,
              help="With --gradients: read at most this many characters of the text.")
@click.option("--color", "--colour", "colour", type=click.Choice(["auto", "always", "never"]),
              default="auto", help="ANSI colours; auto: only on a terminal and if NO_COLOR "
                                   "is unset (else plain markers).")
def inspect(checkpoint, checkpoint_dir, as_json, plot, cells_text, cells_file, html_out,
            colour, gradients_file, lags, max_chars, **view_opts):
    """Show what CHECKPOINT holds and how its training went, with the loss
    curves; or, with --cells, what its hidden units do on a text.

    CHECKPOINT defaults to latest.npz (else best.npz) in --checkpoint-dir.
    """
    from charrnn.api import verbs as commands
    ctx = click.get_current_context()
    if gradients_file is None:
        for name in ("lags", "max_chars"):
            if _given(ctx, name):
                raise click.UsageError(f"--{name.replace('_', '-')} goes with --gradients TEXT_FILE")
    elif cells_text is not None or cells_file is not None:
        raise click.UsageError("--gradients and --cells are two views; use one at a time")
    else:
        flow = commands.gradients(checkpoint, checkpoint_dir, gradients_file, lags, max_chars,
                                  plot)
        if plot:
            click.echo(f"wrote {plot}", err=True)
        if as_json:
            click.echo(json.dumps(flow, indent=2))
        else:
            from charrnn.views.gradview import summary_lines, text_chart
            from charrnn.views.render import use_colour
            head = (f"{flow['checkpoint']}: {flow['model']}, {flow['chars_used']:,} characters "
                    f"of {flow['file']}")
            click.echo("\n".join([head, ""] + text_chart(flow, colour=use_colour(colour, sys.stdout))
                                 + [""] + summary_lines(flow)), color=True)
        return
    if cells_text is not None and cells_file is not None:
        raise click.UsageError("give --cells TEXT or --cells-file FILE, not both")
    if cells_text is None and cells_file is None:
        used = [name for name, v in (("--unit", view_opts["unit_ids"]),
                                     ("--layer", view_opts["layer"] is not None),
                                     ("--state", view_opts["part"]),
                                     ("--surprise", view_opts["surprise"]),
                                     ("--at", view_opts["positions"]), ("--html", html_out)) if v]
        if used:
            raise click.UsageError(f"{used[0]} needs --cells TEXT or --cells-file FILE")
        s = commands.inspect(checkpoint, checkpoint_dir, plot=plot)
        if plot:
            click.echo(f"wrote {plot}", err=True)
        if as_json:
            click.echo(json.dumps(s, indent=2))
        else:
            from charrnn.views.inspect import format_summary
            click.echo(format_summary(s))
        return
    if plot:
        raise click.UsageError("--plot draws the loss curves; use it without --cells")
    view_opts["surprise"] = view_opts["surprise"] or bool(view_opts["positions"])
    view = commands.cells(checkpoint, checkpoint_dir, cells_text, cells_file, html_out,
                          **view_opts)
    if html_out:
        click.echo(f"wrote {html_out}", err=True)
    if as_json:
        click.echo(json.dumps(view, indent=2, ensure_ascii=False))
    else:
        from charrnn.views.cellview import format_view
        from charrnn.views.render import use_colour
        click.echo(format_view(view, use_colour(colour, sys.stdout), view_opts["surprise"]),
                   color=True)


@cli.command(context_settings=CTX,
             short_help="How much of a generated text was copied from the training text.")
@click.argument("file", required=False, default="-",
                type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--checkpoint", type=click.Path(), default=None,
              help="The model whose training text is the reference  [default: best.npz, else "
                   "latest.npz, in --checkpoint-dir]")
@dir_option
@click.option("--text", "text_paths", type=click.Path(), multiple=True, metavar="PATH",
              help="The training text (files and folders; repeatable).  Alone: compare with "
                   "this text as 'charrnn train' reads it by default.  With --checkpoint: "
                   "read it as the checkpoint read its text, and refuse it unless it is "
                   "that text (the checkpoint's record names it otherwise).")
@click.option("--min-len", type=POSITIVE_INT, default=20, metavar="N",
              help="Count copies of at least N characters in the share.  20 (about four "
                   "words) is where new text by the same hand stops matching: see "
                   "docs/copies.md.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object.")
@click.pass_context
def copies(ctx, file, checkpoint, checkpoint_dir, text_paths, min_len, as_json):
    """How much of a generated text (FILE, default stdin) was copied
    verbatim from the training text: the longest copied span and where it
    occurs, and the share of characters inside copied spans of --min-len
    characters or more.

    The training text is the one the checkpoint's record names, checked
    against its fingerprint; it is read once, in chunks, so memory follows
    the size of FILE, not of the training text.

    \b
      charrnn sample --len 2000 --seed 1 > sample.txt
      charrnn copies sample.txt
    """
    from charrnn.api import verbs as commands
    # --text alone compares with any text; a checkpoint named on the command
    # line (not by CHARRNN_CHECKPOINT_DIR) makes --text its training text
    typed = ctx.get_parameter_source("checkpoint_dir") == click.core.ParameterSource.COMMANDLINE
    use_checkpoint = not text_paths or checkpoint is not None or typed
    if file == "-" and _is_tty(sys.stdin):
        print("reading the text to check from stdin (end it with Ctrl-D)", file=sys.stderr)
    r = commands.copies(file, checkpoint, checkpoint_dir, text_paths, min_len, use_checkpoint)
    if as_json:
        click.echo(json.dumps(r, indent=2, ensure_ascii=False))
    else:
        from charrnn.views.copies import format_report
        click.echo(format_report(r))


@cli.command("eval", context_settings=CTX,
             short_help="Loss of a checkpoint on a text (nats/char, bits/char).")
@click.argument("file", type=click.Path(allow_dash=True))
@click.option("--checkpoint", type=click.Path(), default=None,
              help="Checkpoint to evaluate  [default: best.npz, else latest.npz, "
                   "in --checkpoint-dir]")
@dir_option
@click.option("--oov", type=click.Choice(OOV_MODES), default="skip",
              help="Characters outside the vocabulary are counted, not scored, and either "
                   "skipped (the model reads on as if they were absent) or reset the model "
                   "(each piece between them is read from a fresh state).")
@click.option("--exact", is_flag=True,
              help="Read the text as one stream, character by character (slow on long "
                   "texts), instead of segments side by side, each warmed up on at least "
                   "the 500 characters before it, from a line start.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
def eval_(file, checkpoint, checkpoint_dir, oov, exact, as_json):
    """Loss of a checkpoint on the text in FILE ('-': stdin): nats/char,
    bits/char and perplexity.  The first character (and the first after each
    reset) is context only and not scored.
    """
    from charrnn.api import verbs as commands
    from charrnn.cli.progress import CharBar
    with CharBar() as bar:
        r = commands.score_file(file, checkpoint, checkpoint_dir, oov, exact, progress=bar)
    if as_json:
        click.echo(json.dumps(r, indent=2, ensure_ascii=False))
    else:
        from charrnn.generate.scoring import format_result
        click.echo(format_result(r))


@cli.command(context_settings=CTX,
             short_help="The model as one offline HTML page that writes text.")
@click.argument("out", type=click.Path(dir_okay=False), metavar="OUT.html")
@click.option("--checkpoint", type=click.Path(dir_okay=False), default=None,
              help="Checkpoint to export  [default: best.npz, else latest.npz, "
                   "in --checkpoint-dir]")
@dir_option
@click.option("--overwrite", is_flag=True, help="Replace OUT.html if it exists.")
def export(out, checkpoint, checkpoint_dir, overwrite):
    """Write the model as one self-contained HTML page, OUT.html, that
    generates text in a browser, offline: open it from disk or send it to
    anyone.  It has the controls of `charrnn sample` (prime, length,
    temperature, top-k, top-p, seed, greedy) and a Stop button.

    \b
      charrnn export model.html
      charrnn export shakespeare.html --checkpoint run/latest.npz
    """
    from charrnn.api import verbs as commands
    r = commands.export(out, checkpoint, checkpoint_dir, overwrite)
    size = (f"{r['bytes'] / 1e6:.1f} MB" if r["bytes"] >= 1e6 else f"{r['bytes'] / 1e3:.0f} kB")
    click.echo(f"wrote {r['path']} ({size}): {r['model']}, from {r['checkpoint']}", err=True)


def _utf8_stdio():
    """stdout is UTF-8 whatever the locale (PYTHONIOENCODING=ascii, LANG=C);
    stderr never fails on a character its encoding lacks."""
    try:
        if sys.stdout is not None and (sys.stdout.encoding or "").lower().replace("-", "") != "utf8":
            sys.stdout.reconfigure(encoding="utf-8")
        if sys.stderr is not None:
            sys.stderr.reconfigure(errors="backslashreplace")
    except (AttributeError, ValueError, OSError):
        pass


_STANDALONE = False      # True when running as the `charrnn` process itself


def main():
    global _STANDALONE
    _STANDALONE = True
    from charrnn.nn.blas import configure_env
    configure_env()     # before numpy loads: BLAS threads and kernels (charrnn/nn/blas.py)
    _utf8_stdio()
    cli(prog_name="charrnn")


if __name__ == "__main__":  # pragma: no cover
    main()
