"""`charrnn inspect`: loss curves, schedule, plots, and the hidden-unit /
surprise views in the terminal, in plain text and as an HTML page."""
from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from charrnn.store import checkpoint as ckpt
from charrnn.cli.commands import cli
from charrnn.views.curves import BOTH_MARK, TRAIN_MARK, VAL_MARK, text_chart
from charrnn.views.render import strip_ansi

from conftest import TINY_TRAIN_ARGS
from helpers import charrnn_command, needs_chromium, run_chromium
from helpers import QUOTE_TEXT, QUOTE_UNIT, QUOTE_VOCAB, quote_lstm


def invoke(runner, *args, **kw):
    return runner.invoke(cli, [str(a) for a in args], **kw)


@pytest.fixture(scope="module")
def quote_ck(tmp_path_factory) -> Path:
    """The hand-built quote LSTM saved with a short history and a schedule."""
    model = quote_lstm()
    path = tmp_path_factory.mktemp("quote") / "q.npz"
    hist = {"iter": [100, 200, 300, 400], "chars": [1e4, 2e4, 3e4, 4e4],
            "wall_time": [1.0, 2.0, 3.0, 4.0], "train_loss": [3.0, 2.5, 2.2, 2.0],
            "val_loss": [2.9, 2.4, 2.3, 2.35], "lr": [2e-3, 2e-3, 1e-3, 5e-4]}
    train = {"optimizer": "adam", "lr": 2e-3, "clip": 5.0, "clip_mode": "norm",
             "batch_size": 4, "seq_len": 8, "seed": 1, "schedule": "cosine",
             "warmup_iters": 50}
    ck = ckpt.Checkpoint(config={"model": model.cfg.to_dict(), "train": train}, vocab=QUOTE_VOCAB,
                         params=model.params, state={"iteration": 400, "chars_seen": 40000,
                                                     "wall_time": 4.0},
                         history={k: np.array(v, dtype=np.float64) for k, v in hist.items()})
    ckpt.save(str(path), ck)
    return path


# ------------------------------------------------------------------ curves
def test_text_chart_puts_points_where_they_belong():
    hist = {"iter": [0, 50, 100], "train_loss": [4.0, 3.0, 2.0], "val_loss": [None, 3.5, 2.0]}
    lines = text_chart(hist, width=11, height=5)
    rows = lines[1:6]
    assert rows[0].startswith("4.000 |") and rows[-1].startswith("2.000 |")
    plot = [r.split("|", 1)[1].ljust(11) for r in rows]
    assert plot[0][0] == TRAIN_MARK                      # (0, 4.0): top left
    assert plot[4][10] == BOTH_MARK                      # both end at (100, 2.0)
    assert plot[2][5] == TRAIN_MARK                      # (50, 3.0): middle
    assert VAL_MARK in "".join(p[5] for p in plot[:2])   # (50, 3.5): above the middle
    assert not any(p[:5].strip(TRAIN_MARK + " ") for p in plot)  # no val before 50
    assert lines[-1].split() == ["0", "100", "iterations"]


def test_text_chart_with_nothing_or_one_point():
    assert text_chart({}) == []
    assert text_chart({"iter": [5], "train_loss": [float("nan")], "val_loss": [None]}) == []
    one = text_chart({"iter": [5], "train_loss": [2.0], "val_loss": [2.0]}, width=10, height=4)
    assert sum(r.count(BOTH_MARK) for r in one[1:5]) == 1


def test_inspect_shows_curves_schedule_and_speed(runner, quote_ck):
    res = invoke(runner, "inspect", quote_ck)
    assert res.exit_code == 0, res.output
    out = res.stdout
    s = json.loads(invoke(runner, "inspect", quote_ck, "--json").stdout)
    assert s["schedule"]["name"] == "cosine"
    assert s["schedule"]["settings"] == {"warmup_iters": 50}
    assert (s["schedule"]["lr_first"], s["schedule"]["lr_last"]) == (2e-3, 5e-4)
    sched = [l for l in out.splitlines() if l.startswith("schedule")]
    assert sched == ["schedule     cosine (warmup_iters 50), lr 0.002 -> 0.0005 so far "
                     "(range 0.0005 to 0.002)"]
    assert "optimizer    adam, lr 0.002, clip norm 5.0" in out
    assert f"{s['progress']['chars_per_s']:,.0f} chars/s" in out and "4 s" in out
    assert [l for l in out.splitlines() if l.startswith("best val")] == [
        f"best val     2.3000 nats/char ({2.3 / math.log(2):.4f} bits/char) at iteration 300"]
    chart = out[out.index("loss, nats/char"):].split("\n\n")[0].splitlines()   # the diagnosis follows
    assert chart[1].startswith("3.000 |") and chart[-1].split()[-1] == "iterations"
    assert s["history"]["val_loss"] == [2.9, 2.4, 2.3, 2.35]


def test_inspect_of_a_trained_run_says_its_schedule(runner, trained, corpus_file, tmp_path):
    res = invoke(runner, "inspect", trained.latest)
    s = json.loads(invoke(runner, "inspect", trained.latest, "--json").stdout)
    # --max-iters 30: the budget plan, decaying to 5 % at iteration 30
    assert s["schedule"]["name"].startswith("budget: linear decay to 5% of lr at iteration 30 ")
    assert s["schedule"]["lr_last"] == pytest.approx(0.05 * s["train"]["lr"])
    assert "schedule     budget: linear decay to 5% of lr at iteration 30" in res.stdout
    n_points = len(s["history"]["iter"])
    assert n_points == 3 and "loss, nats/char" in res.stdout
    # the step schedule with the rnn's lr_decay 1 is a constant rate
    d = tmp_path / "step"
    assert invoke(runner, "train", corpus_file, "--checkpoint-dir", d, *TINY_TRAIN_ARGS,
                  "--lr-schedule", "step").exit_code == 0
    s = json.loads(invoke(runner, "inspect", d / "latest.npz", "--json").stdout)
    assert s["schedule"]["name"] == "constant"
    out = invoke(runner, "inspect", d / "latest.npz").stdout
    assert f"schedule     constant, lr {s['train']['lr']:g} throughout" in out


@pytest.mark.parametrize("ext,magic", [(".png", b"\x89PNG\r\n\x1a\n"), (".svg", b"<svg")])
def test_plot_writes_an_image(runner, quote_ck, tmp_path, ext, magic):
    pytest.importorskip("matplotlib")
    out = tmp_path / f"curves{ext}"
    res = invoke(runner, "inspect", quote_ck, "--plot", out)
    assert res.exit_code == 0, res.output
    assert res.stderr == f"wrote {out}\n"
    assert "best val" in res.stdout
    data = out.read_bytes()
    assert magic in data[:400]
    if ext == ".svg":
        assert b"validation" in data and b"iteration" in data


def test_plot_without_matplotlib_names_the_extra(runner, quote_ck, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)     # import fails
    res = invoke(runner, "inspect", quote_ck, "--plot", tmp_path / "c.png")
    assert res.exit_code == 1 and res.stdout == ""
    assert res.stderr == "charrnn: error: --plot needs matplotlib: pip install 'charrnn[plot]'\n"
    assert not (tmp_path / "c.png").exists()


def test_plot_refuses_unknown_formats(runner, quote_ck, tmp_path):
    res = invoke(runner, "inspect", quote_ck, "--plot", tmp_path / "c.gif")
    assert res.exit_code == 1 and ".png" in res.stderr and len(res.stderr.splitlines()) == 1


# ------------------------------------------------------------ cells, text
CELL_TEXT = 'Ωmega said "go (now)"\tplease\n\nthen “left”' + ' "done".\n'


def test_cells_ansi_holds_the_text_once_per_unit(runner, quote_ck):
    res = invoke(runner, "inspect", quote_ck, "--cells", QUOTE_TEXT, "--top", "3",
                 "--color", "always")
    assert res.exit_code == 0, res.output
    assert "\x1b[38;5;" in res.stdout
    plain = strip_ansi(res.stdout)
    assert plain.count(QUOTE_TEXT) == 3
    headers = [l for l in plain.splitlines() if l.startswith("layer ")]
    assert headers[0].startswith(f"layer 0 c[{QUOTE_UNIT}]: follows quote (r = +0.9")


def test_cells_ansi_keeps_unknown_characters(runner, quote_ck):
    res = invoke(runner, "inspect", quote_ck, "--cells", CELL_TEXT, "--unit", "1", "--unit", "2",
                 "--surprise", "--color", "always")
    assert res.exit_code == 0, res.output
    plain = strip_ansi(res.stdout)
    assert plain.count(CELL_TEXT) == 3               # surprise + two units
    assert "outside the vocabulary" in plain


def test_cells_plain_markers_when_not_a_terminal(runner, quote_ck):
    for env in ({}, {"NO_COLOR": "1"}):
        res = invoke(runner, "inspect", quote_ck, "--cells", "said \"hi\" ok", "--top", "1",
                     env=env)
        assert res.exit_code == 0
        assert "\x1b" not in res.stdout
        lines = res.stdout.splitlines()
        i = lines.index('said "hi" ok')
        assert len(lines[i + 1]) == len('said "hi" ok')    # one marker per character
        assert set(lines[i + 1]) <= set("▁▂▃▄▅▆▇█ ")


def test_cells_ansi_on_a_real_terminal(quote_ck, tmp_path):
    """--color auto colours when stdout is a terminal (a pty here)."""
    (exe,) = charrnn_command()
    import pty
    master, slave = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    p = subprocess.run([exe, "inspect", str(quote_ck), "--cells", "a \"b\" c", "--top", "1"],
                       stdout=slave, stderr=subprocess.PIPE, env=env, timeout=60)
    os.close(slave)
    out = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    assert p.returncode == 0, p.stderr
    text = out.decode()
    assert "\x1b[38;5;" in text and 'a "b" c' in strip_ansi(text).replace("\r", "")


def test_surprise_lists_predictions_as_in_json(runner, quote_ck):
    args = ["inspect", quote_ck, "--cells", QUOTE_TEXT, "--surprise", "--top", "0",
            "--at", "4", "--at", "9", "--top-k", "3"]
    view = json.loads(invoke(runner, *args, "--json").stdout)
    assert view["units"] == []
    assert [p["position"] for p in view["predictions"]] == [4, 9]
    res = invoke(runner, *args)
    assert res.exit_code == 0, res.output
    for p in view["predictions"]:
        assert len(p["top"]) == 3 and p["char"] == QUOTE_TEXT[p["position"]]
        probs = [q for _, q in p["top"]]
        assert probs == sorted(probs, reverse=True)
        line = [l for l in res.stdout.splitlines() if l.strip().startswith(f"{p['position']} ")]
        assert len(line) == 1
        assert f"{p['loss']:.2f} nats" in line[0]
        assert f"{p['top'][0][0]!r} {100 * p['top'][0][1]:.1f}%" in line[0]
    losses = view["surprise"]["losses"]
    assert losses[0] is None and all(v is not None for v in losses[1:])
    scored = [v for v in losses if v is not None]
    assert view["surprise"]["nats_per_char"] == pytest.approx(np.mean(scored), abs=1e-4)
    # --at alone implies --surprise
    alone = invoke(runner, "inspect", quote_ck, "--cells", QUOTE_TEXT, "--top", "0", "--at", "4")
    assert alone.stdout.startswith("surprise: loss on each character")
    assert "top predictions" in alone.stdout
    # without --at: the most surprising characters
    view = json.loads(invoke(runner, "inspect", quote_ck, "--cells", QUOTE_TEXT, "--surprise",
                             "--json").stdout)
    worst = sorted(losses[1:], reverse=True)[:5]
    assert sorted((p["loss"] for p in view["predictions"]), reverse=True) == worst


@pytest.mark.parametrize("args,message", [
    (["--unit", "3"], "--unit needs --cells"),
    (["--surprise"], "--surprise needs --cells"),
    (["--cells", "ab", "--cells-file", "x"], "not both"),
    (["--cells", "said", "--unit", "99"], "--unit 99 does not exist"),
    (["--cells", "said", "--layer", "1"], "--layer 1 does not exist"),
    (["--cells", "said", "--at", "4"], "--at 4 is outside the text"),
    (["--cells", "said", "--plot", "x.png"], "--plot"),
])
def test_cells_usage_errors_are_one_line_exit_2(runner, quote_ck, args, message):
    res = invoke(runner, "inspect", quote_ck, *args)
    assert res.exit_code == 2, res.output
    assert res.stdout == "" and len(res.stderr.splitlines()) == 1
    assert message in res.stderr


def test_cells_state_c_needs_an_lstm(runner, trained):
    res = invoke(runner, "inspect", trained.latest, "--cells", "the", "--state", "c")
    assert res.exit_code == 2 and "needs an lstm" in res.stderr


def test_cells_file_and_stdin(runner, quote_ck, tmp_path):
    f = tmp_path / "t.txt"
    f.write_text(QUOTE_TEXT, encoding="utf-8")
    a = json.loads(invoke(runner, "inspect", quote_ck, "--cells-file", f, "--json").stdout)
    b = json.loads(invoke(runner, "inspect", quote_ck, "--cells-file", "-", "--json",
                          input=QUOTE_TEXT).stdout)
    assert a["text"] == b["text"] == QUOTE_TEXT and a["units"] == b["units"]


# ------------------------------------------------------------------ HTML
class _Census(HTMLParser):
    """Counts character spans per section of the page, and what #tip says."""

    def __init__(self):
        super().__init__()
        self.sections, self.tip, self._in_tip, self.status, self._in_status = [], "", 0, "", 0
        self.external = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        cls = (a.get("class") or "").split()
        for key in ("src", "href"):
            if a.get(key):
                self.external.append(a[key])
        if tag == "section":
            self.sections.append({"kind": cls[0] if cls else "", "chars": 0, "text": ""})
        elif tag == "span" and "ch" in cls and self.sections:
            self.sections[-1]["chars"] += 1
            self._span = True
        if self._in_tip:
            self._in_tip += 1
        if a.get("id") == "tip":
            self._in_tip = 1
        if a.get("id") == "status":
            self._in_status = 1

    def handle_endtag(self, tag):
        if self._in_tip:
            self._in_tip -= 1
        self._in_status = 0

    def handle_data(self, d):
        if self._in_tip:
            self.tip += d + " "
        if self._in_status:
            self.status += d


def test_html_page_is_self_contained(runner, quote_ck, tmp_path):
    out = tmp_path / "view.html"
    res = invoke(runner, "inspect", quote_ck, "--cells", CELL_TEXT, "--top", "2", "--html", out)
    assert res.exit_code == 0, res.output
    page = out.read_text(encoding="utf-8")
    census = _Census()
    census.feed(page)
    assert census.external == []
    assert not re.search(r"https?://|@import|url\(", page)
    assert [s["kind"] for s in census.sections] == ["surprise", "unit", "unit"]
    assert all(s["chars"] == len(CELL_TEXT) for s in census.sections)


@needs_chromium
def test_html_renders_in_chromium(runner, quote_ck, tmp_path):
    out = tmp_path / "view.html"
    res = invoke(runner, "inspect", quote_ck, "--cells", CELL_TEXT, "--top", "3", "--html", out,
                 "--json")
    assert res.exit_code == 0, res.output
    view = json.loads(res.stdout)
    pos = CELL_TEXT.index("go")
    # section 1 is the first unit; #show= opens the hover tooltip of a character
    dom = run_chromium("--dump-dom", f"{out.as_uri()}#show=1,{pos}")
    assert dom.returncode == 0, dom.stderr[-2000:]
    census = _Census()
    census.feed(dom.stdout)
    assert census.status == f"3 units, {len(CELL_TEXT)} characters"   # the script ran
    assert [s["kind"] for s in census.sections] == ["surprise", "unit", "unit", "unit"]
    assert [s["chars"] for s in census.sections] == [len(CELL_TEXT)] * 4
    u = view["units"][0]
    tip = " ".join(census.tip.split())
    assert f"layer 0 c[{u['unit']}] = {u['values'][pos]:.3f}" in tip
    loss = view["surprise"]["losses"][pos]
    assert f"loss {loss:.2f} nats" in tip
    for c, p in view["predictions_all"][pos]:
        assert f"{c} {100 * p:.1f}%" in tip
    shot = run_chromium("--window-size=900,700", f"--screenshot={tmp_path / 'shot.png'}",
                     f"{out.as_uri()}#show=1,{pos}")
    assert shot.returncode == 0, shot.stderr[-2000:]
    assert (tmp_path / "shot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_inspect_names_the_step_decay_schedule_and_its_rates(runner, corpus_file, tmp_path):
    d = tmp_path / "run"
    r = invoke(runner, "train", corpus_file, "--checkpoint-dir", d, "--hidden-size", "8",
               "--batch-size", "4", "--seq-len", "8", "--lr", "0.01", "--lr-decay", "0.5",
               "--lr-decay-every", "10", "--warmup", "3", "--eval-every", "10",
               "--max-iters", "30", "--quiet")
    assert r.exit_code == 0, r.stderr
    res = invoke(runner, "inspect", d / "latest.npz")
    s = json.loads(invoke(runner, "inspect", d / "latest.npz", "--json").stdout)
    assert s["schedule"]["name"] == "step decay"
    assert s["schedule"]["settings"] == {"warmup": 3, "lr_decay": 0.5, "lr_decay_every": 10}
    # history records the rate of each evaluation's last step: iterations 9, 19, 29
    assert s["history"]["lr"] == pytest.approx([0.01, 0.005, 0.0025])
    assert ("schedule     step decay (warmup 3, lr_decay 0.5, lr_decay_every 10), "
            "lr 0.01 -> 0.0025 so far (range 0.0025 to 0.01)") in res.stdout
