"""Summaries of a checkpoint: what it holds and how its training went."""
from __future__ import annotations

import math

import numpy as np

from charrnn.store.checkpoint import Checkpoint
from charrnn.nn.model import count_params
from charrnn.views import json_number

LN2 = math.log(2.0)


def _num(x):
    return json_number(x)


def summary(ck: Checkpoint) -> dict:
    """Everything `inspect` shows, as plain JSON-ready values (losses in nats/char)."""
    m, t = ck.config["model"], ck.config["train"]
    d = ck.config.get("data", {})
    h = ck.history
    st = ck.state
    val = h.get("val_loss", np.array([]))
    finite = np.where(np.isfinite(val))[0] if len(val) else np.array([], dtype=int)
    best_i = int(finite[np.argmin(val[finite])]) if len(finite) else None
    wall = float(st.get("wall_time", 0.0))
    chars = int(st.get("chars_seen", 0))
    plan = _plan(ck.config)
    return {
        "checkpoint": ck.path,
        "model": {**m, "parameters": count_params(ck.model_config)},
        "vocab": {"size": len(ck.vocab), "chars": ck.vocab},
        "train": t,
        "data": d,
        "progress": {
            "iterations": int(st.get("iteration", 0)),
            "epoch": int(st.get("epoch", 0)),
            "chars_seen": chars,
            "wall_time_s": wall,
            "chars_per_s": chars / wall if wall > 0 else None,
        },
        "best_val": None if best_i is None else {
            "nats_per_char": float(val[best_i]),
            "bits_per_char": float(val[best_i]) / LN2,
            "iteration": int(h["iter"][best_i]),
        },
        "last_val": None if not len(val) else {
            "nats_per_char": _num(val[-1]),
            "bits_per_char": _num(val[-1] / LN2),
            "iteration": int(h["iter"][-1]),
        },
        "last_train_loss": _num(h["train_loss"][-1]) if len(h.get("train_loss", [])) else None,
        "schedule": schedule(t, h, plan),
        "plan": plan,
        "choices": ck.config.get("choices") if isinstance(ck.config.get("choices"), dict)
        else None,
        "history": {k: [_num(x) for x in v] for k, v in h.items()},
        "init_from": ck.config.get("init_from") if isinstance(ck.config.get("init_from"), dict)
        else None,
        "resumes": [r for r in ck.config.get("resumes", []) if isinstance(r, dict)]
        if isinstance(ck.config.get("resumes"), list) else [],
        "health": _last_health(h),
        "diagnosis": _diagnosis(h, ck.config),
    }


HEALTH_SHOWN = ("grad_norm", "clip_share", "update_ratio", "saturation", "memory")


def _last_health(h: dict) -> dict | None:
    """The run-health figures of the last evaluation (None before they existed)."""
    if not len(h.get("grad_norm", [])):
        return None
    return {k: _num(h[k][-1]) for k in sorted(h) if k.split("/")[0] in HEALTH_SHOWN}


def _diagnosis(h: dict, config: dict) -> dict:
    from charrnn.views.advice import diagnose, verdict
    hist = {k: [float(x) for x in v] for k, v in h.items()}
    found = diagnose(hist, config)
    n = int(np.isfinite(np.asarray(h.get("val_loss", []), dtype=float)).sum())
    return {"verdict": verdict(found, n), "findings": [f.to_dict() for f in found]}


def _plan(config: dict) -> dict | None:
    """The checkpoint's learning-rate plan (charrnn's own; None for another
    tool's checkpoint, and {"kind": "step"} for one from before plans)."""
    if "plan" not in config:
        return {"kind": "step"} if "lr_decay" in config.get("train", {}) else None
    p = config["plan"]
    return p if isinstance(p, dict) else None


SCHEDULE_WORDS = ("schedule", "warmup", "decay", "min_lr", "lr_")
NOT_SCHEDULE = ("weight_decay",)


def schedule(train: dict, history: dict, plan: dict | None = None) -> dict:
    """The learning-rate schedule: its name and settings from the config when
    it has them (else "constant"), and the rates the history recorded."""
    lrs = [float(x) for x in history.get("lr", []) if math.isfinite(x)]
    if plan and plan.get("kind") == "budget":
        name, settings = _budget_schedule(train, plan)
    elif "lr_decay" in train and "schedule" not in train:       # charrnn's own (schedule.lr_at)
        name, settings = _own_schedule(train)
    else:
        settings = {k: v for k, v in sorted(train.items())
                    if any(w in k for w in SCHEDULE_WORDS) and k not in ("schedule", "lr")
                    and k not in NOT_SCHEDULE}
        name = str(train.get("schedule") or train.get("lr_schedule") or "constant")
    return {
        "name": name,
        "settings": settings,
        "lr_first": lrs[0] if lrs else None,
        "lr_last": lrs[-1] if lrs else None,
        "lr_min": min(lrs) if lrs else None,
        "lr_max": max(lrs) if lrs else None,
    }


def _own_schedule(train: dict) -> tuple[str, dict]:
    """Name and settings of schedule.lr_at's schedule: optional linear warm-up,
    then constant or step decay."""
    settings = {}
    if train.get("warmup"):
        settings["warmup"] = train["warmup"]
    decay = train.get("lr_decay", 1.0)
    if decay != 1.0:
        settings["lr_decay"] = decay
        settings["lr_decay_every"] = train.get("lr_decay_every")
        return "step decay", settings
    return "constant", settings


def _budget_schedule(train: dict, plan: dict) -> tuple[str, dict]:
    """Name and settings of the budget plan (runs/schedule.py)."""
    settings = {}
    if train.get("warmup"):
        settings["warmup"] = train["warmup"]
    if plan.get("total") is None:
        return "budget, end not planned yet (holding --lr while timing the steps)", settings
    floor = plan.get("floor")
    floor = f"{floor:.0%}" if isinstance(floor, (int, float)) else "?"
    settings["hold"] = plan.get("hold")
    replans = plan.get("replans") or 0
    if replans:         # the plan stored is the last re-plan (runs/schedule.py)
        settings["start"] = plan.get("start", 1.0)
        settings["replans"] = replans
    if plan.get("thin") is True:     # runs/schedule.py Plan.evaluates
        settings["evaluations"] = "every other one in the first half"
    again = f", re-planned {replans} time{'s' * (replans != 1)}" if replans else ""
    return (f"budget: linear decay to {floor} of lr at iteration {plan.get('total')} "
            f"({plan.get('basis', '')}{again})", settings)


def format_schedule(sc: dict) -> str:
    extra = ", ".join(f"{k} {v}" for k, v in sc["settings"].items())
    text = sc["name"] + (f" ({extra})" if extra else "")
    if sc["lr_first"] is None:
        return text
    if sc["lr_min"] == sc["lr_max"]:
        return f"{text}, lr {sc['lr_first']:g} throughout"
    return (f"{text}, lr {sc['lr_first']:g} -> {sc['lr_last']:g} so far "
            f"(range {sc['lr_min']:g} to {sc['lr_max']:g})")


def vocab_preview(vocab: str, limit: int = 60) -> str:
    """Printable preview: escapes for control characters, cut after limit."""
    shown = "".join(c if c.isprintable() else repr(c)[1:-1] for c in vocab[:limit])
    return shown + ("..." if len(vocab) > limit else "")


def _duration(s: float) -> str:
    s = int(round(s))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s"
    return f"{s // 3600} h {s % 3600 // 60} min"


def _reading_words(d: dict) -> str:
    """', 4 files, separator '<end>'': how the text was read, when it is
    not one file read the default way (config data.files, data.reading)."""
    out = ""
    files, rd = d.get("files"), d.get("reading")
    if isinstance(files, int) and files != 1:
        out += f", {files:,} files"
    if isinstance(rd, dict):
        if rd.get("newlines") == "keep":
            out += ", line endings kept"
        if rd.get("doc_separator"):
            out += f", separator {rd['doc_separator']!r}"
    return out


def _regularisation(m: dict) -> str:
    """', one mask per chunk, weight drop 0.3' for what a model config sets
    beyond plain dropout ('' for checkpoints without it)."""
    out = ""
    if m.get("dropout_mask", "step") == "chunk" and m["dropout"]:
        out += " (one mask per chunk)"
    if m.get("weight_drop", 0.0):
        out += f", weight drop {m['weight_drop']}"
    return out


def format_summary(s: dict) -> str:
    """The human-readable report of ``summary``; one fact per line."""
    m, t, p, d = s["model"], s["train"], s["progress"], s["data"]
    layers = f"{m['num_layers']} layer{'s' if m['num_layers'] != 1 else ''}"
    embed = "direct lookup (one-hot)" if not m["embed_size"] else f"{m['embed_size']}-d embedding"
    lines = [
        f"checkpoint   {s['checkpoint']}",
        f"model        {m['model']}, {layers} x {m['hidden_size']} hidden, input {embed}, "
        f"dropout {m['dropout']}{_regularisation(m)}, {m['dtype']}",
        f"parameters   {m['parameters']:,}",
        f"vocabulary   {s['vocab']['size']} characters: {vocab_preview(s['vocab']['chars'])}",
        f"optimizer    {t['optimizer']}"
        + (f" (beta2 {t['adam_beta2']})" if t['optimizer'] == "adam"
           and t.get("adam_beta2", 0.999) != 0.999 else "")
        + f", lr {t['lr']}, clip {t['clip_mode']} {t['clip']}"
        + (f", weights averaged (decay {t['weight_average']})" if t.get("weight_average") else ""),
        f"batches      {t['batch_size']} streams x {t['seq_len']} characters, seed {t['seed']}"
        + (", cut points shifted each epoch" if t.get("shift_epochs") else ""),
    ]
    ch = s.get("choices")
    if ch and ch.get("reason"):
        lines.append(f"chosen       {ch['reason']}")
    if "schedule" in s:
        lines.append(f"schedule     {format_schedule(s['schedule'])}")
    if d:
        srcs = ", ".join(d.get("sources", [])) or "?"
        lines.append(f"data         {srcs}: {d.get('chars', 0):,} chars "
                     f"(val {d.get('val_chars', 0):,}){_reading_words(d)}")
        ve = d.get("val_eval")
        if isinstance(ve, dict) and ve.get("method") == "sampled":
            lines.append(f"validation   sample of {ve.get('windows', 0):,} windows x "
                         f"{ve.get('window_chars', 0):,} chars ({ve.get('chars_scored', 0):,} "
                         f"scored, each after {ve.get('warmup_chars', 0):,} chars of warm-up), "
                         f"evenly spaced over the split")
        elif isinstance(ve, dict) and ve.get("method") == "whole":
            lines.append(f"validation   the whole split ({ve.get('chars_scored', 0):,} "
                         f"chars scored)")
    rate = f", {p['chars_per_s']:,.0f} chars/s" if p["chars_per_s"] else ""
    lines.append(f"progress     {p['iterations']:,} iterations, epoch {p['epoch']}, "
                 f"{p['chars_seen']:,} chars seen, {_duration(p['wall_time_s'])}{rate}")
    for key, label in (("best_val", "best val"), ("last_val", "last val")):
        v = s[key]
        if v is None or v["nats_per_char"] is None:
            lines.append(f"{label:<12} none (no validation yet)")
        else:
            lines.append(f"{label:<12} {v['nats_per_char']:.4f} nats/char "
                         f"({v['bits_per_char']:.4f} bits/char) at iteration {v['iteration']:,}")
    if s["last_train_loss"] is not None:
        lines.append(f"train loss   {s['last_train_loss']:.4f} nats/char (mean since previous eval)")
    lines += _lineage_lines(s)
    hl = s.get("health")
    if hl:
        def f(k, fmt):
            v = hl.get(k)
            return "-" if v is None else format(v, fmt)
        lines.append(f"health       grad norm {f('grad_norm', '.3g')}, clipped "
                     f"{f('clip_share', '.0%')} of steps, update/weight {f('update_ratio', '.1e')}, "
                     f"saturated {f('saturation', '.1%')}, gradient 20 back "
                     f"{f('memory', '.1e')} (last evaluation)")
    from charrnn.views.curves import text_chart
    chart = text_chart(s.get("history", {}))
    if chart:
        lines += [""] + chart
    dg = s.get("diagnosis")
    if dg:
        lines += ["", f"diagnosis    {dg['verdict']}"]
        for x in dg["findings"]:
            lines.append(f"  {x['rule'].replace('_', ' ')}: {x['evidence']}")
            lines.append(f"    try: {x['suggestion']}")
    return "\n".join(lines)


def _lineage_lines(s: dict) -> list[str]:
    """'started from' and 'resumed' lines: where the weights came from and
    which settings changed at each resume."""
    out = []
    init = s.get("init_from")
    if init:
        out.append(f"started from {init.get('checkpoint', '?')} "
                   f"(iteration {init.get('iteration', '?')})")
    for r in s.get("resumes", []):
        changed = r.get("changed") if isinstance(r.get("changed"), dict) else {}
        what = ", ".join(f"{k} {_pair(v)}" for k, v in changed.items()) or "no setting changed"
        out.append(f"resumed      at iteration {r.get('iteration', '?')}: {what}")
    return out


def _pair(v) -> str:
    if isinstance(v, list) and len(v) == 2:
        return " -> ".join("none" if x is None else str(x) for x in v)
    return str(v)
