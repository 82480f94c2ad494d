"""Run settings, kept free of numpy so the CLI can show defaults without importing it."""
from __future__ import annotations

from dataclasses import dataclass

from charrnn.nn.names import CELLS


BUDGET_FLOOR = 0.05     # the budget schedule ends at this fraction of --lr (--lr-floor)
# --stall-stop for a --max-time run that sets neither it nor --patience: its
# rate only falls from here on, so a best a quarter of the budget old is
# overfitting or a plateau, and the rest of the budget would not beat it.
STALL_SHARE = 0.25
# ... and, with any --stall-stop, once the best is this many passes over the
# training text old: a small text is read again and again, and a model that
# has not bettered its best in that many readings is learning the text by
# heart (the histories of bench/results/small-texts-first.json, runs that went
# on past their best: stopping 5 passes after it left the six texts under
# 60 KB within 0.035 nats/char of it; 10 passes, up to 0.066)
STALL_PASSES = 5.0


@dataclass(frozen=True)
class TrainConfig:
    """Everything that shapes a run; stored as config['train'] in checkpoints.
    Immutable: a changed setting is a new TrainConfig (dataclasses.replace)."""
    model: str = "rnn"
    hidden_size: int = 128
    num_layers: int = 1
    embed_size: int = 0
    dropout: float = 0.0
    dropout_mask: str = "step"
    weight_drop: float = 0.0
    dtype: str = "float32"
    seq_len: int = 50
    batch_size: int = 32
    optimizer: str = "adagrad"
    lr: float = 0.03
    clip: float = 5.0
    clip_mode: str = "value"
    val_frac: float = 0.1
    eval_every: int = 500
    seed: int = 1234
    max_iters: int | None = None
    max_time: float | None = None
    sample_every: int = 0
    sample_len: int = 200
    lr_decay: float = 1.0
    lr_decay_every: int = 1000
    warmup: int = 0
    lr_schedule: str = "auto"
    patience: int = 0
    stall_stop: float = 0.0
    weight_average: float = 0.0
    adam_beta2: float = 0.999
    shift_epochs: bool = False
    lr_floor: float = BUDGET_FLOOR

    def model_config(self, vocab_size: int):
        from charrnn.nn.model import ModelConfig
        return ModelConfig(vocab_size=vocab_size, model=self.model, hidden_size=self.hidden_size,
                           num_layers=self.num_layers, embed_size=self.embed_size,
                           dropout=self.dropout, dtype=self.dtype,
                           dropout_mask=self.dropout_mask, weight_drop=self.weight_drop)


# ------------------------------------------------------ per-model defaults
# Settings whose best value depends on the cell.  The rnn column is
# TrainConfig's own defaults (the classic script's choices); the gated cells
# override them with the settings measured best by bench/quality.py.
PER_MODEL = ("hidden_size", "num_layers", "dropout", "batch_size", "seq_len",
             "optimizer", "lr", "lr_decay", "lr_decay_every", "clip_mode", "clip")
_GATED = {"hidden_size": 256, "num_layers": 2, "dropout": 0.1, "batch_size": 32, "seq_len": 64,
          "optimizer": "adam", "lr": 0.008, "lr_decay": 0.85, "lr_decay_every": 300,
          "clip_mode": "norm", "clip": 5.0}
MODEL_OVERRIDES = {"rnn": {}, "lstm": {**_GATED, "dropout": 0.2, "lr_decay": 0.9},
                   "gru": {**_GATED, "lr": 0.004}}
# A budgeted run keeps its cell's --lr: a higher rate can win a short run,
# but the rate a GRU stands falls as its hidden size grows and runs near it
# stall now and then (measured with bench/quality.py --grid; the figures are
# in bench/results/NOTES.md).

MODELS = CELLS
LR_SCHEDULES = ("auto", "budget", "step")
DROPOUT_MASKS = ("step", "chunk")
assert tuple(MODEL_OVERRIDES) == CELLS


def model_defaults(model: str) -> dict:
    """The default of every PER_MODEL setting for this cell type."""
    if model not in MODEL_OVERRIDES:
        raise ValueError(f"unknown model {model!r}; choose one of {', '.join(MODELS)}")
    return {k: MODEL_OVERRIDES[model].get(k, getattr(TrainConfig, k)) for k in PER_MODEL}


def make_train_config(**opts) -> TrainConfig:
    """A TrainConfig from options where None means 'the default', which for
    PER_MODEL settings is the default of the chosen --model."""
    given = {k: v for k, v in opts.items() if v is not None}
    model = given.get("model", TrainConfig.model)
    for k, v in model_defaults(model).items():
        given.setdefault(k, v)
    return TrainConfig(**given)


def describe_default(name: str) -> str:
    """'128 for rnn, 256 for lstm/gru': the per-model default, for --help."""
    groups: dict = {}
    for m in MODELS:
        groups.setdefault(model_defaults(m)[name], []).append(m)
    show = lambda v: f"{v:g}" if isinstance(v, float) else str(v)  # noqa: E731
    if len(groups) == 1:
        return show(next(iter(groups)))
    return ", ".join(f"{show(v)} for {'/'.join(ms)}" for v, ms in groups.items())
