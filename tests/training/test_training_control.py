"""Per-model defaults, the learning-rate schedule, --patience and the
divergence guard: what decides how a run learns and when it stops."""
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from charrnn.store import checkpoint
from charrnn.runs import config
from charrnn.runs.config import TrainConfig, make_train_config, model_defaults
from charrnn.runs.schedule import lr_at
from charrnn.errors import CharRNNError
from charrnn.nn.model import Model, ModelConfig, init_params, zero_state
from charrnn.runs.guard import evals_since_best
from charrnn.runs.trainer import Trainer

from helpers import config as config_of, continued, corpus

TEXT = "abcdefghij the end.\n" * 200


def _snapshot(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


# ------------------------------------------------------------ defaults
def test_rnn_defaults_are_the_classic_ones():
    d = model_defaults("rnn")
    assert d == {k: getattr(TrainConfig, k) for k in config.PER_MODEL}
    assert (d["optimizer"], d["clip_mode"], d["clip"]) == ("adagrad", "value", 5.0)


@pytest.mark.parametrize("model", ["lstm", "gru"])
def test_gated_defaults_use_adam_and_norm_clipping(model):
    d = model_defaults(model)
    assert d["optimizer"] == "adam" and d["clip_mode"] == "norm"
    cfg = make_train_config(model=model)
    assert all(getattr(cfg, k) == v for k, v in d.items())


def test_explicit_options_win_and_none_means_model_default():
    cfg = make_train_config(model="lstm", lr=0.01, hidden_size=None, optimizer="rmsprop",
                            clip_mode=None, seed=5)
    assert (cfg.lr, cfg.optimizer, cfg.seed) == (0.01, "rmsprop", 5)
    assert cfg.hidden_size == model_defaults("lstm")["hidden_size"]
    assert cfg.clip_mode == "norm"
    assert make_train_config().model == "rnn"
    assert make_train_config(model=None, lr=None).lr == TrainConfig.lr
    with pytest.raises(ValueError, match="unknown model"):
        make_train_config(model="transformer")


def test_describe_default_names_each_models_value():
    text = config.describe_default("optimizer")
    for m in config.MODELS:
        assert f"{model_defaults(m)['optimizer']} for" in text and m in text
    assert config.describe_default("clip") == f"{model_defaults('rnn')['clip']:g}"


def test_config_and_cli_import_without_numpy():
    code = ("import sys, charrnn.runs.config, charrnn.cli; "
            "sys.exit(1 if 'numpy' in sys.modules else 0)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


# ------------------------------------------------------------ schedule
def test_lr_schedule_warmup_then_step_decay():
    cfg = TrainConfig(lr=0.1, warmup=4, lr_decay=0.5, lr_decay_every=3)
    got = [lr_at(cfg, i) for i in range(8)]
    # warm-up 1/4..4/4 of 0.1, times 0.5 ** (i // 3)
    expect = [0.025, 0.05, 0.075, 0.1 * 0.5, 0.1 * 0.5, 0.1 * 0.5, 0.1 * 0.25, 0.1 * 0.25]
    assert got == pytest.approx(expect, rel=1e-12)
    assert [lr_at(TrainConfig(lr=0.1), i) for i in (0, 10, 10 ** 6)] == [0.1, 0.1, 0.1]


def test_trainer_steps_with_the_scheduled_rate(tmp_path):
    """Adagrad's first update is lr * g / |g| = +-lr: the step size shows the rate used."""
    cfg = TrainConfig(hidden_size=8, seq_len=10, batch_size=4, dtype="float64", lr=0.1,
                      warmup=4, eval_every=2, max_iters=8, lr_decay=0.5, lr_decay_every=3)
    tr = Trainer(cfg, corpus(TEXT), str(tmp_path))
    before = tr.model.params["out.b"].copy()
    tr.train_step()
    moved = np.abs(tr.model.params["out.b"] - before)
    np.testing.assert_allclose(moved, 0.025, rtol=1e-6)      # warm-up step 1 of 4
    tr.run(progress=False)
    assert tr.history["iter"] == [2, 4, 6, 8]
    assert tr.history["lr"] == pytest.approx([lr_at(cfg, i - 1) for i in (2, 4, 6, 8)])
    ck = checkpoint.load(str(tmp_path / "latest.npz"))
    assert ck.config["train"]["lr_decay"] == 0.5 and ck.config["train"]["warmup"] == 4


# ------------------------------------------------------------ patience
@pytest.mark.parametrize("vals,since", [([], 0), ([3.0], 0), ([3.0, 2.0, 2.5], 1),
                                        ([3.0, 2.0, 2.0, 2.5], 2), ([2.0, 1.0, 0.5], 0),
                                        ([float("nan"), float("nan")], 2)])
def test_evals_since_best(vals, since):
    assert evals_since_best(vals) == since


def test_patience_stops_and_best_keeps_the_best(tmp_path):
    cfg = TrainConfig(hidden_size=8, seq_len=10, batch_size=4, eval_every=5, max_iters=100,
                      patience=2)
    tr = Trainer(cfg, corpus(TEXT), str(tmp_path))
    scripted = iter([3.0, 2.0, 2.5, 2.4, 1.0, 0.5])
    tr.validate = lambda: next(scripted)
    res = tr.run(progress=False)
    assert res.stopped_early
    assert res.iterations == 20                         # 4 evaluations, the last 2 no better
    assert tr.history["val_loss"] == [3.0, 2.0, 2.5, 2.4]
    best = checkpoint.load(str(tmp_path / "best.npz"))
    assert best.state["iteration"] == 10 and best.state["best_val"] == 2.0
    assert checkpoint.load(str(tmp_path / "latest.npz")).state["iteration"] == 20


def test_no_patience_runs_to_the_end(tmp_path):
    cfg = TrainConfig(hidden_size=8, seq_len=10, batch_size=4, eval_every=5, max_iters=30)
    tr = Trainer(cfg, corpus(TEXT), str(tmp_path))
    scripted = iter([3.0, 3.1, 3.2, 3.3, 3.4, 3.5])
    tr.validate = lambda: next(scripted)
    res = tr.run(progress=False)
    assert not res.stopped_early and res.iterations == 30


def test_patience_needs_validation_text(tmp_path):
    with pytest.raises(CharRNNError, match="--val-frac"):
        Trainer(TrainConfig(hidden_size=8, seq_len=10, batch_size=4, val_frac=0.0, patience=3),
                corpus(TEXT), str(tmp_path))


# ---------------------------------------------------------- divergence
def _trained(tmp_path, then=None, **kw):
    """A run of 20 steps; with ``then``, a Trainer that resumes it up to
    iteration ``then`` (a finished run goes on)."""
    cfg = TrainConfig(hidden_size=8, seq_len=10, batch_size=4, eval_every=10, max_iters=20, **kw)
    tr = Trainer(cfg, corpus(TEXT), str(tmp_path))
    tr.run(progress=False)
    return tr if then is None else continued(tr, max_iters=then)


def test_first_loss_is_the_yardstick_and_is_saved(tmp_path):
    cfg = TrainConfig(hidden_size=8, seq_len=10, batch_size=4, eval_every=10, max_iters=10)
    tr = Trainer(cfg, corpus(TEXT), str(tmp_path))
    first = tr.train_step()
    assert tr.guard.start_loss == first
    assert first == pytest.approx(math.log(len(tr.corpus.vocab)), rel=0.05)   # near uniform
    tr.run(progress=False)
    assert checkpoint.load(str(tmp_path / "latest.npz")).state["start_loss"] == first


def _scaled_losses(tr, factors):
    """Make tr's steps report their real loss times the next factor (the
    gradients stay real), so a test can script what the guard sees."""
    real, it = tr.model.loss_and_grads, iter(factors)

    def scaled(*a, **kw):
        loss, grads, state = real(*a, **kw)
        return loss * next(it), grads, state
    tr.model.loss_and_grads = scaled


def test_a_step_loss_over_ten_times_the_start_aborts_before_updating(tmp_path):
    tr = _trained(tmp_path, then=40)
    files = _snapshot(tmp_path)
    _scaled_losses(tr, [40.0])                 # real loss ~0.8 x 40: over 10x the start
    params = {k: v.copy() for k, v in tr.model.params.items()}
    with pytest.raises(CharRNNError) as e:
        tr.run(progress=False)
    msg = str(e.value)
    assert "diverged at iteration 21: loss" in msg and "over 10x the starting loss" in msg
    assert "lower --lr (now 0.03)" in msg and "best.npz" in msg
    for k, v in params.items():
        np.testing.assert_array_equal(tr.model.params[k], v)      # no update applied
    assert _snapshot(tmp_path) == files                          # checkpoints untouched


def test_a_sustained_loss_over_three_times_the_start_aborts(tmp_path):
    """The smoothed loss (over ~SMOOTH_CHARS characters) crossing 3x stops the run."""
    from charrnn.runs.guard import DIVERGE_FACTOR, SMOOTH_CHARS
    tr = _trained(tmp_path, then=10_000)
    start = tr.guard.start_loss
    chunk, smooth0 = tr.cfg.batch_size * tr.cfg.seq_len, tr.guard.smooth_loss
    # every step now reports 5x the start (but under 10x): the average climbs to 3x
    tr.model.loss_and_grads = (lambda real: lambda *a, **kw: (5 * start, *real(*a, **kw)[1:]))(
        tr.model.loss_and_grads)
    tr.validate = lambda: start / 2                 # validation stays good
    with pytest.raises(CharRNNError, match=r"smoothed loss \d+\.\d+ is over 3x the starting"):
        tr.run(progress=False)
    # it stopped exactly when an exponential average over SMOOTH_CHARS
    # characters first crossed 3x: not at the first 5x step
    a, avg, k = chunk / SMOOTH_CHARS, smooth0, 0
    while avg <= DIVERGE_FACTOR * start:
        avg, k = (1 - a) * avg + a * 5 * start, k + 1
    assert k > 10 and tr.iteration == 20 + k - 1
    assert tr.guard.smooth_loss == pytest.approx(avg)


def test_noisy_single_steps_between_3x_and_10x_do_not_abort(tmp_path):
    """At small batches one chunk's loss can jump past 3x the start and come
    back (the classic batch-1 Adagrad run does in its first steps): the
    guard watches the smoothed loss, so such spikes pass."""
    spikes = [1.0, 1.0, 4.0, 1.0, 4.5, 1.0, 1.0, 5.0] * 5      # x the start (under 10x)
    tr = _trained(tmp_path, then=20 + len(spikes))
    start = tr.guard.start_loss
    real, seen, it = tr.model.loss_and_grads, [], iter(spikes)

    def scripted(*a, **kw):
        loss, grads, state = real(*a, **kw)
        seen.append(next(it) * start)
        return seen[-1], grads, state
    tr.model.loss_and_grads = scripted
    res = tr.run(progress=False)
    assert res.iterations == 20 + len(spikes)
    assert sum(x > 3 * start for x in seen) == 15          # a per-step 3x rule would have stopped


def test_an_early_transient_spike_with_large_chunks_does_not_abort(tmp_path):
    """What a 2x512 LSTM with Adagrad 0.03 at batch 64 x 100 did on tiny
    Shakespeare (bench/throughput.py): its first eight step losses, as
    multiples of the first, rise past 3x at step 5 and fall back.  Even with
    6,400 characters per step that is a spike, not a divergence."""
    seen_ratios = [1.0, 0.92, 1.99, 2.75, 3.10, 2.21, 1.65, 1.40]
    cfg = TrainConfig(hidden_size=8, seq_len=100, batch_size=64, eval_every=1000,
                      max_iters=len(seen_ratios), val_frac=0.0)
    tr = Trainer(cfg, corpus(TEXT * 4), str(tmp_path))
    real, it = tr.model.loss_and_grads, iter(seen_ratios)
    first = []

    def scripted(*a, **kw):
        loss, grads, state = real(*a, **kw)
        first.append(first[0] if first else loss)
        return next(it) * first[0], grads, state
    tr.model.loss_and_grads = scripted
    assert tr.run(progress=False).iterations == len(seen_ratios)
    assert tr.guard.smooth_loss < 3 * tr.guard.start_loss


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_nan_gradient_with_finite_loss_aborts_before_updating(tmp_path):
    tr = _trained(tmp_path)
    files = _snapshot(tmp_path)
    real = tr.model.loss_and_grads

    def poisoned(*a, **kw):
        loss, grads, state = real(*a, **kw)
        grads["l0.Wh"][0, 0] = np.nan
        return loss, grads, state
    tr.model.loss_and_grads = poisoned
    params = {k: v.copy() for k, v in tr.model.params.items()}
    with pytest.raises(CharRNNError, match=r"gradient norm is nan; lower --lr"):
        tr.train_step()
    for k, v in params.items():
        np.testing.assert_array_equal(tr.model.params[k], v)
    assert _snapshot(tmp_path) == files


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), 100.0])
def test_bad_validation_loss_is_never_saved(tmp_path, bad):
    tr = _trained(tmp_path, then=30)
    files = _snapshot(tmp_path)
    tr.validate = lambda: bad
    with pytest.raises(CharRNNError, match=r"diverged at iteration 30: validation loss"):
        tr.run(progress=False)
    assert _snapshot(tmp_path) == files


def test_nan_weights_are_never_saved(tmp_path):
    tr = _trained(tmp_path, val_frac=0.0)           # no validation loss to notice it
    files = _snapshot(tmp_path)
    tr.model.params["out.b"][0] = np.nan
    with pytest.raises(CharRNNError, match="a weight is nan.*kept .*latest.npz"):
        tr._checkpoint([1.0], None, 0.0)
    assert _snapshot(tmp_path) == files


# ------------------------------------- state carried across chunks (all cells)
@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_two_chunks_with_carried_state_equal_one_long_chunk(kind):
    """Truncated BPTT carries h (and the LSTM c) of every layer: the loss of a
    (B, 2T) chunk is the mean of its two halves run back to back."""
    rng = np.random.default_rng(8)
    cfg = ModelConfig(vocab_size=10, model=kind, hidden_size=6, num_layers=3, embed_size=4,
                      dtype="float64")
    m = Model(cfg, {k: rng.normal(0, 0.5, v.shape) for k, v in init_params(cfg, rng).items()})
    x = rng.integers(0, 10, size=(3, 14))
    y = rng.integers(0, 10, size=(3, 14))
    whole, s_whole = m.loss(x, y, zero_state(cfg, 3))
    a, s_mid = m.loss(x[:, :7], y[:, :7], zero_state(cfg, 3))
    b, s_end = m.loss(x[:, 7:], y[:, 7:], s_mid)
    assert whole == pytest.approx((a + b) / 2, rel=1e-12)
    # the training path hands on the same state as the evaluation path
    _, _, s_train = m.loss_and_grads(x[:, :7], y[:, :7], zero_state(cfg, 3))
    for got, want in ((s_end, s_whole), (s_train, s_mid)):
        for (h1, c1), (h2, c2) in zip(got, want):
            np.testing.assert_allclose(h1, h2, atol=1e-12)
            if kind == "lstm":
                np.testing.assert_allclose(c1, c2, atol=1e-12)
            else:
                assert c1 is None and c2 is None
    # and without the carried state the second half scores differently
    b0, _ = m.loss(x[:, 7:], y[:, 7:], zero_state(cfg, 3))
    assert abs(b0 - b) > 1e-9


# ------------------------------------------------- the divergence yardsticks
def test_the_smoothed_loss_weighs_each_step_by_its_characters():
    from charrnn.runs.guard import Guard, SMOOTH_CHARS
    g = Guard()
    g.add(float("nan"), 100)                       # not finite: not a yardstick
    assert (g.start_loss, g.smooth_loss) == (None, None)
    g.add(2.0, 100)
    assert (g.start_loss, g.smooth_loss) == (2.0, 2.0)
    g.add(4.0, SMOOTH_CHARS // 2)                  # half the window: halfway
    assert (g.start_loss, g.smooth_loss) == (2.0, 3.0)
    g.add(10.0, 2 * SMOOTH_CHARS)                  # more than the window: this step alone
    assert g.smooth_loss == 10.0
    g.add(float("inf"), 100)
    assert g.smooth_loss == 10.0


def test_divergence_is_over_its_factor_not_at_it():
    from charrnn.runs.guard import DIVERGE_FACTOR, SPIKE_FACTOR, Guard
    g = Guard(start_loss=2.0, smooth_loss=DIVERGE_FACTOR * 2.0)
    assert g.check_step(SPIKE_FACTOR * 2.0, 1.0) is None
    assert g.check_evaluation(DIVERGE_FACTOR * 2.0, {"w": np.ones(2)}) is None
    assert g.check_step(SPIKE_FACTOR * 2.0 + 0.01, 1.0) == (
        "loss 20.010 is over 10x the starting loss 2.000")
    g.smooth_loss += 0.01
    assert g.check_step(3.0, 1.0) == "smoothed loss 6.010 is over 3x the starting loss 2.000"
    assert g.check_evaluation(6.01, {"w": np.ones(2)}) == (
        "validation loss 6.010 is over 3x the starting loss 2.000")


# ------------------------------------------------------- per-model settings
def test_every_model_setting_reaches_the_model_config():
    cfg = TrainConfig(model="lstm", hidden_size=24, num_layers=2, embed_size=8, dropout=0.2,
                      dtype="float32", dropout_mask="chunk", weight_drop=0.3)
    m = cfg.model_config(40)
    assert (m.vocab_size, m.model, m.hidden_size, m.num_layers, m.embed_size, m.dropout,
            m.dtype, m.dropout_mask, m.weight_drop) == (40, "lstm", 24, 2, 8, 0.2, "float32",
                                                        "chunk", 0.3)
    assert (TrainConfig.dropout_mask, TrainConfig.weight_drop) != ("chunk", 0.3)


def test_per_model_defaults_are_described_and_an_unknown_model_is_named():
    assert config.describe_default("hidden_size") == "128 for rnn, 256 for lstm/gru"
    assert config.describe_default("lr") == "0.03 for rnn, 0.008 for lstm, 0.004 for gru"
    assert config.describe_default("clip") == "5"
    with pytest.raises(ValueError) as e:
        model_defaults("transformer")
    assert str(e.value) == "unknown model 'transformer'; choose one of rnn, lstm, gru"


def test_the_divergence_message_says_what_was_kept_where():
    from charrnn.runs.guard import diverged
    why = "loss is nan"
    head = "training diverged at iteration 7: loss is nan; lower --lr (now 0.05) and try again; "
    assert str(diverged(why, 7, 0.05, "runs/a", 1.23456, 5)) == (
        head + f"kept {os.path.join('runs/a', 'best.npz')} (val 1.2346)")
    assert str(diverged(why, 7, 0.05, "runs/a", math.inf, 5)) == (
        head + f"kept {os.path.join('runs/a', 'latest.npz')} (iteration 5)")
    assert str(diverged(why, 7, 0.05, "runs/a", math.inf, None)) == (
        head + "no checkpoint was saved yet")


def test_a_diverged_run_names_the_rate_of_the_step_it_stopped_at(tmp_path):
    """During warm-up (0.1 over 10 steps) the rate changes every step: a
    step that diverges names its own rate; an evaluation, the last step's."""
    tr = Trainer(config_of("rnn", warmup=10, lr=0.1), corpus(), str(tmp_path))
    with pytest.raises(CharRNNError, match=r"at iteration 0: validation loss is nan; "
                                           r"lower --lr \(now 0\.01\)"):
        tr.model.params["out.b"][:] = np.nan
        tr._checkpoint([], None, 0.0)
    tr = Trainer(config_of("rnn", warmup=10, lr=0.1), corpus(), str(tmp_path))
    for _ in range(3):
        tr.train_step()
    tr.model.params["out.b"][:] = np.nan
    with pytest.raises(CharRNNError, match=r"at iteration 4: loss is nan; lower --lr \(now 0\.04\)"):
        tr.train_step()
    with pytest.raises(CharRNNError, match=r"at iteration 3: validation loss is nan; "
                                           r"lower --lr \(now 0\.03\)"):
        tr._checkpoint([], None, 0.0)


def test_a_diverged_run_names_the_rate_of_its_budget_plan(tmp_path):
    from charrnn.runs.schedule import Plan
    tr = Trainer(config_of("rnn", lr=0.1), corpus(), str(tmp_path))
    tr.plan = Plan(kind="budget", hold=0, total=10, floor=0.1)
    for _ in range(3):
        tr.train_step()
    planned, flat = lr_at(tr.cfg, 3, tr.plan), lr_at(tr.cfg, 3)
    assert f"{planned:g}" != f"{flat:g}"
    tr.model.params["out.b"][:] = np.nan
    with pytest.raises(CharRNNError, match=rf"lower --lr \(now {planned:g}\)"):
        tr.train_step()


@pytest.mark.parametrize("where, name, section", [("params", "Wxh", "weight"),
                                                  ("state", "mem.Wxh", "optimizer state")])
def test_a_weight_or_optimizer_entry_that_is_not_finite_is_named(where, name, section):
    from charrnn.runs.guard import check_finite
    arrays = {"params": {"Wxh": np.ones(3), "step": np.array([2**40], dtype=np.int64)},
              "state": {"mem.Wxh": np.ones(3), "t": np.array([7])}}
    check_finite(arrays["params"], arrays["state"], 9)          # integers are not checked
    arrays[where][name] = np.array([1.0, np.inf, 0.0], dtype=np.float32)
    with pytest.raises(CharRNNError) as e:
        check_finite(arrays["params"], arrays["state"], 9)
    assert str(e.value) == (f"training diverged by iteration 9 ({section} {name} is NaN or "
                            "infinite); lower --lr or --clip. Last good checkpoint kept.")


def test_a_weight_that_is_not_finite_stops_at_the_evaluation():
    from charrnn.runs.guard import Guard
    assert Guard(2.0, 2.0).check_evaluation(None, {"w": np.array([0.0, np.nan])}) == (
        "a weight is nan")


def test_the_best_evaluation_is_the_first_lowest_finite_one():
    from charrnn.runs.guard import best_at
    assert best_at([math.nan, 3.0, 2.0, 2.0, math.inf], [10, 11, 12, 13, 14],
                   "abcde") == (2.0, 12, "c")
    assert best_at([math.nan, math.inf]) is None
    assert best_at([]) is None
