"""Training on folders and text as it lies: stable order, hidden and binary
files skipped with one line each, BOM and CRLF/CR normalised (or kept),
documents joined on new lines with an optional separator recorded in the
checkpoint, resume on a folder, the streaming id cache on a folder, and
bad input."""
from __future__ import annotations

import contextlib
import hashlib
import os
import signal

import numpy as np
import pytest

import charrnn
from charrnn.errors import CharRNNError, DataError
from charrnn.runs.runner import run_training
from charrnn.store import checkpoint as ckpt
from charrnn.text import corpus, data
from charrnn.text.corpus import load_corpus
from charrnn.text.sniff import looks_binary
from charrnn.text.sources import LEGACY, Reading, describe, iter_document, list_files

from conftest import make_corpus
from helpers import assert_ok, invoke

TINY = dict(hidden_size=8, seq_len=8, batch_size=2, eval_every=3, max_iters=3)
TINY_FLAGS = ["--hidden-size", "8", "--seq-len", "8", "--batch-size", "2", "--eval-every", "3"]


def _put(root, rel, content):
    path = os.path.join(root, *rel.split("/"))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(content.encode() if isinstance(content, str) else content)
    return path


def _text(paths, **kw) -> str:
    c = load_corpus([str(p) for p in paths], **kw)
    return data.decode_ids(c.ids, c.vocab)


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-32-le")).hexdigest()


# ------------------------------------------------------------- sniffing
def test_looks_binary_is_a_nul_in_the_first_8192_bytes():
    assert looks_binary(b"ab\x00c")
    assert not looks_binary(b"plain text\n\xff\xfe")
    assert looks_binary(b"a" * 8191 + b"\x00")
    assert not looks_binary(b"a" * 8192 + b"\x00")


# --------------------------------------------------------------- order
def test_a_folder_is_read_recursively_in_sorted_relative_path_order(tmp_path, monkeypatch):
    root = str(tmp_path / "c")
    for rel in ("b.txt", "a/z.txt", "a/b/c.txt", "a-b.txt", "B.txt", "é.txt"):
        _put(root, rel, rel + "\n")
    want = ["B.txt", "a/b/c.txt", "a/z.txt", "a-b.txt", "b.txt", "é.txt"]   # by component
    # whatever order the filesystem lists entries in
    real = os.scandir

    class Reversed:
        def __init__(self, p):
            self.it = real(p)

        def __enter__(self):
            return reversed(list(self.it.__enter__()))

        def __exit__(self, *a):
            return self.it.__exit__(*a)
    for scandir in (real, Reversed):
        monkeypatch.setattr(os, "scandir", scandir)
        files = list_files([root]).files
        assert [os.path.relpath(f, root).replace(os.sep, "/") for f in files] == want
    monkeypatch.setattr(os, "scandir", real)
    assert _text([root]) == "".join(w + "\n" for w in want)


def test_files_and_folders_mix_in_the_order_given(tmp_path, runner):
    one = _put(tmp_path, "one.txt", "first " * 30)
    root = str(tmp_path / "d")
    _put(root, "x.txt", "middle\n")
    two = _put(tmp_path, "two.txt", "last")
    assert _text([two, root, one]) == "last\nmiddle\n" + "first " * 30
    r = invoke(runner, "train", two, root, one, "--checkpoint-dir", tmp_path / "ck",
               "--max-iters", "2", *TINY_FLAGS)
    assert_ok(r)
    assert r.stderr.splitlines()[0] == "read 3 files, 192 characters"
    # one file given: the line would say nothing new
    r = invoke(runner, "train", one, "--checkpoint-dir", tmp_path / "ck1", "--max-iters", "2",
               *TINY_FLAGS)
    assert_ok(r)
    assert r.stderr.startswith("chosen: ")


# ----------------------------------------------------- hidden, binary
def test_hidden_and_binary_files_are_skipped_one_line_each_with_a_count(tmp_path, runner):
    root = str(tmp_path / "c")
    _put(root, "keep.txt", make_corpus(600, seed=1))
    _put(root, ".secret.txt", "hidden text")
    _put(root, ".git/config", "[core]")
    _put(root, "sub/.cache/x.txt", "hidden folder")
    _put(root, "img.png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    _put(root, "sub/late.bin", b"a" * 5000 + b"\x00")
    r = invoke(runner, "train", root, "--checkpoint-dir", tmp_path / "ck", "--max-iters", "3",
               *TINY_FLAGS)
    assert_ok(r)
    lines = r.stderr.splitlines()
    skips = [ln for ln in lines if ln.startswith("charrnn: skipped ")]
    sep = os.sep
    assert skips == [
        f"charrnn: skipped {root}{sep}.git{sep} (hidden)",
        f"charrnn: skipped {root}{sep}.secret.txt (hidden)",
        f"charrnn: skipped {root}{sep}img.png (looks binary: a NUL byte in its first 8,192 bytes)",
        f"charrnn: skipped {root}{sep}sub{sep}.cache{sep} (hidden)",
        f"charrnn: skipped {root}{sep}sub{sep}late.bin (looks binary: a NUL byte in its first "
        f"8,192 bytes)"]
    n = len(make_corpus(600, seed=1))
    assert f"read 1 file, {n:,} characters (skipped 5, see above)" in lines
    ck = ckpt.load(str(tmp_path / "ck" / "latest.npz"))
    assert ck.config["data"]["files"] == 1 and ck.config["data"]["chars"] == n


def test_quiet_still_says_what_was_skipped_but_not_the_count(tmp_path, runner):
    root = str(tmp_path / "c")
    _put(root, "keep.txt", make_corpus(600))
    _put(root, "z.bin", b"\x00\x01")
    r = invoke(runner, "train", root, "--checkpoint-dir", tmp_path / "ck", "--max-iters", "3",
               "--quiet", *TINY_FLAGS)
    assert_ok(r)
    assert r.stderr.splitlines() == [f"charrnn: skipped {os.path.join(root, 'z.bin')} "
                                     f"(looks binary: a NUL byte in its first 8,192 bytes)"]


def test_a_file_named_on_the_command_line_is_never_sniffed(tmp_path):
    path = _put(tmp_path, "nul.txt", "a\x00b")
    assert _text([path]) == "a\x00b"


@pytest.mark.parametrize("encoding", ["utf-16", "UTF-16LE", "utf-32", "utf_32_be"])
def test_utf16_and_utf32_folders_are_not_sniffed_for_nul(tmp_path, encoding):
    root = str(tmp_path / "c")
    _put(root, "a.txt", "wide text".encode(encoding))
    assert _text([root], encoding=encoding) == "wide text"


def test_a_folder_is_sniffed_under_an_encoding_python_does_not_know(tmp_path):
    """Listing does not decode: the unknown name is the reader's error to give."""
    root = str(tmp_path / "c")
    _put(root, "a.bin", b"\x00")
    _put(root, "b.txt", "text")
    got = list_files([root], encoding="no-such-codec")
    assert got.files == [os.path.join(root, "b.txt")]
    assert got.skipped == [(os.path.join(root, "a.bin"),
                            "looks binary: a NUL byte in its first 8,192 bytes")]


# --------------------------------------------------------- newlines, BOM
@pytest.mark.parametrize("raw, lf, kept", [
    (b"a\r\nb\r\n", "a\nb\n", "a\r\nb\r\n"),
    (b"a\rb\r", "a\nb\n", "a\rb\r"),
    (b"\xef\xbb\xbfa\nb", "a\nb", "a\nb"),
    (b"\xef\xbb\xbfx\r\n\ry\n\r", "x\n\ny\n\n", "x\r\n\ry\n\r"),
])
def test_bom_dropped_and_crlf_cr_become_lf_unless_kept(tmp_path, raw, lf, kept):
    path = _put(tmp_path, "t.txt", raw)
    assert _text([path]) == lf
    assert _text([path], reading=Reading("keep")) == kept
    assert _text([path], reading=LEGACY) == raw.decode()        # checkpoints from before
    root = str(tmp_path / "d")                                    # a folder alike
    _put(root, "t.txt", raw)
    assert _text([root]) == lf


def test_a_crlf_split_across_reads_becomes_one_lf(tmp_path):
    path = _put(tmp_path, "t.txt", b"ab\r\ncd\r\r\nef\r")
    for n in (1, 2, 3, 4, 5, 64):
        assert "".join(iter_document(path, read_bytes=n)) == "ab\ncd\n\nef\n", n


def test_samples_of_a_crlf_text_break_lines_with_lf(tmp_path):
    text = "".join(f"line {i % 7}\r\n" for i in range(300))
    path = _put(tmp_path, "crlf.txt", text.encode())
    run = charrnn.train(path, checkpoint_dir=str(tmp_path / "ck"), **TINY)
    m = charrnn.load(run.latest_path)
    assert "\n" in m.vocab and "\r" not in m.vocab
    kept = charrnn.train(path, checkpoint_dir=str(tmp_path / "ck2"), keep_newlines=True, **TINY)
    assert "\r" in charrnn.load(kept.latest_path).vocab


# ----------------------------------------------------------- separator
def test_documents_start_on_new_lines_and_the_separator_stands_between(tmp_path):
    root = str(tmp_path / "c")
    _put(root, "1.txt", "one")
    _put(root, "2.txt", "two\n")
    _put(root, "3.txt", "")                         # an empty document adds nothing
    _put(root, "4.txt", "four")
    assert _text([root]) == "one\ntwo\nfour"
    assert _text([root], reading=Reading("lf", "<eot>")) == "one\n<eot>\ntwo\n<eot>\nfour"
    assert _text([root], reading=Reading("lf", "\n")) == "one\n\ntwo\n\nfour"
    assert _text([root], reading=Reading("lf", "==\n")) == "one\n==\ntwo\n==\nfour"


def test_the_separator_is_recorded_and_until_stops_a_sample_at_it(tmp_path, runner):
    root = str(tmp_path / "c")
    for k in range(6):
        _put(root, f"{k}.txt", "ab" * 40)
    r = invoke(runner, "train", root, "--checkpoint-dir", tmp_path / "ck", "--max-iters", "60",
               "--doc-separator", "\\n#\\n", *TINY_FLAGS, "--lr", "0.05")
    assert_ok(r)
    ck = ckpt.load(str(tmp_path / "ck" / "latest.npz"))
    assert ck.config["data"]["reading"] == {"newlines": "lf", "doc_separator": "\n#\n"}
    assert "#" in ck.vocab
    shown = invoke(runner, "inspect", tmp_path / "ck" / "latest.npz")
    assert "500 chars (val 50), 6 files, separator '\\n#\\n'" in shown.stdout, shown.stdout
    full = invoke(runner, "sample", "--checkpoint-dir", tmp_path / "ck", "--len", "600",
                  "--seed", "3", "--no-newline")
    assert_ok(full)
    assert full.stdout.count("#") > 1, full.stdout
    s = invoke(runner, "sample", "--checkpoint-dir", tmp_path / "ck", "--len", "600",
               "--seed", "3", "--until", "#", "--no-newline")
    assert_ok(s)
    # a sample stops right after the first separator it writes, which is printed
    assert s.stdout == full.stdout[:full.stdout.index("#") + 1]


def test_until_works_with_any_string_on_a_checkpoint_without_separator(tmp_path):
    path = _put(tmp_path, "t.txt", "abcabcabd\n" * 40)
    run = charrnn.train(path, checkpoint_dir=str(tmp_path / "ck"), **TINY)
    m = charrnn.load(run.latest_path)
    assert m.config["data"]["reading"]["doc_separator"] is None
    s = m.sample(length=500, seed=1, until="c")
    assert s.endswith("c") and s.count("c") == 1


# --------------------------------------------------------------- resume
def _stop_at(n):
    """A progress callback that interrupts the run after step n (it saves first)."""
    def progress(event, info):
        if event == "step" and info["iteration"] == n:
            os.kill(os.getpid(), signal.SIGINT)
    return progress


def test_resume_on_a_folder_is_bit_exact(tmp_path):
    root = str(tmp_path / "c")
    for k in range(4):
        _put(root, f"d{k}/t.txt", make_corpus(700, seed=k).replace("\n", "\r\n"))
    opts = dict(hidden_size=8, seq_len=8, batch_size=2, eval_every=4, doc_separator="--")
    whole = charrnn.train([root], checkpoint_dir=str(tmp_path / "a"), max_iters=8, **opts)
    cut = charrnn.train([root], checkpoint_dir=str(tmp_path / "b"), max_iters=8,
                        progress=_stop_at(4), **opts)
    assert cut.iterations == 4
    # resume reads the text as the checkpoint recorded (lf, "--") without the flags
    part = charrnn.train([root], checkpoint_dir=str(tmp_path / "b"), max_iters=8, resume=True)
    a, b = ckpt.load(whole.latest_path), ckpt.load(part.latest_path)
    assert a.config["data"]["text_sha256"] == b.config["data"]["text_sha256"]
    for k in a.params:
        assert a.params[k].tobytes() == b.params[k].tobytes(), k
    with pytest.raises(CharRNNError, match="--keep-newlines contradicts"):
        charrnn.train([root], checkpoint_dir=str(tmp_path / "b"), max_iters=12, resume=True,
                      keep_newlines=True)
    _put(root, "d9/new.txt", "a new file changes the text")
    with pytest.raises(DataError, match="the text differs"):
        charrnn.train([root], checkpoint_dir=str(tmp_path / "b"), max_iters=12, resume=True)


def test_a_checkpoint_from_before_resumes_on_the_crlf_text_it_trained_on(tmp_path):
    """An old checkpoint has no data.reading: it read its files as decoded
    (CR kept, BOM kept), and resuming it must read them the same way."""
    path = _put(tmp_path, "t.txt", "\ufeff" + make_corpus(1500).replace("\n", "\r\n"))
    opts = dict(hidden_size=8, seq_len=8, batch_size=2, eval_every=4)

    def old_run(folder, progress=None):            # what charrnn did before data.reading
        return run_training(lambda ck: load_corpus([path], reading=LEGACY), folder,
                            dict(opts, max_iters=8), progress=progress)
    assert old_run(str(tmp_path / "old"), _stop_at(4)).iterations == 4
    ck = ckpt.load(str(tmp_path / "old" / "latest.npz"))
    assert "reading" not in ck.config["data"] and "\r" in ck.vocab
    part = charrnn.train(path, checkpoint_dir=str(tmp_path / "old"), max_iters=8, resume=True)
    whole = old_run(str(tmp_path / "whole"))
    a, b = ckpt.load(whole.latest_path), ckpt.load(part.latest_path)
    for k in a.params:
        assert a.params[k].tobytes() == b.params[k].tobytes(), k


# ------------------------------------------------------------ streaming
def test_a_large_folder_goes_through_the_id_cache_and_trains_the_same(tmp_path, monkeypatch):
    root = str(tmp_path / "c")
    for k in range(5):
        _put(root, f"f{k}.txt", make_corpus(400, seed=k).replace("\n", "\r\n"))
    _put(root, "skip.bin", b"\x00")
    reading = Reading("lf", "<>")
    small = load_corpus([root], reading=reading)
    assert not isinstance(small.ids, np.memmap)
    monkeypatch.setattr(corpus, "STREAM_MIN_BYTES", 0)
    cache = str(tmp_path / "cache")
    monkeypatch.setenv("CHARRNN_CACHE_DIR", cache)
    big = load_corpus([root], reading=reading)
    assert isinstance(big.ids, np.memmap)
    assert big.vocab == small.vocab and big.fingerprint == small.fingerprint
    np.testing.assert_array_equal(big.ids, small.ids)
    assert big.files == 5 and big.sources == [os.path.abspath(root)]
    # the cache key covers the reading: another separator is another text
    other = load_corpus([root], reading=Reading("lf", "##"))
    assert other.fingerprint != big.fingerprint
    # and every file of the folder: a changed file rebuilds it
    _put(root, "f2.txt", "changed")
    e = corpus.encoded(list_files([root]).files, cache_dir=cache, reading=reading)
    assert e.how == "built"
    want = _text([root], reading=reading)
    assert e.fingerprint == _sha(want)
    # a run trains on it
    run = charrnn.train([root], checkpoint_dir=str(tmp_path / "ck"), doc_separator="<>", **TINY)
    assert ckpt.load(run.latest_path).config["data"]["text_sha256"] == _sha(want)


# ------------------------------------------------------------ bad input
def _one_error(runner, tmp_path, *paths):
    r = invoke(runner, "train", *paths, "--checkpoint-dir", tmp_path / "ck", "--max-iters", "2")
    lines = [ln for ln in r.stderr.splitlines() if not ln.startswith("charrnn: skipped ")]
    assert r.exit_code == 1 and r.stdout == "" and "Traceback" not in r.output, r.output
    assert len(lines) == 1 and lines[0].startswith("charrnn: error: "), r.stderr
    assert not (tmp_path / "ck").exists()
    return lines[0]


@pytest.mark.skipif(not hasattr(os, "symlink") or os.name != "posix", reason="needs symlinks")
def test_links_to_folders_are_skipped_and_links_to_files_read(tmp_path):
    root, other = tmp_path / "c", tmp_path / "other"
    _put(str(root), "a.txt", "text")
    _put(str(root), "sub/s.txt", "text")
    _put(str(other), "b.txt", "text")
    os.symlink(other, root / "link")
    os.symlink(other, root / ".hid")                  # hidden: no folder separator added
    os.symlink(root / "a.txt", root / "file-link.txt")
    skipped = []
    got = list_files([str(root)], on_skip=lambda path, why: skipped.append((path, why)))
    assert [os.path.relpath(f, root) for f in got.files] == \
        ["a.txt", "file-link.txt", os.path.join("sub", "s.txt")]
    assert skipped == [(str(root / ".hid"), "hidden"),
                       (str(root / "link"), "a link to a folder, not followed")]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_a_named_pipe_in_a_folder_is_skipped_as_not_a_regular_file(tmp_path):
    root = tmp_path / "c"
    _put(str(root), "a.txt", "text")
    os.mkfifo(root / "pipe")
    _put(str(root), "z.txt", "text")                   # listed after the pipe: still read
    skipped = []
    got = list_files([str(root)], on_skip=lambda path, why: skipped.append((path, why)))
    assert [os.path.basename(f) for f in got.files] == ["a.txt", "z.txt"]
    assert skipped == [(str(root / "pipe"), "not a regular file")]


def _scandir_in_name_order(refuse=()):
    """os.scandir with its entries in name order, raising PermissionError for
    the folders in refuse (as folders without read permission: root ignores modes)."""
    real, refuse = os.scandir, {str(p) for p in refuse}

    @contextlib.contextmanager
    def scandir(path):
        if str(path) in refuse:
            raise PermissionError(13, os.strerror(13), str(path))
        with real(path) as it:
            yield iter(sorted(it, key=lambda e: e.name))
    return scandir


def test_an_unreadable_subfolder_is_skipped_with_its_reason(tmp_path, monkeypatch):
    root = tmp_path / "c"
    _put(str(root), "a/x.txt", "text")
    _put(str(root), "b/y.txt", "text")
    _put(str(root), "c.txt", "text")
    monkeypatch.setattr(os, "scandir", _scandir_in_name_order(refuse=[root / "a"]))
    skipped = []
    got = list_files([str(root)], on_skip=lambda path, why: skipped.append((path, why)))
    assert [os.path.relpath(f, root) for f in got.files] == \
        [os.path.join("b", "y.txt"), "c.txt"]
    assert skipped == [(str(root / "a") + os.sep, f"cannot read ({os.strerror(13)})")]


def test_an_unreadable_folder_given_by_name_is_an_error(tmp_path, monkeypatch):
    root = tmp_path / "c"
    _put(str(root), "a.txt", "text")
    monkeypatch.setattr(os, "scandir", _scandir_in_name_order(refuse=[root]))
    with pytest.raises(DataError) as e:
        list_files([str(root)])
    assert str(e.value) == f"{root}: cannot read the folder ({os.strerror(13)})"


def test_a_dangling_link_is_skipped_and_the_files_after_it_read(tmp_path, monkeypatch):
    root = tmp_path / "c"
    _put(str(root), "b.txt", "text")
    _put(str(root), "z.txt", "text")
    os.symlink(tmp_path / "gone", root / "a-link")       # listed first: the rest still read
    monkeypatch.setattr(os, "scandir", _scandir_in_name_order())
    got = list_files([str(root)])
    assert [os.path.basename(f) for f in got.files] == ["b.txt", "z.txt"]
    assert got.skipped == [(str(root / "a-link"), f"cannot read ({os.strerror(2)})")]


def test_describe_says_how_files_become_one_text():
    assert describe(LEGACY) == "files concatenated as decoded (a checkpoint from before folders)"
    assert describe(Reading("lf", "<eot>")) == "newlines lf, separator '<eot>'"
    assert describe(Reading("keep")) == "newlines keep"


def test_only_the_first_8_kib_are_sniffed_for_nul_bytes(tmp_path):
    root = str(tmp_path / "c")
    _put(root, "late.txt", "x" * 8192 + "\x00 after the sniffed part")
    _put(root, "early.txt", "x" * 8191 + "\x00")
    got = list_files([root])
    assert [os.path.basename(f) for f in got.files] == ["late.txt"]


@pytest.mark.parametrize("files, message", [
    ({"sub/": None}, "{root}: the folder holds no files; give a folder of text files"),
    ({"a.bin": b"\x00", "b/c.bin": b"x\x00"},
     "{root}: all 2 of its files look binary (a NUL byte in the first 8,192 bytes); give a "
     "folder of text files"),
    ({"a.bin": b"\x00"},
     "{root}: its only file looks binary (a NUL byte in the first 8,192 bytes); give a "
     "folder of text files"),
    ({".a.txt": "text"}, "{root}: holds only hidden entries (names starting with '.'), which "
                         "are skipped; give a folder of text files"),
    ({".a.txt": "text", "b.bin": b"\x00", "c.bin": b"\x00"},
     "{root}: no text file to read (1 hidden, 2 looks binary); give a folder of text files"),
    ({"a.txt": ""}, "{root}: the text is empty; give charrnn something to learn"),
    ({}, "{root}: no such file"),
], ids=["empty", "binaries", "one-binary", "hidden", "mixed", "empty-files", "missing"])
def test_a_folder_with_nothing_to_read_is_one_line(tmp_path, runner, files, message):
    root = str(tmp_path / "c")
    for rel, content in files.items():
        if content is None:
            os.makedirs(os.path.join(root, rel))
        else:
            _put(root, rel, content)
    assert _one_error(runner, tmp_path, root) == "charrnn: error: " + message.format(root=root)


def test_a_folder_with_no_readable_files_is_one_line(tmp_path, runner, monkeypatch):
    root = str(tmp_path / "r")
    _put(root, "a.txt", "text")
    import builtins
    real = builtins.open

    def refuse(path, *a, **k):      # as a file without read permission (root ignores modes)
        if str(path).startswith(root):
            raise PermissionError(13, "Permission denied", str(path))
        return real(path, *a, **k)
    monkeypatch.setattr(builtins, "open", refuse)
    line = _one_error(runner, tmp_path, root)
    assert line == (f"charrnn: error: {root}: none of its files can be read (see the lines "
                    f"above); check their permissions")
