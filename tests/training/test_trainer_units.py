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
