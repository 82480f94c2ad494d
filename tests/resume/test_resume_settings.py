"""runs/resume.py on checkpoints in memory: the stored settings and their
edges, what a fine-tuning run (--init-from) takes from the checkpoint's
model, decoding and reading as recorded, the text check's messages, what
counts as training state, and the spec of a resumed or fine-tuning run."""
import os

import pytest

from charrnn.errors import CharRNNError, DataError
from charrnn.runs import resume
from charrnn.runs.trainer import Trainer

from helpers import config, corpus, TEXT


def checkpoint(tmp_path, name, steps=0, path="run/latest.npz"):
    tr = Trainer(config(name), corpus(), str(tmp_path))
    for _ in range(steps):
        tr.train_step()
    ck = tr.to_checkpoint()
    ck.path = path
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


def test_the_stored_settings_take_the_model_section_and_todays_defaults(tmp_path):
    ck = checkpoint(tmp_path, "rnn")
    ck.config["train"]["hidden_size"] = 99          # the model section wins
    del ck.config["train"]["warmup"], ck.config["train"]["shift_epochs"]   # settings it predates
    del ck.config["model"]["weight_drop"]
    ck.config["train"]["weight_drop"] = 0.5
    stored = resume.stored_settings(ck)
    assert (stored["hidden_size"], stored["warmup"], stored["shift_epochs"]) == (12, 0, False)
    assert stored["weight_drop"] == 0.5
    del ck.config["train"]
    stored = resume.stored_settings(ck)
    assert (stored["hidden_size"], stored["model"], stored["lr"], stored["seq_len"]) == \
        (12, "rnn", 0.03, 50)


@pytest.mark.parametrize("name, value", [("batch_size", 1), ("seq_len", 1), ("val_frac", 0.0),
                                         ("val_frac", 0.999), ("max_time", None), ("lr", 1)])
def test_stored_settings_at_their_edges_are_taken(tmp_path, name, value):
    ck = checkpoint(tmp_path, "rnn")
    ck.config["train"][name] = value
    assert resume.stored_settings(ck)[name] == value


@pytest.mark.parametrize("name, value", [("batch_size", 0), ("seq_len", 0), ("val_frac", 1.0),
                                         ("val_frac", -0.1), ("lr", "0.1"), ("lr", True),
                                         ("lr", float("inf")), ("optimizer", 3),
                                         ("shift_epochs", "yes"), ("max_iters", 2.5),
                                         ("seed", None)])
def test_a_tampered_stored_setting_is_refused_by_name(tmp_path, name, value):
    from charrnn.errors import CheckpointError
    ck = checkpoint(tmp_path, "rnn")
    ck.config["train"][name] = value
    with pytest.raises(CheckpointError) as e:
        resume.stored_settings(ck)
    out_of_range = name in ("batch_size", "seq_len", "val_frac")     # of the right type
    assert str(e.value) == (f"run/latest.npz: bad training setting {name}={value!r}"
                            + ("" if out_of_range else " in its config"))


def test_a_resumed_run_decodes_as_recorded_unless_told(tmp_path):
    ck = checkpoint(tmp_path, "rnn")
    ck.config["data"].update(encoding="latin-1", errors="replace")
    assert resume.run_decoding(ck) == ("latin-1", "replace")
    assert resume.run_decoding(ck, "utf-16", "strict") == ("utf-16", "strict")
    assert resume.run_decoding(None) == ("utf-8", "strict")
    for damaged in ("latin-1", ["x"], None):
        ck.config["data"] = damaged
        assert resume.run_decoding(ck) == ("utf-8", "strict")
    del ck.config["data"]
    assert resume.run_decoding(ck) == ("utf-8", "strict")


def test_characters_outside_the_vocabulary_are_named_five_at_most(tmp_path):
    ck = checkpoint(tmp_path, "rnn")
    extra = "".join(c for c in "§¶†‡•‰" if c not in ck.vocab)
    assert len(extra) == 6
    with pytest.raises(DataError) as e:
        resume.same_text(ck, corpus(TEXT + extra))
    assert str(e.value) == (
        "the text has 6 character(s) that are not in the vocabulary of run/latest.npz "
        "(e.g. '§', '¶', '†', '‡', '•'); resume needs the text it was trained on "
        "(vocabulary differs)")


def test_a_longer_text_is_refused_with_both_lengths(tmp_path):
    ck = checkpoint(tmp_path, "rnn")
    longer = corpus(TEXT + TEXT[:37])
    assert longer.vocab == ck.vocab
    with pytest.raises(DataError) as e:
        resume.same_text(ck, longer)
    assert str(e.value).startswith("the text differs from the one run/latest.npz was trained on "
                                   "(1600 vs 1563 characters); ")
    del ck.config["data"]["text_sha256"]     # by its length alone
    with pytest.raises(DataError):
        resume.same_text(ck, longer)


def test_a_text_with_fewer_characters_names_both_vocabularies(tmp_path):
    ck = checkpoint(tmp_path, "rnn")
    fewer = "".join(c if c != TEXT[0] else TEXT[1] for c in TEXT)     # one character fewer
    assert len(set(fewer)) == len(ck.vocab) - 1 and len(fewer) == 1563
    with pytest.raises(DataError) as e:
        resume.same_text(ck, corpus(fewer))
    assert f"(vocabulary {len(ck.vocab) - 1} vs {len(ck.vocab)} characters, 1563 vs 1563 " \
        "characters); " in str(e.value)
    ck.config["init_from"] = {"path": "base.npz"}    # a fine-tuned run's own vocabulary
    with pytest.raises(DataError) as e:
        resume.same_text(ck, corpus(fewer))
    assert "(1563 vs 1563 characters); " in str(e.value)


@pytest.mark.parametrize("missing", ["chars", "text_sha256", "data"])
def test_the_same_text_passes_whatever_the_checkpoint_did_not_record(tmp_path, missing):
    ck = checkpoint(tmp_path, "rnn")
    if missing == "data":
        del ck.config["data"]
    else:
        del ck.config["data"][missing]
    assert resume.same_text(ck, corpus()).ids.tolist() == corpus().ids.tolist()


def test_training_state_is_there_without_the_divergence_yardsticks(tmp_path):
    ck = checkpoint(tmp_path, "rnn")
    assert resume.has_training_state(ck)
    for key in ("start_loss", "smooth_loss"):
        ck.state.pop(key, None)
    assert resume.has_training_state(ck)          # exactly the keys it needs
    for key in ("h", "rng", "chunk"):
        partial = dict(ck.state)
        del partial[key]
        assert not resume.has_training_state(resume.Checkpoint(**{**vars(ck), "state": partial}))
    ck.optim = {}
    assert not resume.has_training_state(ck)


def test_a_new_run_reads_as_its_options_say():
    from charrnn.text.sources import Reading
    assert resume.run_reading(None) == Reading("lf", None)
    assert resume.run_reading(None, keep_newlines=True) == Reading("keep", None)
    assert resume.run_reading(None, doc_separator="") == Reading("lf", None)
    assert resume.run_reading(None, False, "<eot>") == Reading("lf", "<eot>")


def test_a_resumed_run_reads_as_recorded_and_refuses_a_contradiction(tmp_path):
    from charrnn.errors import CheckpointError
    from charrnn.text.sources import LEGACY, Reading
    ck = checkpoint(tmp_path, "rnn")
    ck.config["data"]["reading"] = {"newlines": "lf", "doc_separator": "<eot>"}
    recorded = Reading("lf", "<eot>")
    for keep, sep in ((None, None), (False, None), (None, "<eot>"), (None, "")):
        assert resume.run_reading(ck, keep, sep) == recorded
    tail = ("contradicts run/latest.npz, which read its text with newlines lf, separator "
            "'<eot>'; drop it to resume (the text is read as the checkpoint read it)")
    with pytest.raises(CharRNNError) as e:
        resume.run_reading(ck, keep_newlines=True)
    assert str(e.value) == "--keep-newlines " + tail
    with pytest.raises(CharRNNError) as e:
        resume.run_reading(ck, doc_separator="<doc>")
    assert str(e.value) == "--doc-separator '<doc>' " + tail
    ck.config["data"]["reading"] = {"newlines": "keep", "doc_separator": None}
    assert resume.run_reading(ck, keep_newlines=True) == Reading("keep", None)
    del ck.config["data"]["reading"]
    assert resume.run_reading(ck) == LEGACY
    del ck.config["data"]
    assert resume.run_reading(ck) == LEGACY
    ck.config["data"] = {"reading": {"newlines": "crlf"}}
    with pytest.raises(CheckpointError) as e:
        resume.run_reading(ck)
    assert str(e.value) == ("run/latest.npz: its record of how the text was read "
                            "(config data.reading) is damaged")


def test_a_resumed_runs_spec_carries_its_lineage_and_evaluation_shape(tmp_path):
    ck = checkpoint(tmp_path, "rnn", steps=3, path=str(tmp_path / "latest.npz"))
    spec, _ = resume.resume_spec(ck, corpus(), {"lr": 0.5}, {"lr"})
    assert dict(spec.lineage) == {"resumes": [{"iteration": 3, "wall_time": 0.0,
                                               "checkpoint": os.path.abspath(ck.path),
                                               "changed": {"lr": [0.02, 0.5]}}]}
    assert spec.eval_shape == (4, 8)
    ck.config["choices"] = {"chosen": ["batch_size", "seq_len"]}
    spec, _ = resume.resume_spec(ck, corpus(), {}, set())
    assert spec.eval_shape == (32, 64)                  # at least EVAL_SHAPE: the shape was chosen
    assert dict(spec.lineage)["choices"] == ck.config["choices"]


@pytest.mark.parametrize("choices, chosen", [
    (None, False), ({"chosen": ["batch_size", "seq_len"]}, True), ({"chosen": ["dropout"]}, False),
    ({}, False), ("batch_size", False), ({"chosen": "batch_size"}, False)])
def test_whether_the_batch_shape_was_chosen(tmp_path, choices, chosen):
    ck = checkpoint(tmp_path, "rnn")
    if choices is not None:
        ck.config["choices"] = choices
    assert resume.shape_was_chosen(ck) is chosen


def test_a_fine_tuning_runs_spec_names_its_origin(tmp_path):
    from charrnn.runs.budget import initial_plan
    ck = checkpoint(tmp_path, "rnn", steps=3, path=str(tmp_path / "base.npz"))
    spec, _ = resume.init_spec(ck, corpus(), {"max_iters": 10, "lr_schedule": "budget"},
                               {"max_iters", "lr_schedule"})
    assert dict(spec.lineage) == {"init_from": {
        "checkpoint": os.path.abspath(ck.path), "iteration": 3,
        "text_sha256": ck.config["data"]["text_sha256"]}}
    assert spec.plan == initial_plan(spec.config, {"max_iters", "lr_schedule"})
    assert spec.plan.total == 10
    decay = resume.init_spec(ck, corpus(), {"max_iters": 10, "lr_decay": 0.9},
                             {"max_iters", "lr_decay"})[0]
    assert decay.plan.kind == "step"                # a decay set by hand keeps the step plan
    del ck.state["iteration"], ck.config["data"]
    spec, _ = resume.init_spec(ck, corpus(), {}, set())
    assert (spec.lineage["init_from"]["iteration"], spec.lineage["init_from"]["text_sha256"]) == \
        (0, None)
    with pytest.raises(DataError) as e:
        resume.init_spec(ck, corpus(TEXT + "§"), {}, set())
    assert str(e.value) == (f"the text has 1 character(s) that are not in the vocabulary of "
                            f"{ck.path} (e.g. '§'); --init-from needs text made of the "
                            f"checkpoint's characters")
