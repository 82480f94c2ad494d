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


def train(files, checkpoint_dir, opts, quiet=False, overwrite=False, sample_out=None,
          resume=None, init_from=None, explicit=None, linger_signals=False) -> int:
    """Train on files; returns the exit code (0, or 128+signal when interrupted).

    resume: continue this checkpoint exactly ("" means <checkpoint_dir>/latest.npz).
    init_from: start a new run from this checkpoint's weights.
    explicit: names of the opts (and "checkpoint_dir") the user actually set;
    None means all of them.  Only these may contradict a resumed checkpoint.
    linger_signals: after an interrupt, ignore further SIGINT/SIGTERM (the
    process is about to exit; see StopFlag).
    """
    from .train import StopFlag, Trainer, TrainConfig, load_corpus
    from . import runs
    explicit = set(opts) | {"checkpoint_dir"} if explicit is None else set(explicit)
    source = init_from
    if resume is not None:
        source = resume or os.path.join(checkpoint_dir, LATEST)
        if not resume and not os.path.isfile(source):
            raise CheckpointError(f"nothing to resume: no {LATEST} in {checkpoint_dir}/; pass "
                                  f"--resume CHECKPOINT or the run's --checkpoint-dir")
        if resume and "checkpoint_dir" not in explicit:
            checkpoint_dir = os.path.dirname(resume) or "."
    ck = ckpt.load(source) if source else None
    existing, keep_best = _check_earlier_run(checkpoint_dir, overwrite, resume, source)
    corpus = load_corpus(files)
    if resume is not None:
        trainer = runs.resume_trainer(ck, corpus, opts, explicit, checkpoint_dir)
    elif init_from:
        trainer = runs.init_trainer(ck, corpus, opts, explicit, checkpoint_dir)
    else:
        trainer = Trainer(TrainConfig(**opts), corpus, checkpoint_dir)
    cfg = trainer.cfg
    _ensure_writable(checkpoint_dir)
    ckpt.clean_stale_temporaries(checkpoint_dir)
    if existing and not keep_best:
        # --overwrite: the earlier run's best.npz must not outlive it (a run
        # without validation never writes one, and `sample` prefers best.npz).
        try:
            os.unlink(os.path.join(checkpoint_dir, BEST))
        except FileNotFoundError:
            pass
        except OSError as e:
            raise CharRNNError(f"cannot remove the earlier run's {BEST} in {checkpoint_dir}: "
                               f"{e.strerror}")
    if not quiet:
        if resume is not None:
            changed = "".join(f", {k} {runs._show(a)} -> {runs._show(b)}"
                              for k, (a, b) in trainer.lineage["resumes"][-1]["changed"].items())
            print(f"resuming {source} at iteration {trainer.iteration}{changed}", file=sys.stderr)
        if cfg.max_iters is None and cfg.max_time is None:
            print("training until Ctrl-C (set --max-time or --max-iters to stop on its own)",
                  file=sys.stderr)
    # Signals stay deferred until the final line is out: a second Ctrl-C
    # neither cuts the last save short nor adds a traceback.
    with StopFlag(linger=linger_signals) as stop:
        result = trainer.run(progress=not quiet, sample_out=sample_out or sys.stdout, stop=stop)
        if result.interrupted_by is not None:
            # One line, even with --quiet: where the model is and how to go on.
            name = _signal_name(result.interrupted_by)
            print(f"charrnn: interrupted by {name} at iteration {result.iterations}; saved "
                  f"{result.latest_path} (continue with --resume {result.latest_path})",
                  file=sys.stderr, flush=True)
            return 128 + int(result.interrupted_by)
    if not quiet:
        best = f"; best {result.best_path} ({result.best_val:.4f})" if result.best_path else ""
        print(f"saved {result.latest_path} after {result.iterations} iterations "
              f"(val {result.val_loss:.4f} nats/char){best}", file=sys.stderr)
    return 0


def _signal_name(signum) -> str:
    import signal
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def _check_earlier_run(folder, overwrite, resume, source):
    """Refuse to replace another run's checkpoints unless --overwrite.
    Returns (existing names, keep_best).  Resuming <folder>/latest.npz is
    continuing that run, not replacing it; resuming another checkpoint of the
    same folder (best.npz) replaces latest.npz but keeps best.npz."""
    existing = [n for n in (LATEST, BEST) if os.path.exists(os.path.join(folder, n))]
    if not existing:
        return existing, True
    same_folder = resume is not None and _same_file(os.path.dirname(os.path.abspath(source)),
                                                    os.path.abspath(folder))
    if same_folder and _same_file(source, os.path.join(folder, LATEST)):
        return [], True
    if same_folder and LATEST not in existing:
        return [], True
    if not overwrite:
        if same_folder:
            raise CharRNNError(f"resuming {source} would replace {folder}/{LATEST}, which is "
                               f"further along; pass --overwrite to do it anyway, or resume "
                               f"{LATEST}")
        raise CharRNNError(f"{folder}/ already holds {existing[0]} from an earlier run; "
                           f"pass --overwrite to replace it or choose another --checkpoint-dir")
    return existing, same_folder


def _same_file(a, b) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.abspath(a) == os.path.abspath(b)


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


def inspect(checkpoint, checkpoint_dir) -> dict:
    from .inspect import summary
    _, ck = load_model(find_checkpoint(checkpoint, checkpoint_dir, prefer=(LATEST, BEST)))
    return summary(ck)
