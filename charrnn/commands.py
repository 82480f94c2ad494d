"""What each verb does, with plain arguments: the CLI parses, these act."""
from __future__ import annotations

import os
import sys
from typing import Iterator

import numpy as np

from . import checkpoint as ckpt
from . import data
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
    from .config import make_train_config
    from .train import StopFlag, Trainer, load_corpus
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
    if not quiet and data.STDIN in files and _is_tty(sys.stdin):
        print("reading the training text from stdin (end it with Ctrl-D)", file=sys.stderr)
    corpus = load_corpus(files, encoding, errors)
    if resume is not None:
        trainer = runs.resume_trainer(ck, corpus, opts, explicit, checkpoint_dir)
    elif init_from:
        trainer = runs.init_trainer(ck, corpus, opts, explicit, checkpoint_dir)
    else:
        trainer = Trainer(make_train_config(**opts), corpus, checkpoint_dir)
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
    final newline when ``newline``.  The samples are generated side by side
    (sample.iter_batch); sample i draws from its own generator
    (sample.sample_rng(seed, i)), one uniform per generated character (none
    for argmax or beam search), so echoing the prime never changes the text
    and the first of N samples is the sample you get alone.  Samples come
    out in order, each as soon as it and the ones before it are known.  With
    beam_width the samples are the num_samples best beams, best first.
    Errors (bad checkpoint, prime outside the vocabulary) raise here, before
    anything is yielded.
    """
    from .sample import beam_search, check_prime, in_order, iter_batch, sample_rng
    model, ck = load_model(find_checkpoint(checkpoint, checkpoint_dir))
    vocab = ck.vocab
    check_prime(prime, vocab)
    until = tuple(u for u in until if u)
    head = prime if echo_prime else ""
    if beam_width:
        beams = beam_search(model, vocab, length, beam_width, prime, until, n_best=num_samples)
        texts = ((k, text) for k, (text, _) in enumerate(beams))
    else:
        rngs = [sample_rng(seed, i) for i in range(num_samples)]
        texts = in_order(iter_batch(model, vocab, length, rngs, temperature, prime, top_k=top_k,
                                    top_p=top_p, argmax=argmax, until=until), num_samples)

    def pieces():
        current = -1
        for k, text in texts:
            if k != current:
                if k:
                    yield separator
                if head:
                    yield head
                current = k
            if text:
                yield text
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


def evaluate(file, checkpoint, checkpoint_dir, oov="skip", exact=False) -> dict:
    """Loss of a checkpoint on the text of file, with character counts and
    the method (exact: one stream; else segments side by side, see
    charrnn.evaluate)."""
    from .evaluate import evaluate_text
    text = read_input(file)
    path = find_checkpoint(checkpoint, checkpoint_dir)
    model, ck = load_model(path)
    from tqdm import tqdm
    # a progress bar on stderr, only when it is a terminal (disable=None)
    with tqdm(total=len(text), unit="char", unit_scale=True, file=sys.stderr, disable=None,
              leave=False, mininterval=0.5) as bar:
        r = evaluate_text(model, ck.vocab, text, oov, progress=bar.update, exact=exact)
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
