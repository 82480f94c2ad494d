"""The options of `charrnn train`, defined once: the command line attaches
them to its command (click parses and checks them) and the library's
charrnn.train() checks its keyword arguments with the same types, ranges
and choices, so both accept the same values and say the same thing about
the others.  Kept free of numpy (start-up)."""
from __future__ import annotations

import math

import click

from charrnn.runs.config import (DROPOUT_MASKS, LR_SCHEDULES, MODELS, STALL_SHARE, TrainConfig,
                                 describe_default)
from charrnn.runs.sizing import BUDGET_OPTIMIZER
from charrnn.errors import OptionError

DEFAULT_DIR = "checkpoints"
POSITIVE_INT = click.IntRange(min=1)
from charrnn.nn.names import CLIP_MODES, DTYPES, OPTIMIZERS  # noqa: E402  (numpy-free)
DECODE_ERRORS = ("strict", "replace", "ignore")
# An option whose default the budget planner may replace ends its help with
# this mark; the group heading of --help explains it once (PLANNED_NOTE).
CHOSEN = " (*)"
PLANNED_NOTE = ("(*) Left unset with --max-time or --max-iters: chosen for the text and "
                "the budget instead of the default.")

# The headings of `charrnn train --help`, in order: group -> (title, text
# under the title).  An option names its group where it is defined
# (_opt(..., group=...)); one that names none is listed under DEFAULT_GROUP.
HELP_GROUPS = {
    "model": ("Model", PLANNED_NOTE),
    "budget": ("Budget and schedule", None),
    "optimizer": ("Optimizer", None),
    "data": ("Data", None),
    "checkpoints": ("Checkpoints", None),
    "output": ("Output", None),
}
DEFAULT_GROUP = ("Other options", None)


class GroupedOption(click.Option):
    """A click.Option that says under which heading of --help it belongs
    (a key of HELP_GROUPS; None: DEFAULT_GROUP)."""

    def __init__(self, *args, group: str | None = None, **kw):
        super().__init__(*args, **kw)
        self.help_group = group


_RNN = BUDGET_OPTIMIZER["rnn"]


def parse_duration(text: str) -> float:
    """'90', '90s', '10m', '1.5h', '1h30m' -> seconds. Raises ValueError."""
    s = text.strip().lower()
    if not s:
        raise ValueError("empty duration")
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    total, num = 0.0, ""
    for ch in s:
        if ch.isdigit() or ch == ".":
            num += ch
        elif ch in units and num:
            total += float(num) * units[ch]
            num = ""
        else:
            raise ValueError(f"cannot read duration {text!r}")
    if num:
        total += float(num)
    if not math.isfinite(total) or total <= 0:
        raise ValueError(f"duration must be positive, got {text!r}")
    return total


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


def _opt(*decls, group: str | None = None, **kw) -> click.Option:
    return GroupedOption(list(decls), group=group, **kw)


def checkpoint_dir_option() -> click.Option:
    return _opt("--checkpoint-dir", type=click.Path(file_okay=False), default=DEFAULT_DIR,
                group="checkpoints",
                envvar="CHARRNN_CHECKPOINT_DIR", show_envvar=True, help="Folder of checkpoints.")


def train_params() -> list[click.Option]:
    """Fresh click.Option objects for every `charrnn train` option (but the
    command line's own --quiet)."""
    return [
        # -- model ---------------------------------------------------------------
        _opt("--model", type=click.Choice(MODELS), default=TrainConfig.model, group="model",
             help="Recurrent cell. Several defaults below depend on it."),
        _opt("--hidden-size", type=POSITIVE_INT, default=None, group="model",
             show_default=describe_default("hidden_size"),
             help=f"Units per layer.{CHOSEN}"),
        _opt("--num-layers", type=POSITIVE_INT, default=None, group="model",
             show_default=describe_default("num_layers"), help=f"Stacked recurrent layers.{CHOSEN}"),
        _opt("--embed-size", type=click.IntRange(min=0), default=TrainConfig.embed_size,
             group="model",
             help="Width of a learned character embedding; 0 looks up one row per character "
                  f"directly (as one-hot input does, and fastest).{CHOSEN}"),
        _opt("--dropout", type=click.FloatRange(0, 1, max_open=True), default=None,
             show_default=describe_default("dropout"), group="model",
             help="Inverted dropout on each layer's output during training (off when "
                  f"evaluating and sampling).{CHOSEN}"),
        _opt("--dropout-mask", type=click.Choice(DROPOUT_MASKS), default=TrainConfig.dropout_mask,
             group="model",
             help="Draw --dropout's mask afresh at every time step, or once per chunk for all "
                  "of its steps (variational dropout)."),
        _opt("--weight-drop", type=click.FloatRange(0, 1, max_open=True),
             default=TrainConfig.weight_drop, group="model",
             help="DropConnect on each layer's hidden-to-hidden weights during training: "
                  "this share of them dropped, one mask per chunk shared by all streams."),
        _opt("--dtype", type=click.Choice(DTYPES), default=TrainConfig.dtype, group="model",
             help="Floating-point type of weights and arithmetic."),
        _opt("--seed", type=click.IntRange(min=0), default=TrainConfig.seed, group="model",
             help="Seed for initialisation and everything random."),
        # -- budget and schedule ---------------------------------------------------
        _opt("--max-time", type=Duration(), default=None, group="budget",
             help="Stop after this much training time: 90s, 10m, 1h (default: no limit)."),
        _opt("--max-iters", type=POSITIVE_INT, default=None, group="budget",
             help="Stop after this many iterations (default: no limit)."),
        _opt("--seq-len", type=POSITIVE_INT, default=None, show_default=describe_default("seq_len"),
             group="budget",
             help=f"Characters per chunk of truncated backpropagation through time.{CHOSEN}"),
        _opt("--batch-size", type=POSITIVE_INT, default=None, group="budget",
             show_default=describe_default("batch_size"),
             help=f"Parallel streams, each a contiguous slice of the text.{CHOSEN}"),
        _opt("--lr-schedule", type=click.Choice(LR_SCHEDULES), default=TrainConfig.lr_schedule,
             group="budget",
             help="budget: hold --lr while the speed is timed, then decay linearly to "
                  "--lr-floor of it exactly at the end of --max-time / --max-iters "
                  "(--max-time: re-planned from where the rate stands as the clock goes; "
                  "kept by --resume); step: --lr-decay every --lr-decay-every iterations; "
                  "auto: budget when a limit is set and the decay flags are not, else step."),
        _opt("--lr-decay", type=click.FloatRange(0, 1, min_open=True), default=None,
             show_default=describe_default("lr_decay"), group="budget",
             help="Multiply the learning rate by this every --lr-decay-every iterations "
                  "(1: constant)."),
        _opt("--lr-decay-every", type=POSITIVE_INT, default=None,
             show_default=describe_default("lr_decay_every"), group="budget",
             help="Iterations between learning-rate decays."),
        _opt("--warmup", type=click.IntRange(min=0), default=TrainConfig.warmup, group="budget",
             help="Raise the learning rate linearly from lr/N to lr over the first N iterations."),
        _opt("--eval-every", type=POSITIVE_INT, default=TrainConfig.eval_every, group="budget",
             help="Evaluate and save checkpoints every N iterations (a run whose batch shape "
                  "was chosen smaller than the --model's evaluates as often per character)."),
        _opt("--patience", type=click.IntRange(min=0), default=TrainConfig.patience,
             group="budget",
             help="Stop after N evaluations without a new best validation loss "
                  "(best.npz keeps the best); 0: never."),
        _opt("--stall-stop", type=click.FloatRange(0, 1), default=None, group="budget",
             show_default=f"{STALL_SHARE:g} with --max-time, else 0",
             help="With --max-time: stop once the best validation loss is this share of "
                  "--max-time old, or 5 passes over the text (best.npz keeps the best; the run "
                  "says how much time it left unused); 0: never. Left unset with --patience: 0."),
        # -- optimizer -------------------------------------------------------------
        _opt("--optimizer", type=click.Choice(OPTIMIZERS), default=None, group="optimizer",
             show_default=describe_default("optimizer"),
             help="Update rule. With --max-time or --max-iters and none of --optimizer, --lr, "
                  f"--clip-mode and --clip set, the rnn trains with {_RNN['optimizer']} "
                  f"{_RNN['lr']:g} and {_RNN['clip_mode']} clipping {_RNN['clip']:g} (it learns "
                  "far faster with it in a budget)."),
        _opt("--lr", type=click.FloatRange(min=0, min_open=True), default=None,
             show_default=describe_default("lr"), help="Learning rate.", group="optimizer"),
        _opt("--clip", type=click.FloatRange(min=0), default=None, show_default=describe_default("clip"),
             group="optimizer",
             help="Gradient clipping threshold (see --clip-mode); 0 turns clipping off."),
        _opt("--clip-mode", type=click.Choice(CLIP_MODES), default=None, group="optimizer",
             show_default=describe_default("clip_mode"),
             help="value: clip each gradient entry to [-CLIP, CLIP]; norm: rescale all "
                  "gradients so their global L2 norm is at most CLIP."),
        _opt("--lr-floor", type=click.FloatRange(0, 1), default=TrainConfig.lr_floor,
             group="optimizer",
             help="The share of --lr the budget schedule (--lr-schedule) ends at."),
        _opt("--adam-beta2", type=click.FloatRange(0, 1, max_open=True),
             default=TrainConfig.adam_beta2, group="optimizer",
             help="Adam's decay of its running mean of squared gradients (lower: it "
                  "follows changes in the gradients' scale sooner)."),
        _opt("--weight-average", type=click.FloatRange(0, 1, max_open=True),
             default=TrainConfig.weight_average, group="optimizer",
             help="Keep an exponential moving average of the weights with this decay per "
                  "step (0.999: over about the last 1,000 steps) and evaluate, save and "
                  "sample it; training goes on with the weights themselves. 0: off."),
        # -- data ------------------------------------------------------------------
        _opt("--val-frac", type=click.FloatRange(0, 1, max_open=True), default=TrainConfig.val_frac,
             group="data", help="Fraction at the end of the text held out for validation."),
        _opt("--encoding", default="utf-8", callback=_check_encoding, group="data",
             help="Text encoding of FILES (any Python codec name)."),
        _opt("--errors", "errors", type=click.Choice(DECODE_ERRORS), default="strict",
             group="data",
             help="Bytes that are not valid --encoding: stop with an error naming the "
                  "offset, replace them with U+FFFD, or drop them."),
        _opt("--shift-epochs", is_flag=True, group="data",
             help="Start each epoch's chunks at a different place in every stream (the "
                  "first epoch at 0), so the cut points between chunks move from epoch to "
                  "epoch."),
        _opt("--keep-newlines", is_flag=True, group="data",
             help="Keep CRLF and CR line endings as the files have them (by default they "
                  "become LF, so that samples break lines as the text shows them; a "
                  "leading UTF-8 byte order mark is dropped either way)."),
        _opt("--doc-separator", type=str, default=None, metavar="TEXT", group="data",
             help="Put TEXT between documents (the files read), on its own line, and record "
                  "it in the checkpoint, so that 'charrnn sample --until TEXT' ends a sample "
                  "where a document would end; \\n, \\t, \\r and \\\\ are escapes  "
                  "[default: none; each document starts on a new line]"),
        # -- checkpoints -----------------------------------------------------------
        checkpoint_dir_option(),
        _opt("--overwrite", is_flag=True, group="checkpoints",
             help="Replace the checkpoints of an earlier run in --checkpoint-dir."),
        _opt("--resume", is_flag=False, flag_value="", default=None, metavar="[CHECKPOINT]",
             type=click.Path(), group="checkpoints",
             help="Continue a stopped run exactly where it stopped  [default CHECKPOINT: "
                  "latest.npz in --checkpoint-dir]. Only --lr, --clip, the schedule (--lr-decay, "
                  "--lr-decay-every, --warmup), --patience, --max-iters, --max-time, "
                  "--eval-every and --sample-every may change."),
        _opt("--init-from", type=click.Path(), default=None, metavar="CHECKPOINT",
             group="checkpoints",
             help="Start a new run from CHECKPOINT's weights (fine-tuning); the text must use "
                  "only characters of its vocabulary."),
        # -- output ----------------------------------------------------------------
        _opt("--sample-every", type=click.IntRange(min=0), default=0, group="output",
             help=f"Print a {TrainConfig.sample_len}-character sample to stdout every N "
                  "iterations (0: never)."),
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
