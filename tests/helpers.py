"""Helpers several test modules share (no test module imports another):
how to run the installed charrnn command, an environment free of the
developer's charrnn settings, checkpoints and runs to test with, numerical
gradients, a hand-wired LSTM, and checks of a CLI result."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest

from charrnn.cli.commands import cli
from charrnn.nn import optim
from charrnn.nn.model import Model, ModelConfig, init_params
from charrnn.runs.trainer import TrainConfig
from charrnn.text.corpus import Corpus
from charrnn.store import checkpoint as ckpt
from charrnn.text import data

from conftest import make_corpus

TESTS = Path(__file__).resolve().parent       # tests/ (helpers, data/, the feature folders)
ROOT = TESTS.parent                            # the checkout

NOT_INSTALLED = ("charrnn is not installed (pip install -e .): the tests that run the "
                 "charrnn command need its console script")


def charrnn_command() -> list[str]:
    """[path of the charrnn console script].  When the package is installed
    but the script is not on PATH, that is a broken install: fail, never fall
    back to `python -m charrnn` (which would leave the entry point untested).
    When the package is not installed at all, skip, saying so."""
    # pip puts the script beside the interpreter it installed for (a venv's
    # bin/ or Scripts\), which need not be on PATH (`.venv/bin/python -m pytest`)
    here = Path(sys.executable).parent
    for name in ("charrnn", "charrnn.exe"):
        if (here / name).is_file() and os.access(here / name, os.X_OK):
            return [str(here / name)]
    exe = shutil.which("charrnn")
    if exe:
        return [exe]
    try:
        metadata.distribution("charrnn")
    except metadata.PackageNotFoundError:
        pytest.skip(NOT_INSTALLED, allow_module_level=True)
    pytest.fail("charrnn is installed but its console script 'charrnn' is neither beside "
                f"{sys.executable} nor on PATH: reinstall it (pip install -e .)", pytrace=False)


def clean_env(**extra) -> dict:
    """os.environ without CHARRNN_DEBUG and CHARRNN_CHECKPOINT_DIR, plus extra."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("CHARRNN_DEBUG", "CHARRNN_CHECKPOINT_DIR")}
    env.update(extra)
    return env


CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable",
                  "chrome", "headless_shell")


def find_chromium() -> str | None:
    """A Chromium or Chrome executable: $CHROMIUM if set, else the first of its
    usual names on PATH, else Debian's /usr/bin/chromium."""
    env = os.environ.get("CHROMIUM")
    if env and shutil.which(env):
        return shutil.which(env)
    for name in CHROMIUM_NAMES:
        exe = shutil.which(name)
        if exe:
            return exe
    return "/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None


CHROMIUM = find_chromium()
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no headless Chromium (looked for $CHROMIUM, " + ", ".join(CHROMIUM_NAMES)
           + " on PATH and /usr/bin/chromium; apt-get install chromium): the HTML page is "
           "only checked by its source here")


def run_chromium(*args, timeout=90) -> subprocess.CompletedProcess:
    """Headless Chromium with a throw-away profile and no network chatter."""
    import tempfile
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", f"--user-data-dir={profile}", *args],
            capture_output=True, text=True, timeout=timeout)


# ------------------------------------------------ from test_checkpoint.py
CHECKPOINT_VOCAB = "\x00\t\n !,.Aabcé😀"        # NUL first: unicode arrays would drop it


def make_checkpoint(model="lstm", optimizer="adam", vocab=CHECKPOINT_VOCAB, dtype="float32",
                    hidden=5, layers=2, batch=3, embed=0, seed=0) -> ckpt.Checkpoint:
    """A checkpoint with every section filled with non-trivial values."""
    rng = np.random.default_rng(seed)
    mcfg = ModelConfig(vocab_size=len(vocab), model=model, hidden_size=hidden,
                       num_layers=layers, embed_size=embed, dtype=dtype)
    params = init_params(mcfg, rng)
    opt = optim.make(optimizer, params)
    for name, a in opt.state.items():
        if name == "t":
            a[...] = 17
        else:
            a[...] = rng.random(a.shape)
    state = {"iteration": 123, "chunk": 4, "epoch": 2, "chars_seen": 123 * batch * 8,
             "wall_time": 12.5, "best_val": 1.875,
             "h": rng.standard_normal((layers, batch, hidden)).astype(dtype),
             "rng": rng.bit_generator.state}
    if model == "lstm":
        state["c"] = rng.standard_normal((layers, batch, hidden)).astype(dtype)
    n = 4
    history = {k: rng.random(n) for k in ckpt.HISTORY_KEYS}
    history["val_loss"][1] = np.nan          # a missing evaluation is NaN
    train = asdict(TrainConfig(model=model, hidden_size=hidden, num_layers=layers,
                               embed_size=embed, dtype=dtype, batch_size=batch,
                               optimizer=optimizer, max_iters=200))
    config = {"model": mcfg.to_dict(), "train": train,
              "data": {"sources": ["/tmp/x.txt"], "chars": 1000, "train_chars": 900,
                       "val_chars": 100}}
    return ckpt.Checkpoint(config=config, vocab=vocab, params=params, optim=dict(opt.state),
                           state=state, history=history)


def assert_same(a: ckpt.Checkpoint, b: ckpt.Checkpoint):
    assert a.config == b.config
    assert a.vocab == b.vocab
    for section in ("params", "optim", "history"):
        da, db = getattr(a, section), getattr(b, section)
        assert da.keys() == db.keys(), section
        for k in da:
            x, y = np.asarray(da[k]), np.asarray(db[k])
            assert x.dtype == y.dtype and x.shape == y.shape, (section, k)
            np.testing.assert_array_equal(x, y, err_msg=f"{section}/{k}")
    assert a.state.keys() == b.state.keys()
    for k, v in a.state.items():
        if k in ("h", "c"):
            assert v.dtype == b.state[k].dtype
            np.testing.assert_array_equal(v, b.state[k])
        else:
            assert v == b.state[k] and type(v) is type(b.state[k]), k


class Payload:
    """Unpickling this would create a folder: proof that code ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def object_array(marker):
    a = np.empty(1, dtype=object)
    a[0] = Payload(marker)
    return a

# ------------------------------------------------ from test_model.py
def numeric_grad(f, arr, eps=1e-3):
    """Central differences of f() wrt every entry of arr (changed in place and
    restored): the fourth-order stencil, error ~eps^4, so float64 resolves
    entries down to ~1e-10 absolute."""
    g = np.zeros_like(arr)
    it = np.nditer(arr, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        old = arr[i]
        vals = []
        for d in (-2, -1, 1, 2):
            arr[i] = old + d * eps
            vals.append(f())
        arr[i] = old
        g[i] = (vals[0] - 8 * vals[1] + 8 * vals[2] - vals[3]) / (12 * eps)
    return g


def rel_error(a, n):
    """Max elementwise |a-n| / (|a|+|n|), with a 1e-5 floor for entries near
    zero, whose finite-difference estimate is dominated by rounding."""
    return float(np.max(np.abs(a - n) / np.maximum(np.abs(a) + np.abs(n), 1e-5)))

# ------------------------------------------------ from test_interrupt.py
def charrnn(*args, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(charrnn_command() + [str(a) for a in args], capture_output=True, text=True,
                          env=clean_env(), cwd=cwd, timeout=120)


def start(*args) -> subprocess.Popen:
    return subprocess.Popen(charrnn_command() + [str(a) for a in args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=clean_env())


def wait_for_iteration(path: Path, at_least: int, proc, timeout=60) -> None:
    """Until the checkpoint at path exists and has trained at_least iterations."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        assert proc.poll() is None, proc.communicate()
        try:
            if ckpt.load(str(path)).state["iteration"] >= at_least:
                return
        except Exception:
            pass
        time.sleep(0.02)
    raise AssertionError(f"{path} never reached iteration {at_least}")

# ------------------------------------------------ from test_resume.py
TEXT = make_corpus(1500, seed=3)          # 43 chunks per epoch at B=4, T=8


N, M = 23, 34                             # N+M = 57 crosses an epoch boundary


CONFIGS = {
    "rnn": dict(model="rnn", hidden_size=12, optimizer="adagrad"),
    "lstm-dropout": dict(model="lstm", hidden_size=10, num_layers=2, embed_size=6,
                         dropout=0.3, optimizer="adam", clip_mode="norm", clip=1.0),
    "gru-dropout": dict(model="gru", hidden_size=10, num_layers=2, dropout=0.25,
                        optimizer="rmsprop"),
    "gru-regularised": dict(model="gru", hidden_size=10, num_layers=2, dropout=0.25,
                            dropout_mask="chunk", weight_drop=0.3, optimizer="adam",
                            clip_mode="norm", clip=1.0, weight_average=0.9,
                            adam_beta2=0.99, shift_epochs=True),
}


def corpus(text=TEXT) -> Corpus:
    vocab = data.build_vocab(text)
    return Corpus(ids=data.encode(text, vocab), vocab=vocab, sources=["mem"])


def config(name, **kw) -> TrainConfig:
    base = dict(seq_len=8, batch_size=4, lr=0.02, eval_every=10, val_frac=0.1, seed=5)
    return TrainConfig(**{**base, **CONFIGS[name], **kw})


def resume_trainer(ck: ckpt.Checkpoint, text: Corpus, opts: dict, explicit, folder: str):
    """A Trainer that continues ck exactly, built as `charrnn train --resume` builds it."""
    from charrnn.runs import resume
    from charrnn.runs.trainer import Trainer
    spec, fitted = resume.resume_spec(ck, text, opts, explicit)
    return Trainer(spec, fitted, folder, resume_from=ck)


def continued(tr, **changes):
    """A Trainer that resumes tr's latest.npz exactly, with these settings
    changed (e.g. max_iters=40: a finished run goes on; settings are frozen)."""
    import dataclasses
    from charrnn.runs.trainer import Trainer
    cfg = dataclasses.replace(tr.cfg, **changes)
    ck = ckpt.load(os.path.join(tr.dir, ckpt.LATEST))
    return Trainer(dataclasses.replace(tr.spec, config=cfg), tr.corpus, tr.dir, resume_from=ck)


def init_trainer(ck: ckpt.Checkpoint, text: Corpus, opts: dict, explicit, folder: str):
    """A Trainer of a new run from ck's weights, built as `charrnn train --init-from` builds it."""
    from charrnn.runs import resume
    from charrnn.runs.trainer import Trainer
    spec, fitted = resume.init_spec(ck, text, opts, explicit)
    return Trainer(spec, fitted, folder, init_weights=ck.params)


def bits(a: np.ndarray) -> bytes:
    return a.dtype.str.encode() + repr(a.shape).encode() + a.tobytes()

# ------------------------------------------------ from test_units.py
QUOTE_TEXT = ('He said "go home" and left.\nShe (quietly) asked "why?" then '
              'waited for "an answer that never came".\nNo one spoke.\n'
              'Later "it rained" [all day] and "the river rose".\n') * 2


QUOTE_VOCAB = "".join(sorted(set(QUOTE_TEXT)))


QUOTE_H, QUOTE_UNIT = 8, 5


def quote_lstm(seed=0) -> Model:
    """One LSTM layer with random weights, except unit QUOTE_UNIT: its input
    gate opens and its forget gate closes only on '"', and its candidate is
    tanh(2 - 10 h): positive when the unit is off, negative when it is on.
    So its cell state flips sign at every quote: +1 inside, -1 outside."""
    cfg = ModelConfig(vocab_size=len(QUOTE_VOCAB), model="lstm", hidden_size=QUOTE_H, num_layers=1,
                      dtype="float64")
    rng = np.random.default_rng(seed)
    p = {k: rng.standard_normal(v.shape) * 0.5 for k, v in init_params(cfg, rng).items()}
    i, f, o, g = (blk * QUOTE_H + QUOTE_UNIT for blk in range(4))
    for col in (i, f, o, g):
        p["l0.Wh"][:, col] = 0.0
        p["l0.b"][col] = 0.0
    p["l0.Wx"][:, i], p["l0.Wx"][:, f], p["l0.Wx"][:, o], p["l0.Wx"][:, g] = -10, 10, 10, 0
    q = QUOTE_VOCAB.index('"')
    p["l0.Wx"][q, i], p["l0.Wx"][q, f], p["l0.Wx"][q, g] = 10, -10, 2
    p["l0.Wh"][QUOTE_UNIT, g] = -10
    return Model(cfg, p)

# ------------------------------------------------ from test_cli.py
def invoke(runner, *args, **kw):
    return runner.invoke(cli, [str(a) for a in args], **kw)


def assert_ok(result):
    assert result.exit_code == 0, (result.exit_code, result.stderr, result.exception)


def assert_one_line_error(result, code) -> str:
    """Exit code `code`, exactly one line on stderr, nothing on stdout, no traceback."""
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr,
                                      result.exception)
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and result.stderr.endswith("\n"), result.stderr
    assert "Traceback" not in result.output
    assert "error" in lines[0].lower()
    # The exception did not escape: click turned it into an exit code.
    assert result.exception is None or isinstance(result.exception, SystemExit)
    return lines[0]


def signalled(signum=signal.SIGINT):
    """A StopFlag whose signal came before the run began."""
    from charrnn.runs.signals import StopFlag
    flag = StopFlag()
    flag.signum, flag.count = signum, 1
    return flag
