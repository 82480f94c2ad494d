"""What each verb does, with plain arguments: the CLI parses, these act."""
from __future__ import annotations

import itertools
import os
import sys
from typing import Iterator


from charrnn.store import checkpoint as ckpt
from charrnn.text import data
from charrnn.errors import CharRNNError, CheckpointError, DataError
from charrnn.nn.model import Model

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


def read_prime(path: str) -> str:
    """The prime from a UTF-8 file ('-' is stdin), verbatim (a trailing newline is kept)."""
    return data.read_text(path, "utf-8", "strict", advice="a prime must be UTF-8 text")


def sample_pieces(checkpoint, checkpoint_dir, length, temperature=1.0, prime="", seed=None, *,
                  top_k=None, top_p=None, argmax=False, num_samples=1, separator="\n\n",
                  until=(), echo_prime=True, beam_width=None, newline=True,
                  record: list | None = None) -> Iterator[str]:
    """Load and check everything, then return an iterator over the output text.

    Per sample: the prime (when echo_prime) and up to ``length`` generated
    characters; ``separator`` between samples (not after the last); one
    final newline when ``newline``.  The samples are generated side by side
    (batch.iter_batch); sample i draws from its own generator
    (sample.sample_rng(seed, i)), one uniform per generated character (none
    for argmax or beam search), so echoing the prime never changes the text
    and the first of N samples is the sample you get alone.  Samples come
    out in order, each as soon as it and the ones before it are known.  With
    beam_width the samples are the num_samples best beams, best first.
    Errors (bad checkpoint, prime outside the vocabulary) raise here, before
    anything is yielded.  record: a list that receives each sample's
    generated text (without the prime) as a list of pieces.
    """
    model, ck = load_model(find_checkpoint(checkpoint, checkpoint_dir))
    texts = generated(model, ck.vocab, length, temperature, prime, seed, top_k=top_k,
                      top_p=top_p, argmax=argmax, num_samples=num_samples, until=until,
                      beam_width=beam_width)
    head = prime if echo_prime else ""

    def pieces():
        current = -1
        for k, text in texts:
            if k != current:
                if k:
                    yield separator
                if head:
                    yield head
                current = k
                if record is not None:
                    record.append([])
            if text:
                if record is not None:
                    record[-1].append(text)
                yield text
        if newline:
            yield "\n"
    return pieces()


def generated(model, vocab, length, temperature=1.0, prime="", seed=None, *, top_k=None,
              top_p=None, argmax=False, num_samples=1, until=(), beam_width=None):
    """Check the prime, then return an iterator of (sample number, text
    piece) over the generated text of num_samples samples, in order (the
    prime not included; each sample starts with an empty piece, so even an
    empty one is seen).  Shared by `charrnn sample` and CharModel.sample."""
    from charrnn.generate.sample import beam_search, check_prime, sample_rng
    check_prime(prime, vocab)
    until = tuple(u for u in until if u)
    if beam_width:
        beams = beam_search(model, vocab, length, beam_width, prime, until, n_best=num_samples)
        return ((k, text) for k, (text, _) in enumerate(beams))
    rngs = [sample_rng(seed, i) for i in range(num_samples)]
    if num_samples == 1:
        # one sample: the per-character path (iter_batch's sample 0 is this,
        # bit for bit, but carries the batch machinery for every character)
        from charrnn.generate.sample import iter_chars
        first = iter_chars(model, vocab, length, temperature, prime, rngs[0], top_k=top_k,
                           top_p=top_p, argmax=argmax, until=until)
        return itertools.chain([(0, "")], ((0, ch) for ch in first))
    from charrnn.generate.batch import in_order, iter_batch
    return in_order(iter_batch(model, vocab, length, rngs, temperature, prime, top_k=top_k,
                               top_p=top_p, argmax=argmax, until=until), num_samples)


def sample(checkpoint, checkpoint_dir, length, temperature=1.0, prime="", seed=None, **kw) -> str:
    """Prime (echoed) followed by ``length`` generated characters, as one string
    (keyword options as in sample_pieces; no final newline)."""
    return "".join(sample_pieces(checkpoint, checkpoint_dir, length, temperature, prime, seed,
                                 newline=False, **kw))


def inspect(checkpoint, checkpoint_dir, plot=None) -> dict:
    """The summary of a checkpoint; with plot, also write its loss curves there."""
    from charrnn.views.inspect import summary
    ck = ckpt.load(find_checkpoint(checkpoint, checkpoint_dir, prefer=(LATEST, BEST)),
                   ckpt.SUMMARY_PARTS)       # no weights or optimizer state
    s = summary(ck)
    if plot:
        from charrnn.views.curves import plot as plot_curves
        plot_curves(s["history"], plot, title=os.path.basename(ck.path))
    return s


def gradients(checkpoint, checkpoint_dir, file, lags=50, max_chars=10_000, plot=None) -> dict:
    """Gradient flow through time (charrnn.gradflow) of a checkpoint on the
    first max_chars characters of file ('-': stdin) that are in its
    vocabulary, read as one stream from a zero state; with plot, also the
    image.  JSON-ready: the flow plus file, checkpoint and character counts."""
    from charrnn.generate.scoring import lenient_ids
    from charrnn.nn.gradflow import gradient_flow
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
        from charrnn.views.gradview import plot as plot_flow
        plot_flow(out, plot, title=f"{os.path.basename(path)}: {out['model']}, "
                                   f"{out['chars_used']:,} characters of {os.path.basename(file)}")
    return out


def read_input(path: str) -> str:
    """UTF-8 text of a file, or of stdin for '-'."""
    from charrnn.text.data import decode, read_text
    advice = "this command reads UTF-8 text; convert it first (e.g. iconv -t utf-8)"
    if path == "-":
        return decode(sys.stdin.buffer.read(), "<stdin>", advice=advice)
    return read_text(path, advice=advice)


def score_file(file, checkpoint, checkpoint_dir, oov="skip", exact=False,
               progress=None) -> dict:
    """Loss of a checkpoint on the text of file, with character counts and
    the method (exact: one stream; else segments side by side, see
    charrnn.generate.scoring).  progress(n, total) hears of every n characters
    scored of total."""
    from charrnn.generate.scoring import score_text
    text = read_input(file)
    path = find_checkpoint(checkpoint, checkpoint_dir)
    model, ck = load_model(path)
    hear = None if progress is None else (lambda n: progress(n, len(text)))
    r = score_text(model, ck.vocab, text, oov, progress=hear, exact=exact)
    return {"file": file, "checkpoint": path, **r}


def cells(checkpoint, checkpoint_dir, text=None, text_file=None, html_out=None, *, unit_ids=(),
          layer=None, part=None, top=3, surprise=False, positions=(), top_k=5) -> dict:
    """The hidden-unit / surprise view of a text (see cellview.build); with
    html_out, also write it as an HTML page."""
    from charrnn.views.cellview import build
    if text is None:
        text = read_input(text_file)
    if not text:
        raise CharRNNError("the text for --cells is empty")
    path = find_checkpoint(checkpoint, checkpoint_dir, prefer=(LATEST, BEST))
    model, ck = load_model(path)
    view = build(model, ck.vocab, text, layer=layer, unit_ids=unit_ids, part=part, top=top,
                 at=positions, top_k=top_k, most_surprising=5 if surprise else 0,
                 checkpoint=path)
    if html_out:
        from charrnn.views.htmlview import page
        _write_text(html_out, page(view))
    return view


def _write_text(path, content):
    try:
        with open(path, "w", encoding="utf-8") as f:
            f.write(content)
    except OSError as e:
        raise CharRNNError(f"cannot write {path}: {e.strerror or e}")


def export(out, checkpoint=None, checkpoint_dir="checkpoints", overwrite=False) -> dict:
    """Write the model of a checkpoint (default: best.npz, else latest.npz, in
    checkpoint_dir) as one self-contained HTML page at out (see
    charrnn.views.export).  Refuses an existing out unless overwrite, and a
    model too large for a browser; the page is written to a temporary file
    beside out, then renamed, so a failed write leaves nothing half-made.
    Returns {"path", "checkpoint", "model", "weights", "bytes"}."""
    _check_page_path(out, overwrite)            # before a checkpoint is looked for or read
    path = find_checkpoint(checkpoint, checkpoint_dir)
    return _page(out, ckpt.load(path, ckpt.MODEL_PARTS))


def _check_page_path(out, overwrite) -> None:
    if os.path.isdir(out):
        raise CharRNNError(f"{out} is a folder; give the page a file name, e.g. {out}/model.html")
    if os.path.exists(out) and not overwrite:
        raise CharRNNError(f"{out} already exists; pass --overwrite to replace it or choose "
                           f"another name")


def write_page(out, ck: ckpt.Checkpoint, overwrite=False) -> dict:
    """export's page for a loaded Checkpoint ck (config, vocab, params; its
    path names it), refused and written as export refuses and writes it."""
    _check_page_path(out, overwrite)
    return _page(out, ck)


def _page(out, ck: ckpt.Checkpoint) -> dict:
    from charrnn.views import export as ex
    path = ck.path
    ex.check_size(ck.params, path)
    cfg = ck.model_config
    summary = ex.describe(cfg, ck.vocab)
    # file names only: a page is made to be shared, the user's folders are not
    sources = [os.path.basename(str(s)) for s in ck.config.get("data", {}).get("sources") or []]
    more = f" and {len(sources) - 3} more" if len(sources) > 3 else ""
    title = f"charrnn: {cfg.model} on {', '.join(sources[:3])}{more}" if sources else "charrnn"
    text = ex.page(cfg, ck.params, ck.vocab, title=title,
                   summary=f"{summary}, from {os.path.basename(path)}")
    tmp = f"{out}.tmp-{os.getpid()}"
    try:
        with open(tmp, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
        os.replace(tmp, out)
    except OSError as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise CharRNNError(f"cannot write {out}: {e.strerror or e}")
    return {"path": out, "checkpoint": path, "model": summary,
            "weights": int(sum(a.size for a in ck.params.values())),
            "bytes": len(text.encode("utf-8"))}


# ------------------------------------------------------------- copies
class TrainingText:
    """Where a training text is and how to read it: files (folders
    expanded), encoding, errors, reading (sources.Reading), and when it
    comes from a checkpoint, the fingerprint and length it must have."""

    def __init__(self, paths, encoding="utf-8", errors="strict", reading=None,
                 want_sha=None, want_chars=None, checkpoint=None):
        from charrnn.text.sources import Reading, list_files
        self.paths = list(paths)
        self.encoding, self.errors = encoding, errors
        self.reading = reading if reading is not None else Reading()
        self.want_sha, self.want_chars, self.checkpoint = want_sha, want_chars, checkpoint
        self.files = list_files(self.paths, encoding).files

    def pieces(self, docs: list):
        """The text in pieces (str); docs gets (text offset, newlines before,
        file) for each document as it starts.  At the end, DataError when
        the text is not the one the checkpoint was trained on."""
        import hashlib
        from charrnn.text.data import code_points
        from charrnn.text.sources import iter_pieces
        h = hashlib.sha256()
        n = lines = 0
        current = -1
        for k, piece in iter_pieces(self.files, self.encoding, self.errors, self.reading):
            if k >= 0 and k != current:
                current = k
                docs.append((n, lines, self.files[k]))
            if self.want_sha is not None:
                h.update(code_points(piece).astype("<u4", copy=False).tobytes())
            n += len(piece)
            lines += piece.count("\n")
            yield piece
        if self.want_sha is not None and (h.hexdigest() != self.want_sha
                                          or n != (self.want_chars or n)):
            names = ", ".join(self.paths)
            raise DataError(f"{names}: the text differs from the one {self.checkpoint} was "
                            f"trained on ({n:,} vs {self.want_chars or 0:,} characters, another "
                            f"sha256); the copy report needs the training text: pass --text "
                            f"PATH with the text as it was")
        self.chars = n


def training_text(checkpoint=None, checkpoint_dir=".", text_paths=(), use_checkpoint=True):
    """The TrainingText of a checkpoint (its record: sources, encoding,
    errors, reading, fingerprint), read from text_paths instead when given;
    without use_checkpoint, text_paths read as `charrnn train` reads them by
    default, with nothing to verify.  Raises before anything is scanned when
    the text cannot be found."""
    from charrnn.text.sources import Reading
    if not use_checkpoint:
        if not text_paths:
            raise CharRNNError("give the training text (--text PATH) or a checkpoint")
        return TrainingText(text_paths)
    path = find_checkpoint(checkpoint, checkpoint_dir)
    ck = ckpt.load(path, frozenset())
    d = ck.config.get("data", {})
    try:
        reading = Reading.from_record(d.get("reading"))
    except ValueError:
        raise CheckpointError(f"{path}: its record of how the text was read (config "
                              f"data.reading) is damaged")
    sources = list(text_paths) or list(d.get("sources") or [])
    if not sources:
        raise CheckpointError(f"{path} does not record its training text; pass --text PATH")
    if not text_paths:
        for s in sources:
            if s in ("<stdin>", "<text>"):
                how = "standard input" if s == "<stdin>" else "a str given to charrnn.train"
                raise DataError(f"{path} was trained on text from {how}, which cannot be read "
                                f"again; pass --text PATH with that text")
            if not os.path.exists(s):
                raise DataError(f"{s}: no such file or folder ({path} was trained on it); pass "
                                f"--text PATH where the text is now")
    return TrainingText(sources, d.get("encoding", "utf-8"), d.get("errors", "strict"), reading,
                        d.get("text_sha256"), d.get("chars"), path)


def copy_reports(samples: list, text: TrainingText, min_len: int = 20,
                 chunk_chars: int | None = None) -> list[dict]:
    """For each sample (str), what copies.find_copies says, JSON-ready: chars,
    copied_chars, copied_share, spans, longest (length, sample_offset,
    text_offset, file and line in it, text; None when no copy has min_len
    characters or more).  One pass over the training text."""
    import bisect
    from charrnn.text.copies import CHUNK_CHARS, find_copies
    if min_len < 1:
        raise CharRNNError(f"min_len must be >= 1, not {min_len}")
    docs: list = []
    reports = find_copies(samples, text.pieces(docs), min_len, chunk_chars or CHUNK_CHARS)
    starts = [d[0] for d in docs]
    out = []
    for s, r in zip(samples, reports):
        longest = None
        if r.longest is not None:
            c = r.longest
            k = bisect.bisect_right(starts, c.text_offset) - 1
            doc = docs[k] if k >= 0 else (0, 0, None)
            longest = {"length": c.length, "sample_offset": c.sample_offset,
                       "text_offset": c.text_offset, "file": doc[2],
                       "line": c.text_line - doc[1], "text_line": c.text_line,
                       "text": s[c.sample_offset:c.sample_offset + c.length]}
        out.append({"chars": r.chars, "copied_chars": r.copied,
                    "copied_share": round(r.share, 6), "min_len": min_len,
                    "longest": longest, "spans": [list(sp) for sp in r.spans]})
    return out


def copies(file, checkpoint=None, checkpoint_dir=".", text_paths=(), min_len=20,
           use_checkpoint=True) -> dict:
    """`charrnn copies`: the copy report of the text in file ('-': stdin)
    against a checkpoint's training text (or text_paths), JSON-ready."""
    sample = data.read_text(file, "utf-8", "strict",
                            advice="the text to check must be UTF-8, as charrnn sample writes it")
    if not sample:
        raise DataError(f"{data.source_name(file)}: the text to check is empty")
    text = training_text(checkpoint, checkpoint_dir, text_paths, use_checkpoint)
    r = copy_reports([sample], text, min_len)[0]
    return {"file": data.source_name(file), "checkpoint": text.checkpoint,
            "training_text": text.paths, "training_chars": text.chars, **r}
