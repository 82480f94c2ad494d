"""charrnn as a library: train on text from Python, load a checkpoint, write
and score text.  The command line is a thin layer over these functions.

    >>> import charrnn
    >>> run = charrnn.train("To be, or not to be: that is the question. " * 40,
    ...                     checkpoint_dir=str(tmp), max_iters=20, hidden_size=16,
    ...                     seq_len=8, batch_size=4, eval_every=10)
    >>> run.iterations
    20
    >>> model = charrnn.load(run.latest_path)
    >>> text = model.sample(length=30, prime="To be", seed=1)
    >>> text.startswith("To be") and len(text) == 35
    True
    >>> sorted(model.score("To be, or not to be")) [:3]
    ['bits_per_char', 'chars', 'chars_context_only']

Errors are charrnn.CharRNNError subclasses carrying the one-line message the
command line prints; nothing here calls sys.exit or prints.
"""
from __future__ import annotations

import os
from typing import Callable, Iterator

from charrnn.errors import CharRNNError, CheckpointError, DataError, OptionError
from charrnn.api.options import DEFAULT_DIR, check_train_options

__all__ = ["train", "load", "CharModel", "CharRNNError", "CheckpointError", "DataError",
           "OptionError"]

# Options of charrnn.train that are not TrainConfig settings.
_RUN_OPTIONS = ("resume", "init_from", "overwrite", "encoding", "errors", "keep_newlines",
                "doc_separator")


def train(source, checkpoint_dir: str | None = None, *, progress: Callable | None = None,
          **options):
    """Train a model and save checkpoints in checkpoint_dir, as `charrnn train`
    (default: "checkpoints", or the folder of the checkpoint resume names).

    source: the training text as a str; or a path (os.PathLike), or a list
    or tuple of paths of files and folders, read as `charrnn train` reads
    them ("-" is stdin; see charrnn/text/sources.py).  A str that names an
    existing file or folder and has no line break is taken as its path.
    options: the flags of `charrnn train` with underscores for dashes
    (hidden_size=256, max_time="10m" or 600, model="lstm", resume=True,
    init_from="ck/best.npz", ...), with the same defaults (per model where
    `charrnn train --help` says so) and the same checks: a bad one raises
    OptionError with the message the command line prints.
    progress(event, info): optional; called with "start" (iteration,
    max_iters, max_time, resumed_from, changed, choices: the sizes chosen
    and why, plan: the learning-rate plan), "plan" (iteration, total,
    basis, floor: when a --max-time plan is fixed), "step" (iteration, loss),
    "eval" (iteration, train_loss, val_loss, best_val, chars_per_s) and
    "sample" (iteration, text; with sample_every), and while the text is
    read "skip" (path, why: a file of a folder left out) and "text"
    (files, folders, chars, skipped, reading: what was read).
    Returns a TrainResult: iterations, train_loss, val_loss, best_val (nats
    per character), latest_path, best_path, interrupted_by (the signal
    number when Ctrl-C or SIGTERM stopped it: the model was saved first, as
    in the shell), stopped_early (--patience or --stall-stop ended it) and
    stop_reason (why, in words).
    """
    stop = options.pop("_stop", None)
    given = check_train_options({**options, "checkpoint_dir": checkpoint_dir})
    explicit = set(options) | ({"checkpoint_dir"} if checkpoint_dir is not None else set())
    checkpoint_dir = given.pop("checkpoint_dir") or DEFAULT_DIR
    run = {k: given.pop(k, None) for k in _RUN_OPTIONS}
    if run["resume"] is not None and run["init_from"] is not None:
        raise OptionError("--resume continues a run and --init-from starts a new one; "
                          "pass only one of them")
    from charrnn.runs.runner import run_training

    def read_corpus(resumed):
        from charrnn.runs.resume import run_decoding, run_reading
        reading = run_reading(resumed, run["keep_newlines"], run["doc_separator"])
        encoding, errors = run_decoding(resumed, run["encoding"], run["errors"])
        return _corpus(source, encoding, errors, reading, progress)
    return run_training(read_corpus, checkpoint_dir, given, explicit, resume=run["resume"],
                        init_from=run["init_from"], overwrite=bool(run["overwrite"]),
                        progress=progress, stop=stop)


def _corpus(source, encoding: str, errors: str, reading, progress=None):
    """The Corpus of a train() source, read as ``reading`` says; progress
    hears "skip" for each file of a folder left out and "text" at the end."""
    from charrnn.text.corpus import Corpus, load_corpus
    on_skip = None if progress is None else (
        lambda path, why: progress("skip", {"path": path, "why": why}))
    if isinstance(source, (list, tuple)) or isinstance(source, os.PathLike) or (
            isinstance(source, str) and "\n" not in source and len(source) < 4096
            and (source == "-" or os.path.exists(source))):
        paths = source if isinstance(source, (list, tuple)) else [source]
        folders = sum(1 for p in paths if os.path.isdir(p))
        corpus = load_corpus([os.fspath(p) for p in paths], encoding, errors,
                             reading=reading, on_skip=on_skip)
    elif not isinstance(source, str):
        raise OptionError(f"charrnn.train needs the text as a str, or a path or list of paths, "
                          f"not {type(source).__name__}")
    else:
        from charrnn.text import data
        from charrnn.text.sources import join_text
        folders, text = 0, join_text(source, reading)
        if not text:
            raise DataError("<text>: the text is empty; give charrnn something to learn")
        vocab = data.build_vocab(text)
        corpus = Corpus(ids=data.encode(text, vocab), vocab=vocab, sources=["<text>"],
                        encoding=encoding, errors=errors, reading=reading)
    if progress is not None:
        progress("text", {"files": corpus.files, "folders": folders,
                          "chars": int(len(corpus.ids)),
                          "skipped": len(corpus.skipped), "reading": corpus.reading.record()})
    return corpus


def load(path_or_folder: str = DEFAULT_DIR) -> "CharModel":
    """The model of a checkpoint file, or of a folder's best.npz (else
    latest.npz), for sampling and scoring.  Raises CheckpointError."""
    from charrnn.api.verbs import find_checkpoint, load_model
    p = os.fspath(path_or_folder)
    path = find_checkpoint(None, p) if os.path.isdir(p) else find_checkpoint(p, DEFAULT_DIR)
    model, ck = load_model(path)
    return CharModel(model, ck)


class CharModel:
    """A trained model: ``vocab`` (its characters, sorted), ``config`` (the
    checkpoint's settings), ``history`` (loss curves, read on first use),
    ``path``; sample(), stream(), score(), copies() and export()."""

    def __init__(self, model, ck):
        self._model, self._ck = model, ck
        self.vocab: str = ck.vocab
        self.config: dict = ck.config
        self.path: str = ck.path
        self._history = None

    def __repr__(self):
        m = self.config["model"]
        return (f"CharModel({self.path!r}: {m['model']}, {m['num_layers']} x "
                f"{m['hidden_size']}, {len(self.vocab)} characters)")

    @property
    def history(self) -> dict:
        """{curve: list of floats per evaluation}: iter, train_loss, val_loss, lr, ..."""
        if self._history is None:
            from charrnn.store import checkpoint as ckpt
            h = ckpt.load(self.path, {"history"}).history
            self._history = {k: [float(x) for x in v] for k, v in h.items()}
        return self._history

    def sample(self, length: int = 200, temperature: float = 1.0, prime: str = "",
               top_k: int | None = None, top_p: float | None = None, seed: int | None = None,
               until=None, n: int = 1, argmax: bool = False):
        """Generated text, prime included: a str, or a list of n str (each
        from the prime, drawn from its own generator; the first is the text
        n=1 gives).  until: a string or list of strings that ends a sample
        right after it appears.  Same meaning as `charrnn sample`."""
        texts = self._texts(length, temperature, prime, top_k, top_p, seed, until, n, argmax)
        return texts[0] if n == 1 else texts

    def _texts(self, length, temperature, prime, top_k, top_p, seed, until, n, argmax):
        out = [[] for _ in range(n)]
        for k, piece in self._pieces(length, temperature, prime, top_k, top_p, seed, until, n,
                                     argmax):
            out[k].append(piece)
        return [prime + "".join(p) for p in out]

    def _pieces(self, length, temperature, prime, top_k, top_p, seed, until, n, argmax):
        from charrnn.api.verbs import generated
        _check_sampling(length, temperature, top_k, top_p, n)
        until = (until,) if isinstance(until, str) else tuple(until or ())
        return generated(self._model, self.vocab, length, temperature, prime, seed, top_k=top_k,
                         top_p=top_p, argmax=argmax, num_samples=n, until=until)

    def stream(self, length: int = 200, temperature: float = 1.0, prime: str = "",
               top_k: int | None = None, top_p: float | None = None, seed: int | None = None,
               until=None, argmax: bool = False) -> Iterator[str]:
        """One sample, character by character as it is generated (without the
        prime); the characters join to sample(...)[len(prime):]."""
        for _, ch in self._pieces(length, temperature, prime, top_k, top_p, seed, until, 1,
                                  argmax):
            yield ch

    def copies(self, text: str, min_len: int = 20, training_text=None) -> dict:
        """How much of text was copied verbatim from this model's training
        text, as `charrnn copies --json` says it: chars, copied_chars,
        copied_share (of the characters inside copied spans of min_len or
        more), spans ([start, end) offsets in text), longest (length,
        sample_offset, text_offset, file, line, text; None below min_len),
        training_text, training_chars.  The text is found from the
        checkpoint's record, or read from training_text (a path or list of
        paths), and refused (DataError) unless its fingerprint is the
        recorded one.  One pass over the training text, in chunks."""
        from charrnn.api.verbs import copy_reports, training_text as find
        if isinstance(min_len, bool) or not isinstance(min_len, int) or min_len < 1:
            raise OptionError(f"min_len must be a whole number >= 1, not {min_len!r}")
        if isinstance(training_text, (str, os.PathLike)):
            training_text = [training_text]
        t = find(self.path, text_paths=[os.fspath(p) for p in training_text or ()])
        r = copy_reports([text], t, min_len)[0]
        return {"checkpoint": self.path, "training_text": t.paths, "training_chars": t.chars,
                **r}

    def export(self, out, overwrite: bool = False) -> dict:
        """Write this model as one self-contained HTML page at out (a path),
        the page `charrnn export OUT --checkpoint PATH` writes for the
        checkpoint as it was loaded: {"path", "checkpoint", "model" (a
        summary), "weights" (how many), "bytes"}.  Refuses an existing out
        unless overwrite, and a model too large for a browser."""
        from charrnn.api.verbs import write_page
        return write_page(os.fspath(out), self._ck, overwrite)

    def score(self, text: str, oov: str = "skip") -> dict:
        """The figures of `charrnn eval --json` for text (nats_per_char,
        bits_per_char, perplexity, character counts, out-of-vocabulary
        characters), without file and checkpoint names."""
        from charrnn.generate.scoring import OOV_MODES, score_text
        if oov not in OOV_MODES:
            raise OptionError(f"oov must be one of {', '.join(OOV_MODES)}, not {oov!r}")
        return score_text(self._model, self.vocab, text, oov)


def _check_sampling(length, temperature, top_k, top_p, n):
    """The checks `charrnn sample` makes of its numbers, as OptionError."""
    if not isinstance(length, int) or length < 0:
        raise OptionError(f"length must be a whole number >= 0, not {length!r}")
    from charrnn.generate.sample import check_temperature
    check_temperature(temperature)
    if top_k is not None and (not isinstance(top_k, int) or top_k < 1):
        raise OptionError(f"top_k must be a whole number >= 1, not {top_k!r}")
    if top_p is not None and not (isinstance(top_p, (int, float)) and 0 < top_p <= 1):
        raise OptionError(f"top_p must be in (0, 1], not {top_p!r}")
    if not isinstance(n, int) or n < 1:
        raise OptionError(f"n must be a whole number >= 1, not {n!r}")
