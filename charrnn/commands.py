"""What each verb does, with plain arguments: the CLI parses, these act."""
from __future__ import annotations

import os
import sys
from typing import Iterator

import numpy as np

from . import checkpoint as ckpt
from . import data
from .errors import CharRNNError, CheckpointError, DataError
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
    """(Model, Checkpoint) with only what a model needs read: config, vocab
    and weights; no optimizer state, training state or history (resuming
    a run reads and checks everything, see train)."""
    ck = ckpt.load(path, ckpt.MODEL_PARTS)
    return Model(ck.model_config, ck.params), ck


def train(files, checkpoint_dir, opts, quiet=False, overwrite=False, sample_out=None,
          encoding="utf-8", errors="strict", resume=None, init_from=None, explicit=None,
          linger_signals=False) -> int:
    """Train on files ('-' is stdin); returns the exit code (0, or 128+signal when interrupted).

    encoding, errors: how the files' bytes are decoded (see data.decode).
    resume: continue this checkpoint exactly ("" means <checkpoint_dir>/latest.npz).
    init_from: start a new run from this checkpoint's weights.
    explicit: names of the opts (and "checkpoint_dir") the user actually set;
    None means all of them.  Only these may contradict a resumed checkpoint.
    linger_signals: after an interrupt, ignore further SIGINT/SIGTERM (the
    process is about to exit; see StopFlag).
    """
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
    # the run's whole life (see runlock): a second run into it stops here.
    from . import runlock
    lock = runlock.hold(checkpoint_dir) if os.path.isdir(checkpoint_dir) else None
    try:
        return _train_locked(files, checkpoint_dir, opts, quiet, overwrite, sample_out,
                             encoding, errors, resume, init_from, explicit, linger_signals,
                             source, lock)
    finally:
        if lock is not None:
            lock.release()


def _train_locked(files, checkpoint_dir, opts, quiet, overwrite, sample_out, encoding, errors,
                  resume, init_from, explicit, linger_signals, source, lock) -> int:
    """train() once the folder is locked (lock None: it did not exist yet;
    it is created and locked once the text is loaded)."""
    from .config import make_train_config
    from .train import Trainer, load_corpus
    from . import runlock, runs
    ck = ckpt.load(source) if source else None
    existing, keep_best = _check_earlier_run(checkpoint_dir, overwrite, resume, source)
    if not quiet and data.STDIN in files and _is_tty(sys.stdin):
        print("reading the training text from stdin (end it with Ctrl-D)", file=sys.stderr)
    corpus = load_corpus(files, encoding, errors)
    if resume is not None:
        trainer = runs.resume_trainer(ck, corpus, opts, explicit, checkpoint_dir)
    elif init_from:
        trainer = runs.init_trainer(ck, corpus, opts, explicit, checkpoint_dir)
    else:
        trainer = Trainer(make_train_config(**opts), corpus, checkpoint_dir)
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
        return _run(trainer, checkpoint_dir, quiet, resume, source, existing, keep_best,
                    sample_out, linger_signals)
    finally:
        lock.release()


def _run(trainer, checkpoint_dir, quiet, resume, source, existing, keep_best, sample_out,
         linger_signals) -> int:
    from .train import StopFlag
    from . import runs
    cfg = trainer.cfg
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
        if result.stopped_early:
            print(f"stopped early: no better validation loss in the last {cfg.patience} "
                  f"evaluations (--patience)", file=sys.stderr)
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


def _is_tty(stream) -> bool:
    try:
        return stream is not None and stream.isatty()
    except (AttributeError, ValueError, OSError):
        return False


def read_prime(path: str) -> str:
    """The prime from a UTF-8 file ('-' is stdin), verbatim (a trailing newline is kept)."""
    if path == data.STDIN and _is_tty(sys.stdin):
        print("reading the prime from stdin (end it with Ctrl-D)", file=sys.stderr)
    return data.read_text(path, "utf-8", "strict", advice="a prime must be UTF-8 text")


def sample_pieces(checkpoint, checkpoint_dir, length, temperature=1.0, prime="", seed=None, *,
                  top_k=None, top_p=None, argmax=False, num_samples=1, separator="\n\n",
                  until=(), echo_prime=True, beam_width=None, newline=True) -> Iterator[str]:
    """Load and check everything, then return an iterator over the output text.

    Per sample: the prime (when echo_prime) and up to ``length`` generated
    characters; ``separator`` between samples (not after the last); one
    final newline when ``newline``.  Samples draw from one generator seeded
    with ``seed``, one uniform per generated character (none for argmax or
    beam search), so echoing the prime never changes the text.  With
    beam_width the samples are the num_samples best beams, best first.
    Errors (bad checkpoint, prime outside the vocabulary) raise here, before
    anything is yielded.
    """
    from .sample import beam_search, check_prime, iter_chars
    model, ck = load_model(find_checkpoint(checkpoint, checkpoint_dir))
    vocab = ck.vocab
    check_prime(prime, vocab)
    until = tuple(u for u in until if u)
    head = prime if echo_prime else ""
    if beam_width:
        beams = beam_search(model, vocab, length, beam_width, prime, until, n_best=num_samples)
        bodies = [iter(text) for text, _ in beams]
    else:
        # Python's Mersenne Twister: iter_chars needs only rng.random(), and
        # numpy.random would add ~17 ms to every `charrnn sample` start-up.
        import random
        rng = random.Random(seed)
        bodies = (iter_chars(model, vocab, length, temperature, prime, rng, top_k=top_k,
                             top_p=top_p, argmax=argmax, until=until)
                  for _ in range(num_samples))

    def pieces():
        for k, body in enumerate(bodies):
            if k:
                yield separator
            if head:
                yield head
            yield from body
        if newline:
            yield "\n"
    return pieces()


def sample(checkpoint, checkpoint_dir, length, temperature=1.0, prime="", seed=None, **kw) -> str:
    """Prime (echoed) followed by ``length`` generated characters, as one string
    (keyword options as in sample_pieces; no final newline)."""
    return "".join(sample_pieces(checkpoint, checkpoint_dir, length, temperature, prime, seed,
                                 newline=False, **kw))


def inspect(checkpoint, checkpoint_dir, plot=None) -> dict:
    """The summary of a checkpoint; with plot, also write its loss curves there."""
    from .inspect import summary
    ck = ckpt.load(find_checkpoint(checkpoint, checkpoint_dir, prefer=(LATEST, BEST)),
                   ckpt.SUMMARY_PARTS)       # no weights or optimizer state
    s = summary(ck)
    if plot:
        from .curves import plot as plot_curves
        plot_curves(s["history"], plot, title=os.path.basename(ck.path))
    return s


def gradients(checkpoint, checkpoint_dir, file, lags=50, max_chars=10_000, plot=None) -> dict:
    """Gradient flow through time (charrnn.gradflow) of a checkpoint on the
    first max_chars characters of file ('-': stdin) that are in its
    vocabulary, read as one stream from a zero state; with plot, also the
    image.  JSON-ready: the flow plus file, checkpoint and character counts."""
    from .evaluate import lenient_ids
    from .gradflow import gradient_flow
    path = find_checkpoint(checkpoint, checkpoint_dir)
    model, ck = load_model(path)
    text = read_input(file)
    ids = lenient_ids(text, ck.vocab)
    known = ids[ids >= 0][:max_chars]
    if len(known) < 2:
        raise DataError(f"{file}: fewer than 2 characters of the model's vocabulary; "
                        f"--gradients needs text like the training text")
    flow = gradient_flow(model, known, lags)
    out = {"file": file, "checkpoint": path, "model": ck.config["model"]["model"],
           "chars_read": len(text), "chars_used": int(len(known)),
           "chars_outside_vocab": int((ids < 0).sum()), **flow}
    if plot:
        from .gradview import plot as plot_flow
        plot_flow(out, plot, title=f"{os.path.basename(path)}: {out['model']}, "
                                   f"{out['chars_used']:,} characters of {os.path.basename(file)}")
    return out


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
