"""Validation during training: which part of the held-out text is scored
(the evaluation shape and the plan recorded as config data.val_eval) and the
loss over it."""
from __future__ import annotations

import numpy as np

from charrnn.text import data
from charrnn.nn.model import Model, zero_state


# Validation during training reads a fixed sample of the split when the
# split is long: K windows, evenly spaced, side by side (one batch row each),
# in chunks of T characters, where K x T is the run's batch shape (but at
# least EVAL_SHAPE when the shape was chosen for a budget: its small steps
# need not make validation slower or its figures sampled).  A window reads
# EVAL_WARMUP_CHUNKS chunks of T characters unscored (its state warms up
# from zero), then scores EVAL_WINDOW_CHUNKS chunks.  An evaluation thus
# costs (4 + 52) forward chunks whatever the corpus size, a few per cent of
# the steps between evaluations at the default --eval-every (the share per
# cell: bench/results/NOTES.md).  A split no longer than the sample is scored
# whole (every character, as K streams from a zero state): tiny
# Shakespeare's for the lstm/gru defaults, so their figures stay comparable
# with before.
EVAL_SHAPE = (32, 64)
EVAL_WARMUP_CHUNKS = 4
EVAL_WINDOW_CHUNKS = 52


def eval_shape(batch_size: int, seq_len: int, shape_chosen: bool) -> tuple[int, int]:
    """(streams K, characters per chunk T) of validation during training:
    the run's batch shape, or at least EVAL_SHAPE in each when the shape was
    chosen for the budget."""
    if shape_chosen:
        return max(batch_size, EVAL_SHAPE[0]), max(seq_len, EVAL_SHAPE[1])
    return batch_size, seq_len


def val_plan(n_val: int, batch_size: int, seq_len: int) -> dict:
    """How a validation split of n_val characters is scored, as recorded in
    the checkpoint (config data.val_eval): method "whole" or "sampled", and
    for a sample its windows (their starts, evenly spaced over the split),
    window_chars scored in each after warmup_chars of warm-up, and the
    characters scored per evaluation."""
    K, T = max(1, batch_size), seq_len
    warm, length = EVAL_WARMUP_CHUNKS * T, EVAL_WINDOW_CHUNKS * T
    span = warm + length + 1
    if n_val <= K * span:
        n = n_val - 1
        B = max(1, min(batch_size, n // seq_len)) if n > 0 else 0
        return {"method": "whole", "chars_scored": int(B * (n // B)) if B else 0}
    room = n_val - span
    starts = [room // 2] if K == 1 else [k * room // (K - 1) for k in range(K)]
    return {"method": "sampled", "windows": K, "spacing": "even", "window_chars": length,
            "warmup_chars": warm, "chars_scored": K * length, "starts": starts}


def chars_read(plan: dict) -> int:
    """Characters an evaluation by this plan reads forward (scored and warm-up)."""
    return plan["chars_scored"] + plan.get("windows", 0) * plan.get("warmup_chars", 0)


def sampled_validation_loss(model: Model, ids: np.ndarray, plan: dict, seq_len: int, stop=None) -> float:
    """Mean cross-entropy (nats/char) over the windows of a "sampled" plan:
    each window read from a zero state, its first warmup_chars unscored."""
    warm, length = plan["warmup_chars"], plan["window_chars"]
    x = np.stack([np.asarray(ids[s: s + warm + length]) for s in plan["starts"]])
    y = np.stack([np.asarray(ids[s + 1: s + warm + length + 1]) for s in plan["starts"]])
    state = zero_state(model.cfg, len(plan["starts"]))
    total, count = 0.0, 0
    for a in range(0, warm + length, seq_len):
        if stop is not None and stop():
            return float("nan")
        b = min(a + seq_len, warm + length)
        loss, state = model.loss(x[:, a:b], y[:, a:b], state)
        if a >= warm:
            total += loss * (b - a) * x.shape[0]
            count += (b - a) * x.shape[0]
    return total / count if count else float("nan")


def validation_loss(model: Model, ids: np.ndarray, batch_size: int, seq_len: int, stop=None) -> float:
    """Mean cross-entropy of the model on ids, in nats/char (hidden state carried).
    ``stop()`` returning True between chunks abandons the evaluation (-> nan)."""
    total, count = 0.0, 0
    state = None
    for x, y in data.eval_chunks(ids, batch_size, seq_len):
        if stop is not None and stop():
            return float("nan")
        if state is None:
            state = zero_state(model.cfg, x.shape[0])
        loss, state = model.loss(x, y, state)
        total += loss * y.size
        count += y.size
    return total / count if count else float("nan")


def score(model: Model, ids: np.ndarray, plan: dict, shape: tuple, stop=None) -> float:
    """The validation loss (nats/char) of ``ids`` by ``plan`` (val_plan at
    ``shape``, (K, T)); nan for a split too short to score."""
    if len(ids) < 2:
        return float("nan")
    if plan["method"] == "sampled":
        return sampled_validation_loss(model, ids, plan, shape[1], stop)
    return validation_loss(model, ids, *shape, stop)
