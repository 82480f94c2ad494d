"""How files become one text (text/sources.py), checked directly: a
straightforward reference (each file decoded whole, its BOM dropped and
newlines normalised, documents joined by Reading.joiner, itself pinned by a
table) against the streaming readers, split at every read size; the str
reader join_text against the file readers; stdin; the readers' defaults; and
Reading's checkpoint record."""
from __future__ import annotations

import io

import pytest
from hypothesis import given, settings, strategies as st

from charrnn.errors import DataError
from charrnn.text.sources import (BOM, LEGACY, Reading, iter_document, iter_pieces,
                                  join_text)


def _put(folder, name, raw: bytes) -> str:
    (folder / name).write_bytes(raw)
    return str(folder / name)


# ---------------------------------------------------------------- joiner
@pytest.mark.parametrize("reading, tail, want", [
    (Reading(), "ab", "\n"),                        # a document without a last newline
    (Reading(), "b\n", ""),
    (Reading(), "b\r", ""),
    (Reading("keep"), "a\r\n", ""),
    (Reading("keep"), "ab", "\n"),
    (Reading(), "", "\n"),
    (Reading("lf", "<s>"), "ab", "\n<s>\n"),
    (Reading("lf", "<s>"), "b\n", "<s>\n"),
    (Reading("lf", "<s>\n"), "ab", "\n<s>\n"),        # the separator's own newline is kept
    (Reading("lf", "<s>\r"), "b\n", "<s>\r"),
    (Reading("keep", "<s>"), "a\r\n", "<s>\r\n"),      # kept: the text's own line ending
    (Reading("keep", "<s>"), "a\n", "<s>\n"),
    (Reading("keep", "<s>"), "ab", "\n<s>\n"),
])
def test_joiner_starts_the_next_document_on_a_new_line(reading, tail, want):
    assert reading.joiner(tail) == want


# ------------------------------------------------ readers against a reference
def _as_read(raw: bytes, reading: Reading, encoding="utf-8", errors="strict") -> str:
    text = raw.decode(encoding, errors)
    if not reading.joined:
        return text
    if text.startswith(BOM):
        text = text[1:]
    if reading.newlines == "lf":
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


def _reference(raws, reading):
    """[(document index, its text) or (-1, what joins two)], empty documents
    left out; the joiner hears the last two characters of the documents so far."""
    out, docs = [], ""
    for k, raw in enumerate(raws):
        doc = _as_read(raw, reading)
        if not doc:
            continue
        if docs and reading.joined and (joiner := reading.joiner(docs[-2:])):
            out.append((-1, joiner))
        out.append((k, doc))
        docs += doc
    return out


def _merged(pieces):
    """Consecutive pieces of one document as one."""
    out = []
    for k, text in pieces:
        assert text, "an empty piece"
        if out and out[-1][0] == k != -1:
            out[-1] = (k, out[-1][1] + text)
        else:
            out.append((k, text))
    return out


READINGS = [Reading(), Reading("keep"), Reading("lf", "<s>"), Reading("keep", "--\n"), LEGACY]
_doc = st.lists(st.sampled_from(["a", "é", "\r", "\n", "\r\n", BOM]), max_size=6).map("".join)


@settings(max_examples=150, deadline=None)
@given(docs=st.lists(_doc, min_size=1, max_size=3), r=st.sampled_from(READINGS),
       read_bytes=st.integers(1, 9))
def test_iter_pieces_matches_the_whole_file_reference_at_any_read_size(
        tmp_path_factory, docs, r, read_bytes):
    folder = tmp_path_factory.mktemp("docs")
    raws = [d.encode() for d in docs]
    paths = [_put(folder, f"{k}.txt", raw) for k, raw in enumerate(raws)]
    got = list(iter_pieces(paths, reading=r, read_bytes=read_bytes))
    assert _merged(got) == _reference(raws, r)
    for k, path in enumerate(paths):                     # one document alone
        assert "".join(iter_document(path, reading=r, read_bytes=read_bytes)) == \
            _as_read(raws[k], r)
        assert join_text(docs[k], r) == _as_read(raws[k], r)


@pytest.mark.parametrize("doc, lf, keep", [
    ("\ufeffa\r\nb\rc\r", "a\nb\nc\n", "a\r\nb\rc\r"),
    ("a\ufeffb", "a\ufeffb", "a\ufeffb"),               # only a leading BOM is dropped
    ("\ufeff", "", ""),
    ("\r\r\n\n", "\n\n\n", "\r\r\n\n"),
])
def test_join_text_literals(doc, lf, keep):
    assert join_text(doc) == lf
    assert join_text(doc, Reading("keep")) == keep
    assert join_text(doc, LEGACY) == doc


# ----------------------------------------------------------- stdin, defaults
def test_stdin_is_one_document_read_with_the_encoding_and_error_handler(monkeypatch):
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"\xef\xbb\xbfcaf\xe9\r\n")))
    assert "".join(iter_document("-", "latin-1")) == "ï»¿café\n"     # no UTF-8 BOM in latin-1
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"a\xffb\r\n")))
    assert "".join(iter_document("-", errors="replace")) == "a\ufffdb\n"
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"\xef\xbb\xbfab\r\n")))
    assert list(iter_pieces(["-"], read_bytes=1)) == [(0, "ab\n")]


def test_the_readers_read_strict_utf8_by_default(tmp_path):
    good = _put(tmp_path, "g.txt", "café\r\n".encode())
    bad = _put(tmp_path, "b.txt", b"abc\xff")
    assert "".join(iter_document(good)) == "café\n"
    assert list(iter_pieces([good])) == [(0, "café\n")]
    for read in (lambda: list(iter_document(bad)), lambda: list(iter_pieces([bad]))):
        with pytest.raises(DataError) as e:
            read()
        assert str(e.value).startswith(f"{bad}: not valid utf-8 at byte 3; ")


def test_the_readers_hand_on_the_encoding_and_error_handler(tmp_path):
    path = _put(tmp_path, "l.txt", b"caf\xe9")
    assert list(iter_pieces([path], "latin-1", read_bytes=2)) == [(0, "ca"), (0, "fé")]
    assert "".join(t for _, t in iter_pieces([path], errors="replace")) == "caf\ufffd"
    assert "".join(t for _, t in iter_pieces([path], errors="ignore")) == "caf"


# ------------------------------------------------------------------ record
@pytest.mark.parametrize("reading", [Reading(), Reading("keep"), Reading("lf", "<s>"),
                                     Reading("keep", "\n--\n")])
def test_a_reading_survives_its_record(reading):
    rec = reading.record()
    assert rec == {"newlines": reading.newlines, "doc_separator": reading.doc_separator}
    assert Reading.from_record(rec) == reading


def test_legacy_records_nothing_and_nothing_reads_as_legacy():
    assert LEGACY.record() is None
    assert Reading.from_record(None) == LEGACY
    assert (LEGACY.newlines, LEGACY.doc_separator, LEGACY.joined) == ("keep", None, False)


@pytest.mark.parametrize("rec", [
    "lf", [], {}, {"newlines": "crlf"}, {"newlines": None},
    {"newlines": "lf", "doc_separator": ""}, {"newlines": "lf", "doc_separator": 5},
    {"newlines": "keep", "doc_separator": ["<s>"]},
])
def test_a_record_that_is_not_one_is_a_value_error(rec):
    with pytest.raises(ValueError):
        Reading.from_record(rec)


def test_a_record_without_a_separator_has_none():
    assert Reading.from_record({"newlines": "keep"}) == Reading("keep")
