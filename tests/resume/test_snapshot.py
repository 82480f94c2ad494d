"""runs/snapshot.py on a Trainer in memory: what a checkpoint records (the
data section, the empty best, the history as float64) and what --resume
reads back (edges of the best and the divergence yardsticks, refusals by
their whole message, and a checkpoint left untouched by the training that
continues it)."""
import copy
import math

import numpy as np
import pytest

from charrnn.errors import CharRNNError
from charrnn.runs import snapshot
from charrnn.runs.trainer import Trainer
from charrnn.store import checkpoint as ckpt

from conftest import make_corpus
from helpers import config, corpus, TEXT

HEALTH = ("grad_norm", "clip_share", "update_ratio", "saturation", "memory",
          "update_ratio/l0", "update_ratio/out", "saturation/l0")


def trained(tmp_path, name="rnn", text=TEXT, steps=3):
    tr = Trainer(config(name), corpus(text), str(tmp_path))
    for _ in range(steps):
        tr.train_step()
    return tr


def test_the_data_section_of_a_whole_split(tmp_path):
    tr = trained(tmp_path)
    assert len(TEXT) == 1563
    data = tr.to_checkpoint().config["data"]
    # 1563 characters: 156 held out; 1407 train as 4 streams of 351 inputs (+1 target)
    assert (data["chars"], data["train_chars"], data["val_chars"]) == (1563, 4 * 351 + 1, 156)
    # 155 targets in 4 streams of 38
    assert data["val_eval"] == {"method": "whole", "chars_scored": 152}


def test_the_data_section_of_a_sampled_split_leaves_out_the_starts(tmp_path):
    tr = trained(tmp_path, text=make_corpus(20000, seed=3), steps=0)
    assert tr.val_plan["starts"][0] == 0
    assert tr.to_checkpoint().config["data"]["val_eval"] == {
        "method": "sampled", "windows": 4, "spacing": "even", "window_chars": 52 * 8,
        "warmup_chars": 4 * 8, "chars_scored": 4 * 52 * 8}


def test_before_an_evaluation_the_best_is_stored_as_minus_one_and_read_as_none(tmp_path):
    tr = trained(tmp_path)
    ck = tr.to_checkpoint()
    assert ck.state["best_val"] == -1.0
    assert snapshot.read(ck, tr.mcfg).best_val == math.inf


@pytest.mark.parametrize("best", [0.0, 0.5, 2.25])
def test_a_best_of_zero_or_more_is_read_as_it_is(tmp_path, best):
    tr = trained(tmp_path)
    ck = tr.to_checkpoint()
    ck.state["best_val"] = best
    assert snapshot.read(ck, tr.mcfg).best_val == best


def test_a_checkpoint_without_the_smoothed_loss_starts_it_at_the_first(tmp_path):
    tr = trained(tmp_path)
    ck = tr.to_checkpoint()
    assert ck.state["smooth_loss"] != ck.state["start_loss"]
    del ck.state["smooth_loss"]
    st = snapshot.read(ck, tr.mcfg)
    assert st.smooth_loss == st.start_loss == ck.state["start_loss"]


def test_a_row_without_health_figures_gets_nan_and_the_history_is_float64(tmp_path):
    tr = trained(tmp_path)
    snapshot.add_row(tr.history, tr.mcfg, iter=3, chars=96, wall_time=0.5, train_loss=1.5,
                     val_loss=2.0, lr=0.1, memory=4)
    hist = tr.to_checkpoint().history
    assert set(hist) == set(ckpt.HISTORY_KEYS) | set(HEALTH)
    assert all(v.dtype == np.float64 for v in hist.values())
    assert [hist[k][0] for k in ckpt.HISTORY_KEYS] == [3.0, 96.0, 0.5, 1.5, 2.0, 0.1]
    assert hist["memory"][0] == 4.0
    assert all(math.isnan(hist[k][0]) for k in HEALTH if k != "memory")


def test_a_data_position_at_the_end_of_the_epoch_is_refused(tmp_path):
    tr = trained(tmp_path)
    ck = tr.to_checkpoint()
    ck.path, ck.state["chunk"] = "run/latest.npz", 43
    with pytest.raises(CharRNNError) as e:
        Trainer(tr.spec, tr.corpus, str(tmp_path), resume_from=ck)
    assert str(e.value) == ("run/latest.npz: data position (chunk 43) is beyond the text's "
                            "43 chunks per epoch")
    ck.state["chunk"] = 42
    assert Trainer(tr.spec, tr.corpus, str(tmp_path), resume_from=ck).chunk == 42


def test_optimizer_state_that_does_not_fit_is_refused(tmp_path):
    tr = trained(tmp_path)
    ck = tr.to_checkpoint()
    ck.path, ck.optim = "run/latest.npz", {"mem.l0.Wx": ck.optim["mem.l0.Wx"]}
    with pytest.raises(CharRNNError) as e:
        Trainer(tr.spec, tr.corpus, str(tmp_path), resume_from=ck)
    assert str(e.value) == "run/latest.npz: its optimizer state does not fit --optimizer adagrad"


@pytest.mark.parametrize("name", ["lstm-dropout", "gru-regularised"])
def test_training_on_from_a_checkpoint_leaves_it_untouched(tmp_path, name):
    """Weights, weight average, optimizer state and hidden states are the
    resumed run's own: its steps change none of the checkpoint's arrays."""
    tr = trained(tmp_path, name)
    ck = tr.to_checkpoint()
    kept = copy.deepcopy(ck)
    on = Trainer(tr.spec, tr.corpus, str(tmp_path), resume_from=ck)
    for _ in range(2):
        on.train_step()
    for section in ("params", "optim", "state"):
        for k, v in getattr(kept, section).items():
            if isinstance(v, np.ndarray):
                assert np.array_equal(getattr(ck, section)[k], v), (section, k)
    assert not np.array_equal(on.model.params["out.W"], ck.params["out.W"] if on.avg is None
                              else ck.state["w.out.W"])     # it did train


def test_weights_of_another_float_width_are_cast_to_the_runs(tmp_path):
    """A checkpoint's arrays need only be floats (store/checkpoint.py checks
    the kind): the trained weights and their average come back as the
    run's dtype, float32 here."""
    tr = trained(tmp_path, "gru-regularised")
    ck = tr.to_checkpoint()
    ck.params = {k: v.astype(np.float64) for k, v in ck.params.items()}
    ck.state = {k: v.astype(np.float64) if k.startswith("w.") else v for k, v in ck.state.items()}
    on = Trainer(tr.spec, tr.corpus, str(tmp_path), resume_from=ck)
    assert {v.dtype for v in on.model.params.values()} == {np.dtype(np.float32)}
    assert {v.dtype for v in on.avg.values()} == {np.dtype(np.float32)}
