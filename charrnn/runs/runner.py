"""One training run from start to end, with plain arguments: the folder
lock, the check for an earlier run, the text, a new, resumed (--resume) or
fine-tuning (--init-from) trainer, and the loop.  Prints nothing: what
happens reaches the caller through the ``progress`` callback and the
returned TrainResult (the command line prints them, see cli/progress.py)."""
from __future__ import annotations

import os

from charrnn.store import checkpoint as ckpt
from charrnn.errors import CharRNNError, CheckpointError, OptionError

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
    from charrnn.runs.config import make_train_config
    from charrnn.runs.trainer import Trainer
    from charrnn.store import runlock
    from charrnn.runs import resume as runs
    ck = ckpt.load(source) if source else None
    existing, keep_best = _check_earlier_run(checkpoint_dir, overwrite, resume, source)
    corpus = read_corpus(ck if resume is not None else None)
    if resume is not None:
        trainer = runs.resume_trainer(ck, corpus, opts, explicit, checkpoint_dir)
    elif init_from:
        trainer = runs.init_trainer(ck, corpus, opts, explicit, checkpoint_dir)
    else:
        trainer = _new_trainer(corpus, checkpoint_dir, opts, explicit)
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
        return _run(trainer, checkpoint_dir, resume, source, existing, keep_best, progress, stop)
    finally:
        lock.release()


def _run(trainer, checkpoint_dir, resume, source, existing, keep_best, progress, stop):
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
        cfg = trainer.cfg
        progress("start", {
            "iteration": trainer.iteration, "max_iters": cfg.max_iters, "max_time": cfg.max_time,
            "choices": trainer.lineage.get("choices") if resume is None else None,
            "plan": trainer.plan.to_dict(),
            "resumed_from": source if resume is not None else None,
            "changed": trainer.lineage["resumes"][-1]["changed"] if resume is not None else {},
            "checkpoint_dir": checkpoint_dir})
    return trainer.run(progress=progress, stop=stop)


def _new_trainer(corpus, checkpoint_dir, opts, explicit):
    """A new run: with a limit, the sizes, batch shape and (rnn) optimizer the
    user left unset are chosen for the text and the budget (runs/sizing.py;
    the time spent choosing counts against --max-time), and the rate is
    planned for the budget (runs/schedule.py)."""
    import time
    from charrnn.runs import sizing
    from charrnn.runs.config import make_train_config
    from charrnn.runs.schedule import initial_plan
    from charrnn.runs.trainer import Trainer
    from charrnn.text import data
    cfg = make_train_config(**opts)
    if cfg.lr_schedule == "budget" and cfg.max_iters is None and cfg.max_time is None:
        raise OptionError("--lr-schedule budget plans the rate for a budget: set --max-time "
                          "or --max-iters (or use --lr-schedule step)")
    choice, spent = None, 0.0
    if cfg.max_iters is not None or cfg.max_time is not None:
        t = time.perf_counter()
        given = {k: opts[k] for k in sizing.CHOSEN_FIELDS if k in opts and k in explicit}
        train_ids, val_ids = data.split(corpus.ids, cfg.val_frac)
        repeats = sizing.repeat_share(train_ids, val_ids) if not given.keys() >= {
            "hidden_size", "num_layers", "dropout"} else 0.0
        choice = sizing.choose_for(cfg, len(corpus.vocab), len(train_ids), given,
                                   repeats=repeats)
        opts = {**opts, "num_layers": choice.num_layers, "hidden_size": choice.hidden_size,
                "dropout": choice.dropout, "batch_size": choice.batch_size,
                "seq_len": choice.seq_len, **choice.optimizer}
        if "eval_every" not in explicit and cfg.eval_every:
            # smaller steps, evaluated as often per character read
            per_step = cfg.batch_size * cfg.seq_len / (choice.batch_size * choice.seq_len)
            opts["eval_every"] = max(1, round(cfg.eval_every * per_step))
        cfg = make_train_config(**opts)
        spent = time.perf_counter() - t
    else:
        choice = sizing.unsized(cfg)
    choices = choice.to_dict()
    trainer = Trainer(cfg, corpus, checkpoint_dir, choices=choices)
    trainer.plan = initial_plan(cfg, explicit)
    trainer.spent = spent
    trainer.lineage["choices"] = choices
    return trainer


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
