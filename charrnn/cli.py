"""Command line: parsing, validation and friendly errors only; logic lives elsewhere."""
from __future__ import annotations

import json
import math
import os
import sys

import click

from . import __version__
from .config import TrainConfig, parse_duration
from .errors import CharRNNError

DEFAULT_DIR = "checkpoints"
CTX = {"help_option_names": ["-h", "--help"], "show_default": True}


class _UserError(click.ClickException):
    """A CharRNNError on its way out: one line, its own exit code."""

    def __init__(self, message, exit_code=1):
        super().__init__(message)
        self.exit_code = exit_code


class _Interrupted(Exception):
    """Ctrl-C outside the training loop (which handles it itself)."""


class CharRNNCommand(click.Command):
    """A command whose float options must be finite: click's FloatRange lets
    'nan' through every bound, and 'inf' through open ones."""

    def parse_args(self, ctx, args):
        rest = super().parse_args(ctx, args)
        for param in self.params:
            value = ctx.params.get(param.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise click.BadParameter(f"{value} is not a finite number", ctx=ctx, param=param)
        return rest


class CharRNNGroup(click.Group):
    """Turns every failure into one stderr line and a meaningful exit code:
    0 ok, 1 runtime error, 2 usage error, 130 interrupted."""

    command_class = CharRNNCommand

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

    def main(self, args=None, prog_name=None, standalone_mode=True, **extra):
        try:
            rv = super().main(args=args, prog_name=prog_name or "charrnn",
                              standalone_mode=False, **extra)
            code = rv if isinstance(rv, int) else 0
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
            _silence_stdout()
            code = 0
        if not standalone_mode:
            return code
        sys.exit(code)


def _silence_stdout():
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


def _debug(ctx):
    root = ctx.find_root()
    return bool(root.params.get("debug")) if root.params else False


class Duration(click.ParamType):
    """Seconds from '90', '90s', '10m', '1h' or '1h30m'."""
    name = "DURATION"

    def convert(self, value, param, ctx):
        if isinstance(value, (int, float)):
            return float(value)
        try:
            return parse_duration(value)
        except ValueError as e:
            self.fail(f"{e}; use e.g. 90s, 10m or 1h", param, ctx)


POSITIVE_INT = click.IntRange(min=1)
dir_option = click.option(
    "--checkpoint-dir", type=click.Path(file_okay=False), default=DEFAULT_DIR,
    envvar="CHARRNN_CHECKPOINT_DIR", show_envvar=True, help="Folder of checkpoints.")


@click.group(cls=CharRNNGroup, context_settings=CTX)
@click.version_option(__version__, prog_name="charrnn")
@click.option("--debug", is_flag=True, envvar="CHARRNN_DEBUG", show_envvar=True,
              help="Show full tracebacks instead of one-line errors.")
def cli(debug):
    """Train character-level language models on your text and sample from them.

    \b
      charrnn train input.txt --max-time 10m   # checkpoints land in checkpoints/
      charrnn sample --len 500                 # text to stdout
      charrnn inspect                          # what a checkpoint holds
    """


@cli.command(context_settings=CTX)
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--hidden-size", type=POSITIVE_INT, default=TrainConfig.hidden_size, help="Units per layer.")
@click.option("--seq-len", type=POSITIVE_INT, default=TrainConfig.seq_len,
              help="Characters per chunk of truncated backpropagation through time.")
@click.option("--batch-size", type=POSITIVE_INT, default=TrainConfig.batch_size,
              help="Parallel streams, each a contiguous slice of the text.")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=TrainConfig.lr,
              help="Learning rate.")
@click.option("--clip", type=click.FloatRange(min=0), default=TrainConfig.clip,
              help="Clip each gradient entry to [-CLIP, CLIP]; 0 turns clipping off.")
@click.option("--max-iters", type=POSITIVE_INT, default=None,
              help="Stop after this many iterations (default: no limit).")
@click.option("--max-time", type=Duration(), default=None,
              help="Stop after this much training time: 90s, 10m, 1h (default: no limit).")
@click.option("--val-frac", type=click.FloatRange(0, 1, max_open=True), default=TrainConfig.val_frac,
              help="Fraction at the end of the text held out for validation.")
@click.option("--eval-every", type=POSITIVE_INT, default=TrainConfig.eval_every,
              help="Evaluate and save checkpoints every N iterations.")
@dir_option
@click.option("--seed", type=click.IntRange(min=0), default=TrainConfig.seed,
              help="Seed for initialisation and everything random.")
@click.option("--sample-every", type=click.IntRange(min=0), default=0,
              help="Print a 200-character sample to stdout every N iterations (0: never).")
@click.option("--dtype", type=click.Choice(["float32", "float64"]), default=TrainConfig.dtype,
              help="Floating-point type of weights and arithmetic.")
@click.option("--overwrite", is_flag=True,
              help="Replace the checkpoints of an earlier run in --checkpoint-dir.")
@click.option("--resume", is_flag=False, flag_value="", default=None, metavar="[CHECKPOINT]",
              type=click.Path(dir_okay=False),
              help="Continue a stopped run exactly where it stopped  [default CHECKPOINT: "
                   "latest.npz in --checkpoint-dir]. Only --lr, --clip, --max-iters, "
                   "--max-time, --eval-every and --sample-every may change.")
@click.option("--init-from", type=click.Path(dir_okay=False), default=None, metavar="CHECKPOINT",
              help="Start a new run from CHECKPOINT's weights (fine-tuning); the text must use "
                   "only characters of its vocabulary.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar or summary on stderr.")
def train(files, checkpoint_dir, quiet, overwrite, resume, init_from, **opts):
    """Train a model on FILES (UTF-8 text) and save checkpoints.

    latest.npz is written at every evaluation and at the end; best.npz holds
    the lowest validation loss so far.  Ctrl-C (or SIGTERM) stops cleanly after
    saving latest.npz; `charrnn train FILES --resume` continues from it.
    """
    from . import commands
    ctx = click.get_current_context()
    if resume is not None and init_from is not None:
        raise click.UsageError("--resume continues a run and --init-from starts a new one; "
                               "pass only one of them", ctx=ctx)
    code = commands.train(list(files), checkpoint_dir, opts, quiet=quiet, overwrite=overwrite,
                          resume=resume, init_from=init_from, explicit=_explicit(ctx),
                          linger_signals=_STANDALONE)
    ctx.exit(code)


def _explicit(ctx) -> set:
    """Names of the parameters the user set (command line or environment), as
    opposed to defaults: only these can contradict a resumed checkpoint."""
    from click.core import ParameterSource
    given = (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT, ParameterSource.PROMPT)
    return {name for name in ctx.params if ctx.get_parameter_source(name) in given}


@cli.command(context_settings=CTX)
@click.option("--checkpoint", type=click.Path(dir_okay=False), default=None,
              help="Checkpoint to sample from  [default: best.npz, else latest.npz, "
                   "in --checkpoint-dir]")
@dir_option
@click.option("--len", "length", type=click.IntRange(min=0), default=200,
              help="Number of characters to generate (an echoed prime is extra).")
@click.option("--temperature", type=click.FloatRange(min=0, min_open=True), default=1.0,
              help="Softmax temperature: lower is safer, higher is wilder; must be > 0.")
@click.option("--prime", default="", help="Text to start from; it is echoed before the sample.")
@click.option("--seed", type=click.IntRange(min=0), default=None,
              help="Seed for the random draws (default: different every run).")
def sample(checkpoint, checkpoint_dir, length, temperature, prime, seed):
    """Write generated text to stdout."""
    from . import commands
    text = commands.sample(checkpoint, checkpoint_dir, length, temperature, prime, seed)
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


@cli.command(context_settings=CTX)
@click.argument("checkpoint", required=False, type=click.Path(dir_okay=False))
@dir_option
@click.option("--json", "as_json", is_flag=True, help="Print everything as one JSON object.")
def inspect(checkpoint, checkpoint_dir, as_json):
    """Show what CHECKPOINT holds and how its training went.

    CHECKPOINT defaults to latest.npz (else best.npz) in --checkpoint-dir.
    """
    from . import commands
    s = commands.inspect(checkpoint, checkpoint_dir)
    if as_json:
        click.echo(json.dumps(s, indent=2))
    else:
        from .inspect import format_summary
        click.echo(format_summary(s))


BLAS_THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def _default_blas_threads():
    """One BLAS thread unless the user chose: charrnn's per-step matrices are
    small, and on them a single thread measured faster (bench/throughput.py).
    Must run before numpy is imported."""
    if not any(v in os.environ for v in BLAS_THREAD_VARS):
        os.environ["OPENBLAS_NUM_THREADS"] = "1"


_STANDALONE = False      # True when running as the `charrnn` process itself


def main():
    global _STANDALONE
    _STANDALONE = True
    _default_blas_threads()
    cli(prog_name="charrnn")


if __name__ == "__main__":  # pragma: no cover
    main()
