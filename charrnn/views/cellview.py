"""`inspect --cells`: run a model over a text and gather what to show --
units (chosen or ranked), the loss on every character, top predictions."""
from __future__ import annotations


import numpy as np

from charrnn.views import render
from charrnn.views import units as units_mod
from charrnn.errors import CharRNNError
from charrnn.generate.scoring import lenient_ids, loss_summary, run_text
from charrnn.nn.model import Model
from charrnn.views import json_number


class UsageError(CharRNNError):
    """A request that does not fit this model or text (exit 2)."""
    exit_code = 2


def _num(v, digits=6):          # rounded for the view's JSON and page
    return json_number(v, digits)


def build(model: Model, vocab: str, text: str, *, layer: int | None = None,
          unit_ids=(), part: str | None = None, top: int = 3, at=(), top_k: int = 5,
          oov: str = "skip", most_surprising: int = 0, checkpoint: str = "") -> dict:
    """Everything the cells views show, as JSON-ready values.

    layer: restrict to this layer (0 is next to the input; default: all
    layers for ranking, the top layer for unit_ids).  unit_ids: units to
    show; when empty, the ``top`` most interesting ones (see units.py).
    part: the state shown, "h" or "c" (lstm only; default "c" for lstm, else "h").
    at: positions (0-based) whose top_k predictions are listed; when empty,
    the ``most_surprising`` positions with the highest loss."""
    cfg = model.cfg
    L, H = cfg.num_layers, cfg.hidden_size
    part = part or ("c" if cfg.cell.has_c else "h")
    if part == "c" and not cfg.cell.has_c:
        raise UsageError(f"--state c needs an lstm; this model is a {cfg.model} (use --state h)")
    if layer is not None and not 0 <= layer < L:
        raise UsageError(f"--layer {layer} does not exist: the model has {L} layer(s), "
                         f"numbered 0 to {L - 1}")
    for u in unit_ids:
        if not 0 <= u < H:
            raise UsageError(f"--unit {u} does not exist: layers have {H} units, "
                             f"numbered 0 to {H - 1}")
    N = len(text)
    for p in at:
        if not 0 <= p < N:
            raise UsageError(f"--at {p} is outside the text ({N} characters, positions 0 to "
                             f"{N - 1})")
    ids = lenient_ids(text, vocab)
    run = run_text(model, ids, oov, top_k=max(top_k, 1), keep_acts=True)
    if not (ids >= 0).any():
        raise CharRNNError("none of the text's characters is in the model's vocabulary")

    if unit_ids:
        chosen_layer = L - 1 if layer is None else layer
        chosen = [units_mod.describe(units_mod.Unit(chosen_layer, part, u), text, run.acts)
                  for u in unit_ids]
    else:
        layers = range(L) if layer is None else [layer]
        chosen = units_mod.pick_units(units_mod.score_units(run.acts, text, layers, part), top)

    shown_units = []
    for u in chosen:
        vals = units_mod.unit_values(run.acts, u.layer, u.part)[:, u.index]
        shown_units.append({**u.to_dict(), "label": u.label(),
                            "values": [_num(v, 4) for v in vals]})

    def preds(i):
        if not run.scored[i]:
            return []
        return [[vocab[int(c)], _num(p, 4)] for c, p in zip(run.top_ids[i, :top_k],
                                                            run.top_probs[i, :top_k])]

    positions = list(at)
    if not positions and most_surprising:
        order = np.argsort(-np.nan_to_num(run.losses, nan=-1.0), kind="stable")
        positions = sorted(int(i) for i in order[:most_surprising] if run.scored[i])
    listed = [{"position": int(i), "char": text[i], "loss": _num(run.losses[i], 4),
               "scored": bool(run.scored[i]), "top": preds(i)} for i in positions]

    summary = loss_summary(run, text, oov)
    return {
        "checkpoint": checkpoint,
        "model_summary": f"{cfg.model}, {L} layer{'s' if L != 1 else ''} x {H} units",
        "text": text,
        "state": part,
        "score": "max |Pearson r| between a unit's activation and quote/bracket/line/word/caps",
        "units": shown_units,
        "surprise": {**summary, "losses": [_num(v, 4) for v in run.losses]},
        "oov_mask": [bool(x) for x in (ids < 0)],
        "predictions": listed,
        "predictions_all": [preds(i) for i in range(N)],
    }


def _char(c: str) -> str:
    return repr(c)


def format_view(view: dict, colour: bool, surprise: bool) -> str:
    """The terminal rendering: a block per unit (and the surprise block first)."""
    text, blocks = view["text"], []
    if surprise:
        s = view["surprise"]
        mean = (f"{s['nats_per_char']:.3f} nats/char over {s['chars_scored']:,} characters"
                if s["nats_per_char"] is not None else "nothing scored")
        head = f"surprise: loss on each character, {mean}   {render.legend('heat', colour)}"
        blocks.append(head + "\n" + render.show(text, s["losses"], "heat", colour))
        if view["predictions"]:
            lines = ["top predictions (position, character, loss, the model's guesses):"]
            for p in view["predictions"]:
                if not p["scored"]:
                    why = "outside the vocabulary" if view["oov_mask"][p["position"]] \
                        else "context only, not scored"
                    lines.append(f"  {p['position']:>5} {_char(p['char']):>6}  {why}")
                    continue
                guesses = "  ".join(f"{_char(c)} {100 * q:.1f}%" for c, q in p["top"])
                lines.append(f"  {p['position']:>5} {_char(p['char']):>6}  "
                             f"{p['loss']:6.2f} nats   {guesses}")
            blocks.append("\n".join(lines))
    for u in view["units"]:
        why = (f"follows {u['feature']} (r = {u['r']:+.2f})" if u["feature"]
               else "no feature varies in this text")
        head = f"{u['label']}: {why}   {render.legend('diverging', colour)}"
        blocks.append(head + "\n" + render.show(text, u["values"], "diverging", colour))
    if view["surprise"]["oov"]["count"]:
        o = view["surprise"]["oov"]
        chars = ", ".join(repr(c) for c in list(o["chars"])[:5])
        blocks.append(f"{o['count']} character(s) outside the vocabulary ({chars}) were "
                      f"skipped: shown without a colour")
    # a blank line between blocks (a text that ends in a newline brings its own)
    return "".join(b + ("\n" if b.endswith("\n") else "\n\n") for b in blocks[:-1]) + \
        (blocks[-1] if blocks else "")
