"""The streaming encoder and the memory-mapped id cache (charrnn.text.corpus)."""
import errno
import hashlib
import io
import os
import re

import numpy as np
import pytest

from charrnn.text import corpus
from charrnn.text import data
from charrnn.errors import DataError
from charrnn.runs.trainer import Trainer, TrainConfig
from charrnn.text.corpus import load_corpus
from charrnn.text.sources import LEGACY, Reading

from conftest import make_corpus

# every UTF-8 length (1-4 bytes), a combining accent, NUL and a line break
MIXED = "ab\u00e9\u20ac\U0001F600 x\u0301\x00\n" * 3 + "end"


def _write(tmp_path, name, raw: bytes):
    p = tmp_path / name
    p.write_bytes(raw)
    return str(p)


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "latin-1"])
def test_pieces_join_to_the_whole_decode_for_every_read_size(tmp_path, encoding):
    text = MIXED if encoding != "latin-1" else "caf\u00e9 \xff\n" * 5
    raw = text.encode(encoding)
    path = _write(tmp_path, "t.txt", raw)
    for n in list(range(1, 9)) + [len(raw) - 1, len(raw), len(raw) + 5]:
        pieces = list(corpus.iter_text(path, encoding, "strict", read_bytes=n))
        assert "".join(pieces) == raw.decode(encoding) == text
        assert all(len(p) <= n for p in pieces)


BAD = [
    b"ok \xff then",                          # a byte that never starts a character
    b"split \xe2\x82 here",                   # a truncated 3-byte sequence mid-file
    b"\xc3\xa9\xc3" + b"x" * 9,               # a lead byte followed by a non-continuation
    b"tail \xf0\x9f\x98",                     # a truncated 4-byte sequence at the end
    b"\xed\xa0\x80 surrogate",                # an encoded surrogate
]


@pytest.mark.parametrize("raw", BAD)
@pytest.mark.parametrize("errors", ["replace", "ignore"])
def test_replace_and_ignore_match_bytes_decode_across_read_boundaries(tmp_path, raw, errors):
    raw = "é€😀".encode() + raw + "ü".encode()
    path = _write(tmp_path, "bad.txt", raw)
    want = raw.decode("utf-8", errors)
    for n in range(1, 12):
        assert "".join(corpus.iter_text(path, "utf-8", errors, read_bytes=n)) == want


@pytest.mark.parametrize("raw", BAD)
def test_strict_error_names_the_byte_offset_in_the_file(tmp_path, raw):
    raw = "é€😀".encode() + raw
    path = _write(tmp_path, "bad.txt", raw)
    with pytest.raises(UnicodeDecodeError) as e:
        raw.decode("utf-8")
    for n in (1, 2, 3, 5, 7, 64):
        with pytest.raises(DataError) as err:
            list(corpus.iter_text(path, "utf-8", "strict", read_bytes=n))
        assert f"at byte {e.value.start};" in str(err.value)
        assert str(err.value).startswith(f"{path}: not valid utf-8")


def test_scan_gives_build_vocab_and_length_of_the_concatenated_text(tmp_path):
    a, b = make_corpus(3000, seed=1), make_corpus(2000, seed=2, non_ascii=False) + "\t~"
    pa = _write(tmp_path, "a.txt", a.encode())
    pb = _write(tmp_path, "b.txt", b.encode())
    vocab, n = corpus.scan([pa, pb], read_bytes=100, reading=LEGACY)
    assert vocab == data.build_vocab(a + b)
    assert n == len(a + b)
    joined = a + ("" if a.endswith("\n") else "\n") + b      # each document on a new line
    assert corpus.scan([pa, pb], read_bytes=100) == (data.build_vocab(joined), len(joined))
    assert "\t" in vocab and "😀" in vocab       # one from each file


def test_cached_ids_equal_the_in_memory_encode(tmp_path):
    text = make_corpus(5000, seed=3)
    path = _write(tmp_path, "c.txt", text.encode())
    ids, vocab, built = corpus.cached_ids([path], cache_dir=str(tmp_path / "cache"), read_bytes=333)
    assert built
    assert vocab == data.build_vocab(text)
    assert isinstance(ids, np.memmap) and not ids.flags.writeable
    assert ids.dtype == np.uint8
    np.testing.assert_array_equal(ids, data.encode(text, vocab))


def test_large_vocabularies_get_wider_ids(tmp_path):
    text = "".join(chr(0x4E00 + i) for i in range(300)) * 2 + "\U0001F600"
    path = _write(tmp_path, "cjk.txt", text.encode())
    ids, vocab, _ = corpus.cached_ids([path], cache_dir=str(tmp_path / "cache"), read_bytes=50)
    assert ids.dtype == np.uint16 and len(vocab) == 301
    np.testing.assert_array_equal(ids, data.encode(text, vocab))


def test_an_unchanged_file_reuses_the_cache(tmp_path, monkeypatch):
    path = _write(tmp_path, "c.txt", make_corpus(2000).encode())
    cache = str(tmp_path / "cache")
    ids1, vocab1, built1 = corpus.cached_ids([path], cache_dir=cache)

    def no_scan(*a, **k):
        raise AssertionError("the text was read again")
    monkeypatch.setattr(corpus, "scan", no_scan)
    ids2, vocab2, built2 = corpus.cached_ids([path], cache_dir=cache)
    assert built1 and not built2
    assert vocab2 == vocab1
    np.testing.assert_array_equal(ids2, ids1)


def test_a_changed_file_rebuilds_and_drops_the_stale_cache(tmp_path):
    path = _write(tmp_path, "c.txt", b"aaaa bbbb\n")
    cache = str(tmp_path / "cache")
    corpus.cached_ids([path], cache_dir=cache)
    st = os.stat(path)
    with open(path, "wb") as f:                      # same size, new content
        f.write(b"xyz! wxyz\n")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    ids, vocab, built = corpus.cached_ids([path], cache_dir=cache)
    assert built and vocab == data.build_vocab("xyz! wxyz\n")
    np.testing.assert_array_equal(ids, data.encode("xyz! wxyz\n", vocab))
    names = sorted(os.listdir(cache))
    assert len(names) == 2 and names[0].endswith(".json") and names[1].endswith(".npy")


def test_a_same_size_rewrite_within_the_same_second_rebuilds_the_cache(tmp_path):
    # An editor saving twice in one second: whole seconds of mtime match, the
    # nanoseconds do not.  A signature of whole seconds would reuse the old ids.
    path = _write(tmp_path, "c.txt", b"aaaa bbbb\n")
    second = 1_700_000_000 * 10**9
    os.utime(path, ns=(second, second + 100_000_000))
    cache = str(tmp_path / "cache")
    _, vocab, built = corpus.cached_ids([path], cache_dir=cache)
    assert built and vocab == "\n ab"
    with open(path, "wb") as f:
        f.write(b"xyz! wxyz\n")
    os.utime(path, ns=(second, second + 600_000_000))
    ids, vocab, built = corpus.cached_ids([path], cache_dir=cache)
    assert built and vocab == "\n !wxyz"
    assert ids.tolist() == [4, 5, 6, 2, 1, 3, 4, 5, 6, 0]


def test_encoding_and_errors_get_their_own_cache_entries(tmp_path):
    raw = "é".encode() + b"\xff!"
    path = _write(tmp_path, "c.txt", raw)
    cache = str(tmp_path / "cache")
    _, v_rep, _ = corpus.cached_ids([path], errors="replace", cache_dir=cache)
    _, v_ign, built = corpus.cached_ids([path], errors="ignore", cache_dir=cache)
    _, v_lat, _ = corpus.cached_ids([path], encoding="latin-1", cache_dir=cache)
    assert built
    assert v_rep == data.build_vocab(raw.decode("utf-8", "replace"))
    assert v_ign == data.build_vocab(raw.decode("utf-8", "ignore"))
    assert v_lat == data.build_vocab(raw.decode("latin-1"))
    assert len({v_rep, v_ign, v_lat}) == 3


def test_a_damaged_cache_is_rebuilt_not_trusted(tmp_path):
    text = make_corpus(1500)
    path = _write(tmp_path, "c.txt", text.encode())
    cache = str(tmp_path / "cache")
    corpus.cached_ids([path], cache_dir=cache)
    npy = [n for n in os.listdir(cache) if n.endswith(".npy")][0]
    with open(os.path.join(cache, npy), "r+b") as f:
        f.truncate(100)
    ids, vocab, built = corpus.cached_ids([path], cache_dir=cache)
    assert built
    np.testing.assert_array_equal(ids, data.encode(text, vocab))


def test_empty_and_undecodable_files_are_data_errors(tmp_path):
    empty = _write(tmp_path, "e.txt", b"")
    with pytest.raises(DataError, match="empty"):
        corpus.cached_ids([empty], cache_dir=str(tmp_path / "cache"))
    bad = _write(tmp_path, "b.txt", b"abc\xff")
    with pytest.raises(DataError, match=re.escape("not valid utf-8 at byte 3")):
        corpus.cached_ids([bad], cache_dir=str(tmp_path / "cache"))
    with pytest.raises(DataError, match="unknown text encoding"):
        list(corpus.iter_text(bad, "no-such-codec"))
    assert not (tmp_path / "cache").exists()      # nothing half-written left behind


def test_iter_text_and_load_corpus_read_strict_utf8_by_default(tmp_path):
    path = _write(tmp_path, "t.txt", "naïve café\n".encode())
    assert "".join(corpus.iter_text(path)) == "naïve café\n"
    c = corpus.load_corpus([path])
    assert data.decode_ids(c.ids, c.vocab) == "naïve café\n"
    bad = _write(tmp_path, "b.txt", b"abc\xff")
    for read in (lambda: list(corpus.iter_text(bad)), lambda: corpus.load_corpus([bad])):
        with pytest.raises(DataError) as e:
            read()
        assert str(e.value).startswith(f"{bad}: not valid utf-8 at byte 3; ")


def test_should_stream_only_regular_files_from_the_threshold(tmp_path):
    path = _write(tmp_path, "c.txt", b"x" * 100)
    assert corpus.should_stream([path], min_bytes=100)
    assert not corpus.should_stream([path], min_bytes=101)
    other = _write(tmp_path, "d.txt", b"x" * 60)
    assert corpus.should_stream([path, other], min_bytes=160)      # the files together
    assert not corpus.should_stream([path, other], min_bytes=161)
    assert not corpus.should_stream(["-"], min_bytes=0)
    assert not corpus.should_stream([str(tmp_path)], min_bytes=0)
    assert not corpus.should_stream([str(tmp_path / "missing")], min_bytes=0)


def test_load_corpus_streams_big_files_and_trains_the_same(tmp_path, monkeypatch):
    text = make_corpus(6000, seed=5)
    path = _write(tmp_path, "c.txt", text.encode())
    small = load_corpus([path])
    assert not isinstance(small.ids, np.memmap)
    monkeypatch.setattr(corpus, "STREAM_MIN_BYTES", 0)
    monkeypatch.setenv("CHARRNN_CACHE_DIR", str(tmp_path / "cache"))
    big = load_corpus([path])
    assert isinstance(big.ids, np.memmap)
    assert os.listdir(tmp_path / "cache")
    assert big.vocab == small.vocab and big.sources == small.sources
    np.testing.assert_array_equal(big.ids, small.ids)
    cfg = TrainConfig(hidden_size=8, seq_len=5, batch_size=3, max_iters=4, seed=2)
    losses = [[Trainer(cfg, c, str(tmp_path / f"ck{k}")).train_step() for _ in range(4)]
              for k, c in enumerate((small, big))]
    assert losses[0] == losses[1]


def test_streaming_hands_on_the_error_handler_and_the_cache_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(corpus, "STREAM_MIN_BYTES", 0)
    monkeypatch.setenv("CHARRNN_CACHE_DIR", str(tmp_path / "elsewhere"))
    path = _write(tmp_path, "c.txt", b"ab\xffc\n" * 50)
    c = load_corpus([path], errors="replace", cache_dir=str(tmp_path / "cache"))
    assert isinstance(c.ids, np.memmap)
    assert (c.encoding, c.errors) == ("utf-8", "replace")
    assert data.decode_ids(c.ids, c.vocab) == "ab\ufffdc\n" * 50
    assert os.listdir(tmp_path / "cache")
    assert not (tmp_path / "elsewhere").exists()
    c = load_corpus([path], encoding="latin-1", cache_dir=str(tmp_path / "cache"))
    assert (c.encoding, c.errors) == ("latin-1", "strict")
    assert data.decode_ids(c.ids, c.vocab) == "ab\xffc\n" * 50


@pytest.mark.parametrize("stream", [False, True])
def test_an_empty_text_is_named_by_the_paths_given(tmp_path, monkeypatch, stream):
    monkeypatch.setattr(corpus, "STREAM_MIN_BYTES", 0 if stream else 1 << 30)
    root = tmp_path / "c"
    root.mkdir()
    _write(root, "a.txt", b"")
    also = _write(tmp_path, "b.txt", b"")
    with pytest.raises(DataError) as e:
        load_corpus([str(root), also], cache_dir=str(tmp_path / "cache"))
    assert str(e.value) == f"{root}, {also}: the text is empty; give charrnn something to learn"


@pytest.mark.parametrize("stream", [False, True])
def test_a_lone_surrogate_from_utf7_is_read_and_fingerprinted(tmp_path, monkeypatch, stream):
    """UTF-7 (a text encoding --encoding accepts) can spell a lone surrogate."""
    monkeypatch.setattr(corpus, "STREAM_MIN_BYTES", 0 if stream else 1 << 30)
    path = _write(tmp_path, "s.txt", b"+2AA-ab")
    c = load_corpus([path], encoding="utf-7", cache_dir=str(tmp_path / "cache"))
    assert data.decode_ids(c.ids, c.vocab) == "\ud800ab"
    want = hashlib.sha256(np.array([0xD800, ord("a"), ord("b")], "<u4").tobytes()).hexdigest()
    assert c.fingerprint == want


def test_sources_are_absolute_paths_and_stdin_by_name(tmp_path, monkeypatch):
    _write(tmp_path, "c.txt", b"text")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"more")))
    c = load_corpus(["c.txt", "-"])
    assert c.sources == [str(tmp_path / "c.txt"), "<stdin>"]


@pytest.mark.parametrize("change", ["shrunk", "grown"])
def test_a_file_that_changes_between_passes_leaves_no_cache(tmp_path, monkeypatch, change):
    path = _write(tmp_path, "c.txt", make_corpus(1000).encode())
    real = corpus.iter_ids

    def changed(*a, **k):
        for ids in real(*a, **k):                     # as if the file had shrunk or grown
            yield ids[:-1] if change == "shrunk" else np.concatenate([ids, ids[:1]])
    monkeypatch.setattr(corpus, "iter_ids", changed)
    with pytest.raises(DataError, match="changed while being read"):
        corpus.cached_ids([path], cache_dir=str(tmp_path / "cache"))
    assert os.listdir(tmp_path / "cache") == []


def test_two_files_that_change_are_both_named(tmp_path, monkeypatch):
    """The message names every file of the text, comma-separated, whole."""
    paths = [_write(tmp_path, f"{k}.txt", make_corpus(600, seed=i).encode())
             for i, k in enumerate("ab")]
    real = corpus.iter_ids

    def shrunk(*a, **k):
        for ids in real(*a, **k):
            yield ids[:-1]
    monkeypatch.setattr(corpus, "iter_ids", shrunk)
    with pytest.raises(DataError) as caught:
        corpus.cached_ids(paths, cache_dir=str(tmp_path / "cache"))
    assert str(caught.value) == f"{paths[0]}, {paths[1]}: changed while being read; run again"
    assert os.listdir(tmp_path / "cache") == []


def test_each_reading_of_the_same_files_keeps_its_own_cache(tmp_path):
    """Two readings of the same files (or encodings, or error handlers) are
    two entries: switching between them finds each one's cache again,
    neither rebuilds nor drops the other."""
    paths = [_write(tmp_path, f"{k}.txt", f"doc {k} \u00e9\r\nline\r\n".encode()) for k in "ab"]
    cache = str(tmp_path / "cache")
    ways = [("utf-8", "strict", Reading("lf", "<>")), ("utf-8", "strict", Reading("lf", "##")),
            ("utf-8", "strict", Reading("keep", None)), ("latin-1", "strict", Reading()),
            ("utf-8", "replace", Reading())]
    first = [corpus.encoded(paths, enc, err, cache, reading=r) for enc, err, r in ways]
    assert [e.how for e in first] == ["built"] * len(ways)
    assert len({e.fingerprint for e in first[:4]}) == 4
    again = [corpus.encoded(paths, enc, err, cache, reading=r) for enc, err, r in ways]
    assert [e.how for e in again] == ["cache"] * len(ways)
    assert [e.fingerprint for e in again] == [e.fingerprint for e in first]


# ------------------------------------------------------- cache integrity
def _fresh_cache(tmp_path, text=None):
    text = text or make_corpus(3000, seed=3)
    path = _write(tmp_path, "c.txt", text.encode())
    cache = str(tmp_path / "cache")
    e = corpus.encoded([path], cache_dir=cache)
    assert e.how == "built"
    npy, meta, _ = corpus.cache_paths([path], "utf-8", "strict", cache)
    return text, path, cache, npy, meta


def _data_offset(npy):
    with open(npy, "rb") as f:
        np.lib.format.read_magic(f)
        np.lib.format.read_array_header_1_0(f)
        return f.tell()


def _poke(npy, at, values):
    with open(npy, "r+b") as f:
        f.seek(_data_offset(npy) + at)
        f.write(bytes(values))


def _out_of_range(npy, meta):
    _poke(npy, 100, [255, 250, 200])


def _other_valid_ids(npy, meta):
    ids = np.load(npy)
    _poke(npy, 10, [(int(ids[10]) + 1) % (int(ids.max()) + 1)])


def _truncated(npy, meta):
    with open(npy, "r+b") as f:
        f.truncate(os.path.getsize(npy) - 7)


def _extended(npy, meta):
    with open(npy, "ab") as f:
        f.write(b"\x00" * 3)


def _wrong_shape(npy, meta):
    np.save(npy, np.load(npy)[:-10])


def _other_dtype(npy, meta):
    np.save(npy, np.load(npy).astype(np.int8))      # the same bytes, labelled int8


def _id_just_outside(npy, meta):
    import json
    with open(meta) as f:
        size = len(json.load(f)["vocab"])
    _poke(npy, 100, [size])                       # the first id that has no character


def _npy_version_2(npy, meta):
    ids = np.load(npy)
    with open(npy, "wb") as f:
        np.lib.format.write_array(f, ids, version=(2, 0))


def _not_npy(npy, meta):
    with open(npy, "wb") as f:
        f.write(b"garbage, not an array")


def _empty_file(npy, meta):
    open(npy, "wb").close()


def _meta_not_json(npy, meta):
    with open(meta, "w") as f:
        f.write('{"format": 2, "sour')


def _meta_altered(npy, meta):
    import json
    with open(meta) as f:
        m = json.load(f)
    m["ids_crc32"] ^= 1
    with open(meta, "w") as f:
        json.dump(m, f)


def _meta_incomplete(npy, meta):
    import json
    with open(meta) as f:
        m = json.load(f)
    del m["chars"]
    m["check"] = corpus._meta_check(m)          # intact, but without the text's length
    with open(meta, "w") as f:
        json.dump(m, f)


def _meta_missing(npy, meta):
    os.unlink(meta)


def _npy_missing(npy, meta):
    os.unlink(npy)


DAMAGE = {      # the whole reason given, as a regular expression
    _out_of_range: r"id 255 is outside the vocabulary of \d+ characters",
    _id_just_outside: r"id (\d+) is outside the vocabulary of \1 characters",
    _other_valid_ids: r"its checksum does not match \(the ids were changed\)",
    _truncated: r"its id file is \d+ bytes, not \d+ \(truncated or extended\)",
    _extended: r"its id file is \d+ bytes, not \d+ \(truncated or extended\)",
    _wrong_shape: r"its id file holds uint8 \(\d+,\), not \d+ uint8 ids",
    _other_dtype: r"its id file holds int8 \(\d+,\), not \d+ uint8 ids",
    _npy_version_2: r"its id file is not a readable \.npy \(unexpected \.npy version\)",
    _not_npy: r"its id file is not a readable \.npy \(the magic string is not correct.*\)",
    _empty_file: r"its id file is not a readable \.npy \(EOF.*\)",
    _meta_not_json: r"its metadata is not valid JSON",
    _meta_altered: r"its metadata was altered",
    _meta_incomplete: r"its metadata is incomplete",
    _meta_missing: r"its metadata file is missing",
    _npy_missing: r"its id file is missing",
}


@pytest.mark.parametrize("damage", list(DAMAGE), ids=lambda f: f.__name__.strip("_"))
def test_each_kind_of_cache_damage_is_reported_once_and_rebuilt(tmp_path, damage):
    text, path, cache, npy, meta = _fresh_cache(tmp_path)
    damage(npy, meta)
    said = []
    e = corpus.encoded([path], cache_dir=cache, warn=said.append)
    assert len(said) == 1 and "\n" not in said[0]
    head, tail = f"the corpus cache {npy} is damaged (", "); rebuilt it from the text"
    assert said[0].startswith(head) and said[0].endswith(tail), said[0]
    assert re.fullmatch(DAMAGE[damage], said[0][len(head):-len(tail)]), said[0]
    assert e.how == "built"
    np.testing.assert_array_equal(e.ids, data.encode(text, e.vocab))
    assert e.fingerprint == hashlib.sha256(text.encode("utf-32-le")).hexdigest()
    said.clear()
    again = corpus.encoded([path], cache_dir=cache, warn=said.append)   # now intact
    assert again.how == "cache" and said == []
    assert sorted(os.listdir(cache)) == sorted(os.path.basename(p) for p in (npy, meta))


@pytest.mark.parametrize("differs", ["sources", "encoding", "errors", "reading", "format"])
def test_an_entry_moved_under_another_texts_name_is_not_used(tmp_path, differs):
    """An entry's name covers its files, encoding, error handler and reading;
    one renamed to another text's name (copied by hand, or a digest clash)
    is caught by its metadata, whichever single field differs."""
    import json
    import shutil
    a = _write(tmp_path, "a.txt", b"one\ntwo\n")
    b = _write(tmp_path, "b.txt", b"one\ntwo\n")
    cache = str(tmp_path / "cache")
    src = dict(paths=[a, b], encoding="utf-8", errors="strict", reading=Reading("lf", "<>"))
    dst = dict(src, **{"sources": {"paths": [b, a]}, "encoding": {"encoding": "latin-1"},
                       "errors": {"errors": "replace"}, "reading": {"reading": Reading("lf", "#")},
                       "format": {}}[differs])
    corpus.encoded(src["paths"], src["encoding"], src["errors"], cache, reading=src["reading"])
    s_npy, s_meta, _ = corpus.cache_paths(src["paths"], src["encoding"], src["errors"], cache,
                                          src["reading"])
    d_npy, d_meta, _ = corpus.cache_paths(dst["paths"], dst["encoding"], dst["errors"], cache,
                                          dst["reading"])
    if differs != "format":                 # the same name: the entry is edited in place
        shutil.copyfile(s_npy, d_npy)
        shutil.copyfile(s_meta, d_meta)
    else:
        with open(d_meta) as f:
            m = json.load(f)
        m["format"] = corpus.FORMAT + 1
        m["check"] = corpus._meta_check(m)
        with open(d_meta, "w") as f:
            json.dump(m, f)
    said = []
    e = corpus.encoded(dst["paths"], dst["encoding"], dst["errors"], cache, warn=said.append,
                       reading=dst["reading"])
    assert said == [f"the corpus cache {d_npy} is damaged (its metadata belongs to other "
                    f"files); rebuilt it from the text"]
    assert e.how == "built"


@pytest.mark.parametrize("distinct", [1, 300])     # one id; ids of two bytes
def test_an_intact_cache_is_used_whatever_the_size_of_its_ids(tmp_path, distinct):
    chars = [chr(0x100 + k) for k in range(distinct)]
    text = "".join(chars[(k * 7) % distinct] for k in range(5000))
    text, path, cache, npy, meta = _fresh_cache(tmp_path, text)
    said = []
    e = corpus.encoded([path], cache_dir=cache, warn=said.append)
    assert (e.how, said) == ("cache", [])
    assert e.ids.dtype == (np.uint8 if distinct == 1 else np.uint16)
    np.testing.assert_array_equal(e.ids, data.encode(text, e.vocab))


def test_a_changed_file_gets_a_new_entry_quietly_and_the_old_is_dropped(tmp_path):
    text, path, cache, npy, meta = _fresh_cache(tmp_path)
    with open(path, "a") as f:
        f.write("more")
    said = []
    e = corpus.encoded([path], cache_dir=cache, warn=said.append)
    assert (e.how, said) == ("built", [])
    npy2, meta2, _ = corpus.cache_paths([path], "utf-8", "strict", cache)
    assert npy2 != npy
    assert sorted(os.listdir(cache)) == sorted(os.path.basename(p) for p in (npy2, meta2))


def test_an_entry_of_an_older_format_for_the_same_text_is_dropped(tmp_path):
    """Only the same text's entries of format 1 go: another encoding's or
    another reading's stay, and so does a file another process is writing."""
    path = _write(tmp_path, "c.txt", b"some text\n")
    cache = tmp_path / "cache"
    cache.mkdir()
    reading = Reading("lf", "<>")
    stem = "0123456789abcdef"
    mine = corpus._prefix([path], "utf-8", "strict", 1, reading) + stem
    kept = [corpus._prefix([path], "latin-1", "strict", 1, reading) + stem,
            corpus._prefix([path], "utf-8", "strict", 1, Reading()) + stem]
    names = [n + ext for n in [mine] + kept for ext in (".npy", ".json")]
    writing = corpus.cache_paths([path], "utf-8", "strict", str(cache), reading)[2] + \
        "fedcba9876543210.npy.tmp-12345"
    for name in names + [writing]:
        (cache / name).write_bytes(b"an older entry")
    assert corpus.encoded([path], cache_dir=str(cache), reading=reading).how == "built"
    left = set(os.listdir(cache))
    assert not {n for n in left if n.startswith(mine)}
    assert set(names[2:]) | {writing} <= left


def test_iter_ids_reads_utf8_strictly_by_default(tmp_path):
    good = _write(tmp_path, "good.txt", "café".encode("utf-8"))
    bad = _write(tmp_path, "bad.txt", b"caf\xe9")
    assert [ids.tolist() for ids in corpus.iter_ids([good], "acfé")] == [[1, 0, 2, 3]]
    with pytest.raises(DataError, match=f"^{re.escape(bad)}: not valid utf-8 at byte 3;"):
        list(corpus.iter_ids([bad], "acfé"))
    assert corpus.scan([good]) == ("acfé", 4)                  # the first pass too
    with pytest.raises(DataError, match=f"^{re.escape(bad)}: not valid utf-8 at byte 3;"):
        corpus.scan([bad])
    # a character the first pass did not see: the file changed in between
    other = _write(tmp_path, "other.txt", b"cab")
    with pytest.raises(DataError, match=f"^{re.escape(other)}: changed while being read; "
                                        f"run again$"):
        list(corpus.iter_ids([good, other], "acfé\n"))
    with pytest.raises(DataError, match=f"^{re.escape(other)}: changed while being read; "
                                        f"run again$"):
        list(corpus.iter_ids([other, good], "acfé\n"))         # the first file


def test_cached_ids_hands_on_its_reading_and_warnings(tmp_path):
    paths = [_write(tmp_path, f"{k}.txt", f"doc {k}\n".encode()) for k in "ab"]
    reading = Reading("lf", "<>")
    want = corpus.encoded(paths, cache_dir=str(tmp_path / "other"), reading=reading)
    cache = str(tmp_path / "cache")
    ids, vocab, built = corpus.cached_ids(paths, cache_dir=cache, reading=reading)
    assert built and vocab == want.vocab
    np.testing.assert_array_equal(ids, want.ids)
    _meta_altered(*corpus.cache_paths(paths, "utf-8", "strict", cache, reading)[:2])
    said = []
    corpus.cached_ids(paths, cache_dir=cache, reading=reading, warn=said.append)
    assert len(said) == 1 and "(its metadata was altered)" in said[0]


def test_the_cache_folder_follows_charrnn_cache_dir_then_xdg_then_home(tmp_path, monkeypatch):
    monkeypatch.setenv("CHARRNN_CACHE_DIR", str(tmp_path / "mine"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert corpus.default_cache_dir() == str(tmp_path / "mine")
    monkeypatch.delenv("CHARRNN_CACHE_DIR")
    assert corpus.default_cache_dir() == os.path.join(str(tmp_path / "xdg"), "charrnn")
    monkeypatch.setenv("XDG_CACHE_HOME", "")                  # empty: as if unset
    assert corpus.default_cache_dir() == os.path.join(str(tmp_path / "home"), ".cache", "charrnn")


def test_empty_files_are_one_data_error_naming_them_all(tmp_path):
    paths = [_write(tmp_path, f"{k}.txt", b"") for k in "ab"]
    with pytest.raises(DataError, match="^" + re.escape(
            f"{paths[0]}, {paths[1]}: the text is empty; give charrnn something to learn") + "$"):
        corpus.encoded(paths, cache_dir=str(tmp_path / "cache"))


def test_metadata_that_cannot_be_read_is_damage_with_the_reason(tmp_path):
    text, path, cache, npy, meta = _fresh_cache(tmp_path)
    os.unlink(meta)
    os.mkdir(meta)                  # open() fails with an OSError other than "missing"
    said = []
    e = corpus.encoded([path], cache_dir=cache, warn=said.append)
    assert len(said) == 1, said
    assert f"(its metadata cannot be read: {os.strerror(errno.EISDIR)})" in said[0]
    np.testing.assert_array_equal(e.ids, data.encode(text, e.vocab))


def test_a_file_gone_before_the_cache_is_named_is_one_data_error(tmp_path):
    cache = str(tmp_path / "cache")
    gone, in_a_file = str(tmp_path / "gone.txt"), _write(tmp_path, "f.txt", b"x")
    with pytest.raises(DataError, match=f"^{re.escape(gone)}: no such file$"):
        corpus.cache_paths([gone], "utf-8", "strict", cache)
    below = os.path.join(in_a_file, "x.txt")
    with pytest.raises(DataError, match=f"^{re.escape(below)}: cannot read "
                                        f"\\({os.strerror(errno.ENOTDIR)}\\)$"):
        corpus.cache_paths([below], "utf-8", "strict", cache)


def test_short_gives_the_first_line_of_an_error_at_most_120_characters():
    assert corpus._short(ValueError("first\nsecond")) == "first"
    assert corpus._short(OSError()) == "OSError"
    assert corpus._short(ValueError("x" * 200)) == "x" * 120


def test_an_unreadable_id_file_is_reported_and_training_goes_on(tmp_path):
    text, path, cache, npy, meta = _fresh_cache(tmp_path)
    os.unlink(npy)
    os.mkdir(npy)            # open() fails (as for a file without read permission,
    said = []                # which root could read anyway); it cannot be replaced either
    e = corpus.encoded([path], cache_dir=cache, warn=said.append)
    isdir = os.strerror(errno.EISDIR)
    assert said == [f"the corpus cache {npy} is damaged (its id file cannot be read: {isdir}) "
                    f"and cannot be rebuilt in {cache} ({isdir}); training from the text "
                    f"without the cache (set CHARRNN_CACHE_DIR to a writable folder with room "
                    f"to keep it)"]
    assert e.how == "memory" and not isinstance(e.ids, np.memmap)
    np.testing.assert_array_equal(e.ids, data.encode(text, e.vocab))


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0,
                    reason="file permissions do not bind root")
def test_an_id_file_without_read_permission_is_rebuilt(tmp_path):
    text, path, cache, npy, meta = _fresh_cache(tmp_path)
    os.chmod(npy, 0)
    said = []
    e = corpus.encoded([path], cache_dir=cache, warn=said.append)
    assert len(said) == 1 and "Permission denied" in said[0] and e.how == "built"
    np.testing.assert_array_equal(e.ids, data.encode(text, e.vocab))


def test_a_cache_folder_that_cannot_be_written_means_no_cache(tmp_path):
    text = make_corpus(2000, seed=4)
    path = _write(tmp_path, "c.txt", text.encode())
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    cache = str(blocker / "cache")
    said = []
    e = corpus.encoded([path], cache_dir=cache, warn=said.append)
    assert said == [f"cannot write the corpus cache in {cache} ({os.strerror(errno.ENOTDIR)}); "
                    f"training from the text without the cache (set CHARRNN_CACHE_DIR to a "
                    f"writable folder with room to keep it)"]
    assert e.how == "memory"
    np.testing.assert_array_equal(e.ids, data.encode(text, e.vocab))
    assert e.fingerprint == hashlib.sha256(text.encode("utf-32-le")).hexdigest()


def test_without_a_cache_the_ids_in_memory_keep_the_reading_errors_and_dtype(tmp_path):
    paths = [_write(tmp_path, "a.txt", b"caf\xe9 one\r\n"), _write(tmp_path, "b.txt", b"two")]
    how = dict(errors="replace", reading=Reading("lf", "<>"))
    want = corpus.encoded(paths, cache_dir=str(tmp_path / "ok"), **how)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    said = []
    e = corpus.encoded(paths, cache_dir=str(blocker / "cache"), warn=said.append, **how)
    assert e.how == "memory" and len(said) == 1
    assert e.ids.dtype == np.uint8 and e.vocab == want.vocab and e.fingerprint == want.fingerprint
    np.testing.assert_array_equal(e.ids, want.ids)


def test_ids_whose_metadata_cannot_be_written_are_not_left_behind(tmp_path):
    text = make_corpus(2000, seed=4)
    path = _write(tmp_path, "c.txt", text.encode())
    cache = str(tmp_path / "cache")
    npy, meta, _ = corpus.cache_paths([path], "utf-8", "strict", cache)
    os.makedirs(meta)                     # the metadata's place is taken: it cannot be written
    said = []
    e = corpus.encoded([path], cache_dir=cache, warn=said.append)
    assert e.how == "memory" and len(said) == 1
    assert os.listdir(cache) == [os.path.basename(meta)]       # no ids without metadata
    np.testing.assert_array_equal(e.ids, data.encode(text, e.vocab))


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0,
                    reason="file permissions do not bind root")
def test_a_read_only_cache_folder_means_no_cache(tmp_path):
    text = make_corpus(2000, seed=4)
    path = _write(tmp_path, "c.txt", text.encode())
    cache = tmp_path / "cache"
    cache.mkdir()
    cache.chmod(0o500)
    try:
        said = []
        e = corpus.encoded([path], cache_dir=str(cache), warn=said.append)
    finally:
        cache.chmod(0o700)
    assert len(said) == 1 and "Permission denied" in said[0] and e.how == "memory"
    np.testing.assert_array_equal(e.ids, data.encode(text, e.vocab))


def test_the_fingerprint_of_the_encode_pass_is_text_sha256(tmp_path):
    """One pass: the cache's fingerprint equals the definition checkpoints
    have always stored (sha256 of the text's code points, UTF-32-LE), for
    ASCII and non-ASCII pieces and any read size, and --resume uses it
    without hashing the text again."""
    from charrnn.text.corpus import Corpus, text_fingerprint
    text = MIXED * 50 + make_corpus(2000)
    path = _write(tmp_path, "c.txt", text.encode())
    want = hashlib.sha256(text.encode("utf-32-le")).hexdigest()
    for k, rb in enumerate((7, 100, 1 << 20)):
        e = corpus.encoded([path], cache_dir=str(tmp_path / f"cache{k}"), read_bytes=rb)
        assert e.fingerprint == want
        assert text_fingerprint(Corpus(ids=np.asarray(e.ids), vocab=e.vocab)) == want
    cached = corpus.encoded([path], cache_dir=str(tmp_path / "cache0"))
    assert cached.how == "cache" and cached.fingerprint == want
    assert load_corpus([path]).fingerprint == want


def test_verifying_the_cache_reads_each_id_once(tmp_path, monkeypatch):
    """Reuse reads the id file once (checksum and range in one pass) and never
    the text."""
    text, path, cache, npy, meta = _fresh_cache(tmp_path, make_corpus(50_000, seed=8))
    monkeypatch.setattr(corpus, "VERIFY_BYTES", 4096)
    monkeypatch.setattr(corpus, "iter_text", None)          # the text is not read
    crcs = []
    real = corpus.zlib.crc32
    monkeypatch.setattr(corpus.zlib, "crc32", lambda b, v=0: crcs.append(len(b)) or real(b, v))
    e = corpus.encoded([path], cache_dir=cache)
    assert e.how == "cache" and sum(crcs) == len(text)


@pytest.mark.parametrize("damage", [_out_of_range, _other_valid_ids, _meta_not_json, _truncated],
                         ids=lambda f: f.__name__.strip("_"))
def test_train_on_a_damaged_cache_says_one_line_and_trains_on_the_right_text(tmp_path, damage):
    import subprocess
    import sys
    text, path, cache, npy, meta = _fresh_cache(tmp_path)
    damage(npy, meta)
    code = ("import sys; from charrnn.text import corpus; corpus.STREAM_MIN_BYTES = 0; "
            "from charrnn.cli.commands import main; sys.argv[0] = 'charrnn'; main()")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHARRNN_")}
    env["CHARRNN_CACHE_DIR"] = cache
    ck = tmp_path / "ck"
    r = subprocess.run([sys.executable, "-c", code, "train", path, "--checkpoint-dir", str(ck),
                        "--max-iters", "3", "--hidden-size", "8", "--seq-len", "8",
                        "--batch-size", "4", "--quiet"], capture_output=True, text=True,
                       env=env, timeout=120)
    assert r.returncode == 0 and r.stdout == "", r.stderr
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert r.stderr.startswith("charrnn: the corpus cache ")
    assert re.search(f"is damaged \\({DAMAGE[damage]}\\); rebuilt", r.stderr), r.stderr
    from charrnn.store import checkpoint as ckpt
    c = ckpt.load(str(ck / "latest.npz"))
    assert c.config["data"]["text_sha256"] == hashlib.sha256(text.encode("utf-32-le")).hexdigest()
