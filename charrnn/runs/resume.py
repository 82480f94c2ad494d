"""Continuing a run (--resume) and starting a new one from a checkpoint's
weights (--init-from): which settings may change, which must match the
checkpoint, and whether the text fits its vocabulary.

Generic over TrainConfig: a setting is either in MAY_CHANGE (the user may pass
a new value when resuming; it is recorded in config["resumes"]) or it must
match the checkpoint.  New TrainConfig fields therefore must match unless
added to MAY_CHANGE.  Only settings the user actually passed count: defaults
never contradict a checkpoint.
"""
from __future__ import annotations

import dataclasses
import math
import os

import numpy as np

from charrnn.text import data
from charrnn.store.checkpoint import STATE_SCALARS, Checkpoint
from charrnn.runs.config import TrainConfig
from charrnn.errors import CharRNNError, CheckpointError, DataError
from charrnn.nn.model import ModelConfig

# Settings a resumed run may change: they steer how it continues, not what it
# is.  Everything else (sizes, batch, sequence length, validation split, seed,
# optimizer, dtype, ...) must match, or the continuation would not be exact.
MAY_CHANGE = frozenset({"lr", "clip", "max_iters", "max_time", "eval_every", "sample_every",
                        "sample_len", "patience", "stall_stop", "lr_decay", "lr_decay_every",
                        "warmup"})
# Model settings a fine-tuning run (--init-from) may change; the others fix
# the shapes of the weights and come from the checkpoint.
INIT_MAY_CHANGE = frozenset({"dropout", "dropout_mask", "weight_drop", "dtype"})
MODEL_FIELDS = tuple(f for f in ModelConfig.__dataclass_fields__ if f != "vocab_size")
TRAIN_FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}


def flag(name: str) -> str:
    """TrainConfig field -> its command-line flag ('hidden_size' -> '--hidden-size')."""
    return "--" + name.replace("_", "-")


def _show(v) -> str:
    return "none" if v is None else str(v)


# ------------------------------------------------------------ settings
def stored_settings(ck: Checkpoint) -> dict:
    """The checkpoint's TrainConfig as a dict: its model section wins for model
    fields, settings it predates take today's defaults, unknown ones are
    dropped, and each value is type-checked (a tampered config is refused)."""
    train = dict(ck.config.get("train", {}))
    for name in MODEL_FIELDS:
        if name in TRAIN_FIELDS and name in ck.config["model"]:
            train[name] = ck.config["model"][name]
    out = {}
    for name, f in TRAIN_FIELDS.items():
        value = train.get(name, f.default)
        if not _type_ok(f.type, value):
            raise CheckpointError(f"{ck.path}: bad training setting {name}={value!r} in its config")
        out[name] = value
    for name in ("batch_size", "seq_len"):
        if out[name] < 1:
            raise CheckpointError(f"{ck.path}: bad training setting {name}={out[name]!r}")
    if not 0 <= out["val_frac"] < 1:
        raise CheckpointError(f"{ck.path}: bad training setting val_frac={out['val_frac']!r}")
    return out


def _type_ok(annotation, value) -> bool:
    """Does value fit a simple annotation like 'int', 'float | None', 'str'?
    Anything else (a type this module does not know) is accepted."""
    kinds = {p.strip() for p in str(annotation).split("|")}
    checks = {"int": lambda v: isinstance(v, int) and not isinstance(v, bool),
              "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)
              and math.isfinite(v),
              "str": lambda v: isinstance(v, str),
              "bool": lambda v: isinstance(v, bool),
              "None": lambda v: v is None}
    if not kinds <= set(checks):
        return True
    return any(checks[k](value) for k in kinds)


def resume_settings(ck: Checkpoint, opts: dict, explicit) -> tuple[TrainConfig, dict]:
    """The checkpoint's settings, with the ones the user passed (``explicit``)
    applied when they may change.  Returns (config, {name: [old, new]}).
    Raises CharRNNError naming the first passed setting that contradicts it."""
    stored = stored_settings(ck)
    changes = {}
    for name in TRAIN_FIELDS:
        if name not in explicit or name not in opts or opts[name] == stored[name]:
            continue
        if name in MAY_CHANGE:
            changes[name] = [stored[name], opts[name]]
            stored[name] = opts[name]
        else:
            raise CharRNNError(
                f"{flag(name)} {_show(opts[name])} contradicts {ck.path}, which has "
                f"{name} {_show(stored[name])}; drop {flag(name)} to resume it, or start a new "
                f"run in another --checkpoint-dir")
    return TrainConfig(**stored), changes


def init_settings(ck: Checkpoint, opts: dict, explicit) -> TrainConfig:
    """A new run's settings (opts) with the checkpoint's model shape.  Model
    settings the user passed must agree with the checkpoint, except dropout
    and dtype, which a fine-tuning run may change."""
    from charrnn.runs.config import make_train_config
    model = ck.config["model"]
    out = {k: v for k, v in opts.items() if k in TRAIN_FIELDS}
    for name in MODEL_FIELDS:
        if name not in TRAIN_FIELDS or name not in model:
            continue
        if name in explicit and name in opts:
            if name in INIT_MAY_CHANGE or opts[name] == model[name]:
                continue
            raise CharRNNError(
                f"{flag(name)} {_show(opts[name])} contradicts --init-from {ck.path}, whose "
                f"model has {name} {_show(model[name])}; the new run keeps the checkpoint's "
                f"model shape, so drop {flag(name)}")
        out[name] = model[name]
    # Settings left unset (None) take the defaults of the checkpoint's cell.
    return make_train_config(**out)


# ---------------------------------------------------------------- text
def run_reading(ck: Checkpoint | None, keep_newlines=None, doc_separator=None):
    """How a run reads its text (sources.Reading).  A new run (ck None): as
    the options say (None: the defaults).  A resumed run: as ck recorded (a
    checkpoint from before the record read its files concatenated as
    decoded), and an option given that contradicts the record is refused."""
    from charrnn.text.sources import Reading, describe
    if doc_separator == "":
        doc_separator = None
    if ck is None:
        return Reading("keep" if keep_newlines else "lf", doc_separator)
    try:
        reading = Reading.from_record(ck.config.get("data", {}).get("reading"))
    except ValueError:
        raise CheckpointError(f"{ck.path}: its record of how the text was read "
                              f"(config data.reading) is damaged")
    wrong = None
    if keep_newlines and reading.newlines != "keep":
        wrong = "--keep-newlines"
    if doc_separator is not None and doc_separator != reading.doc_separator:
        wrong = f"--doc-separator {doc_separator!r}"
    if wrong is not None:
        raise CharRNNError(f"{wrong} contradicts {ck.path}, which read its text with "
                           f"{describe(reading)}; drop it to resume (the text is read as the "
                           f"checkpoint read it)")
    return reading


def run_decoding(ck: Checkpoint | None, encoding: str | None = None,
                 errors: str | None = None) -> tuple[str, str]:
    """(encoding, errors) a run decodes its files with: those given; else,
    resuming, those ck recorded (config data.encoding, data.errors); else
    utf-8, strict.  A resumed text decoded otherwise must still be the same
    text (same_text checks it)."""
    data = ck.config.get("data", {}) if ck is not None else {}
    data = data if isinstance(data, dict) else {}
    recorded = lambda key, default: (data[key] if isinstance(data.get(key), str)  # noqa: E731
                                     and data[key] else default)
    return (encoding or recorded("encoding", "utf-8"), errors or recorded("errors", "strict"))


def fit_vocab(corpus, vocab: str, path: str, why: str):
    """corpus re-encoded with the checkpoint's vocabulary (a superset of the
    text's characters).  Raises DataError listing a few missing characters."""
    if corpus.vocab == vocab:
        return corpus
    have = set(vocab)
    missing = [c for c in corpus.vocab if c not in have]
    if missing:
        shown = ", ".join(repr(c) for c in missing[:5])
        raise DataError(f"the text has {len(missing)} character(s) that are not in the "
                        f"vocabulary of {path} (e.g. {shown}); {why}")
    codes = data.vocab_to_codes(vocab)
    mapping = np.searchsorted(codes, data.vocab_to_codes(corpus.vocab))
    ids = mapping.astype(data.id_dtype(len(vocab)))[corpus.ids]
    return dataclasses.replace(corpus, ids=ids, vocab=vocab)   # same text, same fingerprint


def same_text(ck: Checkpoint, corpus):
    """The corpus in the checkpoint's encoding, if it is the text the checkpoint
    was trained on (same characters, same sha256); else a clear error."""
    from charrnn.text.corpus import text_fingerprint
    d = ck.config.get("data", {})
    fitted = fit_vocab(corpus, ck.vocab, ck.path,
                       "resume needs the text it was trained on (vocabulary differs)")
    want_sha, want_n = d.get("text_sha256"), d.get("chars")
    same = len(fitted.ids) == want_n if isinstance(want_n, int) else True
    if same and want_sha is not None:
        same = text_fingerprint(fitted) == want_sha
    if not same:
        vocab_note = "" if corpus.vocab == ck.vocab or "init_from" in ck.config else (
            f"vocabulary {len(corpus.vocab)} vs {len(ck.vocab)} characters, ")
        raise DataError(f"the text differs from the one {ck.path} was trained on "
                        f"({vocab_note}{len(corpus.ids)} vs {_show(want_n)} characters); "
                        f"resume needs the same text (to train on new text, start a new run "
                        f"with --init-from)")
    return fitted


# ------------------------------------------------------------- trainers
def has_training_state(ck: Checkpoint) -> bool:
    need = (set(STATE_SCALARS) - {"start_loss", "smooth_loss"}) | {"h", "rng"}
    if ck.model_config.cell.has_c:
        need.add("c")
    return need <= set(ck.state) and bool(ck.optim)


def resume_spec(ck: Checkpoint, corpus, opts: dict, explicit):
    """(RunSpec, corpus in the checkpoint's encoding) of a run that continues
    ck exactly (Trainer(spec, corpus, dir, resume_from=ck)): its settings
    with the ones passed that may change, its plan, its evaluation shape,
    and its lineage with this resume added."""
    from charrnn.runs import validation
    from charrnn.runs.spec import RunSpec
    if not has_training_state(ck):
        raise CheckpointError(f"{ck.path} holds weights only, no training state to resume; "
                              f"start a new run from its weights with --init-from")
    cfg, changes = resume_settings(ck, opts, explicit)
    it = ck.state["iteration"]
    if cfg.max_iters is not None and it >= cfg.max_iters:
        raise CharRNNError(f"{ck.path} is already at iteration {it}, its --max-iters limit "
                           f"{cfg.max_iters}; pass a larger --max-iters to train on")
    fitted = same_text(ck, corpus)
    plan = stored_plan(ck)
    if plan.thin and "eval_every" in explicit:      # the cadence set now is kept as set
        plan = dataclasses.replace(plan, thin=False)
    if plan.finished(it, cfg.max_iters):
        raise CharRNNError(f"{ck.path} has finished its run: iteration {it} is the end its "
                           f"learning rate was planned for ({plan.basis}); pass a larger "
                           f"--max-iters to train on at the final rate, or start a new run "
                           f"from it with --init-from")
    lineage = {k: v for k, v in ck.config.items() if k not in ("model", "train", "data", "plan")}
    resumes = lineage.get("resumes")
    resumes = list(resumes) if isinstance(resumes, list) else []
    resumes.append({"iteration": it, "wall_time": ck.state["wall_time"],
                    "checkpoint": os.path.abspath(ck.path), "changed": changes})
    lineage["resumes"] = resumes
    shape = validation.eval_shape(cfg.batch_size, cfg.seq_len, shape_was_chosen(ck))
    return RunSpec(config=cfg, plan=plan, eval_shape=shape, lineage=lineage), fitted


def shape_was_chosen(ck: Checkpoint) -> bool:
    """Did the run of ck have its batch shape chosen for its budget (config
    choices.chosen names batch_size)?"""
    choices = ck.config.get("choices")
    chosen = choices.get("chosen", ()) if isinstance(choices, dict) else ()
    return isinstance(chosen, (list, tuple)) and "batch_size" in chosen


def stored_plan(ck: Checkpoint):
    """The checkpoint's learning-rate plan (a checkpoint from before plans
    followed the step schedule); CheckpointError if it is not a plan."""
    from charrnn.runs.schedule import Plan
    if "plan" not in ck.config:
        return Plan()
    try:
        return Plan.from_dict(ck.config["plan"])
    except (ValueError, TypeError):
        raise CheckpointError(f"{ck.path}: its learning-rate plan (config plan) is damaged")


def init_spec(ck: Checkpoint, corpus, opts: dict, explicit):
    """(RunSpec, corpus in the checkpoint's vocabulary) of a new run whose
    weights start as ck's (Trainer(spec, corpus, dir, init_weights=ck.params)):
    the new run's settings with ck's model shape, and its plan."""
    from charrnn.runs.budget import initial_plan
    from charrnn.runs.spec import RunSpec
    cfg = init_settings(ck, opts, explicit)
    fitted = fit_vocab(corpus, ck.vocab, ck.path,
                       "--init-from needs text made of the checkpoint's characters")
    lineage = {"init_from": {
        "checkpoint": os.path.abspath(ck.path), "iteration": ck.state.get("iteration", 0),
        "text_sha256": ck.config.get("data", {}).get("text_sha256")}}
    return RunSpec(config=cfg, plan=initial_plan(cfg, explicit), lineage=lineage), fitted
