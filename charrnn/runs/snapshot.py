"""A training checkpoint's layout: what a Trainer's state becomes in a
Checkpoint (config sections: lineage, plan, model, train, data; the loop
state under state/; the curves under history/) and what --resume reads
back from one (read, and restore: into a Trainer).  The file format itself
is store/checkpoint.py."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from charrnn.errors import CharRNNError
from charrnn.runs.guard import Guard
from charrnn.store import checkpoint as ckpt


def history_keys(mcfg) -> tuple[str, ...]:
    """The curves of the history: losses, rate, and the run-health figures
    (runs/health.py; a checkpoint written before them gets NaN rows)."""
    return ckpt.HISTORY_KEYS + ckpt.health_keys(mcfg)


def add_row(history: dict, mcfg, **figures) -> None:
    """Append an evaluation's row to ``history`` (lists by history_keys):
    the HISTORY_KEYS' figures as given, the health figures of ``mcfg``'s
    model as given or NaN."""
    for k in ckpt.HISTORY_KEYS:
        history[k].append(figures[k])
    for k in ckpt.health_keys(mcfg):
        history[k].append(float(figures.get(k, math.nan)))


def restore(tr, ck: ckpt.Checkpoint) -> None:
    """Make Trainer ``tr`` continue exactly where ``ck`` stopped: weights,
    optimizer state, data position, hidden states, RNG state, counters,
    divergence yardsticks and history."""
    if ck.state["chunk"] >= tr.streams.chunks_per_epoch:
        raise CharRNNError(f"{ck.path}: data position (chunk {ck.state['chunk']}) is beyond "
                           f"the text's {tr.streams.chunks_per_epoch} chunks per epoch")
    if tr.avg is None:
        tr.load_weights(ck.params)
    else:       # the weights saved are the average; the trained ones are state/w.<name>
        raw = {k[2:]: v for k, v in ck.state.items() if k.startswith("w.")}
        if set(raw) != set(ck.params):
            raise CharRNNError(f"{ck.path}: it lacks the trained weights (state/w.*) that "
                               f"--weight-average needs to resume")
        tr.load_weights(raw)
        tr.avg = {k: np.array(ck.params[k], dtype=v.dtype, copy=True) for k, v in tr.avg.items()}
    if set(ck.optim) != set(tr.opt.state):
        raise CharRNNError(f"{ck.path}: its optimizer state does not fit "
                           f"--optimizer {tr.cfg.optimizer}")
    tr.opt.state = {k: np.array(v, copy=True) for k, v in ck.optim.items()}
    st = read(ck, tr.mcfg)
    tr.iteration, tr.chunk, tr.epoch = st.iteration, st.chunk, st.epoch
    tr.chars_seen, tr.wall_time = st.chars_seen, st.wall_time
    tr.best_val = st.best_val
    tr.hidden = st.hidden
    tr.rng.bit_generator.state = st.rng
    tr.guard = Guard(st.start_loss, st.smooth_loss)
    tr.history = st.history


def write(tr, fingerprint: str) -> ckpt.Checkpoint:
    """The Checkpoint of Trainer ``tr`` as it is now (``fingerprint``: the
    text's sha256, config data.text_sha256)."""
    m = tr.mcfg
    h = np.stack([s[0] for s in tr.hidden])
    state = {"iteration": tr.iteration, "chunk": tr.chunk, "epoch": tr.epoch,
             "chars_seen": tr.chars_seen, "wall_time": tr.wall_time,
             "best_val": tr.best_val if math.isfinite(tr.best_val) else -1.0,
             "h": h, "rng": tr.rng.bit_generator.state}
    if tr.guard.start_loss is not None:
        state["start_loss"] = tr.guard.start_loss
        state["smooth_loss"] = tr.guard.smooth_loss
    if m.cell.has_c:
        state["c"] = np.stack([s[1] for s in tr.hidden])
    params = tr.model.params
    if tr.avg is not None:      # the average is the checkpoint's model; resume trains on
        params = tr.avg
        state.update({f"w.{k}": v for k, v in tr.model.params.items()})
    corpus = tr.corpus
    config = {**tr.spec.lineage, "plan": tr.plan.to_dict(), "model": m.to_dict(),
              "train": asdict(tr.cfg),
              "data": {"sources": corpus.sources, "encoding": corpus.encoding,
                       "errors": corpus.errors, "chars": int(len(corpus.ids)),
                       "train_chars": int(tr.streams.B * tr.streams.L + 1),
                       "val_chars": int(len(tr.val_ids)),
                       "val_eval": {k: v for k, v in tr.val_plan.items() if k != "starts"},
                       "text_sha256": fingerprint, "files": int(corpus.files)}}
    if corpus.reading.record() is not None:
        config["data"]["reading"] = corpus.reading.record()
    return ckpt.Checkpoint(config=config, vocab=corpus.vocab, params=params,
                           optim=tr.opt.state, state=state,
                           history={k: np.array(v, dtype=np.float64) for k, v in tr.history.items()})


@dataclass
class LoopState:
    """Where a checkpointed run stopped (its counters, hidden states (one
    (h, c or None) pair of (B, H) arrays per layer), RNG state, divergence
    yardsticks and history), as --resume continues it."""
    iteration: int
    chunk: int
    epoch: int
    chars_seen: int
    wall_time: float
    best_val: float
    hidden: list
    rng: dict
    start_loss: float | None
    smooth_loss: float | None
    history: dict


def read(ck: ckpt.Checkpoint, mcfg) -> LoopState:
    """The loop state stored in ``ck`` (a model of config ``mcfg``)."""
    st = ck.state
    h, c = st["h"], st.get("c")
    hidden = [(np.array(h[k], copy=True), None if c is None else np.array(c[k], copy=True))
              for k in range(mcfg.num_layers)]
    start = st.get("start_loss")
    rows = len(ck.history.get("iter", ()))
    history = {k: [float(x) for x in ck.history[k]] if k in ck.history else [math.nan] * rows
               for k in history_keys(mcfg)}
    return LoopState(iteration=st["iteration"], chunk=st["chunk"], epoch=st["epoch"],
                     chars_seen=st["chars_seen"], wall_time=st["wall_time"],
                     best_val=st["best_val"] if st["best_val"] >= 0 else math.inf,
                     hidden=hidden, rng=st["rng"], start_loss=start,
                     smooth_loss=st.get("smooth_loss", start), history=history)
