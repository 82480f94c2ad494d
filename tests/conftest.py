"""Shared fixtures: small corpora on disk and tiny models trained once per session."""
from __future__ import annotations

import random
import signal
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from charrnn.cli.commands import cli

# A shell without job control starts background jobs (`.ci/run &`, nohup) with
# SIGINT ignored, and children inherit that: the Ctrl-C tests would then see a
# charrnn that rightly ignores Ctrl-C.  Give the session (and so the commands it
# starts) Python's own Ctrl-C, as a terminal would.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

# Tiny settings so a whole training run takes a fraction of a second.
TINY_TRAIN_ARGS = ["--hidden-size", "16", "--seq-len", "8", "--batch-size", "4",
                   "--max-iters", "30", "--eval-every", "10", "--quiet"]

_WORDS = ("the quick brown fox jumps over a lazy dog while seven wizards hum "
          "and every river runs to the sea under grey skies of early morning "
          "when she said nothing he laughed because time was short").split()
_EXTRAS = ("café", "naïve", "Straße", "Ωmega", "—", "“quoted”", "日本語", "😀", "é")


def make_corpus(n_chars: int = 4000, seed: int = 0, non_ascii: bool = True) -> str:
    """Deterministic varied text: words, punctuation, digits, line breaks and
    (optionally) some non-ASCII characters including an emoji and a
    precomposed/combining accent pair."""
    rng = random.Random(seed)
    out, size = [], 0
    while size < n_chars:
        words = [rng.choice(_WORDS) for _ in range(rng.randint(4, 12))]
        if non_ascii and rng.random() < 0.5:
            words.insert(rng.randrange(len(words) + 1), rng.choice(_EXTRAS))
        if rng.random() < 0.2:
            words.append(str(rng.randint(0, 1999)))
        line = " ".join(words)
        line = line[0].upper() + line[1:] + rng.choice(".!?,;:")
        out.append(line)
        size += len(line) + 1
    text = "\n".join(out) + "\n"
    if non_ascii:
        text += "Cafe\u0301 with a combining accent.\n"
    return text


@pytest.fixture(scope="session")
def corpus_text() -> str:
    return make_corpus()


@pytest.fixture
def corpus_file(tmp_path, corpus_text) -> Path:
    p = tmp_path / "corpus.txt"
    p.write_text(corpus_text, encoding="utf-8")
    return p


# Settings from the developer's shell must not leak into the tests.
CLEAN_ENV = {"CHARRNN_DEBUG": None, "CHARRNN_CHECKPOINT_DIR": None}


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner(env=CLEAN_ENV)


@dataclass(frozen=True)
class TrainedRun:
    dir: Path
    latest: Path
    best: Path
    corpus: Path
    text: str

    @property
    def vocab(self) -> str:
        return "".join(sorted(set(self.text)))


def _train_once(root: Path, text: str) -> TrainedRun:
    root.mkdir(parents=True, exist_ok=True)
    corpus = root / "corpus.txt"
    corpus.write_text(text, encoding="utf-8")
    ckdir = root / "checkpoints"
    result = CliRunner(env=CLEAN_ENV).invoke(cli, ["train", str(corpus), "--checkpoint-dir", str(ckdir),
                                      *TINY_TRAIN_ARGS])
    assert result.exit_code == 0, (result.stderr, result.exception)
    run = TrainedRun(dir=ckdir, latest=ckdir / "latest.npz", best=ckdir / "best.npz",
                     corpus=corpus, text=text)
    assert run.latest.is_file() and run.best.is_file()
    return run


@pytest.fixture(scope="session")
def trained(tmp_path_factory, corpus_text) -> TrainedRun:
    """A tiny model trained once on the (non-ASCII) corpus.  Treat it as
    read-only: copy it before doing anything that might change it."""
    return _train_once(tmp_path_factory.mktemp("trained"), corpus_text)


@pytest.fixture(scope="session")
def trained_ascii(tmp_path_factory) -> TrainedRun:
    """A tiny model whose vocabulary is pure ASCII, so bytes == characters."""
    return _train_once(tmp_path_factory.mktemp("trained_ascii"),
                       make_corpus(seed=1, non_ascii=False))


@pytest.fixture
def fake_clock(monkeypatch):
    """time.perf_counter replaced by a clock that moves 1 ms a reading, from
    10^6 s: a run's limits and speeds then hold whatever this machine's
    uptime or load.  Yields the list holding the time now."""
    now = [1e6]

    def perf_counter():
        now[0] += 0.001
        return now[0]
    import time
    monkeypatch.setattr(time, "perf_counter", perf_counter)
    return now
