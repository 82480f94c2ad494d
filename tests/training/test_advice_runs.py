"""Each diagnosis rule on a real (small) run built to trigger it, and a
healthy run that must trigger none.  The runs train on excerpts of the
shipped tiny Shakespeare for a second or two each."""
from __future__ import annotations


import pytest

from charrnn.views import advice
from charrnn.text import data
from charrnn.runs.config import make_train_config
from charrnn.runs.trainer import Trainer
from charrnn.text.corpus import Corpus

from helpers import ROOT

SHAKESPEARE = (ROOT / "corpora" /
               "tinyshakespeare.txt").read_text(encoding="utf-8")


def run(tmp_path, chars, **opts):
    text = SHAKESPEARE[:chars]
    vocab = data.build_vocab(text)
    corpus = Corpus(ids=data.encode(text, vocab), vocab=vocab, sources=["shakespeare.txt"])
    cfg = make_train_config(**opts)
    tr = Trainer(cfg, corpus, str(tmp_path))
    tr.run(progress=False)
    config = {"train": vars(cfg), "data": {"sources": corpus.sources}}
    return [f.rule for f in advice.diagnose(tr.history, config)], tr


RUNS = {
    # a 64-unit GRU without dropout memorises 1,600 characters
    "overfitting": dict(chars=2000, model="gru", hidden_size=64, seq_len=16, batch_size=4,
                        eval_every=20, max_iters=200, val_frac=0.2, dropout=0.0, lr=0.01),
    # one GRU unit cannot hold more than character frequencies
    "underfitting": dict(chars=20000, model="gru", hidden_size=1, seq_len=16, batch_size=8,
                         eval_every=50, max_iters=600, lr=0.05),
    # RMSprop at 0.1 on a vanilla rnn: the validation loss leaps about
    "lr_too_high": dict(chars=20000, model="rnn", hidden_size=64, seq_len=16, batch_size=8,
                        eval_every=25, max_iters=300, lr=0.1, optimizer="rmsprop"),
    "lr_too_low": dict(chars=20000, model="gru", hidden_size=16, seq_len=16, batch_size=8,
                       eval_every=25, max_iters=150, lr=1e-7),
    # a plain vanilla rnn: its gradient is gone 20 characters back
    "vanishing": dict(chars=20000, model="rnn", hidden_size=16, seq_len=16, batch_size=8,
                      eval_every=50, max_iters=300),
    # Adagrad at 0.5 drives the tanh units into their flat ends
    "saturated": dict(chars=20000, model="rnn", hidden_size=32, seq_len=16, batch_size=8,
                      eval_every=25, max_iters=200, lr=0.5),
}


@pytest.mark.parametrize("rule", list(RUNS))
def test_a_run_built_to_trigger_the_rule_does(tmp_path, rule):
    opts = dict(RUNS[rule])
    rules, _ = run(tmp_path, opts.pop("chars"), **opts)
    assert rule in rules, rules


def test_a_healthy_run_triggers_no_rule(tmp_path):
    rules, tr = run(tmp_path, 60000, model="lstm", hidden_size=32, num_layers=1, seq_len=32,
                    batch_size=16, eval_every=25, max_iters=200, dropout=0.0)
    assert rules == []
    assert tr.history["val_loss"][-1] < tr.history["val_loss"][0] - 0.5      # it learned


def test_inspect_prints_the_diagnosis_with_its_command(runner, tmp_path):
    from charrnn.cli.commands import cli
    text = tmp_path / "s.txt"
    text.write_text(SHAKESPEARE[:20000], encoding="utf-8")
    r = runner.invoke(cli, ["train", str(text), "--checkpoint-dir", str(tmp_path / "ck"),
                            "--hidden-size", "16", "--seq-len", "16", "--batch-size", "8",
                            "--eval-every", "50", "--max-iters", "300", "--quiet"])
    assert r.exit_code == 0, r.stderr
    out = runner.invoke(cli, ["inspect", str(tmp_path / "ck" / "latest.npz")]).stdout
    assert "diagnosis    1 problem found" in out
    assert "vanishing: the gradient 20 characters back is" in out
    assert f"try: charrnn train {text} --model lstm --checkpoint-dir checkpoints-next" in out
    assert "health       grad norm" in out
