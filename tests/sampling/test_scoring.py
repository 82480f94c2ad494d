"""`charrnn eval` and the forward-only activations, against a plain
per-character computation (tests/reference_lm.py)."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from charrnn.store import checkpoint as ckpt
from charrnn.cli.commands import cli
from charrnn.errors import DataError
from charrnn.generate.scoring import (score_text, lenient_ids, pieces, plan_segments, run_text,
                              score_jobs)
from charrnn.nn.model import Model, ModelConfig, init_params, zero_state

import reference_lm

TEXT = ('The cat said "hello, world" to the dog.\nThe dog? "Woof!" it said, '
        "and that was all.\n") * 3
VOCAB = "".join(sorted(set(TEXT)))


def make_model(kind="lstm", layers=2, embed=0, dtype="float64", H=7, seed=0, scale=0.6):
    """A model with large random weights so its predictions vary a lot."""
    cfg = ModelConfig(vocab_size=len(VOCAB), model=kind, hidden_size=H, num_layers=layers,
                      embed_size=embed, dtype=dtype)
    rng = np.random.default_rng(seed)
    params = {k: (rng.standard_normal(v.shape) * scale).astype(dtype)
              for k, v in init_params(cfg, rng).items()}
    return Model(cfg, params)


def save_model(model, path, vocab=VOCAB):
    ck = ckpt.Checkpoint(config={"model": model.cfg.to_dict(), "train": {"optimizer": "adam"}},
                         vocab=vocab, params=model.params)
    ckpt.save(str(path), ck)
    return path


def known_ids(text, vocab=VOCAB):
    return [vocab.index(c) for c in text if c in vocab]


# ------------------------------------------------------------ activations
@pytest.mark.parametrize("kind,layers,embed", [("rnn", 1, 0), ("lstm", 2, 0), ("lstm", 1, 5),
                                               ("gru", 2, 4)])
def test_activations_match_per_character_reference(kind, layers, embed):
    model = make_model(kind, layers, embed)
    ids = known_ids(TEXT)
    hs, cs, logps = reference_lm.forward(model.params, model.cfg, ids)
    # in two chunks, carrying the state, as run_text does
    a1, l1, st = model.activations(np.array(ids[:50]))
    a2, l2, _ = model.activations(np.array(ids[50:]), st)
    for k in range(layers):
        np.testing.assert_allclose(np.concatenate([a1[k]["h"], a2[k]["h"]]), hs[k], atol=1e-10)
        if kind == "lstm":
            np.testing.assert_allclose(np.concatenate([a1[k]["c"], a2[k]["c"]]), cs[k],
                                       atol=1e-10)
        else:
            assert "c" not in a1[k]
    logits = np.concatenate([l1, l2])
    shifted = logits - logits.max(axis=1, keepdims=True)
    mine = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    np.testing.assert_allclose(mine, logps, atol=1e-10)


def test_activations_do_not_change_the_training_forward():
    """The same weights give the same loss through Model.loss as through the reference."""
    model = make_model("lstm", 2)
    ids = np.array(known_ids(TEXT))
    loss, _ = model.loss(ids[None, :-1], ids[None, 1:], zero_state(model.cfg, 1))
    total, n = reference_lm.mean_loss(model.params, model.cfg, list(ids))
    assert loss == pytest.approx(total / n, abs=1e-10)


# ------------------------------------------------------------------ scoring
def test_lenient_ids_and_pieces():
    ids = lenient_ids("ab€cd€€e", "abcde")
    assert ids.tolist() == [0, 1, -1, 2, 3, -1, -1, 4]
    assert [p.tolist() for p in pieces(ids, "skip")] == [[0, 1, 3, 4, 7]]
    assert [p.tolist() for p in pieces(ids, "reset")] == [[0, 1], [3, 4], [7]]
    assert pieces(lenient_ids("€€", "abc"), "skip") == []


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_eval_equals_per_character_computation(kind):
    model = make_model(kind, 2)
    r = score_text(model, VOCAB, TEXT)
    total, n = reference_lm.mean_loss(model.params, model.cfg, known_ids(TEXT))
    assert r["chars"] == len(TEXT) and r["chars_scored"] == n == len(TEXT) - 1
    assert r["nats_per_char"] == pytest.approx(total / n, rel=1e-12)
    assert r["bits_per_char"] == pytest.approx(total / n / math.log(2), rel=1e-12)
    assert r["perplexity"] == pytest.approx(math.exp(total / n), rel=1e-12)
    assert r["oov"]["count"] == 0 and r["chars_context_only"] == 1


def test_chunk_size_does_not_change_the_result():
    model = make_model("lstm", 2)
    ids = lenient_ids(TEXT, VOCAB)
    a = run_text(model, ids, chunk=1024).losses
    b = run_text(model, ids, chunk=7).losses
    np.testing.assert_allclose(a, b, atol=1e-12, equal_nan=True)
    assert np.isnan(a[0]) and np.isfinite(a[1:]).all()


def test_oov_skip_reads_on_as_if_absent():
    model = make_model("gru", 1)
    text = "The cat€ said 😀\"hello\"."
    r = score_text(model, VOCAB, text, "skip")
    clean = known_ids(text)
    total, n = reference_lm.mean_loss(model.params, model.cfg, clean)
    assert r["oov"] == {"count": 2, "handling": "skip", "chars": {"€": 1, "😀": 1}}
    assert r["chars"] == len(text) == len(clean) + 2
    assert r["chars_scored"] == n
    assert r["nats_per_char"] == pytest.approx(total / n, rel=1e-12)


def test_oov_reset_scores_each_piece_from_a_fresh_state():
    model = make_model("lstm", 1)
    text = "The cat€ said \"hello\".€€Woof"
    r = score_text(model, VOCAB, text, "reset")
    parts = ["The cat", " said \"hello\".", "Woof"]
    totals = [reference_lm.mean_loss(model.params, model.cfg, known_ids(p)) for p in parts]
    total, n = sum(t for t, _ in totals), sum(k for _, k in totals)
    assert r["chars_scored"] == n == len(text) - 3 - 3
    assert r["chars_context_only"] == 3 and r["oov"]["count"] == 3
    assert r["nats_per_char"] == pytest.approx(total / n, rel=1e-12)
    # and it differs from skipping, which carries the state over the gaps
    assert r["nats_per_char"] != pytest.approx(score_text(model, VOCAB, text)["nats_per_char"])


def test_top_predictions_are_the_likeliest_characters():
    model = make_model("rnn", 1)
    ids = known_ids(TEXT[:40])
    run = run_text(model, np.array(ids), top_k=3)
    _, _, logps = reference_lm.forward(model.params, model.cfg, ids)
    for t in range(1, len(ids)):
        order = np.argsort(-logps[t - 1])[:3]
        assert run.top_ids[t].tolist() == order.tolist()
        np.testing.assert_allclose(run.top_probs[t], np.exp(logps[t - 1][order]), rtol=1e-10)
        assert run.losses[t] == pytest.approx(-logps[t - 1][ids[t]], rel=1e-10)
    assert (run.top_ids[0] == -1).all()


def test_nothing_to_score_is_a_data_error():
    model = make_model("rnn", 1)
    for text in ("", "T", "€€€", "T€h"):
        with pytest.raises(DataError, match="nothing to score"):
            score_text(model, VOCAB, text, "reset")
    assert score_text(model, VOCAB, "T€h", "skip")["chars_scored"] == 1


# -------------------------------------------------------- segmented eval
def long_text(n=6000, seed=1):
    """Random words of TEXT's characters, so the context matters."""
    rng = np.random.default_rng(seed)
    words = TEXT.split()
    return " ".join(rng.choice(words, size=n // 4))[:n]


def test_exact_mode_matches_the_float64_reference():
    model = make_model("lstm", 2)
    text = long_text()
    r = score_text(model, VOCAB, text, exact=True)
    total, n = reference_lm.mean_loss(model.params, model.cfg, known_ids(text))
    assert r["method"] == "exact" and r["segments"] == 1 and r["warmup_chars"] == 0
    assert r["chars_scored"] == n
    assert r["nats_per_char"] == pytest.approx(total / n, rel=1e-12)


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_segments_score_every_character_once_with_its_context(kind):
    """With a warm-up as long as the text, every segment reads from the start:
    the figure is the exact one, so the cutting and masking lose nothing and
    count nothing twice."""
    model = make_model(kind, 2)
    text = long_text()
    exact = score_text(model, VOCAB, text, exact=True)
    full = score_text(model, VOCAB, text, rows=5, warmup=len(text), min_segment=100)
    assert full["method"] == "segmented" and full["segments"] >= 5
    assert full["chars_scored"] == exact["chars_scored"]
    assert full["nats_per_char"] == pytest.approx(exact["nats_per_char"], rel=1e-12)


def test_warm_up_brings_segments_close_to_the_exact_figure():
    model = make_model("lstm", 2, H=16, scale=0.4)
    text = long_text(8000)
    exact = score_text(model, VOCAB, text, exact=True)["nats_per_char"]
    cold = score_text(model, VOCAB, text, rows=16, warmup=0, min_segment=100)
    warm = score_text(model, VOCAB, text, rows=16, warmup=300, min_segment=100)
    assert cold["segments"] == warm["segments"] == 16 and warm["warmup_chars"] == 300
    assert abs(warm["nats_per_char"] - exact) < 1e-6
    assert abs(cold["nats_per_char"] - exact) > 10 * abs(warm["nats_per_char"] - exact)


def test_segmented_reset_mode_reads_each_piece_from_a_fresh_state():
    model = make_model("gru", 1)
    text = long_text(3000) + "€" + long_text(2500, seed=2) + "€€" + "The dog"
    exact = score_text(model, VOCAB, text, "reset", exact=True)
    seg = score_text(model, VOCAB, text, "reset", rows=4, warmup=10_000, min_segment=200)
    assert exact["segments"] == 3 and seg["segments"] > 3 and seg["method"] == "segmented"
    assert seg["chars_scored"] == exact["chars_scored"]
    assert seg["nats_per_char"] == pytest.approx(exact["nats_per_char"], rel=1e-12)


def test_plan_segments_cuts_long_pieces_only():
    parts = [np.arange(0, 1000), np.arange(1001, 1031), np.arange(1032, 1033)]
    jobs = plan_segments(parts, rows=4, warmup=50, min_segment=100)
    whole = [j for j in jobs if j[1] == 1]
    assert any(len(p) == 30 and p[0] == 1001 for p, _ in whole)     # the short piece, whole
    scored = np.concatenate([p[first:] for p, first in jobs])
    assert sorted(scored.tolist()) == list(range(1, 1000)) + list(range(1002, 1031))
    for p, first in jobs:
        assert first == 1 or first == 51           # a full warm-up inside the piece
    assert score_jobs(make_model(), np.zeros(1033, dtype=np.int64), [])[1] == 0


# ---------------------------------------------------------------------- CLI
def test_cli_eval_json_and_text(runner, tmp_path):
    model = make_model("lstm", 2, dtype="float32")
    ck = save_model(model, tmp_path / "m.npz")
    f = tmp_path / "t.txt"
    text = TEXT + "Ünïcode\n"
    f.write_text(text, encoding="utf-8")
    res = runner.invoke(cli, ["eval", str(f), "--checkpoint", str(ck), "--json"])
    assert res.exit_code == 0, res.output
    assert res.stderr == ""
    r = json.loads(res.stdout)
    total, n = reference_lm.mean_loss(model.params, model.cfg, known_ids(text))
    assert r["chars"] == len(text) and r["chars_scored"] == n
    assert r["nats_per_char"] == pytest.approx(total / n, rel=1e-5)   # float32 model
    assert r["oov"]["chars"] == {"Ü": 1, "ï": 1} and r["oov"]["count"] == 2
    assert r["checkpoint"] == str(ck)
    txt = runner.invoke(cli, ["eval", str(f), "--checkpoint", str(ck)])
    assert txt.exit_code == 0
    lines = txt.stdout.splitlines()
    loss = [l for l in lines if l.startswith("loss")][0]
    assert f"{r['nats_per_char']:.4f} nats/char" in loss
    assert f"{r['bits_per_char']:.4f} bits/char" in loss
    assert f"perplexity {r['perplexity']:.3f}" in loss
    assert f"{r['chars_scored']:,} scored" in txt.stdout
    assert f"{r['oov']['count']:,} outside the vocabulary" in txt.stdout
    assert "'Ü' x1" in txt.stdout


def test_cli_eval_reads_stdin_and_uses_checkpoint_dir(runner, tmp_path):
    model = make_model("gru", 1, dtype="float32")
    save_model(model, tmp_path / "best.npz")
    res = runner.invoke(cli, ["eval", "-", "--checkpoint-dir", str(tmp_path), "--json"],
                        input=TEXT.encode())
    assert res.exit_code == 0, res.output
    r = json.loads(res.stdout)
    assert r["file"] == "-" and r["checkpoint"].endswith("best.npz")
    total, n = reference_lm.mean_loss(model.params, model.cfg, known_ids(TEXT))
    assert r["nats_per_char"] == pytest.approx(total / n, rel=1e-5)


@pytest.mark.parametrize("content,message", [(b"", "nothing to score"),
                                             (b"\xff\xfe bad", "not valid utf-8"),
                                             ("€€€".encode(), "nothing to score")])
def test_cli_eval_bad_text_is_one_line(runner, tmp_path, content, message):
    ck = save_model(make_model("rnn", 1, dtype="float32"), tmp_path / "m.npz")
    f = tmp_path / "t.txt"
    f.write_bytes(content)
    res = runner.invoke(cli, ["eval", str(f), "--checkpoint", str(ck)])
    assert res.exit_code == 1
    assert res.stdout == "" and len(res.stderr.splitlines()) == 1
    assert res.stderr.startswith("charrnn: error:") and message in res.stderr


def test_cli_eval_missing_file_and_checkpoint(runner, tmp_path):
    ck = save_model(make_model("rnn", 1, dtype="float32"), tmp_path / "m.npz")
    res = runner.invoke(cli, ["eval", str(tmp_path / "nope.txt"), "--checkpoint", str(ck)])
    assert res.exit_code == 1 and "no such file" in res.stderr
    f = tmp_path / "t.txt"
    f.write_text(TEXT)
    res = runner.invoke(cli, ["eval", str(f), "--checkpoint-dir", str(tmp_path / "empty")])
    assert res.exit_code == 1 and "no checkpoint" in res.stderr
    res = runner.invoke(cli, ["eval", str(f), "--checkpoint", str(ck), "--oov", "drop"])
    assert res.exit_code == 2 and "--oov" in res.stderr


def test_eval_reproduces_the_trainers_validation_loss(trained):
    """The trainer scores its validation text as B streams, each from a zero
    state; eval on those same slices, pooled, gives the same number."""
    ck = ckpt.load(str(trained.best))
    val_text = trained.text[-ck.config["data"]["val_chars"]:]
    model = Model(ck.model_config, ck.params)
    n = len(val_text) - 1
    B = max(1, min(ck.config["train"]["batch_size"], n // ck.config["train"]["seq_len"]))
    L = n // B
    total = count = 0
    for b in range(B):
        r = score_text(model, ck.vocab, val_text[b * L: (b + 1) * L + 1])
        total += r["nats_per_char"] * r["chars_scored"]
        count += r["chars_scored"]
    assert count == B * L
    assert total / count == pytest.approx(ck.state["best_val"], rel=1e-5)


def test_cli_eval_says_which_method(runner, tmp_path):
    model = make_model("lstm", 1, dtype="float32")
    ck = save_model(model, tmp_path / "m.npz")
    f = tmp_path / "long.txt"
    f.write_text(long_text(30_000), encoding="utf-8")
    seg = runner.invoke(cli, ["eval", str(f), "--checkpoint", str(ck), "--json"])
    exact = runner.invoke(cli, ["eval", str(f), "--checkpoint", str(ck), "--json", "--exact"])
    assert seg.exit_code == 0 and exact.exit_code == 0, (seg.output, exact.output)
    s, e = json.loads(seg.stdout), json.loads(exact.stdout)
    assert (s["method"], s["warmup_chars"]) == ("segmented", 500) and s["segments"] > 1
    assert (e["method"], e["segments"], e["warmup_chars"]) == ("exact", 1, 0)
    assert s["chars_scored"] == e["chars_scored"]
    assert s["nats_per_char"] == pytest.approx(e["nats_per_char"], abs=1e-4)
    txt = runner.invoke(cli, ["eval", str(f), "--checkpoint", str(ck)])
    assert "method       segmented:" in txt.stdout and "500 characters before it" in txt.stdout


def test_segment_warm_ups_start_at_a_line():
    """With the newline's id, each cut segment's warm-up is moved back to just
    after a newline (a fresh state mid-word can trap a model; see
    plan_segments), never past the piece's start, and scores the same targets."""
    from charrnn.generate.scoring import plan_segments
    text = ("abc def\n" * 400)
    vocab = "".join(sorted(set(text)))
    ids = np.array([vocab.index(c) for c in text])
    nl = vocab.index("\n")
    parts = [np.arange(len(ids))]
    plain = plan_segments(parts, rows=4, warmup=10, min_segment=20)
    aligned = plan_segments(parts, rows=4, warmup=10, min_segment=20, ids=ids, line_id=nl)
    assert len(plain) == len(aligned) > 1
    for (p0, f0), (p1, f1) in zip(plain, aligned):
        assert p0[f0:].tolist() == p1[f1:].tolist()              # the same targets
        if f0 > 1:
            assert p1[0] == 0 or ids[p1[0] - 1] == nl            # starts a line
            assert f1 - f0 == p0[0] - p1[0] and 0 <= f1 - f0 < 8


def _score_and_jobs(monkeypatch, text, vocab, *args, **kw):
    """score_text of a small GRU on text, and the jobs plan_segments made for it."""
    from charrnn.generate import scoring
    cfg = ModelConfig(vocab_size=len(vocab), model="gru", hidden_size=6, dtype="float64")
    model = Model(cfg, init_params(cfg, np.random.default_rng(0)))
    seen = []
    real = scoring.plan_segments

    def plan(*a, **k):
        jobs = real(*a, **k)
        seen.extend(jobs)
        return jobs
    monkeypatch.setattr(scoring, "plan_segments", plan)
    return scoring.score_text(model, vocab, text, *args, **kw), seen


def test_eval_of_a_long_text_warms_every_segment_up_from_a_line_start(monkeypatch):
    """score_text hands plan_segments the text's ids and the newline's id, so
    each cut segment is read from the start of a line."""
    text = "".join(f"line {i} of a long text, said the model\n" for i in range(400))
    vocab = "".join(sorted(set(text)))
    r, seen = _score_and_jobs(monkeypatch, text, vocab, rows=8, warmup=50, min_segment=200)
    assert r["method"] == "segmented" and len(seen) > 1
    cut = [(pos, first) for pos, first in seen if first > 1]
    assert cut and all(text[pos[0] - 1] == "\n" for pos, _ in cut)


@pytest.mark.parametrize("oov", ["skip", "reset"])
def test_warm_ups_start_at_a_line_also_when_characters_are_outside_the_vocabulary(monkeypatch,
                                                                                oov):
    """Characters outside the vocabulary make a piece's positions differ from
    its indices (skip: gaps; reset: pieces that start mid-text).  Each cut
    segment still starts just after a newline: the latest line start within
    LINE_LOOKBACK before its plain warm-up, found here by walking the text."""
    from charrnn.generate.scoring import LINE_LOOKBACK
    lines = [f"line {i} of a long text, said the model\n" for i in range(400)]
    for i in range(3, 400, 37):                    # '#' mid-line, outside the vocabulary
        lines[i] = lines[i][:7] + "#" + lines[i][7:]
    text = "".join(lines)
    vocab = "".join(sorted(set(text) - {"#"}))
    warmup = 50
    r, seen = _score_and_jobs(monkeypatch, text, vocab, oov, rows=32, warmup=warmup,
                              min_segment=100)
    assert r["method"] == "segmented" and r["oov"]["count"] == 11
    cut = [(pos, first) for pos, first in seen if first > 1]
    assert len(cut) > 10
    known = [i for i, c in enumerate(text) if c != "#"]
    for pos, first in cut:
        # the piece holding this segment, from the text alone: every known
        # character (skip) or the run of known characters around it (reset)
        target = int(pos[first])
        piece = known
        if oov == "reset":
            a = text.rfind("#", 0, target) + 1
            b = text.find("#", target)
            piece = list(range(a, b if b >= 0 else len(text)))
        t = piece.index(target)
        plain = max(0, t - 1 - warmup)           # warm-up: warmup characters and the context
        line_starts = [i for i in range(plain, max(0, plain - LINE_LOOKBACK), -1)
                       if text[piece[i - 1]] == "\n"]
        start = line_starts[0] if line_starts else plain
        assert pos.tolist() == piece[start:t + len(pos) - first], (oov, target)
        assert start == 0 or text[piece[start - 1]] == "\n"
