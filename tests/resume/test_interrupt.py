"""Ctrl-C and SIGTERM: save latest.npz, say where in one line, exit 130/143,
and resume bit-identically -- with real signals sent to a real process."""
from __future__ import annotations

import os
import shutil
import signal
import time
from pathlib import Path

import numpy as np
import pytest

from charrnn.store import checkpoint as ckpt
from charrnn.runs.trainer import Trainer

from helpers import bits, config, corpus, ROOT, TEXT  # noqa: F401
from helpers import charrnn, start, wait_for_iteration  # noqa: F401

ARGS = ["--hidden-size", "12", "--seq-len", "8", "--batch-size", "4", "--seed", "5"]


def same_params(a: Path, b: Path):
    pa, pb = ckpt.load(str(a)).params, ckpt.load(str(b)).params
    assert pa.keys() == pb.keys()
    for k in pa:
        assert bits(pa[k]) == bits(pb[k]), f"{k} differs"


@pytest.fixture
def text_file(tmp_path) -> Path:
    p = tmp_path / "text.txt"
    p.write_text(TEXT, encoding="utf-8")
    return p


def _start_checkpoint(name, folder: Path, text_file: Path) -> None:
    """rnn: trained 5 iterations by the CLI; lstm/gru (no CLI flags yet): by the API."""
    if name == "rnn":
        r = charrnn("train", text_file, "--checkpoint-dir", folder, *ARGS, "--max-iters", 5,
                    "--eval-every", 5, "--quiet")
        assert r.returncode == 0, r.stderr
    else:
        Trainer(config(name, max_iters=5, eval_every=5), corpus(), str(folder)).run(progress=False)


@pytest.mark.parametrize("name, sig", [("rnn", signal.SIGINT), ("lstm-dropout", signal.SIGINT),
                                       ("gru-dropout", signal.SIGTERM)])
def test_real_signal_then_resume_is_bit_identical(tmp_path, text_file, name, sig):
    """A training process gets a real signal at a moment it does not choose:
    it saves, says where in one line, exits 128+signal, and resuming to K+20
    gives the same bits as going from the same start to K+20 uninterrupted."""
    run, ref = tmp_path / "run", tmp_path / "ref"
    _start_checkpoint(name, run, text_file)
    shutil.copytree(run, ref)
    proc = start("train", text_file, "--checkpoint-dir", run, "--resume", "--max-iters",
                 100000, "--eval-every", 7, "--quiet")
    wait_for_iteration(run / "latest.npz", 12, proc)
    time.sleep(np.random.default_rng().uniform(0, 0.05))    # somewhere between evaluations
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + sig, err
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert signal.Signals(sig).name in lines[0] and str(run / "latest.npz") in lines[0]
    assert "--resume" in lines[0]
    k = ckpt.load(str(run / "latest.npz")).state["iteration"]
    assert f"at iteration {k};" in lines[0]
    assert sorted(os.listdir(run)) == ["best.npz", "latest.npz"]       # nothing stray

    r = charrnn("train", text_file, "--checkpoint-dir", run, "--resume", "--max-iters", k + 20,
                "--quiet")
    assert r.returncode == 0 and r.stderr == "", r.stderr
    r = charrnn("train", text_file, "--checkpoint-dir", ref, "--resume", "--max-iters", k + 20,
                "--quiet")
    assert r.returncode == 0, r.stderr
    same_params(run / "latest.npz", ref / "latest.npz")
    assert ckpt.load(str(run / "latest.npz")).state["iteration"] == k + 20


def test_a_burst_of_signals_during_the_final_save_corrupts_nothing(tmp_path, text_file):
    """Ctrl-C, then Ctrl-C again and again while the checkpoint is written:
    still exit 130, one line, a loadable latest.npz and no temporary file."""
    d = tmp_path / "run"
    big = ["--hidden-size", "400", "--seq-len", "8", "--batch-size", "4", "--lr", "0.002",
           "--eval-every", "100000", "--quiet"]                       # large weights: a slower final save
    proc = start("train", text_file, "--checkpoint-dir", d, *big)
    t0 = time.monotonic()
    while not d.exists() and time.monotonic() - t0 < 60:
        time.sleep(0.01)
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    sent = 1
    while proc.poll() is None and sent < 200:
        time.sleep(0.002)
        try:
            proc.send_signal(signal.SIGINT if sent % 2 else signal.SIGTERM)
            sent += 1
        except ProcessLookupError:
            break
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert out == "" and len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert sent > 2
    ck = ckpt.load(str(d / "latest.npz"))
    assert ck.state["iteration"] >= 1
    # (the second signal may have cut the final evaluation short: then no best.npz)
    assert set(os.listdir(d)) in ({"latest.npz"}, {"best.npz", "latest.npz"})


# -------------------------------------------------- deterministic, in-process
def _interrupt_at(tr: Trainer, iteration: int):
    real_step = tr.train_step

    def step():
        loss = real_step()
        if tr.iteration == iteration:
            os.kill(os.getpid(), signal.SIGINT)
        return loss
    tr.train_step = step


def test_second_and_third_signal_in_the_middle_of_the_write(tmp_path, monkeypatch):
    tr = Trainer(config("rnn", max_iters=1000, eval_every=1000), corpus(), str(tmp_path))
    _interrupt_at(tr, 9)
    real = ckpt._savez
    calls = []

    def writer(f, arrays):
        f.write(b"PK\x03\x04")                       # part of the file is out ...
        os.kill(os.getpid(), signal.SIGINT)          # ... when Ctrl-C comes again
        os.kill(os.getpid(), signal.SIGTERM)
        f.seek(0)
        calls.append(f.name)
        real(f, arrays)
    monkeypatch.setattr(ckpt, "_savez", writer)
    res = tr.run(progress=False)
    assert res.interrupted_by == signal.SIGINT and res.iterations == 9
    assert len(calls) == 2                                  # latest.npz and best.npz
    assert ckpt.load(str(tmp_path / "latest.npz")).state["iteration"] == 9
    assert sorted(os.listdir(tmp_path)) == ["best.npz", "latest.npz"]
    # and the handlers the run installed are gone again
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_second_signal_during_the_final_evaluation_skips_it_not_the_save(tmp_path):
    tr = Trainer(config("rnn", max_iters=1000, eval_every=1000), corpus(), str(tmp_path))
    _interrupt_at(tr, 6)
    real_loss = tr.model.loss
    evaluated = []

    def loss(x, y, state):
        evaluated.append(1)
        if len(evaluated) == 1:
            os.kill(os.getpid(), signal.SIGINT)      # impatient second Ctrl-C
        return real_loss(x, y, state)
    tr.model.loss = loss
    res = tr.run(progress=False)
    assert res.interrupted_by == signal.SIGINT
    ck = ckpt.load(str(tmp_path / "latest.npz"))
    assert ck.state["iteration"] == 6
    assert np.isnan(ck.history["val_loss"][-1])             # evaluation given up ...
    assert len(evaluated) == 1                              # ... after one chunk
    assert not (tmp_path / "best.npz").exists()


def test_one_signal_still_evaluates(tmp_path):
    tr = Trainer(config("rnn", max_iters=1000, eval_every=1000), corpus(), str(tmp_path))
    _interrupt_at(tr, 6)
    tr.run(progress=False)
    ck = ckpt.load(str(tmp_path / "latest.npz"))
    assert np.isfinite(ck.history["val_loss"][-1])
    assert (tmp_path / "best.npz").exists()


def test_ctrl_c_while_the_command_line_loads_is_one_line_and_130(monkeypatch, capsys):
    """The console script's entry (charrnn.launch) imports the CLI itself, so
    a Ctrl-C during that import (click and friends take ~0.1 s) is caught:
    one line, exit 130, no traceback."""
    import builtins
    from charrnn import launch
    real_import = builtins.__import__

    def interrupted_import(name, globals=None, locals=None, fromlist=(), level=0):
        if name == "cli" and level == 1 and (globals or {}).get("__package__") == "charrnn":
            raise KeyboardInterrupt
        return real_import(name, globals, locals, fromlist, level)
    monkeypatch.setattr(builtins, "__import__", interrupted_import)
    with pytest.raises(SystemExit) as e:
        launch.main()
    assert e.value.code == 130
    out, err = capsys.readouterr()
    assert out == "" and err == "charrnn: interrupted\n"


def test_the_console_script_and_python_m_use_the_guarded_entry():
    from importlib.metadata import entry_points
    (ep,) = [e for e in entry_points(group="console_scripts") if e.name == "charrnn"]
    assert ep.value == "charrnn.launch:main"
    main_py = ROOT / "charrnn" / "__main__.py"
    assert "from .launch import main" in main_py.read_text(encoding="utf-8")
