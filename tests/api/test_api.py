"""charrnn as a library: charrnn.train / charrnn.load and the model object,
checked against the command line doing the same (one code path), and the
docstring examples run as written."""
from __future__ import annotations

import doctest
import json
import os
import signal

import numpy as np
import pytest

import charrnn
from charrnn import api
from charrnn.store import checkpoint as ckpt
from charrnn.cli.commands import cli

from conftest import make_corpus

TINY = dict(hidden_size=16, seq_len=8, batch_size=4, max_iters=20, eval_every=10)


def test_the_docstring_examples_run(tmp_path):
    failures, tried = doctest.testmod(api, extraglobs={"tmp": tmp_path}, report=True)
    assert tried >= 5 and failures == 0


def test_import_charrnn_stays_light():
    import subprocess
    import sys
    code = ("import sys, charrnn; heavy = [m for m in ('numpy', 'click', 'charrnn.api') "
            "if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
    assert out.strip() == "[]"
    assert charrnn.CharRNNError.__name__ == "CharRNNError"       # loaded on first use


@pytest.mark.parametrize("kind", ["text", "path", "list", "pathlike"])
def test_train_takes_text_a_path_or_paths(tmp_path, kind):
    text = make_corpus(1500, seed=2)
    f = tmp_path / "t.txt"
    f.write_text(text, encoding="utf-8")
    source = {"text": text, "path": str(f), "list": [str(f)], "pathlike": f}[kind]
    r = charrnn.train(source, checkpoint_dir=str(tmp_path / "ck"), **TINY)
    assert r.iterations == 20 and r.latest_path == str(tmp_path / "ck" / "latest.npz")
    assert r.best_path and np.isfinite(r.val_loss) and r.best_val <= r.val_loss
    ck = ckpt.load(r.latest_path)
    assert ck.vocab == "".join(sorted(set(text)))
    assert ck.config["data"]["sources"] == (["<text>"] if kind == "text" else [str(f)])


def test_train_is_the_command_line_run_bit_for_bit(tmp_path, runner):
    text = make_corpus(1500, seed=2)
    f = tmp_path / "t.txt"
    f.write_text(text, encoding="utf-8")
    charrnn.train([str(f)], checkpoint_dir=str(tmp_path / "a"), model="gru", **TINY)
    args = [a for k, v in TINY.items() for a in (f"--{k.replace('_', '-')}", str(v))]
    r = runner.invoke(cli, ["train", str(f), "--checkpoint-dir", str(tmp_path / "b"),
                            "--model", "gru", "--quiet", *args])
    assert r.exit_code == 0, r.stderr
    a, b = ckpt.load(str(tmp_path / "a" / "latest.npz")), ckpt.load(str(tmp_path / "b" /
                                                                       "latest.npz"))
    assert a.config["train"] == b.config["train"]
    assert a.config["train"]["lr"] == 0.004 and a.config["train"]["optimizer"] == "adam"
    assert a.config["plan"]["kind"] == "budget" and a.config["choices"] == b.config["choices"]
    for k in a.params:
        assert a.params[k].tobytes() == b.params[k].tobytes()


@pytest.mark.parametrize("opts, flag", [({"hidden_size": 0}, "--hidden-size"),
                                        ({"lr": -1.0}, "--lr"), ({"model": "transformer"},
                                                                 "--model"),
                                        ({"max_time": "soon"}, "--max-time"),
                                        ({"dropout": float("nan")}, "--dropout"),
                                        ({"encoding": "klingon"}, "--encoding")])
def test_bad_options_raise_the_command_lines_message(tmp_path, runner, opts, flag):
    (name, value), = opts.items()
    with pytest.raises(charrnn.OptionError) as e:
        charrnn.train("some text", checkpoint_dir=str(tmp_path), **opts)
    msg = str(e.value)
    assert flag in msg and "\n" not in msg and e.value.exit_code == 2
    r = runner.invoke(cli, ["train", "x.txt", flag, str(value)])
    assert r.exit_code == 2 and msg in r.stderr
    assert not os.listdir(tmp_path)


def test_unknown_options_and_both_resume_and_init_from_are_refused(tmp_path):
    with pytest.raises(charrnn.OptionError, match="unknown option 'hiden_size'.*hidden_size"):
        charrnn.train("some text", checkpoint_dir=str(tmp_path), hiden_size=3)
    with pytest.raises(charrnn.OptionError, match="only one of them"):
        charrnn.train("some text", checkpoint_dir=str(tmp_path), resume=True, init_from="x")


def test_errors_are_charrnn_errors_never_system_exit(tmp_path):
    with pytest.raises(charrnn.DataError, match="too short"):
        charrnn.train("tiny text", checkpoint_dir=str(tmp_path / "a"), val_frac=0.0, **TINY)
    with pytest.raises(charrnn.CheckpointError, match="no such checkpoint"):
        charrnn.load(str(tmp_path / "empty"))
    charrnn.train(make_corpus(1500), checkpoint_dir=str(tmp_path / "b"), **TINY)
    with pytest.raises(charrnn.CharRNNError, match="already holds"):
        charrnn.train(make_corpus(1500), checkpoint_dir=str(tmp_path / "b"), **TINY)


def test_progress_callback_and_resume(tmp_path):
    events = []
    text = make_corpus(1500)
    r = charrnn.train(text, checkpoint_dir=str(tmp_path), progress=lambda e, i: events.append(
        (e, dict(i))), sample_every=10, **TINY)
    kinds = [e for e, _ in events]
    assert kinds[:2] == ["text", "start"] and kinds.count("step") == 20
    assert kinds.count("eval") == 2
    assert events[0][1] == {"files": 1, "folders": 0, "chars": len(text), "skipped": 0,
                            "reading": {"newlines": "lf", "doc_separator": None}}
    assert kinds.count("sample") == 2
    assert [i["iteration"] for e, i in events if e == "eval"] == [10, 20]
    evals = [i for e, i in events if e == "eval"]
    assert evals[-1]["val_loss"] == r.val_loss
    more = charrnn.train(text, checkpoint_dir=str(tmp_path), resume=True, max_iters=30)
    assert more.iterations == 30
    resumes = ckpt.load(more.latest_path).config["resumes"]
    assert resumes[0]["changed"] == {"max_iters": [20, 30]}


def test_ctrl_c_stops_after_saving_and_returns(tmp_path):
    def progress(event, info):
        if event == "step" and info["iteration"] == 7:
            os.kill(os.getpid(), signal.SIGINT)
    r = charrnn.train(make_corpus(1500), checkpoint_dir=str(tmp_path), progress=progress,
                      **{**TINY, "max_iters": 50})
    assert r.interrupted_by == signal.SIGINT and r.iterations == 7
    assert ckpt.load(r.latest_path).state["iteration"] == 7


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("api_model")
    charrnn.train(make_corpus(3000, seed=5), checkpoint_dir=str(d), model="lstm",
                  **{**TINY, "max_iters": 40})
    return d


def test_load_a_folder_or_a_file(model_dir):
    m = charrnn.load(str(model_dir))
    assert m.path == str(model_dir / "best.npz")
    assert charrnn.load(str(model_dir / "latest.npz")).path == str(model_dir / "latest.npz")
    assert m.config["model"]["model"] == "lstm" and m.vocab == "".join(sorted(m.vocab))
    assert m.history["iter"][-1] in (10.0, 20.0, 30.0, 40.0)
    assert "lstm" in repr(m)


def test_sample_matches_charrnn_sample(model_dir, runner):
    m = charrnn.load(str(model_dir))
    text = m.sample(length=60, temperature=0.8, prime="The ", seed=3, top_k=10)
    r = runner.invoke(cli, ["sample", "--checkpoint-dir", str(model_dir), "--len", "60",
                            "--temperature", "0.8", "--prime", "The ", "--seed", "3",
                            "--top-k", "10"])
    assert r.exit_code == 0 and r.stdout == text + "\n"
    three = m.sample(length=20, seed=4, n=3)
    assert isinstance(three, list) and len(three) == 3
    assert three[0] == m.sample(length=20, seed=4)
    assert "".join(m.stream(length=25, prime="a", seed=9)) == m.sample(25, prime="a", seed=9)[1:]
    assert m.sample(0, prime="ab") == "ab"
    stop = m.sample(length=300, seed=1, until=" ")
    assert stop.endswith(" ") and " " not in stop[:-1]


@pytest.mark.parametrize("kw, words", [({"temperature": 0}, "temperature must be > 0"),
                                       ({"top_p": 1.5}, "top_p"), ({"n": 0}, "n must be"),
                                       ({"prime": "\u4e00"}, "vocabulary")])
def test_bad_sampling_arguments(model_dir, kw, words):
    with pytest.raises(charrnn.CharRNNError, match=words):
        charrnn.load(str(model_dir)).sample(10, **kw)


def test_score_is_charrnn_eval_json(model_dir, runner, tmp_path):
    m = charrnn.load(str(model_dir))
    text = make_corpus(800, seed=9)
    f = tmp_path / "held.txt"
    f.write_text(text, encoding="utf-8")
    r = runner.invoke(cli, ["eval", str(f), "--checkpoint-dir", str(model_dir), "--json"])
    assert r.exit_code == 0, r.stderr
    want = json.loads(r.stdout)
    got = m.score(text)
    assert {k: v for k, v in want.items() if k not in ("file", "checkpoint")} == \
        json.loads(json.dumps(got))


def test_score_with_oov_reset_is_charrnn_eval_oov_reset(model_dir, runner, tmp_path):
    m = charrnn.load(str(model_dir))
    base = make_corpus(800, seed=9)
    text = "".join(base[i:i + 100] + "\u4e00" for i in range(0, 800, 100))    # 8 unknown
    assert "\u4e00" not in m.vocab
    f = tmp_path / "held.txt"
    f.write_text(text, encoding="utf-8")
    got = {}
    for oov in ("skip", "reset"):
        r = runner.invoke(cli, ["eval", str(f), "--checkpoint-dir", str(model_dir), "--json",
                                "--oov", oov])
        assert r.exit_code == 0, r.stderr
        want = {k: v for k, v in json.loads(r.stdout).items() if k not in ("file", "checkpoint")}
        got[oov] = json.loads(json.dumps(m.score(text, oov=oov)))
        assert got[oov] == want, oov
    assert got["reset"]["oov"] == {**got["skip"]["oov"], "handling": "reset"}
    assert got["reset"]["oov"]["count"] == sum(c not in m.vocab for c in text) >= 8
    # reset reads 8 pieces from a fresh state: a different figure, fewer scored
    assert got["reset"]["chars_scored"] < got["skip"]["chars_scored"]
    assert got["reset"]["nats_per_char"] != got["skip"]["nats_per_char"]


def test_export_writes_the_page_charrnn_export_writes(model_dir, runner, tmp_path):
    """CharModel.export(out) is `charrnn export out --checkpoint <its path>`,
    byte for byte, for the model as loaded (a checkpoint replaced on disk
    afterwards does not change it), and refuses an existing file unless
    overwrite."""
    src = tmp_path / "m.npz"
    src.write_bytes((model_dir / "best.npz").read_bytes())
    r = runner.invoke(cli, ["export", str(tmp_path / "cli.html"), "--checkpoint", str(src)])
    assert r.exit_code == 0, r.stderr
    m = charrnn.load(str(src))
    other = ckpt.load(str(src))
    other.params["out.W"] = other.params["out.W"] * 2
    ckpt.save(str(src), other)                                  # another model there now
    got = m.export(tmp_path / "api.html")
    want = (tmp_path / "cli.html").read_bytes()
    assert (tmp_path / "api.html").read_bytes() == want
    assert got == {"path": str(tmp_path / "api.html"), "checkpoint": str(src),
                   "model": got["model"], "weights": sum(a.size for a in
                                                         ckpt.load(str(model_dir / "best.npz"))
                                                         .params.values()),
                   "bytes": len(want)}
    assert "lstm" in got["model"]
    with pytest.raises(charrnn.CharRNNError, match="already exists; pass --overwrite"):
        m.export(tmp_path / "api.html")
    (tmp_path / "api.html").write_text("mine")
    m.export(str(tmp_path / "api.html"), overwrite=True)
    assert (tmp_path / "api.html").read_bytes() == want
