"""The streaming encoder and the memory-mapped id cache (charrnn.corpus)."""
import os
import re

import numpy as np
import pytest

from charrnn import corpus, data
from charrnn.errors import DataError
from charrnn.train import Trainer, TrainConfig, load_corpus

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
    vocab, n = corpus.scan([pa, pb], read_bytes=100)
    assert vocab == data.build_vocab(a + b)
    assert n == len(a + b)
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


def test_should_stream_only_regular_files_from_the_threshold(tmp_path):
    path = _write(tmp_path, "c.txt", b"x" * 100)
    assert corpus.should_stream([path], min_bytes=100)
    assert not corpus.should_stream([path], min_bytes=101)
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
    losses = [[Trainer(cfg, c, str(tmp_path / f"ck{k}")).step() for _ in range(4)]
              for k, c in enumerate((small, big))]
    assert losses[0] == losses[1]


def test_a_file_that_changes_between_passes_leaves_no_cache(tmp_path, monkeypatch):
    path = _write(tmp_path, "c.txt", make_corpus(1000).encode())
    real = corpus.iter_ids

    def shorter(*a, **k):
        for ids in real(*a, **k):
            yield ids[:-1]                            # as if the file had shrunk
    monkeypatch.setattr(corpus, "iter_ids", shorter)
    with pytest.raises(DataError, match="changed while being read"):
        corpus.cached_ids([path], cache_dir=str(tmp_path / "cache"))
    assert os.listdir(tmp_path / "cache") == []
