"""The trainer applies its settings, checked against independent expectations.

Each test computes what a step must do from first principles (the float64
per-character reference of tests/reference_lm.py, a hand computation of
clipping or inverted dropout, a known value) and holds the trainer to it.
None compares the trainer with another run of itself, so a bug that both
sides of such a comparison would share (a resume test's straight and resumed
runs, say) is still caught.  tests/mutations.py plants such bugs one at a
time and shows which test here catches each.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from charrnn.store import checkpoint as ckpt
from charrnn.text import data
from charrnn.runs.config import TrainConfig, make_train_config
from charrnn.errors import CharRNNError
from charrnn.runs.trainer import Trainer

import reference_lm
from conftest import make_corpus
from helpers import corpus as corpus_of, resume_trainer


def capture_updates(tr: Trainer) -> list:
    """Record the (already clipped) gradients the trainer hands its optimizer."""
    seen = []
    real = tr.opt.update

    def step(params, grads, lr, *args):
        seen.append({k: np.array(g, copy=True) for k, g in grads.items()})
        return real(params, grads, lr, *args)
    tr.opt.update = step
    return seen


def reference_stream_loss(params, mcfg, ids_rows) -> float:
    """Mean nats/char of streams read from a zero state: ids_rows is a list of
    id sequences, each scored on every character after its first."""
    total = count = 0
    for row in ids_rows:
        t, n = reference_lm.mean_loss(params, mcfg, [int(i) for i in row])
        total += t
        count += n
    return total / count


# ------------------------------------------------------- truncated BPTT state
def test_each_chunk_carries_the_state_and_a_new_epoch_starts_from_zero(tmp_path):
    """Chunk k of an epoch is scored as the continuation of chunks 0..k-1 of
    its stream; chunk 0 of the next epoch again from a zero state.  (lr 0 keeps
    the weights of every chunk the ones the carried state was computed with.)"""
    text = make_corpus(700, seed=4)
    cfg = TrainConfig(model="gru", hidden_size=8, seq_len=8, batch_size=3, val_frac=0.0,
                      dtype="float64", lr=0.0, seed=2)
    tr = Trainer(cfg, corpus_of(text), str(tmp_path))
    s = tr.streams
    E = s.chunks_per_epoch
    assert E >= 3
    for k in range(E + 2):
        chunk = tr.chunk
        assert chunk == k % E
        T = s.T
        prefix = [list(s.x[b, :chunk * T]) + [s.x[b, chunk * T]] for b in range(s.B)]
        whole = [list(s.x[b, :(chunk + 1) * T]) + [s.y[b, (chunk + 1) * T - 1]]
                 for b in range(s.B)]
        params = {n: p.copy() for n, p in tr.model.params.items()}
        # nats of this chunk alone = nats(prefix + chunk) - nats(prefix), from zero
        want = 0.0
        for b in range(s.B):
            t1, _ = reference_lm.mean_loss(params, tr.mcfg, [int(i) for i in whole[b]])
            t0, _ = reference_lm.mean_loss(params, tr.mcfg, [int(i) for i in prefix[b]])
            want += t1 - t0
        want /= s.B * T
        got = tr.train_step()
        assert got == pytest.approx(want, rel=1e-9, abs=1e-12), f"step {k} (chunk {chunk})"
    assert tr.epoch == 1


def test_the_epoch_wrap_really_changes_the_state_the_test_above_checks(tmp_path):
    """Control: at the wrap the carried state is far from zero, so scoring the
    first chunk of epoch 2 with it differs from scoring it fresh."""
    text = make_corpus(700, seed=4)
    cfg = TrainConfig(model="gru", hidden_size=8, seq_len=8, batch_size=3, val_frac=0.0,
                      dtype="float64", lr=0.05, seed=2)
    tr = Trainer(cfg, corpus_of(text), str(tmp_path))
    for _ in range(tr.streams.chunks_per_epoch):
        tr.train_step()
    assert tr.chunk == 0
    x, y = tr.streams.chunk(0)
    carried, _ = tr.model.loss(x, y, tr.hidden)
    fresh = reference_stream_loss(tr.model.params, tr.mcfg,
                                  [list(x[b]) + [y[b, -1]] for b in range(len(x))])
    assert abs(carried - fresh) > 1e-4


# ----------------------------------------------------------------- dropout
@pytest.mark.parametrize("p", [0.5, 0.25])
def test_dropout_in_a_training_step_is_inverted_dropout(tmp_path, p):
    """One character per step (B=1, T=1), one rnn layer: out.W's gradient row j
    is (h_j * m_j) * (softmax - onehot).  Rows of dropped units are zero; the
    kept ones must match a hand computation with m_j = 1 / (1 - p)."""
    text = make_corpus(400, seed=6)
    cfg = TrainConfig(model="rnn", hidden_size=48, seq_len=1, batch_size=1, val_frac=0.0,
                      dtype="float64", dropout=p, clip=0.0, seed=11)
    tr = Trainer(cfg, corpus_of(text), str(tmp_path))
    seen = capture_updates(tr)
    dropped = total = 0
    for _ in range(6):
        P = {n: v.copy() for n, v in tr.model.params.items()}
        h_prev = tr.hidden[0][0][0].copy()
        x, y = tr.streams.chunk(tr.chunk)
        tr.train_step()
        g = seen[-1]["out.W"]                                   # (H, V)
        h = np.tanh(P["l0.Wx"][x[0, 0]] + P["l0.b"] + h_prev @ P["l0.Wh"])
        kept = np.any(g != 0.0, axis=1)
        dropped += int((~kept).sum())
        total += kept.size
        top = h * kept / (1.0 - p)
        logits = top @ P["out.W"] + P["out.b"]
        prob = np.exp(logits - logits.max())
        prob /= prob.sum()
        prob[y[0, 0]] -= 1.0
        np.testing.assert_allclose(g, np.outer(top, prob), rtol=1e-9, atol=1e-12)
    # the share of dropped units is p (binomial: 6 * 48 draws)
    sd = math.sqrt(total * p * (1 - p))
    assert abs(dropped - p * total) < 4 * sd, (dropped, total)


def test_dropout_is_off_when_scoring(tmp_path):
    """Evaluation uses every unit, unscaled: the trainer's validation loss is
    the reference (dropout-free) loss of the validation streams."""
    text = make_corpus(900, seed=8)
    cfg = TrainConfig(model="lstm", hidden_size=8, seq_len=8, batch_size=2, val_frac=0.2,
                      dtype="float64", dropout=0.5, seed=3)
    tr = Trainer(cfg, corpus_of(text), str(tmp_path))
    for _ in range(3):
        tr.train_step()
    n = len(tr.val_ids) - 1
    B = max(1, min(cfg.batch_size, n // cfg.seq_len))
    L = n // B
    rows = [list(tr.val_ids[b * L: (b + 1) * L + 1]) for b in range(B)]
    want = reference_stream_loss(tr.model.params, tr.mcfg, rows)
    assert tr.validate() == pytest.approx(want, rel=1e-9)


# ----------------------------------------------------------------- clipping
@pytest.mark.parametrize("model", ["lstm", "gru"])
def test_gated_defaults_clip_the_global_norm_in_the_trainer(tmp_path, model):
    """lstm/gru default to --clip-mode norm: the update gets g * c / |g| (one
    scale for all parameters, direction kept), never entry-wise clipping."""
    text = make_corpus(800, seed=9)
    cfg = make_train_config(model=model, hidden_size=8, num_layers=2, seq_len=8, batch_size=2,
                            dropout=0.0, dtype="float64", val_frac=0.0, clip=0.05)
    assert cfg.clip_mode == "norm"
    tr = Trainer(cfg, corpus_of(text), str(tmp_path))
    seen = capture_updates(tr)
    for _ in range(3):
        x, y = tr.streams.chunk(tr.chunk)
        _, raw, _ = tr.model.loss_and_grads(x, y, tr.hidden, None)
        norm = math.sqrt(sum(float(np.vdot(g, g)) for g in raw.values()))
        assert norm > 0.05 * 2                     # so clipping has work to do
        tr.train_step()
        got = seen[-1]
        got_norm = math.sqrt(sum(float(np.vdot(g, g)) for g in got.values()))
        assert got_norm == pytest.approx(0.05, rel=1e-9)
        for name, g in raw.items():
            np.testing.assert_allclose(got[name], g * (0.05 / norm), rtol=1e-9, atol=1e-15)


def test_rnn_default_clips_each_entry_in_the_trainer(tmp_path):
    text = make_corpus(800, seed=9)
    cfg = make_train_config(model="rnn", hidden_size=8, seq_len=8, batch_size=2,
                            dtype="float64", val_frac=0.0, clip=0.01)
    assert cfg.clip_mode == "value"
    tr = Trainer(cfg, corpus_of(text), str(tmp_path))
    seen = capture_updates(tr)
    for _ in range(2):
        x, y = tr.streams.chunk(tr.chunk)
        _, raw, _ = tr.model.loss_and_grads(x, y, tr.hidden, None)
        assert max(float(np.abs(g).max()) for g in raw.values()) > 0.01
        tr.train_step()
        for name, g in raw.items():
            np.testing.assert_allclose(seen[-1][name], np.clip(g, -0.01, 0.01), rtol=1e-12)


def test_clip_zero_leaves_the_gradient_alone(tmp_path):
    text = make_corpus(800, seed=9)
    cfg = make_train_config(model="gru", hidden_size=8, seq_len=8, batch_size=2, dropout=0.0,
                            dtype="float64", val_frac=0.0, clip=0.0)
    tr = Trainer(cfg, corpus_of(text), str(tmp_path))
    seen = capture_updates(tr)
    x, y = tr.streams.chunk(0)
    _, raw, _ = tr.model.loss_and_grads(x, y, tr.hidden, None)
    tr.train_step()
    for name, g in raw.items():
        np.testing.assert_array_equal(seen[-1][name], g)


# ------------------------------------------------------------- initialisation
@pytest.mark.parametrize("layers", [1, 3])
def test_a_new_lstm_run_starts_with_forget_gate_bias_one(tmp_path, layers):
    """Gate order [i f o g]: the f quarter of every layer's bias is 1, the rest 0
    (the usual remedy for early forgetting; Jozefowicz et al. 2015)."""
    text = make_corpus(800, seed=1)
    cfg = make_train_config(model="lstm", hidden_size=6, num_layers=layers, seq_len=8,
                            batch_size=2, val_frac=0.0, max_iters=0)
    tr = Trainer(cfg, corpus_of(text), str(tmp_path))
    H = 6
    want = np.r_[np.zeros(H), np.ones(H), np.zeros(2 * H)]
    for k in range(layers):
        np.testing.assert_array_equal(tr.model.params[f"l{k}.b"], want)


def test_gru_and_rnn_biases_start_at_zero(tmp_path):
    text = make_corpus(800, seed=1)
    for model in ("gru", "rnn"):
        cfg = make_train_config(model=model, hidden_size=6, seq_len=8, batch_size=2,
                                val_frac=0.0)
        tr = Trainer(cfg, corpus_of(text), str(tmp_path))
        assert not any(tr.model.params[n].any() for n in tr.model.params if n.endswith(".b"))


# ---------------------------------------------------------- validation split
def test_the_validation_text_is_the_last_share_of_the_text(tmp_path):
    text = make_corpus(2000, seed=5)
    for frac in (0.1, 0.25, 0.037):
        cfg = TrainConfig(hidden_size=4, seq_len=8, batch_size=2, val_frac=frac)
        tr = Trainer(cfg, corpus_of(text), str(tmp_path))
        n_val = round(len(text) * frac)
        assert data.decode_ids(tr.val_ids, tr.corpus.vocab) == text[len(text) - n_val:]
        # training streams read only the text before it
        used = tr.streams.B * tr.streams.L + 1
        assert used <= len(text) - n_val
        stream0 = data.decode_ids(tr.streams.x[0], tr.corpus.vocab)
        assert stream0 == text[:tr.streams.L]


def test_split_by_hand():
    ids = np.arange(20)
    train, val = data.split(ids, 0.25)
    assert val.tolist() == list(range(15, 20)) and train.tolist() == list(range(15))
    train, val = data.split(ids, 0.0)
    assert val.tolist() == [] and len(train) == 20


# ------------------------------------------------------------------- resume
def _run_to(tmp_path, iters, **kw):
    text = make_corpus(1500, seed=3)
    cfg = TrainConfig(model="rnn", hidden_size=12, seq_len=8, batch_size=4, lr=0.02,
                      eval_every=10, val_frac=0.1, seed=5, max_iters=iters, **kw)
    tr = Trainer(cfg, corpus_of(text), str(tmp_path))
    tr.run(progress=False)
    return text


def test_resume_restores_the_best_validation_loss_so_far(tmp_path):
    text = _run_to(tmp_path, 30)
    ck = ckpt.load(str(tmp_path / "latest.npz"))
    best = min(ck.history["val_loss"])
    assert ckpt.load(str(tmp_path / "best.npz")).history["val_loss"][-1] == best
    tr = resume_trainer(ck, corpus_of(text), {"max_iters": 50}, {"max_iters"},
                             str(tmp_path))
    assert tr.best_val == best


def test_a_worse_evaluation_after_resume_keeps_the_earlier_best(tmp_path):
    """best.npz is only replaced by a lower validation loss than any seen,
    also across --resume: feed the resumed run evaluations that are worse than
    the best before the stop, and best.npz must stay byte for byte."""
    text = _run_to(tmp_path, 30)
    ck = ckpt.load(str(tmp_path / "latest.npz"))
    best = min(ck.history["val_loss"])
    old_best = (tmp_path / "best.npz").read_bytes()
    tr = resume_trainer(ck, corpus_of(text), {"max_iters": 50}, {"max_iters"},
                             str(tmp_path))
    tr.validate = lambda: best + 0.25
    res = tr.run(progress=False)
    assert res.best_val == best
    assert (tmp_path / "best.npz").read_bytes() == old_best
    assert ckpt.load(str(tmp_path / "latest.npz")).history["val_loss"][-1] == best + 0.25


# ------------------------------------------------------------ weight average
def test_the_weight_average_is_saved_evaluated_and_the_trained_weights_kept(tmp_path):
    """--weight-average D: the checkpoint's weights are the exponential average
    of the weights after each step, a_t = d_t a + (1 - d_t) w_t from the
    initial weights with d_t = min(D, (1 + t) / (10 + t)); the trained
    weights are kept under state/w.* and validation scores the average."""
    from charrnn.nn.model import Model
    from charrnn.runs import validation
    cfg = TrainConfig(model="gru", hidden_size=6, seq_len=8, batch_size=3, max_iters=25,
                      eval_every=0, weight_average=0.8, optimizer="adam", lr=0.02,
                      clip_mode="norm", dtype="float64")
    tr = Trainer(cfg, corpus_of(make_corpus(3000, seed=2)), str(tmp_path))
    avg = {k: v.copy() for k, v in tr.model.params.items()}
    real, t = tr.opt.update, [0]

    def update(params, grads, lr, *args):
        real(params, grads, lr, *args)
        d = min(0.8, (1 + t[0]) / (10 + t[0]))
        for k in avg:
            avg[k] = d * avg[k] + (1 - d) * params[k]
        t[0] += 1
    tr.opt.update = update
    tr.run(progress=False)
    ck = ckpt.load(str(tmp_path / ckpt.LATEST))
    assert t[0] == 25
    for k in avg:
        np.testing.assert_allclose(ck.params[k], avg[k], rtol=1e-12, atol=1e-15, err_msg=k)
        np.testing.assert_array_equal(ck.state["w." + k], tr.model.params[k])
        assert not np.allclose(ck.params[k], tr.model.params[k])           # not the same
    shape = tr.spec.eval_shape
    want = validation.score(Model(tr.mcfg, avg), tr.val_ids, tr.val_plan, shape)
    raw = validation.score(tr.model, tr.val_ids, tr.val_plan, shape)
    assert ck.history["val_loss"][-1] == pytest.approx(want, rel=1e-12)
    assert abs(want - raw) > 1e-6


def test_a_checkpoint_without_the_trained_weights_cannot_resume_an_averaged_run(tmp_path):
    cfg = TrainConfig(hidden_size=6, seq_len=8, batch_size=3, max_iters=6, eval_every=0,
                      weight_average=0.9)
    text = corpus_of(make_corpus(2000, seed=3))
    Trainer(cfg, text, str(tmp_path)).run(progress=False)
    ck = ckpt.load(str(tmp_path / ckpt.LATEST))
    ck.state = {k: v for k, v in ck.state.items() if not k.startswith("w.")}
    with pytest.raises(CharRNNError, match="lacks the trained weights"):
        Trainer(cfg, text, str(tmp_path), resume_from=ck)


def test_shift_epochs_feeds_each_epoch_from_its_own_offset(tmp_path):
    """--shift-epochs: the first chunk of epoch 1 starts frac(0.618...) x
    (slack + 1) columns into every stream, slack = L - chunks x T."""
    cfg = TrainConfig(hidden_size=4, seq_len=7, batch_size=3, val_frac=0.1, eval_every=0,
                      shift_epochs=True)
    text = make_corpus(700, seed=4)
    tr = Trainer(cfg, corpus_of(text), str(tmp_path))
    fed, real = [], tr.model.loss_and_grads

    def spy(x, y, *a, **kw):
        fed.append(np.array(x))
        return real(x, y, *a, **kw)
    tr.model.loss_and_grads = spy
    n = tr.streams.chunks_per_epoch
    L = tr.streams.L
    assert n == (L - 7 + 1) // 7
    for _ in range(n + 1):
        tr.train_step()
    slack = L - n * 7
    offset = int((1 * 0.6180339887498949) % 1.0 * (slack + 1))
    assert offset > 0
    ids = tr.streams.x
    np.testing.assert_array_equal(fed[0], ids[:, :7])                      # epoch 0 at 0
    np.testing.assert_array_equal(fed[n], ids[:, offset:offset + 7])       # epoch 1 shifted
    assert tr.epoch == 1
