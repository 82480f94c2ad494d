"""The copy report: what a generated text copied verbatim from the training
text, checked against a brute-force reference on random texts (tiny chunks,
so copies cross chunk boundaries, and tiny pair batches), and through the
command line and the library (the training text found from the
checkpoint's record and refused when it changed)."""
from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import charrnn
from charrnn.errors import DataError
from charrnn.text.copies import find_copies, window_hashes

from conftest import make_corpus
from helpers import assert_ok, assert_one_line_error, invoke

TINY = dict(hidden_size=8, seq_len=8, batch_size=2, eval_every=3, max_iters=3)


def brute(sample: str, text: str, n: int):
    """(longest as (length, sample offset, text offset, line) or None, copied chars):
    the longest substring of sample found in text when >= n, the one ending
    first in text, at the smallest sample offset; the characters of sample
    inside some window of n characters found in text."""
    m = len(sample)
    longest = 0
    for a in range(m):
        k = 0
        while a + k < m and sample[a:a + k + 1] in text:
            k += 1
        longest = max(longest, k)
    covered = [False] * m
    for a in range(m - n + 1):
        if sample[a:a + n] in text:
            covered[a:a + n] = [True] * n
    if longest < n or longest == 0:
        return None, sum(covered)
    hits = []
    for a in range(m - longest + 1):
        o = text.find(sample[a:a + longest])
        while o >= 0:
            hits.append((o, a))
            o = text.find(sample[a:a + longest], o + 1)
    o, a = min(hits)
    return (longest, a, o, text[:o].count("\n") + 1), sum(covered)


def _pieces(text: str, sizes):
    out, i, k = [], 0, 0
    while i < len(text):
        step = sizes[k % len(sizes)]
        out.append(text[i:i + step])
        i, k = i + step, k + 1
    return out


ALPHABETS = st.sampled_from(["ab", "abc", "ab\n", "abcd\n", "aé😀\n"])


@st.composite
def case(draw):
    alpha = draw(ALPHABETS)
    text = draw(st.text(alphabet=alpha, max_size=80))
    samples = []
    for _ in range(draw(st.integers(0, 4))):
        parts = []
        for _ in range(draw(st.integers(0, 5))):
            if text and draw(st.booleans()):          # a piece of the text: a copy
                o = draw(st.integers(0, len(text) - 1))
                parts.append(text[o:o + draw(st.integers(1, 15))])
            else:
                parts.append(draw(st.text(alphabet=alpha + "z", max_size=6)))
        samples.append("".join(parts))
    return (text, samples, draw(st.integers(1, 7)), draw(st.integers(1, 12)),
            draw(st.integers(1, 6)), draw(st.lists(st.integers(1, 9), min_size=1, max_size=4)))


@settings(max_examples=400, deadline=None)
@given(case())
def test_find_copies_equals_brute_force(c):
    text, samples, n, chunk, batch, sizes = c
    reports = find_copies(samples, _pieces(text, sizes), n, chunk_chars=chunk)
    assert len(reports) == len(samples)
    for s, r in zip(samples, reports):
        longest, copied = brute(s, text, n)
        got = None if r.longest is None else (r.longest.length, r.longest.sample_offset,
                                              r.longest.text_offset, r.longest.text_line)
        assert (got, r.copied, r.chars) == (longest, copied, len(s))
        assert sum(b - a for a, b in r.spans) == r.copied


def test_a_copy_across_chunk_boundaries_is_found_whole():
    rng = np.random.default_rng(0)
    text = "".join(rng.choice(list("abcdefgh\n"), 5000))
    copy = text[2990:3040]                      # crosses chunk boundaries of 7 and of 1000
    sample = "XY" + copy + "ZZ"
    for chunk in (7, 1000, 3000, 1 << 20):
        r = find_copies(sample, [text], 20, chunk_chars=chunk)[0]
        assert r.longest is not None and r.longest.length >= 50, chunk
        assert text[r.longest.text_offset:r.longest.text_offset + r.longest.length] == \
            sample[r.longest.sample_offset:r.longest.sample_offset + r.longest.length]
        assert r.longest.text_line == text[:r.longest.text_offset].count("\n") + 1, chunk
        assert r.copied >= 50


def test_a_hash_clash_never_counts(monkeypatch):
    from charrnn.text import copies
    real = copies.window_hashes

    def weak(x, n, base=copies._BASE):      # the first multiplier sums: anagrams clash
        if base != copies._BASE:
            return real(x, n, base)
        sums = np.concatenate(([0], np.cumsum(x.astype(np.int64))))
        return (sums[n:] - sums[:-n]).astype(np.uint64)
    monkeypatch.setattr(copies, "window_hashes", weak)
    # a text window whose hash is a sample window's is checked, and left out
    r = find_copies("abcdefgh", ["zzzzdcbazzzzabcdzzzz"], 4, chunk_chars=5)[0]
    assert (r.longest.length, r.longest.sample_offset, r.longest.text_offset) == (4, 0, 12)
    assert r.copied == 4
    # every character is checked, not only the last: "bacd" ends like "abcd"
    r = find_copies("abcdefgh", ["zzbacdzzacbdzz"], 4, chunk_chars=5)[0]
    assert (r.longest, r.copied) == (None, 0)
    # windows of one sample that clash make the finder take another multiplier
    assert copies.CopyFinder(["abcdefgh"], 4).base == copies._BASE
    assert copies.CopyFinder(["abcdxdcba"], 4).base != copies._BASE
    assert copies.CopyFinder(["aaaabcdxdcba"], 4).base != copies._BASE   # not the least hash
    r = find_copies("abcdxdcba", ["zzdcbazz"], 4)[0]
    assert (r.longest.sample_offset, r.longest.text_offset, r.copied) == (5, 2, 4)


def test_a_sample_whose_windows_clash_under_every_multiplier_is_refused(monkeypatch):
    from charrnn.text import copies
    monkeypatch.setattr(copies, "window_hashes",
                        lambda x, n, base=0: np.zeros(max(len(x) - n + 1, 0), dtype=np.uint64))
    assert copies.CopyFinder(["aaaaaa"], 4).base == copies._BASE      # equal windows: no clash
    with pytest.raises(RuntimeError, match=r"^window hashes clash within the sample$"):
        copies.CopyFinder(["abcdef"], 4)


def test_a_sample_that_repeats_itself_costs_no_more_than_another(monkeypatch):
    """A model stuck in a loop writes one pattern again and again; every
    window of it matches the text wherever the pattern occurs there.  The
    work per text window stays one vectorised check, and the walk through
    the automaton only sees runs that could beat the longest copy so far."""
    from charrnn.text import copies
    walked = []
    real = copies._Automaton.walk

    def counting(self, seq):
        walked.append(len(seq))
        return real(self, seq)
    monkeypatch.setattr(copies._Automaton, "walk", counting)
    text = "".join(f"line {i}\n" + ("-" * 40 + "\n" if i % 10 == 0 else "") for i in range(20000))
    r = find_copies("-" * 2000, [text], 20, chunk_chars=10_000)[0]
    assert r.longest.length == 40 and r.copied == 2000
    assert walked == [21]           # the first dash line's 21 windows; later ones cannot beat it


def test_window_hashes_are_the_polynomial_of_each_window():
    x = np.array([5, 1, 300, 7, 0x10FFFF, 2, 9], dtype=np.int64)
    from charrnn.text.copies import _BASE
    for n in range(1, 8):
        want = [sum(int(x[j + t]) * pow(_BASE, n - 1 - t, 1 << 64) for t in range(n)) % (1 << 64)
                for j in range(len(x) - n + 1)]
        assert window_hashes(x, n).tolist() == want
    long = np.random.default_rng(1).integers(0, 0x110000, 70)
    for n in (8, 13, 20, 31, 32, 33, 64, 70):       # every doubling step up to 64
        want = [sum(int(long[j + t]) * pow(_BASE, n - 1 - t, 1 << 64) for t in range(n))
                % (1 << 64) for j in range(len(long) - n + 1)]
        assert window_hashes(long, n).tolist() == want, n


def _brute_walk(built, seq):
    """For each element of seq: (length of the longest suffix of seq up to it
    found in built, first end position of that suffix in built)."""
    out = []
    for i in range(len(seq)):
        for n in range(i + 1, 0, -1):
            ends = [e for e in range(n - 1, len(built))
                    if built[e - n + 1:e + 1] == seq[i - n + 1:i + 1]]
            if ends:
                out.append((n, ends[0]))
                break
        else:
            out.append((0, None))
    return out


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 2), max_size=14), st.lists(st.integers(0, 3), max_size=14))
def test_the_sample_automaton_walks_like_brute_force(built, seq):
    from charrnn.text.copies import _Automaton
    a = _Automaton(built)
    got = [(n, e if n else None) for n, e in a.walk(seq)]
    assert got == _brute_walk(built, seq)
    n = len(built)                      # a suffix automaton has at most 2n - 1 states (n >= 2)
    assert len(a.len) <= (max(2 * n - 1, n + 1) if n else 1)


def test_window_hashes_of_a_text_shorter_than_the_window_are_none():
    for x in (np.array([], dtype=np.int64), np.array([3, 4], dtype=np.int64)):
        h = window_hashes(x, 3)
        assert h.shape == (0,) and h.dtype == np.uint64


def test_the_default_copy_length_is_20_and_below_1_is_refused():
    from charrnn.text.copies import CopyFinder
    text = "0123456789abcdefghijklmnopqrstuvwxyz"
    assert find_copies("<" + text[:20] + ">", [text])[0].longest.length == 20
    assert find_copies("<" + text[:19] + ">", [text])[0].longest is None
    f = CopyFinder(["<" + text[5:24] + ">"])
    f.feed(text)
    (r,) = f.reports()
    assert (r.min_len, r.longest, r.copied) == (20, None, 0)
    with pytest.raises(ValueError, match=r"^min_len must be >= 1$"):
        CopyFinder(["abc"], 0)


def test_memory_is_bounded_by_the_sample_not_the_text():
    """The finder keeps the sample's index and one chunk: feeding it a long
    text keeps no more than the overlap between chunks."""
    from charrnn.text.copies import CopyFinder
    f = CopyFinder(["x" * 30 + "abc" * 10], 8, chunk_chars=1000)
    for _ in range(200):
        f.feed("abc" * 300)
    assert len(f.tail) == 59 and f.buffered < 1000
    assert f.reports()[0].copied == 30


# ------------------------------------------------------------ command line
@pytest.fixture
def run(tmp_path):
    """A checkpoint trained on a folder of two files."""
    root = tmp_path / "text"
    root.mkdir()
    a, b = make_corpus(1500, seed=1), make_corpus(1500, seed=2)
    (root / "a.txt").write_text(a, encoding="utf-8")
    (root / "b.txt").write_text(b, encoding="utf-8")
    r = charrnn.train([str(root)], checkpoint_dir=str(tmp_path / "ck"), **TINY)
    return tmp_path, root, a, b, r.latest_path


def test_copies_names_the_file_and_line_of_the_longest_copy(run, runner):
    tmp_path, root, a, b, ck = run
    lines = b.split("\n")
    copied = "\n".join(lines[9:12])              # lines 10-12 of b.txt
    sample = tmp_path / "sample.txt"
    sample.write_text("@@" + copied + "@@", encoding="utf-8")
    r = invoke(runner, "copies", sample, "--checkpoint", ck, "--json")
    assert_ok(r)
    got = json.loads(r.stdout)
    lg = got["longest"]
    assert lg["text"] == copied and lg["length"] == len(copied) and lg["sample_offset"] == 2
    assert lg["file"] == str(root / "b.txt") and lg["line"] == 10
    assert lg["text_line"] == a.count("\n") + 10 and lg["text_offset"] == len(a) + b.index(copied)
    assert got["copied_chars"] == len(copied) and got["spans"] == [[2, 2 + len(copied)]]
    assert got["training_chars"] == len(a) + len(b) and got["min_len"] == 20
    words = invoke(runner, "copies", sample, "--checkpoint", ck)
    assert_ok(words)
    assert f"longest copy  {len(copied):,} characters at sample offset 2, from b.txt line 10" \
        in words.stdout
    assert f"copied        {len(copied):,} of {len(copied) + 4:,} characters" in words.stdout


def test_copies_reads_stdin_and_min_len_sets_the_share(run, runner):
    tmp_path, root, a, b, ck = run
    piece = a[100:115]                          # 15 characters: below 20, above 10
    r = invoke(runner, "copies", "--checkpoint", ck, "--json", input="\x01" + piece + "\x01")
    assert_ok(r)
    assert json.loads(r.stdout)["longest"] is None
    r = invoke(runner, "copies", "-", "--checkpoint", ck, "--json", "--min-len", "10",
               input="\x01" + piece + "\x01")
    got = json.loads(r.stdout)
    assert got["longest"]["length"] >= 15 and got["copied_chars"] >= 15


def test_copies_refuses_a_changed_training_text(run, runner):
    tmp_path, root, a, b, ck = run
    sample = tmp_path / "s.txt"
    sample.write_text(a[:200], encoding="utf-8")
    (root / "b.txt").write_text(b.replace("e", "E", 1), encoding="utf-8")
    line = assert_one_line_error(invoke(runner, "copies", sample, "--checkpoint", ck), 1)
    assert "the text differs from the one" in line and "--text PATH" in line
    # --text with the checkpoint: read as it was read, and checked too
    other = tmp_path / "other"
    shutil.copytree(root, other)
    (other / "b.txt").write_text(b, encoding="utf-8")
    r = invoke(runner, "copies", sample, "--checkpoint", ck, "--text", other, "--json")
    assert_ok(r)
    assert json.loads(r.stdout)["longest"]["length"] == 200


def test_copies_with_a_text_alone_needs_no_checkpoint(tmp_path, runner):
    text = tmp_path / "t.txt"
    text.write_text("the quick brown fox jumps over the lazy dog\r\n", encoding="utf-8")
    sample = tmp_path / "s.txt"
    sample.write_text("a quick brown fox jumps over it", encoding="utf-8")
    r = invoke(runner, "copies", sample, "--text", text, "--json",
               "--checkpoint-dir", tmp_path / "none")
    assert r.exit_code == 1          # a --checkpoint-dir given means: use its checkpoint
    r = invoke(runner, "copies", sample, "--text", text, "--json",
               env={"CHARRNN_CHECKPOINT_DIR": str(tmp_path / "none")})
    assert_ok(r)
    got = json.loads(r.stdout)
    assert got["checkpoint"] is None and got["longest"]["text"] == " quick brown fox jumps over "


def test_copies_bad_input_is_one_line(run, runner, tmp_path):
    tmp_path, root, a, b, ck = run
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    assert "the text to check is empty" in assert_one_line_error(
        invoke(runner, "copies", empty, "--checkpoint", ck), 1)
    latin = tmp_path / "latin.txt"
    latin.write_bytes(b"caf\xe9")
    assert "must be UTF-8, as charrnn sample writes it" in assert_one_line_error(
        invoke(runner, "copies", latin, "--checkpoint", ck), 1)
    sample = tmp_path / "s.txt"
    sample.write_text("text")
    shutil.move(str(root), str(tmp_path / "moved"))
    line = assert_one_line_error(invoke(runner, "copies", sample, "--checkpoint", ck), 1)
    assert "no such file or folder" in line and "--text PATH" in line
    assert_one_line_error(invoke(runner, "copies", sample, "--checkpoint", ck, "--min-len", "0"),
                          2)


def test_copies_refuses_a_text_that_came_from_stdin(tmp_path, runner):
    r = invoke(runner, "train", "-", "--checkpoint-dir", tmp_path / "ck", "--max-iters", "2",
               "--hidden-size", "8", "--seq-len", "8", "--batch-size", "2",
               input=make_corpus(800))
    assert_ok(r)
    sample = tmp_path / "s.txt"
    sample.write_text("text")
    line = assert_one_line_error(invoke(runner, "copies", sample, "--checkpoint-dir",
                                        tmp_path / "ck"), 1)
    assert "standard input" in line and "--text PATH" in line


def test_sample_copies_reports_on_stderr_and_stdout_is_the_text(run, runner):
    tmp_path, root, a, b, ck = run
    plain = invoke(runner, "sample", "--checkpoint", ck, "--len", "300", "--seed", "4",
                   "--prime", "The")
    r = invoke(runner, "sample", "--checkpoint", ck, "--len", "300", "--seed", "4",
               "--prime", "The", "--copies", "2")
    assert_ok(r)
    assert r.stdout == plain.stdout
    generated = plain.stdout[3:-1]                    # without the prime and final newline
    model = charrnn.load(ck)
    want = model.copies(generated, min_len=2)
    share = f"{want['copied_share']:.1%}"
    assert r.stderr.splitlines() == [
        f"copies: longest {want['longest']['length']:,} characters "
        f"({os.path.basename(want['longest']['file'])} line {want['longest']['line']:,}); "
        f"{share} of 300 characters in copies of 2+ characters"]
    two = invoke(runner, "sample", "--checkpoint", ck, "--len", "50", "--seed", "4",
                 "--num-samples", "2", "--copies")
    assert_ok(two)
    assert [ln.split(":")[0] for ln in two.stderr.splitlines()] == [
        "copies in sample 1", "copies in sample 2"]


def test_the_library_copies_matches_the_command(run, runner):
    tmp_path, root, a, b, ck = run
    model = charrnn.load(ck)
    got = model.copies(a[50:120] + "~~" + b[10:40])
    assert got["longest"]["length"] == 70 and got["longest"]["file"] == str(root / "a.txt")
    assert got["copied_chars"] == 100
    with pytest.raises(charrnn.OptionError):
        model.copies("x", min_len=0)
    with pytest.raises(DataError, match="differs"):
        model.copies("x", training_text=str(root / "a.txt"))
