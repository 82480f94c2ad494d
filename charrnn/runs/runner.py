"""One training run from start to end, with plain arguments: the folder
lock, the check for an earlier run, the text, a new, resumed (--resume) or
fine-tuning (--init-from) trainer, and the loop.  Prints nothing: what
happens reaches the caller through the ``progress`` callback and the
returned TrainResult (the command line prints them, see cli/progress.py)."""
from __future__ import annotations

import os

from charrnn.store import checkpoint as ckpt
from charrnn.errors import CharRNNError, CheckpointError

LATEST, BEST = ckpt.LATEST, ckpt.BEST


def run_training(read_corpus, checkpoint_dir: str, opts: dict, explicit=None, *, resume=None,
                 init_from=None, overwrite=False, progress=None, stop=None):
    """Train; returns train.TrainResult.

    read_corpus(resumed): the Corpus to train on, called once the checkpoint
    to resume from, if any, is loaded and checked; resumed is that
    Checkpoint (its record says how its text was read), else None.
    opts: TrainConfig settings; None or absent means the default (per
    --model).  explicit: the names the user set (None: all of opts); only
    these may contradict a resumed checkpoint.
    resume: continue this checkpoint exactly ("": <checkpoint_dir>/latest.npz).
    init_from: start a new run from this checkpoint's weights.
    progress(event, info): see Trainer.run; also "start" with the iteration
    the run starts at, its limits and, when resuming, the checkpoint and the
    settings changed.  stop: a StopFlag the caller entered (signals).
    """
    opts = {k: v for k, v in opts.items() if v is not None}
    explicit = set(opts) | {"checkpoint_dir"} if explicit is None else set(explicit)
    source = init_from
    if resume is not None:
        source = resume or os.path.join(checkpoint_dir, LATEST)
        if not resume and not os.path.isfile(source):
            raise CheckpointError(f"nothing to resume: no {LATEST} in {checkpoint_dir}/; pass "
                                  f"--resume CHECKPOINT or the run's --checkpoint-dir")
        if resume and "checkpoint_dir" not in explicit:
            checkpoint_dir = os.path.dirname(resume) or "."
    # The folder is locked before anything is read or written in it, and for
    # the run's whole life (see store/runlock.py): a second run into it stops here.
    from charrnn.store import runlock
    lock = runlock.hold(checkpoint_dir) if os.path.isdir(checkpoint_dir) else None
    try:
        return _locked(read_corpus, checkpoint_dir, opts, explicit, resume, init_from, overwrite,
                       progress, stop, source, lock)
    finally:
        if lock is not None:
            lock.release()


def _locked(read_corpus, checkpoint_dir, opts, explicit, resume, init_from, overwrite, progress,
            stop, source, lock):
    """run_training once the folder is locked (lock None: it did not exist
    yet; it is created and locked once the text is loaded)."""
    from charrnn.runs import budget
    from charrnn.runs.trainer import Trainer
    from charrnn.store import runlock
    from charrnn.runs import resume as runs
    ck = ckpt.load(source) if source else None
    existing, keep_best = _check_earlier_run(checkpoint_dir, overwrite, resume, source)
    corpus = read_corpus(ck if resume is not None else None)
    if resume is not None:
        spec, corpus = runs.resume_spec(ck, corpus, opts, explicit)
        trainer = Trainer(spec, corpus, checkpoint_dir, resume_from=ck)
    elif init_from:
        spec, corpus = runs.init_spec(ck, corpus, opts, explicit)
        trainer = Trainer(spec, corpus, checkpoint_dir, init_weights=ck.params)
    else:
        spec = budget.new_run(corpus, opts, explicit)
        trainer = Trainer(spec, corpus, checkpoint_dir)
    _ensure_writable(checkpoint_dir)
    if lock is None:
        lock = runlock.hold(checkpoint_dir)
        try:
            # another run may have used the folder while the text was loading
            existing, keep_best = _check_earlier_run(checkpoint_dir, overwrite, resume, source)
        except BaseException:
            lock.release()
            raise
    try:
        return _run(trainer, spec, checkpoint_dir, resume, source, existing, keep_best, progress,
                    stop)
    finally:
        lock.release()


def _run(trainer, spec, checkpoint_dir, resume, source, existing, keep_best, progress, stop):
    from charrnn.runs.budget import PlanTimer
    ckpt.clean_stale_temporaries(checkpoint_dir)
    if existing and not keep_best:
        # overwrite: the earlier run's best.npz must not outlive it (a run
        # without validation never writes one, and `sample` prefers best.npz).
        try:
            os.unlink(os.path.join(checkpoint_dir, BEST))
        except FileNotFoundError:
            pass
        except OSError as e:
            raise CharRNNError(f"cannot remove the earlier run's {BEST} in {checkpoint_dir}: "
                               f"{e.strerror}")
    if progress:
        cfg = spec.config
        progress("start", {
            "iteration": trainer.iteration, "max_iters": cfg.max_iters, "max_time": cfg.max_time,
            "choices": spec.lineage.get("choices") if resume is None else None,
            "plan": spec.plan.to_dict(),
            "resumed_from": source if resume is not None else None,
            "changed": spec.lineage["resumes"][-1]["changed"] if resume is not None else {},
            "checkpoint_dir": checkpoint_dir})
    return trainer.run(progress=progress, stop=stop, timer=PlanTimer(spec.config))


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
