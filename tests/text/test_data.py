"""charrnn.text.data: vocabulary, encoding, decoding of files, batching into streams."""
from __future__ import annotations

import errno
import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import example, given, settings, strategies as st

from charrnn.text import data
from charrnn.errors import DataError

# Any text a UTF-8 file can hold: every code point except lone surrogates.
unicode_text = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=200)


# ------------------------------------------------------------------ vocab
def test_vocab_is_sorted_unique_characters(corpus_text):
    vocab = data.build_vocab(corpus_text)
    assert set(vocab) == set(corpus_text)
    assert len(vocab) == len(set(corpus_text))
    codes = [ord(c) for c in vocab]
    assert all(a < b for a, b in zip(codes, codes[1:])), "not strictly increasing"


def test_vocab_identical_across_runs_with_different_hash_seeds(corpus_text):
    """set() iteration order of str depends on PYTHONHASHSEED; the vocabulary
    must not (the reference's list(set(data)) bug)."""
    prog = ("import json, sys; from charrnn.text.data import build_vocab; "
            "print(json.dumps(build_vocab(sys.stdin.read())))")
    vocabs = []
    for seed in ("1", "2", "3"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONIOENCODING": "utf-8"}
        out = subprocess.run([sys.executable, "-c", prog], input=corpus_text.encode("utf-8"),
                             capture_output=True, env=env, check=True, timeout=60)
        vocabs.append(json.loads(out.stdout))
    assert vocabs[0] == vocabs[1] == vocabs[2] == data.build_vocab(corpus_text)
    # The same set in this process, built from a differently ordered text.
    assert data.build_vocab(corpus_text[::-1]) == vocabs[0]


# -------------------------------------------------------- encode / decode
@settings(max_examples=300, deadline=None)
@given(unicode_text)
@example("")
@example("\x00")
@example("a\x00b\x00\x00")
@example("😀👍🏽 emoji")
@example("e\u0301 cafe\u0301 \u0308\u0301")          # combining marks, even leading
@example("\U0010FFFF\U00010000\uFFFF\uE000")
@example("\r\n\t\x0b\x0c\x1b\x7f\x80\xa0\u2028")
def test_any_unicode_round_trips(text):
    vocab = data.build_vocab(text)
    ids = data.encode(text, vocab)
    assert ids.shape == (len(text),)
    assert ids.dtype == data.id_dtype(len(vocab))
    if len(text):
        assert int(ids.max()) < len(vocab)
    assert data.decode_ids(ids, vocab) == text
    # The vocabulary survives its int32 code-point form (how checkpoints store it).
    assert data.codes_to_vocab(data.vocab_to_codes(vocab)) == vocab


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_encode_with_a_larger_vocab(draw):
    vocab = data.build_vocab(draw.draw(st.text(alphabet=st.characters(exclude_categories=("Cs",)),
                                                min_size=1, max_size=50)))
    text = draw.draw(st.text(alphabet=st.sampled_from(vocab), max_size=100))
    ids = data.encode(text, vocab)
    assert [vocab[i] for i in ids] == list(text)


def test_encode_rejects_unknown_characters():
    with pytest.raises(DataError, match="not in the model's vocabulary") as e:
        data.encode("abcz", "abc")
    assert "'z'" in str(e.value)
    with pytest.raises(DataError):
        data.encode("\x00", "abc")       # below every vocab entry
    with pytest.raises(DataError):
        data.encode("b", "ac")           # between two vocab entries


@pytest.mark.parametrize("size, dtype", [(1, np.uint8), (255, np.uint8), (256, np.uint8),
                                         (257, np.uint16), (65536, np.uint16),
                                         (65537, np.uint32), (0x10FFFF, np.uint32)])
def test_id_dtype_boundaries(size, dtype):
    assert data.id_dtype(size) is dtype
    assert np.iinfo(dtype).max >= size - 1      # every id fits


@pytest.mark.parametrize("n_unique, dtype", [(256, np.uint8), (300, np.uint16),
                                             (70_000, np.uint32)])
def test_encode_picks_the_smallest_id_dtype_and_ids_survive(n_unique, dtype):
    # Code points from 0x20 upward, skipping the surrogate block.
    cps = [c for c in range(0x20, 0x20 + n_unique + 2048) if not 0xD800 <= c <= 0xDFFF][:n_unique]
    text = "".join(chr(c) for c in cps[::-1]) + chr(cps[-1]) + chr(cps[0])
    vocab = data.build_vocab(text)
    assert len(vocab) == n_unique
    ids = data.encode(text, vocab)
    assert ids.dtype == dtype
    assert int(ids[0]) == n_unique - 1 and int(ids[-1]) == 0   # largest id did not wrap
    assert data.decode_ids(ids, vocab) == text


# ----------------------------------------------------------- reading files
def test_read_text_round_trips_utf8(tmp_path, corpus_text):
    p = tmp_path / "t.txt"
    p.write_bytes(corpus_text.encode("utf-8"))
    assert data.read_text(str(p)) == corpus_text


@pytest.mark.parametrize("raw, offset", [
    (b"hello \xff world", 6),
    (b"\x80abc", 0),
    ("caf\u00e9 ok".encode("utf-8") + b" \xc3\x28", 9),   # bad continuation byte
    (b"abc\xe2\x82", 3),                                   # truncated 3-byte sequence at end
    ("😀".encode("utf-8") * 3 + b"\xed\xa0\x80", 12),      # encoded surrogate
])
def test_non_utf8_bytes_raise_data_error_naming_the_offset(tmp_path, raw, offset):
    p = tmp_path / "bad.txt"
    p.write_bytes(raw)
    with pytest.raises(DataError) as e:
        data.read_text(str(p))
    msg = str(e.value)
    assert f"byte {offset}" in msg
    assert str(p) in msg and "\n" not in msg
    # Sanity: the offset really is where decoding fails.
    with pytest.raises(UnicodeDecodeError) as u:
        raw.decode("utf-8")
    assert u.value.start == offset


def test_the_unknown_characters_message_counts_them_and_shows_the_five_least():
    with pytest.raises(DataError) as e:
        data.encode("abzyxwvuz", "abc")
    assert str(e.value) == ("7 characters are not in the model's vocabulary "
                            "(e.g. 'u', 'v', 'w', 'x', 'y')")


def test_the_examples_come_from_the_first_10000_unknown_characters():
    """A bound on the work for a huge text; the count is still of them all."""
    with pytest.raises(DataError) as e:
        data.encode("z" * 10_000 + "d", "abc")
    assert str(e.value) == "10001 characters are not in the model's vocabulary (e.g. 'z')"


class _FailingRead(io.BytesIO):
    def read(self, *args):
        raise OSError(errno.EIO, os.strerror(errno.EIO))


def test_a_failing_read_is_one_data_error(tmp_path, monkeypatch):
    path = str(tmp_path / "t.txt")
    with open(path, "w") as f:
        f.write("text")
    monkeypatch.setattr(data, "open_binary", lambda p: _FailingRead())
    with pytest.raises(DataError) as e:
        data.read_text(path)
    assert str(e.value) == f"{path}: cannot read ({os.strerror(errno.EIO)})"
    from charrnn.text import corpus
    with pytest.raises(DataError) as e:
        list(corpus.iter_text(path))
    assert str(e.value) == f"{path}: cannot read ({os.strerror(errno.EIO)})"


def test_stdin_is_read_as_bytes_with_or_without_a_buffer(monkeypatch):
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"caf\xc3\xa9")))
    assert data.read_bytes("-") == b"caf\xc3\xa9"
    monkeypatch.setattr("sys.stdin", io.BytesIO(b"raw"))      # a binary stream itself
    assert data.read_bytes("-") == b"raw"
    monkeypatch.setattr("sys.stdin", _FailingRead())
    with pytest.raises(DataError) as e:
        data.read_bytes("-")
    assert str(e.value) == f"<stdin>: cannot read ({os.strerror(errno.EIO)})"
    monkeypatch.setattr("sys.stdin", None)                    # as under pythonw, or 0<&-
    with pytest.raises(DataError) as e:
        data.read_bytes("-")
    assert str(e.value) == "<stdin>: standard input is closed"


def test_decode_refuses_an_encoding_python_does_not_know():
    with pytest.raises(DataError) as e:
        data.decode(b"text", "t.txt", "no-such-codec")
    assert str(e.value) == "unknown text encoding 'no-such-codec'"


def test_read_text_missing_file_and_folder(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        data.read_text(str(tmp_path / "nope.txt"))
    with pytest.raises(DataError, match="folder"):
        data.read_text(str(tmp_path))
    below = str(tmp_path / "f.txt" / "x.txt")                  # a path through a file
    (tmp_path / "f.txt").write_text("text")
    with pytest.raises(DataError) as e:
        data.read_text(below)
    assert str(e.value) == f"{below}: cannot read ({os.strerror(errno.ENOTDIR)})"


def test_decode_with_replace_keeps_going():
    assert data.decode(b"a\xffb", "x", errors="replace") == "a\ufffdb"


def test_decode_is_strict_utf8_by_default():
    assert data.decode("café".encode(), "x") == "café"
    with pytest.raises(DataError) as e:
        data.decode(b"a\xffb", "x")
    assert str(e.value).startswith("x: not valid utf-8 at byte 1; ")


# ------------------------------------------------------------------ split
@pytest.mark.parametrize("n, frac", [(1000, 0.1), (1000, 0.0), (999, 0.25), (7, 0.5), (10, 0.99)])
def test_split_holds_out_the_last_fraction(n, frac):
    ids = np.arange(n, dtype=np.uint32)
    train, val = data.split(ids, frac)
    assert len(val) == round(n * frac)
    np.testing.assert_array_equal(np.concatenate([train, val]), ids)
    if len(val):
        assert val[0] == len(train) and val[-1] == n - 1   # the tail, in order


# ---------------------------------------------------------------- Streams
@settings(max_examples=200, deadline=None)
@given(n=st.integers(2, 400), B=st.integers(1, 8), T=st.integers(1, 20))
def test_streams_layout(n, B, T):
    ids = np.arange(n, dtype=np.uint32)
    L = (n - 1) // B
    if L < T:
        with pytest.raises(DataError):
            data.Streams(ids, B, T)
        return
    s = data.Streams(ids, B, T)
    assert (s.B, s.T, s.L) == (B, T, L)
    assert s.chunks_per_epoch == L // T
    for b in range(B):                       # stream b is the contiguous slice
        np.testing.assert_array_equal(s.x[b], ids[b * L:(b + 1) * L])
    for k in range(s.chunks_per_epoch):
        x, y = s.chunk(k)
        assert x.shape == y.shape == (B, T)
        np.testing.assert_array_equal(y, x + 1)                  # y is x shifted by one
        np.testing.assert_array_equal(x[:, 0], np.arange(B) * L + k * T)
    # Consecutive chunks continue each stream (so carrying h is right).
    xs = np.concatenate([s.chunk(k)[0] for k in range(s.chunks_per_epoch)], axis=1)
    np.testing.assert_array_equal(xs, s.x[:, :s.chunks_per_epoch * T])


def test_streams_on_real_text_predict_the_next_character(corpus_text):
    vocab = data.build_vocab(corpus_text)
    ids = data.encode(corpus_text, vocab)
    s = data.Streams(ids, 4, 8)
    x, y = s.chunk(3)
    for b in range(4):
        start = b * s.L + 3 * 8
        assert data.decode_ids(x[b], vocab) == corpus_text[start:start + 8]
        assert data.decode_ids(y[b], vocab) == corpus_text[start + 1:start + 9]


@pytest.mark.parametrize("B, T", [(1, 1), (4, 8), (32, 50)])
def test_streams_minimum_length_boundary(B, T):
    data.Streams(np.zeros(B * T + 1, np.uint8), B, T)        # just enough
    with pytest.raises(DataError) as e:
        data.Streams(np.zeros(B * T, np.uint8), B, T)        # one short
    msg = str(e.value)
    assert "too short" in msg and "--batch-size" in msg and "--seq-len" in msg
    assert str(B * T + 1) in msg


@pytest.mark.parametrize("n", [0, 1])
def test_streams_of_nothing(n):
    with pytest.raises(DataError, match="too short"):
        data.Streams(np.zeros(n, np.uint8), 1, 1)


# ------------------------------------------------------------ eval_chunks
@settings(max_examples=300, deadline=None)
@given(n=st.integers(0, 500), B=st.integers(1, 16), T=st.integers(1, 30))
@example(n=2, B=1, T=1)                         # the shortest text that has a target
@example(n=6, B=8, T=4)                         # room for one stream of one chunk only
def test_eval_chunks_score_each_character_at_most_once_and_nearly_all(n, B, T):
    ids = np.arange(n, dtype=np.uint32)
    chunks = list(data.eval_chunks(ids, B, T))
    if n < 2:
        assert chunks == []
        return
    targets = []
    width = None
    for x, y in chunks:
        assert x.shape == y.shape
        assert 1 <= x.shape[1] <= T and 1 <= x.shape[0] <= B
        width = width or x.shape[0]
        assert x.shape[0] == width                     # same streams throughout
        np.testing.assert_array_equal(y, x + 1)
        targets.extend(y.ravel().tolist())
    assert len(targets) == len(set(targets)), "a character was scored twice"
    assert set(targets) <= set(range(1, n))
    missed = (n - 1) - len(targets)
    assert 0 <= missed < width, f"missed {missed} of {n - 1} with {width} streams"
    # Streams are contiguous: consecutive chunks continue each row.
    xs = np.concatenate([x for x, _ in chunks], axis=1)
    np.testing.assert_array_equal(np.diff(xs, axis=1), 1)
    assert width == 1 or xs.shape[1] >= T, "streams shorter than a chunk"


def test_eval_chunks_large_batch_on_long_text_misses_little():
    ids = np.arange(100_001, dtype=np.uint32)
    n_scored = sum(y.size for _, y in data.eval_chunks(ids, 32, 50))
    assert 100_000 - 32 < n_scored <= 100_000


@settings(max_examples=200, deadline=None)
@given(n=st.integers(2, 400), B=st.integers(1, 6), T=st.integers(1, 12),
       epoch=st.integers(0, 50))
@example(n=11, B=1, T=5, epoch=3)               # room for one chunk and no second
@example(n=8, B=1, T=3, epoch=3)                # L - T + 1 one short of two chunks
@example(n=101, B=1, T=7, epoch=2)              # 2 x golden ratio is past 1
def test_shifted_streams_move_the_cut_points_inside_the_stream(n, B, T, epoch):
    ids = np.arange(n, dtype=np.uint32)
    L = (n - 1) // B
    if L < T:
        return
    s = data.Streams(ids, B, T, shift=True)
    assert s.chunks_per_epoch == max(1, (L - T + 1) // T)
    slack = L - s.chunks_per_epoch * T
    offset = 0 if epoch == 0 else int((epoch * 0.6180339887498949) % 1.0 * (slack + 1))
    assert 0 <= offset <= slack
    for k in range(s.chunks_per_epoch):
        x, y = s.chunk(k, epoch)
        assert x.shape == y.shape == (B, T)
        np.testing.assert_array_equal(y, x + 1)
        np.testing.assert_array_equal(x[:, 0], np.arange(B) * L + offset + k * T)


def test_shifted_epochs_start_at_different_places_and_unshifted_ones_do_not():
    ids = np.arange(4001, dtype=np.uint32)
    s = data.Streams(ids, 4, 50, shift=True)           # L = 1000: 19 chunks, slack 50
    starts = [int(s.chunk(0, e)[0][0, 0]) for e in range(8)]
    assert starts[0] == 0 and len(set(starts)) == 8 and max(starts) <= 50
    np.testing.assert_array_equal(s.chunk(3)[0], s.chunk(3, 0)[0])   # epoch 0 by default
    plain = data.Streams(np.arange(4041, dtype=np.uint32), 4, 50)    # L = 1010: slack 10
    assert plain.chunks_per_epoch == 20
    assert {int(plain.chunk(0, e)[0][0, 0]) for e in range(8)} == {0}


@pytest.mark.parametrize("encoding", ["utf-16", "utf-32", "utf-32-le"])
def test_nul_bytes_in_wide_text_are_not_called_binary(encoding):
    head = "ab".encode(encoding)                     # NUL bytes: text in these encodings
    e = data.decode_error("f.txt", encoding, 6, head=head)
    assert str(e) == (f"f.txt: not valid {encoding} at byte 6; if it is in another encoding, "
                      f"pass it with --encoding (e.g. latin-1, cp1252); --errors replace "
                      f"(or ignore) gets past bad bytes")
    assert str(data.decode_error("f.bin", "utf-8", 0, head=head)) == (
        "f.bin: looks binary (it has NUL bytes), not text; pass a text file (or, for UTF-16 "
        "text, --encoding utf-16)")
    assert str(data.decode_error("f.bin", "utf-8", 0, "advice", head=head)) == \
        "f.bin: looks binary (it has NUL bytes), not text"      # the caller advises itself
