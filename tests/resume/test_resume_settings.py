"""runs/resume.py's settings and text checks on a checkpoint in memory: what
a fine-tuning run (--init-from) takes from the checkpoint's model and what
from the options, and the message for a text that differs from one whose
length was not recorded."""
import pytest

from charrnn.errors import DataError
from charrnn.runs import resume
from charrnn.runs.trainer import Trainer

from helpers import config, corpus, TEXT


def checkpoint(tmp_path, name):
    ck = Trainer(config(name), corpus(), str(tmp_path)).to_checkpoint()
    ck.path = "run/latest.npz"
    return ck


def shape(cfg):
    return (cfg.model, cfg.hidden_size, cfg.num_layers, cfg.embed_size, cfg.dropout, cfg.dtype,
            cfg.dropout_mask, cfg.weight_drop)


def test_a_fine_tuning_run_keeps_the_model_shape_it_was_not_told_about(tmp_path):
    ck = checkpoint(tmp_path, "gru-regularised")
    # hidden_size is in the options (a default filled in) but was not typed
    cfg = resume.init_settings(ck, {"hidden_size": 64, "lr": 0.5}, {"lr"})
    assert shape(cfg) == ("gru", 10, 2, 0, 0.25, "float32", "chunk", 0.3)
    assert cfg.lr == 0.5


def test_a_typed_setting_that_may_change_leaves_the_rest_to_the_checkpoint(tmp_path):
    ck = checkpoint(tmp_path, "gru-regularised")
    cfg = resume.init_settings(ck, {"hidden_size": 10, "dropout": 0.1},
                               {"hidden_size", "dropout"})
    assert shape(cfg) == ("gru", 10, 2, 0, 0.1, "float32", "chunk", 0.3)


def test_a_checkpoint_that_predates_a_model_setting_gives_it_the_default(tmp_path):
    ck = checkpoint(tmp_path, "gru-regularised")
    del ck.config["model"]["embed_size"]
    cfg = resume.init_settings(ck, {}, set())
    assert shape(cfg) == ("gru", 10, 2, 0, 0.25, "float32", "chunk", 0.3)
    ck.config["model"]["embed_size"] = 6
    assert resume.init_settings(ck, {}, set()).embed_size == 6


def test_a_different_text_against_an_unrecorded_length_says_none(tmp_path):
    ck = checkpoint(tmp_path, "rnn")
    del ck.config["data"]["chars"]
    other = corpus(TEXT[::-1])              # the same characters and length, another text
    assert other.vocab == ck.vocab
    with pytest.raises(DataError) as e:
        resume.same_text(ck, other)
    assert str(e.value) == ("the text differs from the one run/latest.npz was trained on "
                            "(1563 vs none characters); resume needs the same text (to train "
                            "on new text, start a new run with --init-from)")
    assert resume.same_text(ck, corpus()).ids.tolist() == corpus().ids.tolist()
