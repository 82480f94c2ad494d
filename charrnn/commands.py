"""What each verb does, with plain arguments: the CLI parses, these act."""
from __future__ import annotations

import os
import sys

import numpy as np

from . import checkpoint as ckpt
from .errors import CharRNNError, CheckpointError
from .model import Model

LATEST, BEST = ckpt.LATEST, ckpt.BEST


def find_checkpoint(path: str | None, folder: str, prefer=(BEST, LATEST)) -> str:
    """An explicit path, else the first of ``prefer`` that exists in folder."""
    if path:
        return path
    for name in prefer:
        p = os.path.join(folder, name)
        if os.path.isfile(p):
            return p
    raise CheckpointError(f"no checkpoint in {folder}/; train one with 'charrnn train FILE' "
                          f"or pass --checkpoint PATH")


def load_model(path: str):
    ck = ckpt.load(path)
    return Model(ck.model_config, ck.params), ck


def train(files, checkpoint_dir, opts, quiet=False, overwrite=False, sample_out=None) -> int:
    """Train on files; returns the exit code (0, or 128+signal when interrupted)."""
    from .train import Trainer, TrainConfig, load_corpus
    existing = [n for n in (LATEST, BEST) if os.path.exists(os.path.join(checkpoint_dir, n))]
    if existing and not overwrite:
        raise CharRNNError(f"{checkpoint_dir}/ already holds {existing[0]} from an earlier run; "
                           f"pass --overwrite to replace it or choose another --checkpoint-dir")
    cfg = TrainConfig(**opts)
    corpus = load_corpus(files)
    trainer = Trainer(cfg, corpus, checkpoint_dir)
    _ensure_writable(checkpoint_dir)
    if existing:
        # --overwrite: the earlier run's best.npz must not outlive it (a run
        # without validation never writes one, and `sample` prefers best.npz).
        try:
            os.unlink(os.path.join(checkpoint_dir, BEST))
        except FileNotFoundError:
            pass
        except OSError as e:
            raise CharRNNError(f"cannot remove the earlier run's {BEST} in {checkpoint_dir}: "
                               f"{e.strerror}")
    if not quiet and cfg.max_iters is None and cfg.max_time is None:
        print("training until Ctrl-C (set --max-time or --max-iters to stop on its own)",
              file=sys.stderr)
    result = trainer.run(progress=not quiet, sample_out=sample_out or sys.stdout)
    if not quiet:
        best = f"; best {result.best_path} ({result.best_val:.4f})" if result.best_path else ""
        print(f"saved {result.latest_path} after {result.iterations} iterations "
              f"(val {result.val_loss:.4f} nats/char){best}", file=sys.stderr)
    if result.interrupted_by is not None:
        if quiet:
            print(f"interrupted; saved {result.latest_path}", file=sys.stderr)
        else:
            print("interrupted", file=sys.stderr)
        return 128 + int(result.interrupted_by)
    return 0


def _ensure_writable(folder):
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as e:
        raise CharRNNError(f"cannot create checkpoint folder {folder}: {e.strerror}")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise CharRNNError(f"checkpoint folder {folder} is not writable; choose another "
                           f"--checkpoint-dir")


def sample(checkpoint, checkpoint_dir, length, temperature=1.0, prime="", seed=None) -> str:
    """Prime (echoed) followed by ``length`` generated characters."""
    from .sample import generate
    model, ck = load_model(find_checkpoint(checkpoint, checkpoint_dir))
    rng = np.random.default_rng(seed)
    return prime + generate(model, ck.vocab, length, temperature, prime, rng)


def inspect(checkpoint, checkpoint_dir, plot=None) -> dict:
    """The summary of a checkpoint; with plot, also write its loss curves there."""
    from .inspect import summary
    _, ck = load_model(find_checkpoint(checkpoint, checkpoint_dir, prefer=(LATEST, BEST)))
    s = summary(ck)
    if plot:
        from .curves import plot as plot_curves
        plot_curves(s["history"], plot, title=os.path.basename(ck.path))
    return s


def read_input(path: str) -> str:
    """UTF-8 text of a file, or of stdin for '-'."""
    from .data import decode, read_text
    if path == "-":
        return decode(sys.stdin.buffer.read(), "<stdin>")
    return read_text(path)


def evaluate(file, checkpoint, checkpoint_dir, oov="skip") -> dict:
    """Loss of a checkpoint on the text of file, with character counts."""
    from .evaluate import evaluate_text
    text = read_input(file)
    path = find_checkpoint(checkpoint, checkpoint_dir)
    model, ck = load_model(path)
    from tqdm import tqdm
    # a progress bar on stderr, only when it is a terminal (disable=None)
    with tqdm(total=len(text), unit="char", unit_scale=True, file=sys.stderr, disable=None,
              leave=False, mininterval=0.5) as bar:
        r = evaluate_text(model, ck.vocab, text, oov, progress=bar.update)
    return {"file": file, "checkpoint": path, **r}


def cells(checkpoint, checkpoint_dir, text=None, text_file=None, html_out=None, *, unit_ids=(),
          layer=None, kind=None, top=3, surprise=False, positions=(), top_k=5) -> dict:
    """The hidden-unit / surprise view of a text (see cellview.build); with
    html_out, also write it as an HTML page."""
    from .cellview import build
    if text is None:
        text = read_input(text_file)
    if not text:
        raise CharRNNError("the text for --cells is empty")
    path = find_checkpoint(checkpoint, checkpoint_dir, prefer=(LATEST, BEST))
    model, ck = load_model(path)
    view = build(model, ck.vocab, text, layer=layer, unit_ids=unit_ids, kind=kind, top=top,
                 at=positions, top_k=top_k, most_surprising=5 if surprise else 0,
                 checkpoint=path)
    if html_out:
        from .htmlview import page
        _write_text(html_out, page(view))
    return view


def _write_text(path, content):
    try:
        with open(path, "w", encoding="utf-8") as f:
            f.write(content)
    except OSError as e:
        raise CharRNNError(f"cannot write {path}: {e.strerror or e}")
