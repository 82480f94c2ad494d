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
    assert tr.wall_time == 69.9                 # the run's wall time: earlier sessions + this one
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
