"""The Trainer's set-up and bookkeeping without its loop: the refusals of a
split too short to validate, the optimizer it is given, the text its health
figures are measured on, loading weights, and the counters of a step."""
import numpy as np
import pytest

from charrnn.errors import CharRNNError, DataError
from charrnn.runs.trainer import Trainer

from helpers import config, corpus, TEXT


def test_a_split_of_fewer_than_two_characters_is_refused(tmp_path):
    assert len(TEXT) == 1563
    with pytest.raises(DataError) as e:
        Trainer(config("rnn", val_frac=0.0009), corpus(), str(tmp_path))     # 1 character
    assert str(e.value) == ("the validation split is empty: 1563 characters x --val-frac 0.0009; "
                            "use more text or --val-frac 0")
    tr = Trainer(config("rnn", val_frac=0.0013), corpus(), str(tmp_path))    # 2 characters
    assert len(tr.val_ids) == 2
    assert tr._health_ids is tr.val_ids


def test_without_validation_the_health_figures_read_the_first_stream(tmp_path):
    tr = Trainer(config("rnn", val_frac=0.0), corpus(), str(tmp_path))
    assert len(tr.val_ids) == 0
    assert np.array_equal(tr._health_ids, tr.streams.x[0])
    with pytest.raises(CharRNNError) as e:
        Trainer(config("rnn", val_frac=0.0, patience=3), corpus(), str(tmp_path))
    assert str(e.value) == "--patience needs validation text to watch; set --val-frac above 0"


def test_adam_gets_the_runs_second_moment_decay(tmp_path):
    tr = Trainer(config("lstm-dropout", adam_beta2=0.95), corpus(), str(tmp_path))
    assert tr.opt.b2 == 0.95


def test_a_new_trainer_starts_at_zero(tmp_path):
    tr = Trainer(config("rnn"), corpus(), str(tmp_path))
    assert (tr.iteration, tr.chunk, tr.epoch, tr.chars_seen, tr.wall_time) == (0, 0, 0, 0, 0.0)
    assert tr.to_checkpoint().state["wall_time"] == 0.0


def test_the_counters_of_two_epochs_of_steps(tmp_path):
    tr = Trainer(config("rnn"), corpus(), str(tmp_path))
    per_epoch = tr.streams.chunks_per_epoch
    assert per_epoch == 43
    for _ in range(2 * per_epoch + 1):
        tr.train_step()
    assert (tr.iteration, tr.epoch, tr.chunk, tr.chars_seen) == (87, 2, 1, 87 * 4 * 8)


def test_weights_that_do_not_fit_are_refused(tmp_path):
    tr = Trainer(config("rnn"), corpus(), str(tmp_path))
    params = {k: v.copy() for k, v in tr.model.params.items()}
    wrong_shape = {**params, "out.b": np.zeros(3, np.float32)}
    missing = {k: v for k, v in params.items() if k != "out.b"}
    for bad in (wrong_shape, missing):
        with pytest.raises(CharRNNError) as e:
            tr.load_weights(bad)
        assert str(e.value) == "the checkpoint's weights do not fit this model"


def test_loaded_weights_are_the_models_own_in_its_dtype(tmp_path):
    tr = Trainer(config("rnn"), corpus(), str(tmp_path))
    given = {k: v.copy() for k, v in tr.model.params.items()}
    tr.load_weights(given)
    given["out.b"] += 1.0
    assert not np.array_equal(tr.model.params["out.b"], given["out.b"])
    tr.load_weights({k: v.astype(np.float64) for k, v in given.items()})
    assert {v.dtype for v in tr.model.params.values()} == {np.dtype(np.float32)}
    assert np.array_equal(tr.model.params["out.b"], given["out.b"])


def test_a_save_of_weights_that_are_not_finite_names_the_iteration(tmp_path):
    tr = Trainer(config("rnn"), corpus(), str(tmp_path))
    for _ in range(3):
        tr.train_step()
    tr.model.params["out.b"][0] = np.inf
    with pytest.raises(CharRNNError, match=r"^training diverged by iteration 3 \(weight out.b "):
        tr.save("latest.npz")
    assert not (tmp_path / "latest.npz").exists()


def test_a_model_without_dropout_draws_nothing_from_the_runs_generator(tmp_path):
    tr = Trainer(config("rnn"), corpus(), str(tmp_path))
    before = tr.rng.bit_generator.state
    tr.train_step()
    assert tr.rng.bit_generator.state == before


def stalled_trainer(tmp_path, **kw):
    """Two evaluations: the best (2.0) at 5 s and 320 characters, a worse one after."""
    from charrnn.runs import snapshot
    tr = Trainer(config("rnn", max_time=100.0, stall_stop=0.25, **kw), corpus(), str(tmp_path))
    for it, chars, wall, val in ((10, 320, 5.0, 2.0), (20, 640, 10.0, 2.5)):
        snapshot.add_row(tr.history, tr.mcfg, iter=it, chars=chars, wall_time=wall,
                         train_loss=2.2, val_loss=val, lr=0.02)
    tr.chars_seen = 640
    return tr


def test_stall_stop_by_time_fires_at_its_share_of_max_time(tmp_path):
    tr = stalled_trainer(tmp_path)
    tr.wall_time = 29.9                 # 24.9 s since the best: not yet
    assert tr._stalled(29.9) == ""
    tr.wall_time = 30.0                 # 25 s: a quarter of --max-time 100
    assert tr._stalled(30.0) == (
        "no better validation loss for 25s (25% of --max-time, --stall-stop) since its best, "
        "2.0000 at 5s; best.npz keeps it; 1m10s of the budget left unused")
    tr.wall_time = 120.0                # evaluated past the limit: nothing left, not less
    assert tr._stalled(120.0).endswith("; best.npz keeps it; 0s of the budget left unused")


def test_stall_stop_by_passes_over_the_text(tmp_path):
    tr = stalled_trainer(tmp_path)
    per_pass = tr.streams.chunks_per_epoch * 4 * 8
    assert per_pass == 1376
    tr.wall_time, tr.chars_seen = 10.0, 320 + 5 * per_pass - 1
    assert tr._stalled(10.0) == ""
    tr.chars_seen += 1                  # 5 passes since the best
    assert tr._stalled(10.0) == (
        "no better validation loss in 5 passes over the text (it is learning the text by heart) "
        "since its best, 2.0000 at 5s; best.npz keeps it; 1m30s of the budget left unused")


def test_stall_stop_needs_both_the_flag_and_max_time(tmp_path):
    tr = stalled_trainer(tmp_path, )
    tr.wall_time, tr.chars_seen = 90.0, 10 ** 6
    assert tr._stalled(90.0).startswith("no better validation loss for 1m25s")
    tr.cfg = type(tr.cfg)(**{**vars(tr.cfg), "stall_stop": 0.0})
    assert tr._stalled(90.0) == ""


def test_time_is_up_at_max_iters_and_max_time_exactly(tmp_path):
    tr = Trainer(config("rnn", max_iters=5, max_time=60.0), corpus(), str(tmp_path))
    tr.iteration = 4
    assert not tr._time_is_up(10.0, 59.9)
    assert tr.wall_time == pytest.approx(69.9)  # the run's wall time: earlier sessions + this one
    assert tr._time_is_up(0.0, 60.0)
    tr.iteration = 5
    assert tr._time_is_up(0.0, 1.0)


def test_time_is_up_at_the_plans_deadline_unless_its_steps_are_done(tmp_path):
    from charrnn.runs.schedule import Plan
    tr = Trainer(config("rnn", max_iters=20), corpus(), str(tmp_path))
    tr.plan = Plan(kind="budget", hold=0, total=10, deadline=50.0)
    tr.iteration = 9
    assert not tr._time_is_up(40.0, 9.9)
    assert tr._time_is_up(40.0, 10.0)
    tr.iteration = 10       # the plan's steps done; --max-iters 20 goes on at the final rate
    assert not tr._time_is_up(40.0, 30.0)


@pytest.mark.parametrize("seconds, shown", [
    (0, "0s"), (59.4, "59s"), (59.6, "1m00s"), (60, "1m00s"), (61, "1m01s"), (3599, "59m59s"),
    (3600, "1h00m"), (3661, "1h01m"), (3720, "1h02m"), (7325, "2h02m"), (90061, "25h01m")])
def test_the_clock_in_messages(seconds, shown):
    from charrnn.runs.trainer import _clock
    assert _clock(seconds) == shown


def test_the_training_speed_since_the_last_restart(monkeypatch):
    from charrnn.runs import trainer
    now = [100.0]
    monkeypatch.setattr(trainer.time, "perf_counter", lambda: now[0])
    speed = trainer._Speed(1000)
    now[0] = 100.5
    assert speed.since_last(2000) == 2000.0         # 1000 characters in half a second
    speed.restart(2000)
    assert speed.since_last(2001) == pytest.approx(1e9)  # no time at all: no division by zero


def test_a_sample_during_training_is_seeded_by_the_seed_and_the_iteration(tmp_path):
    from charrnn.generate.sample import generate
    tr = Trainer(config("rnn", sample_len=40), corpus(), str(tmp_path))
    first = tr.sample_text()
    assert first == tr.sample_text()                # the run's own generator is not used
    assert first == generate(tr.evaluated(), tr.corpus.vocab, 40,
                             rng=np.random.default_rng([tr.cfg.seed, 0]))
    tr.iteration = 1
    assert tr.sample_text() != first


def test_an_evaluation_records_the_mean_training_loss_and_reports_itself(tmp_path):
    import warnings
    tr = Trainer(config("rnn"), corpus(), str(tmp_path))
    seen = []
    with warnings.catch_warnings():
        warnings.simplefilter("error")              # no "mean of empty slice" before a step
        val = tr._checkpoint([], lambda event, info: seen.append((event, info)), 123.0)
    assert np.isnan(tr.history["train_loss"][-1])
    tr.train_step()
    tr._checkpoint([1.0, 2.0], None, 0.0)
    assert tr.history["train_loss"][-1] == 1.5
    assert seen == [("eval", {"iteration": 0, "train_loss": seen[0][1]["train_loss"],
                              "val_loss": val, "best_val": val, "chars_per_s": 123.0})]


def test_an_equal_validation_loss_is_not_a_new_best(tmp_path):
    from charrnn.store import checkpoint as ckpt
    tr = Trainer(config("rnn"), corpus(), str(tmp_path))
    tr.train_step()
    first = tr._checkpoint([1.0], None, 0.0)
    tr.iteration += 1                               # the same weights, so the same loss
    assert tr._checkpoint([1.0], None, 0.0) == first
    assert ckpt.load(str(tmp_path / "best.npz")).state["iteration"] == 1
    assert ckpt.load(str(tmp_path / "latest.npz")).state["iteration"] == 2


def test_a_two_character_split_is_checked_at_an_evaluation(tmp_path):
    tr = Trainer(config("rnn", val_frac=0.0013), corpus(), str(tmp_path))
    tr.model.params["out.b"][:] = np.nan
    with pytest.raises(CharRNNError, match="validation loss is nan"):
        tr._checkpoint([], None, 0.0)


def test_a_new_plan_is_reported(tmp_path):
    from charrnn.runs.schedule import Plan
    tr = Trainer(config("rnn"), corpus(), str(tmp_path))
    tr.iteration = 7
    seen = []
    plan = Plan(kind="budget", total=90, basis="from the speed", floor=0.05, replans=2)
    tr._adopt(plan, lambda event, info: seen.append((event, info)))
    tr._adopt(None, lambda event, info: seen.append((event, info)))
    assert tr.plan is plan
    assert seen == [("plan", {"iteration": 7, "total": 90, "basis": "from the speed",
                              "floor": 0.05, "replans": 2})]
