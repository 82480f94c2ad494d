"""Plain advice from a run's history: what went wrong, the evidence, and one
command to try next.

diagnose(history, config) -> list of Finding; an empty list is a healthy run
(``verdict`` words it).  The history is the checkpoint's (lists of floats per
evaluation); the health curves are optional, so older checkpoints get the
rules that their curves allow:

    iter, train_loss, val_loss, lr     every checkpoint
    grad_norm      mean global gradient L2 norm before clipping over the span
    clip_share     share of the span's steps whose gradient was clipped
    update_ratio   ||update|| / ||weights|| of the span's last step, all weights
    saturation     share of saturated units (|tanh| > 0.99, gates < 0.01 or
                   > 0.99) on the span's last chunk, all layers
    memory         gradient norm 20 steps back over the one at the same step
                   (bottom layer; the c state for an lstm), on validation text

Thresholds are plain constants below; every Finding names the numbers it saw.
"""
from __future__ import annotations

import math
import shlex
from dataclasses import dataclass

OVERFIT_RISE = 0.02          # nats/char above the best validation loss
UNDERFIT_GAP = 0.05          # |val - train| nats/char (means of the last 3) still "close"
UNDERFIT_FLAT = 0.01         # relative improvement over the last third: "flat"
CLIP_HIGH = 0.5              # share of steps clipped: learning rate too high
SPIKE = 0.25                 # a span's training loss this much above the one before: a spike
VAL_JUMP = 0.10              # a validation loss this much above the one before: a jump
UPDATE_LOW = 1e-5            # ||update|| / ||w||: learning rate too low (healthy ~1e-4..1e-2)
MEMORY_LOW = 1e-2            # gradient 20 steps back / at the step: vanishing (a trained
                             # vanilla rnn: ~2e-3; an lstm's c state: ~2e-2 and up)
SATURATED_HIGH = 0.6         # share of saturated units (trained lstm: ~30 %, rnn: ~20 %)
MIN_EVALS = 4                # fewer evaluations than this: too early to judge a trend


@dataclass(frozen=True)
class Finding:
    rule: str                # overfitting | underfitting | lr_too_high | lr_too_low | vanishing | saturated
    evidence: str            # the numbers that made the rule fire, in one sentence
    suggestion: str          # one concrete command

    def to_dict(self):
        return {"rule": self.rule, "evidence": self.evidence, "suggestion": self.suggestion}


def _finite(xs):
    return [(i, float(x)) for i, x in enumerate(xs) if x is not None and math.isfinite(x)]


def _command(config: dict, **changes) -> str:
    """`charrnn train <the run's sources> --model M ... --checkpoint-dir NEW`"""
    t = config.get("train", {})
    sources = [s for s in config.get("data", {}).get("sources", []) if isinstance(s, str)]
    words = ["charrnn", "train", *(["-"] if sources == ["<stdin>"] else sources or ["FILE"])]
    words += ["--model", str(changes.pop("model", t.get("model", "rnn")))]
    for k, v in changes.items():
        words += [f"--{k.replace('_', '-')}", f"{v:g}" if isinstance(v, float) else str(v)]
    words += ["--checkpoint-dir", "checkpoints-next"]
    return shlex.join(words)


def diagnose(history: dict, config: dict) -> list[Finding]:
    h = {k: list(v) for k, v in history.items()}
    t = config.get("train", {})
    iters = [int(x) for x in h.get("iter", [])]
    found: list[Finding] = []
    val, train = h.get("val_loss", []), h.get("train_loss", [])
    fv = _finite(val)
    lr = float(t.get("lr", 0.0) or 0.0)

    # overfitting: validation rose from its best while training kept falling
    overfit = False
    if len(fv) >= MIN_EVALS:
        bi, best = min(fv, key=lambda p: p[1])
        li, last = fv[-1]
        tb = train[bi] if bi < len(train) else float("nan")
        tl = next((x for x in reversed(train) if math.isfinite(x)), float("nan"))
        # training must fall by at least half as much as validation rose:
        # a noisy run whose losses both wander is not overfitting
        overfit = (li > bi and last > best + OVERFIT_RISE and math.isfinite(tb)
                   and tb - tl >= 0.5 * (last - best))
        if overfit:
            drop = float(t.get("dropout", 0.0) or 0.0)
            more = min(0.5, round(drop + 0.2, 2))
            hs = int(t.get("hidden_size", 128))
            fix = (_command(config, dropout=more) if more > drop
                   else _command(config, hidden_size=max(16, hs // 2)))
            found.append(Finding(
                "overfitting",
                f"validation loss rose from {best:.3f} at iteration {iters[bi]} to {last:.3f} "
                f"at {iters[li]} while training loss fell from {tb:.3f} to {tl:.3f}; "
                f"best.npz keeps the model of iteration {iters[bi]}",
                fix))

    # underfitting: both flat and close together over the last third
    if not overfit and len(fv) >= MIN_EVALS and len(train) == len(val):
        third = max(3, math.ceil(len(fv) / 3))
        recent = fv[-third:]
        start, end = recent[0][1], recent[-1][1]
        tail_v = [v for _, v in fv[-3:]]
        tail_t = [train[i] for i, _ in fv[-3:] if math.isfinite(train[i])]
        gap = (abs(sum(tail_v) / len(tail_v) - sum(tail_t) / len(tail_t)) if tail_t
               else math.inf)
        if start > 0 and (start - end) / start < UNDERFIT_FLAT and gap < UNDERFIT_GAP:
            hs = int(t.get("hidden_size", 128))
            fix = (_command(config, model="lstm") if t.get("model", "rnn") == "rnn"
                   else _command(config, hidden_size=hs * 2))
            found.append(Finding(
                "underfitting",
                f"validation loss moved only {start:.3f} -> {end:.3f} over the last {third} "
                f"evaluations and training loss is within {gap:.3f} of it: the model is too "
                f"small (or too constrained) for the text",
                fix))

    # learning rate too high: the training loss spikes, or most steps had
    # entries clipped (value clipping; norm clipping at the gated cells'
    # default limit is active on most steps of a healthy run, so there the
    # share alone says nothing)
    clip = _finite(h.get("clip_share", []))
    spikes = [(iters[i], train[i - 1], train[i]) for i in range(1, len(train))
              if math.isfinite(train[i]) and math.isfinite(train[i - 1])
              and train[i] > train[i - 1] * (1 + SPIKE)]
    share = sum(x for _, x in clip[-3:]) / len(clip[-3:]) if clip else 0.0
    jumps = [(iters[a], x, y) for (a, x), (b, y) in zip(fv, fv[1:]) if y > x * (1 + VAL_JUMP)]
    by_value = t.get("clip_mode", "value") == "value"
    if (by_value and share > CLIP_HIGH) or spikes or jumps:
        why = []
        if share > CLIP_HIGH:
            why.append(f"{share:.0%} of the recent steps had their gradient clipped")
        if spikes:
            it, a, b = spikes[-1]
            why.append(f"the training loss jumped from {a:.3f} to {b:.3f} by iteration {it}"
                       + (f" ({len(spikes)} such jumps)" if len(spikes) > 1 else ""))
        if jumps:
            it, a, b = jumps[-1]
            why.append(f"the validation loss jumped from {a:.3f} to {b:.3f} after iteration "
                       f"{it}" + (f" ({len(jumps)} such jumps)" if len(jumps) > 1 else ""))
        found.append(Finding("lr_too_high", "; ".join(why),
                             _command(config, lr=float(f"{lr / 3:.3g}")) if lr else
                             _command(config)))

    # learning rate too low: updates tiny next to the weights
    ratio = _finite(h.get("update_ratio", []))
    if len(ratio) >= 2:
        recent = sorted(x for _, x in ratio[-3:])
        med = recent[len(recent) // 2]
        if med < UPDATE_LOW:
            found[:] = [f for f in found if f.rule != "underfitting"]     # the cause, not a size
            found.append(Finding(
                "lr_too_low",
                f"each step changes the weights by {med:.1e} of their size (healthy runs "
                f"move about 1e-4 to 1e-2)",
                _command(config, lr=float(f"{lr * 10:.3g}")) if lr else _command(config)))

    # vanishing gradients (vanilla rnn)
    memory = _finite(h.get("memory", []))
    if memory and t.get("model", "rnn") == "rnn" and memory[-1][1] < MEMORY_LOW:
        found.append(Finding(
            "vanishing",
            f"the gradient 20 characters back is {memory[-1][1]:.1e} of the one at the "
            f"character itself: the rnn cannot learn from more than a few characters of "
            f"context (see `charrnn inspect --gradients TEXT`)",
            _command(config, model="lstm")))

    # saturated units
    sat = _finite(h.get("saturation", []))
    if sat and sat[-1][1] > SATURATED_HIGH:
        found.append(Finding(
            "saturated",
            f"{sat[-1][1]:.0%} of the units are saturated (|tanh| > 0.99 or gates below 0.01 "
            f"or above 0.99), so little gradient passes through them",
            _command(config, lr=float(f"{lr / 3:.3g}")) if lr else _command(config)))
    return found


def verdict(findings: list[Finding], n_evals: int) -> str:
    """One line for a run no rule fired on."""
    if findings:
        return f"{len(findings)} problem{'s' if len(findings) > 1 else ''} found"
    if n_evals < MIN_EVALS:
        return f"too early to judge: {n_evals} evaluation(s) so far, the rules need {MIN_EVALS}"
    return "healthy: no rule fired (overfitting, underfitting, learning rate, vanishing " \
           "gradients, saturated units)"


def format_findings(findings: list[Finding], n_evals: int) -> str:
    lines = [f"diagnosis    {verdict(findings, n_evals)}"]
    for f in findings:
        lines.append(f"  {f.rule.replace('_', ' ')}: {f.evidence}")
        lines.append(f"    try: {f.suggestion}")
    return "\n".join(lines)
