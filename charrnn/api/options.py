"""The options of `charrnn train`, defined once: the command line attaches
them to its command (click parses and checks them) and the library's
charrnn.train() checks its keyword arguments with the same types, ranges
and choices, so both accept the same values and say the same thing about
the others.  Kept free of numpy (start-up)."""
from __future__ import annotations

import math

import click

from charrnn.runs.config import LR_SCHEDULES, MODELS, TrainConfig, describe_default, parse_duration
from charrnn.errors import OptionError

DEFAULT_DIR = "checkpoints"
POSITIVE_INT = click.IntRange(min=1)
from charrnn.nn.names import CLIP_MODES, DTYPES, OPTIMIZERS  # noqa: E402  (numpy-free)
DECODE_ERRORS = ("strict", "replace", "ignore")
CHOSEN = (" Left unset with --max-time or --max-iters: chosen for the text and the "
          "budget instead of the default.")


class Duration(click.ParamType):
    """Seconds from '90', '90s', '10m', '1h' or '1h30m' (or a number)."""
    name = "DURATION"

    def convert(self, value, param, ctx):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not value > 0:
                self.fail(f"duration must be positive, got {value!r}", param, ctx)
            return float(value)
        try:
            return parse_duration(value)
        except (ValueError, AttributeError) as e:
            self.fail(f"{e}; use e.g. 90s, 10m or 1h", param, ctx)


def _check_encoding(ctx, param, value):
    import codecs
    try:
        if not getattr(codecs.lookup(value), "_is_text_encoding", True):
            raise LookupError(value)
    except (LookupError, TypeError):
        raise click.BadParameter(f"unknown text encoding {value!r}; try utf-8, latin-1 or cp1252",
                                 ctx, param)
    return value


def _opt(*decls, **kw) -> click.Option:
    return click.Option(list(decls), **kw)


def checkpoint_dir_option() -> click.Option:
    return _opt("--checkpoint-dir", type=click.Path(file_okay=False), default=DEFAULT_DIR,
                envvar="CHARRNN_CHECKPOINT_DIR", show_envvar=True, help="Folder of checkpoints.")


def train_params() -> list[click.Option]:
    """Fresh click.Option objects for every `charrnn train` option (but the
    command line's own --quiet)."""
    return [
        _opt("--hidden-size", type=POSITIVE_INT, default=None,
             show_default=describe_default("hidden_size"),
             help=f"Units per layer.{CHOSEN}"),
        _opt("--seq-len", type=POSITIVE_INT, default=None, show_default=describe_default("seq_len"),
             help=f"Characters per chunk of truncated backpropagation through time.{CHOSEN}"),
        _opt("--batch-size", type=POSITIVE_INT, default=None,
             show_default=describe_default("batch_size"),
             help=f"Parallel streams, each a contiguous slice of the text.{CHOSEN}"),
        _opt("--lr", type=click.FloatRange(min=0, min_open=True), default=None,
             show_default=describe_default("lr"), help="Learning rate."),
        _opt("--clip", type=click.FloatRange(min=0), default=None, show_default=describe_default("clip"),
             help="Gradient clipping threshold (see --clip-mode); 0 turns clipping off."),
        # -- model, optimizer and schedule --------------------------------------
        _opt("--model", type=click.Choice(MODELS), default=TrainConfig.model,
             help="Recurrent cell. Several defaults below depend on it."),
        _opt("--num-layers", type=POSITIVE_INT, default=None,
             show_default=describe_default("num_layers"), help=f"Stacked recurrent layers.{CHOSEN}"),
        _opt("--embed-size", type=click.IntRange(min=0), default=TrainConfig.embed_size,
             help="Width of a learned character embedding; 0 looks up one row per character "
                  "directly (the same as one-hot input, and the fastest)."),
        _opt("--dropout", type=click.FloatRange(0, 1, max_open=True), default=None,
             show_default=describe_default("dropout"),
             help="Inverted dropout on each layer's output during training (off when "
                  f"evaluating and sampling).{CHOSEN}"),
        _opt("--optimizer", type=click.Choice(OPTIMIZERS), default=None,
             show_default=describe_default("optimizer"),
             help="Update rule. With --max-time or --max-iters and none of --optimizer, --lr, "
                  "--clip-mode and --clip set, the rnn trains with adam 0.004 and norm "
                  "clipping 5 (it learns far faster with it in a budget)."),
        _opt("--clip-mode", type=click.Choice(CLIP_MODES), default=None,
             show_default=describe_default("clip_mode"),
             help="value: clip each gradient entry to [-CLIP, CLIP]; norm: rescale all "
                  "gradients so their global L2 norm is at most CLIP."),
        _opt("--lr-decay", type=click.FloatRange(0, 1, min_open=True), default=None,
             show_default=describe_default("lr_decay"),
             help="Multiply the learning rate by this every --lr-decay-every iterations "
                  "(1: constant)."),
        _opt("--lr-decay-every", type=POSITIVE_INT, default=None,
             show_default=describe_default("lr_decay_every"),
             help="Iterations between learning-rate decays."),
        _opt("--warmup", type=click.IntRange(min=0), default=TrainConfig.warmup,
             help="Raise the learning rate linearly from lr/N to lr over the first N iterations."),
        _opt("--lr-schedule", type=click.Choice(LR_SCHEDULES), default=TrainConfig.lr_schedule,
             help="budget: hold --lr while the speed is timed, then decay linearly to "
                  "5% of it exactly at the end of --max-time / --max-iters (planned once, "
                  "kept by --resume); step: --lr-decay every --lr-decay-every iterations; "
                  "auto: budget when a limit is set and the decay flags are not, else step."),
        _opt("--patience", type=click.IntRange(min=0), default=TrainConfig.patience,
             help="Stop after N evaluations without a new best validation loss "
                  "(best.npz keeps the best); 0: never."),
        _opt("--max-iters", type=POSITIVE_INT, default=None,
             help="Stop after this many iterations (default: no limit)."),
        _opt("--max-time", type=Duration(), default=None,
             help="Stop after this much training time: 90s, 10m, 1h (default: no limit)."),
        _opt("--val-frac", type=click.FloatRange(0, 1, max_open=True), default=TrainConfig.val_frac,
             help="Fraction at the end of the text held out for validation."),
        _opt("--eval-every", type=POSITIVE_INT, default=TrainConfig.eval_every,
             help="Evaluate and save checkpoints every N iterations (a run whose batch shape "
                  "was chosen smaller than the --model's evaluates as often per character)."),
        checkpoint_dir_option(),
        _opt("--seed", type=click.IntRange(min=0), default=TrainConfig.seed,
             help="Seed for initialisation and everything random."),
        _opt("--sample-every", type=click.IntRange(min=0), default=0,
             help="Print a 200-character sample to stdout every N iterations (0: never)."),
        _opt("--dtype", type=click.Choice(DTYPES), default=TrainConfig.dtype,
             help="Floating-point type of weights and arithmetic."),
        _opt("--overwrite", is_flag=True,
             help="Replace the checkpoints of an earlier run in --checkpoint-dir."),
        _opt("--resume", is_flag=False, flag_value="", default=None, metavar="[CHECKPOINT]",
             type=click.Path(dir_okay=False),
             help="Continue a stopped run exactly where it stopped  [default CHECKPOINT: "
                  "latest.npz in --checkpoint-dir]. Only --lr, --clip, the schedule (--lr-decay, "
                  "--lr-decay-every, --warmup), --patience, --max-iters, --max-time, "
                  "--eval-every and --sample-every may change."),
        _opt("--init-from", type=click.Path(dir_okay=False), default=None, metavar="CHECKPOINT",
             help="Start a new run from CHECKPOINT's weights (fine-tuning); the text must use "
                  "only characters of its vocabulary."),
        # -- reading the text ----------------------------------------------------
        _opt("--encoding", default="utf-8", callback=_check_encoding,
             help="Text encoding of FILES (any Python codec name)."),
        _opt("--errors", "errors", type=click.Choice(DECODE_ERRORS),
             default="strict",
             help="Bytes that are not valid --encoding: stop with an error naming the "
                  "offset, replace them with U+FFFD, or drop them."),
        _opt("--keep-newlines", is_flag=True,
             help="Keep CRLF and CR line endings as the files have them (by default they "
                  "become LF, so that samples break lines as the text shows them; a "
                  "leading UTF-8 byte order mark is dropped either way)."),
        _opt("--doc-separator", type=str, default=None, metavar="TEXT",
             help="Put TEXT between documents (the files read), on its own line, and record "
                  "it in the checkpoint, so that 'charrnn sample --until TEXT' ends a sample "
                  "where a document would end; \\n, \\t, \\r and \\\\ are escapes  "
                  "[default: none; each document starts on a new line]"),
    ]


def check_train_options(options: dict) -> dict:
    """The keyword arguments of charrnn.train() checked and converted as the
    command line checks its flags: OptionError (one line, as `charrnn train`
    words it) for an unknown name or a value out of range; None means "the
    default".  resume=True means latest.npz in checkpoint_dir."""
    params = {p.name: p for p in train_params()}
    out = {}
    for name, value in options.items():
        p = params.get(name)
        if p is None:
            known = ", ".join(sorted(params))
            raise OptionError(f"unknown option {name!r}; charrnn.train takes {known}")
        if value is None:
            out[name] = None
            continue
        if name == "resume" and isinstance(value, bool):
            out[name] = "" if value else None
            continue
        try:
            if p.is_flag and not isinstance(value, bool):
                raise click.BadParameter(f"{value!r} is not True or False", param=p)
            v = p.type.convert(value, p, None)
            if isinstance(v, float) and not math.isfinite(v):
                raise click.BadParameter(f"{v} is not a finite number", param=p)
            if p.callback is not None:
                v = p.callback(None, p, v)
        except click.BadParameter as e:
            raise OptionError(e.format_message())
        out[name] = v
    return out
