"""Model size and dropout chosen for the text and the budget, when the user
leaves --hidden-size, --num-layers and --dropout unset and sets --max-time
or --max-iters.

The rule (docs/training.md, "Runs planned for their budget"; fitted to the grid of bench/README.md):
- the candidates are the sizes of LADDER for the cell type, each with
  the input layer embed_for() gives it (unless --embed-size is set): an
  embedding narrower than the vocabulary where that holds at most half
  the weights of the direct lookup (a large vocabulary), else the lookup;
- a size is *affordable* when the budget reads at least CHARS_PER_PARAM
  characters per weight: budget characters = --max-iters x batch x seq_len,
  or --max-time x the size's own speed, timed on this machine over a few
  training steps before the run starts (runs/budget.py times it);
- a size *fits the text* when it has at most PARAMS_PER_CHAR weights per
  character of training text;
- the largest size above FLOOR that is both is chosen; else FLOOR, the
  size the budget gets even when it affords no larger; the sizes below it
  are for texts too short for FLOOR: the largest of them that fits is
  chosen (the smallest when none fits);
- dropout grows with the pressure to overfit, weights per training
  character x sqrt(passes over the text): DROPOUT_STEPS;
- a text that repeats itself (``repeat_share`` r: the share of the
  validation text found verbatim in the training text) is learnt partly by
  heart, which pays: the thresholds and the pressure are scaled by
  (1 - r)^2 (at least NOVELTY_FLOOR), so such a text gets a larger model
  and less dropout;
- sizes are weighed at the --model's batch shape (--batch-size x
  --seq-len); then the shape is chosen from SHAPES: the largest one with
  which the budget makes at least MIN_STEPS training steps, else the
  one that makes the most (a short time budget learns more from many small
  steps than from a few large ones), but a smaller shape than the --model's
  own only while the model reads SMALL_STEP_CHARS_PER_PARAM characters per
  weight with it (small steps read fewer characters a second, which a
  model starved of text cannot spare).  With --max-iters every shape makes
  the same steps, so the --model's own is kept.

Flags the user sets always win: a set size or shape keeps its own value
(an unset partner takes the --model default), a set dropout is never
replaced.  The choice is a pure function of (cell, vocabulary, text length,
repeat share, budget characters of each size and shape), so the same text,
budget and machine speed give the same choice; the checkpoint records it
(config "choices").
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Callable

LADDER = {"rnn": ((1, 32), (1, 64), (1, 128), (1, 256), (1, 512)),
          "lstm": ((1, 32), (1, 64), (1, 128), (2, 128), (2, 256), (2, 512)),
          "gru": ((1, 32), (1, 64), (1, 128), (2, 128), (2, 256), (2, 512))}
# the smallest size a text long enough for it gets, affordable or not; the
# sizes below it serve only texts too short for it (bench/results/small-texts.json)
FLOOR = {"rnn": (1, 128), "lstm": (2, 128), "gru": (2, 128)}
# an embedding EMBED_SHARE of the width, where it holds at most half the
# weights of the direct lookup it replaces (V x G*H)
EMBED_SHARE = 0.5
CHARS_PER_PARAM = {"rnn": 200.0, "lstm": 3.0, "gru": 3.0}
# ... for an rnn kept on its Adagrad (or RMSprop) by the user's flags: it learns
# slowly, so a larger size needs more text per weight to pay (bench/results/NOTES.md)
SLOW_RNN_CHARS_PER_PARAM = 500.0
PARAMS_PER_CHAR = 2.0
# (pressure below which, dropout) in order; pressure = weights / training chars x sqrt(passes)
DROPOUT_STEPS = ((1.2, 0.0), (3.0, 0.1), (8.0, 0.2), (math.inf, 0.3))
SIZE_FIELDS = ("hidden_size", "num_layers", "dropout")
# chosen too, but listed in Choice.chosen only when the rule gives an embedding
EMBED_FIELDS = ("embed_size",)
# (batch_size, seq_len) from the smallest step to the --model's own.  The
# rnn keeps its own: it makes many steps even in a short budget, and smaller
# steps learnt less there (bench/results/NOTES.md).
SHAPES = {"rnn": ((32, 50),),
          "lstm": ((16, 32), (32, 64)),
          "gru": ((16, 32), (32, 64))}
MIN_STEPS = 2000
# a smaller step reads fewer characters a second: taken only while the model
# still reads this many characters per weight with it
SMALL_STEP_CHARS_PER_PARAM = 2.0
SHAPE_FIELDS = ("batch_size", "seq_len")
# A budgeted rnn trains with Adam, as the gated cells do: it learns far
# faster with it than with its classic Adagrad in a budget
# (bench/results/NOTES.md, budget-rnn.json).  The gated cells keep their
# --model defaults (already Adam).
OPTIMIZER_FIELDS = ("optimizer", "lr", "clip_mode", "clip")
BUDGET_OPTIMIZER = {"rnn": {"optimizer": "adam", "lr": 0.004, "clip_mode": "norm", "clip": 5.0}}
CHOSEN_FIELDS = (SIZE_FIELDS + SHAPE_FIELDS + OPTIMIZER_FIELDS      # what a budgeted run may choose
                 + EMBED_FIELDS)


NOVELTY_FLOOR = 0.1


def novelty(repeats: float) -> float:
    """(1 - r)^2, at least NOVELTY_FLOOR: how much a repeat share r eases
    the thresholds (a text that is all repeats still needs a budget)."""
    return max((1.0 - min(max(repeats, 0.0), 1.0)) ** 2, NOVELTY_FLOOR)


@dataclass
class Choice:
    """What was chosen and why: sizes, dropout and a one-line reason, plus
    the figures of every candidate weighed (for inspect --json)."""
    num_layers: int
    hidden_size: int
    dropout: float
    reason: str
    batch_size: int = 0
    seq_len: int = 0
    chosen: tuple = ()                 # the names of CHOSEN_FIELDS the rule set
    repeats: float = 0.0               # the text's repeat_share
    budget_chars: float = 0.0          # characters the budget reads with the chosen size and shape
    optimizer: dict = field(default_factory=dict)   # OPTIMIZER_FIELDS chosen ({}: the defaults)
    shapes: list = field(default_factory=list)
    candidates: list = field(default_factory=list)
    embed_size: int = 0                # 0: the direct lookup

    def to_dict(self) -> dict:
        d = asdict(self)
        d["chosen"] = list(self.chosen)
        return d


def count_weights(model: str, vocab_size: int, num_layers: int, hidden_size: int,
                  embed_size: int = 0) -> int:
    """Weights of a model of this shape."""
    from charrnn.nn.model import ModelConfig, count_params
    return count_params(ModelConfig(vocab_size=vocab_size, model=model, hidden_size=hidden_size,
                                    num_layers=num_layers, embed_size=embed_size))


def embed_for(model: str, vocab_size: int, hidden_size: int) -> int:
    """The embedding width for a size of ``hidden_size``: EMBED_SHARE of it
    when the embedding (V x E + E x G*H weights) holds at most half the
    weights of the direct lookup (V x G*H), else 0 (the lookup).  With the
    gated cells that is a vocabulary over ~1.5 (gru) or ~1.33 (lstm) times
    the width; the rnn (G = 1) never gains one."""
    from charrnn.nn.cells import CELLS
    gh = CELLS[model].gates * hidden_size
    e = max(1, int(hidden_size * EMBED_SHARE))
    return e if 2 * (vocab_size * e + e * gh) <= vocab_size * gh else 0


def dropout_for(weights: int, train_chars: int, budget_chars: float, repeats: float = 0.0) -> float:
    """Dropout for a model of ``weights`` that reads ``budget_chars`` of a
    ``train_chars`` text with repeat share ``repeats`` (see DROPOUT_STEPS)."""
    passes = budget_chars / max(train_chars, 1)
    pressure = weights / max(train_chars, 1) * math.sqrt(max(passes, 0.0)) * novelty(repeats)
    for below, p in DROPOUT_STEPS:
        if pressure < below:
            return p
    return DROPOUT_STEPS[-1][1]


def optimizer_for(model: str, given: dict) -> dict:
    """The optimizer settings (OPTIMIZER_FIELDS) a budgeted run of this cell
    takes instead of its --model defaults: BUDGET_OPTIMIZER's, when the user
    set none of them ({} otherwise, and for the cells that keep theirs)."""
    if any(k in given for k in OPTIMIZER_FIELDS):
        return {}
    return dict(BUDGET_OPTIMIZER.get(model, {}))


def choose(model: str, vocab_size: int, train_chars: int,
           budget_chars: Callable[[int, int, int, int], float], given: dict,
           defaults: dict, budget_words: str, repeats: float = 0.0) -> Choice:
    """The sizes, dropout and batch shape for a run (see the module docstring).

    budget_chars(num_layers, hidden_size, batch_size, seq_len): characters
    the budget reads with that size and shape.  given: the CHOSEN_FIELDS the
    user set (name -> value).  defaults: the --model defaults (for an unset
    partner of a set size or shape).  budget_words: the budget as the user
    said it ("--max-time 10m").  repeats: the text's repeat_share."""
    candidates = []
    ease = novelty(repeats)
    tuned = optimizer_for(model, given)
    per_weight = CHARS_PER_PARAM[model]
    if model == "rnn" and {**defaults, **given, **tuned}["optimizer"] != "adam":
        per_weight = SLOW_RNN_CHARS_PER_PARAM
    shape_set = "batch_size" in given or "seq_len" in given
    weigh_at = (given.get("batch_size", defaults["batch_size"]),
                given.get("seq_len", defaults["seq_len"]))
    embed_set = "embed_size" in given

    def embed(H):
        return given["embed_size"] if embed_set else embed_for(model, vocab_size, H)

    if "hidden_size" in given or "num_layers" in given:
        layers = given.get("num_layers", defaults["num_layers"])
        hidden = given.get("hidden_size", defaults["hidden_size"])
        sized_by = "set by you"
    else:
        layers = hidden = None
        below_floor = False
        for L, H in reversed(LADDER[model]):
            w = count_weights(model, vocab_size, L, H, embed(H))
            below_floor = below_floor or (L, H) == FLOOR[model]
            if w * ease > PARAMS_PER_CHAR * train_chars:
                candidates.append({"size": f"{L}x{H}", "weights": w, "fits_text": False})
                continue
            c = float(budget_chars(L, H, *weigh_at))
            ok = c >= per_weight * ease * w
            candidates.append({"size": f"{L}x{H}", "weights": w, "fits_text": True,
                               "budget_chars": c, "affordable": ok})
            if ok or below_floor:        # the floor (or below it) fits: taken, affordable or not
                layers, hidden = L, H
                break
        if layers is None:
            layers, hidden = LADDER[model][0]
        sized_by = None
    embed_size = embed(hidden)
    w = count_weights(model, vocab_size, layers, hidden, embed_size)
    if shape_set:
        (batch, seq), shapes = weigh_at, []
    else:
        (batch, seq), shapes = choose_shape(
            model, lambda B, T: budget_chars(layers, hidden, B, T), w)
    c = float(budget_chars(layers, hidden, batch, seq))
    steps = c / (batch * seq)
    passes = c / max(train_chars, 1)
    if "dropout" in given:
        dropout = given["dropout"]
    else:
        dropout = dropout_for(w, train_chars, c, repeats)
    chosen = tuple(k for k in CHOSEN_FIELDS if k not in given
                   and not (k in ("hidden_size", "num_layers") and sized_by)
                   and not (k in SHAPE_FIELDS and shape_set)
                   and not (k in OPTIMIZER_FIELDS and not tuned)
                   and not (k in EMBED_FIELDS and not embed_size))
    if not set(chosen) - set(OPTIMIZER_FIELDS):
        reason = "sizes, dropout and batch shape set by you"
        if tuned:
            reason += f"; {tuned['optimizer']} {tuned['lr']:g} for the budget"
    else:
        what = f"{layers} x {hidden} {model}" + (" (size set by you)" if sized_by else "")
        if embed_size and not embed_set:
            what += f", embedding {embed_size}"
        what += f", dropout {dropout:g}, batch {batch} x {seq}"
        if shape_set:
            what += " (batch shape set by you)"
        if tuned:
            what += f", {tuned['optimizer']} {tuned['lr']:g}"
        why = (f"{_short(w)} weights, {budget_words} reads ~{_short(c)} chars "
               f"= {passes:.3g} passes over {_short(train_chars)} chars of text"
               f" in ~{_short(steps)} steps")
        if repeats >= 0.1:
            why += f", {repeats:.0%} of it repeats"
        last = candidates[-1] if candidates and not sized_by else {}
        small = bool(last) and (LADDER[model].index((layers, hidden))
                                < LADDER[model].index(FLOOR[model]))
        if last and not last["fits_text"]:
            why += "; the smallest size: none fits the text"
        elif small:
            why += "; the text is too short for a larger size"
        elif last and not last["affordable"]:
            why += "; no larger size is affordable"
        reason = f"{what}: {why}"
    return Choice(num_layers=layers, hidden_size=hidden, dropout=float(dropout), reason=reason,
                  batch_size=int(batch), seq_len=int(seq), chosen=chosen, optimizer=tuned,
                  candidates=candidates, shapes=shapes, repeats=float(repeats),
                  budget_chars=_finite(c), embed_size=int(embed_size))


def choose_shape(model: str, budget_chars: Callable[[int, int], float],
                 weights: int) -> tuple:
    """((batch_size, seq_len), the figures of every shape weighed) for a
    model of ``weights``: the --model's own shape (the last of
    SHAPES[model]) and every smaller one that still reads at least
    SMALL_STEP_CHARS_PER_PARAM characters per weight are eligible; of them
    the largest with which the budget makes MIN_STEPS steps, else the
    one that makes the most (ties: the larger).  budget_chars(batch_size,
    seq_len): characters read."""
    shapes, best = [], None
    for i, (B, T) in enumerate(reversed(SHAPES[model])):
        c = float(budget_chars(B, T))
        steps = c / (B * T)
        fed = i == 0 or c >= SMALL_STEP_CHARS_PER_PARAM * weights
        shapes.append({"shape": f"{B}x{T}", "budget_chars": _finite(c), "steps": _finite(steps),
                       "eligible": fed})
        if not fed:
            continue
        if steps >= MIN_STEPS:
            return (B, T), shapes
        if best is None or steps > best[0]:
            best = (steps, (B, T))
    return best[1], shapes


def unsized(cfg) -> Choice:
    """The Choice of a run with no limit: nothing to size for, so the sizes
    are the flags or the --model defaults."""
    return Choice(num_layers=cfg.num_layers, hidden_size=cfg.hidden_size, dropout=cfg.dropout,
                  batch_size=cfg.batch_size, seq_len=cfg.seq_len, embed_size=cfg.embed_size,
                  reason=f"{cfg.num_layers} x {cfg.hidden_size} {cfg.model}, dropout "
                         f"{cfg.dropout:g}, batch {cfg.batch_size} x {cfg.seq_len}: no "
                         f"--max-time or --max-iters to size the model for, so the flags or "
                         f"the --model defaults")


def _finite(v: float) -> float:
    """v, or 0.0 for a budget with no end (JSON has no infinity)."""
    return v if math.isfinite(v) else 0.0


def _short(n: float) -> str:
    """12345678 -> '12.3M', 180000 -> '180k'."""
    for div, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= div:
            return f"{n / div:.3g}{unit}"
    return f"{n:.3g}"


REPEAT_WINDOW = 32            # characters: a window this long seen before is a repeat
REPEAT_TRAIN_CHARS = 4_000_000
REPEAT_VAL_CHARS = 200_000


def repeat_share(train_ids, val_ids) -> float:
    """Share of the validation text's REPEAT_WINDOW-character windows that
    occur somewhere in the training text: how much of what the model is
    scored on it can learn by heart.  Bounded cost: the last
    REPEAT_TRAIN_CHARS of the training text against the first
    REPEAT_VAL_CHARS of the validation text (with no validation text, the
    last tenth of the training text against the rest).  Windows are compared
    by a 64-bit polynomial hash."""
    import numpy as np
    train = np.asarray(train_ids)
    val = np.asarray(val_ids)
    if len(val) <= REPEAT_WINDOW:
        cut = len(train) - len(train) // 10
        train, val = train[:cut], train[cut:]
    train = train[-REPEAT_TRAIN_CHARS:]
    val = val[:REPEAT_VAL_CHARS]
    if len(train) <= REPEAT_WINDOW or len(val) <= REPEAT_WINDOW:
        return 0.0
    # sorted in place and searched: np.isin's sort of both arrays together
    # held ~3x the memory, and at 1 GiB of text set the run's peak
    # (bench/results/NOTES.md)
    a = _window_hashes(train)
    a.sort()
    b = _window_hashes(val)
    i = np.searchsorted(a, b)
    i[i == len(a)] = len(a) - 1
    return float((a[i] == b).mean())


def _window_hashes(ids):
    """(n - REPEAT_WINDOW + 1,) uint64: a hash of every window."""
    import numpy as np
    ids = ids.astype(np.uint64) + np.uint64(1)
    n = len(ids) - REPEAT_WINDOW + 1
    h = np.zeros(n, dtype=np.uint64)
    mult = np.uint64(1_000_003)
    for j in range(REPEAT_WINDOW):
        h *= mult
        h += ids[j: j + n]
    return h
