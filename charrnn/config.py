"""Run settings, kept free of numpy so the CLI can show defaults without importing it."""
from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass
class TrainConfig:
    """Everything that shapes a run; stored as config['train'] in checkpoints."""
    model: str = "rnn"
    hidden_size: int = 128
    num_layers: int = 1
    embed_size: int = 0
    dropout: float = 0.0
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

    def model_config(self, vocab_size: int):
        from .model import ModelConfig
        return ModelConfig(vocab_size=vocab_size, model=self.model, hidden_size=self.hidden_size,
                           num_layers=self.num_layers, embed_size=self.embed_size,
                           dropout=self.dropout, dtype=self.dtype)


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
