"""`charrnn export`: the model as one self-contained HTML page.

The page's JavaScript forward pass is checked against charrnn's own in
headless Chromium (the page answers a `#test=<JSON>` fragment by writing
JSON into <pre id="charrnn-test">): next-character probabilities within
1e-4 for rnn, lstm and gru with 2 layers, greedy text equal to
`charrnn sample --argmax`, the form's streaming, Stop and refusals, and its
layout at phone width.  Without Chromium those tests skip and say why."""
from __future__ import annotations

import base64
import html
import json
import re
import struct
import urllib.parse
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from charrnn.api.verbs import load_model
from charrnn.cli.commands import cli
from charrnn.generate.sample import prime_state, probabilities
from charrnn.nn.model import ModelConfig, init_params
from charrnn.views import export as ex

from conftest import CLEAN_ENV
from helpers import assert_one_line_error, charrnn, needs_chromium, ROOT, run_chromium

TEXT = 'the quick brown fox jumps over the lazy dog. <b>"a" & z</b>\n' * 60
PRIME = "the "
CELLS = ("rnn", "lstm", "gru")


def invoke(*args):
    return CliRunner(env=CLEAN_ENV).invoke(cli, [str(a) for a in args])


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """{cell: checkpoint folder}: 2-layer models trained briefly on TEXT (the
    lstm with a learned embedding, so both input paths are covered; the rnn
    in float64, so both weight encodings are), enough for greedy text to be
    more than one repeated character."""
    root = tmp_path_factory.mktemp("export")
    corpus = root / "text.txt"
    corpus.write_text(TEXT, encoding="utf-8")
    out = {}
    for cell in CELLS:
        d = root / cell
        extra = {"lstm": ["--embed-size", "6"], "rnn": ["--dtype", "float64"]}.get(cell, [])
        r = invoke("train", corpus, "--model", cell, "--num-layers", 2, "--hidden-size", 16,
                   "--seq-len", 16, "--batch-size", 8, "--max-iters", 150, "--eval-every", 50,
                   "--lr", 0.01, "--seed", 3, "--checkpoint-dir", d, "--quiet", *extra)
        assert r.exit_code == 0, r.output
        out[cell] = d
    return out


@pytest.fixture(scope="module")
def pages(runs, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("pages")
    out = {}
    for cell, d in runs.items():
        out[cell] = root / f"{cell}.html"
        r = invoke("export", out[cell], "--checkpoint-dir", d)
        assert r.exit_code == 0, r.output
        assert r.stdout == ""
        assert r.stderr.startswith(f"wrote {out[cell]} (") and f"{cell}, 2 layers x 16 units" in r.stderr
    return out


def ask(page: Path, query: dict, *flags) -> dict:
    """Open page#test=<query> in headless Chromium; the page's JSON answer."""
    url = f"{page.as_uri()}#test={urllib.parse.quote(json.dumps(query))}"
    r = run_chromium(*flags, "--dump-dom", url)
    assert r.returncode == 0, r.stderr[-2000:]
    m = re.search(r'<pre id="charrnn-test"[^>]*>(.*?)</pre>', r.stdout, re.S)
    assert m and m.group(1), r.stdout[-3000:] + r.stderr[-3000:]
    return json.loads(html.unescape(m.group(1)))


def embedded_model(page_text: str) -> dict:
    m = re.search(r'<script type="application/json" id="charrnn-model">(.*?)</script>', page_text,
                  re.S)
    return json.loads(m.group(1))


# ------------------------------------------------------------ the encoding
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_matrices_round_trip_through_base64(dtype):
    a = np.random.default_rng(0).standard_normal((5, 7)).astype(dtype)
    d = ex.encode_array(a)
    assert d["shape"] == [5, 7] and d["dtype"] == dtype
    raw = base64.b64decode(d["data"])
    size = 8 if dtype == "float64" else 4
    assert len(raw) == a.size * size
    # little-endian, C order: the page reads the bytes exactly so
    assert raw[:size] == struct.pack("<d" if size == 8 else "<f", a[0, 0])
    assert raw[size:2 * size] == struct.pack("<d" if size == 8 else "<f", a[0, 1])
    np.testing.assert_array_equal(ex.decode_array(d), a)


def test_page_embeds_every_weight_and_the_vocabulary_exactly():
    vocab = "\x00\n <>&\"'/é😀"              # characters that HTML, JSON or JS could mangle
    cfg = ModelConfig(vocab_size=len(vocab), model="gru", hidden_size=4, num_layers=2,
                      embed_size=3)
    params = init_params(cfg, np.random.default_rng(1))
    text = ex.page(cfg, params, vocab, title="t </script> & <b>", summary="s")
    data = embedded_model(text)
    assert data["vocab"] == list(vocab)
    assert (data["cell"], data["layers"], data["hidden"], data["embed"]) == ("gru", 2, 4, 3)
    assert sorted(data["params"]) == sorted(params)
    for name, a in params.items():
        np.testing.assert_array_equal(ex.decode_array(data["params"][name]), a)
    assert text.count("</script>") == 2               # the two real scripts: nothing broke out
    assert "<title>t &lt;/script&gt; &amp; &lt;b&gt;</title>" in text
    assert "@@" not in text


class _Census(HTMLParser):
    """Tags, labels and external references of a page."""

    def __init__(self):
        super().__init__()
        self.tags, self.label_for, self.controls, self.external = [], set(), [], []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append((tag, a))
        if tag == "label" and a.get("for"):
            self.label_for.add(a["for"])
        if tag in ("input", "textarea", "select"):
            self.controls.append(a.get("id"))
        for key in ("src", "href"):
            if a.get(key):
                self.external.append((tag, a[key]))
        if tag == "link":
            self.external.append((tag, a))


def test_page_is_self_contained_and_labelled(pages, runs):
    text = pages["gru"].read_text(encoding="utf-8")
    assert "<title>charrnn: gru on text.txt</title>" in text
    assert str(runs["gru"].parent) not in text        # no folder of the user's in a shared page
    census = _Census()
    census.feed(text)
    assert census.external == []
    assert not re.search(r"https?://|@import|url\(|fetch\(|XMLHttpRequest", text)
    assert ("html", {"lang": "en"}) in census.tags
    assert ("meta", {"name": "viewport", "content": "width=device-width, initial-scale=1"}) \
        in census.tags
    assert set(census.controls) == {"prime", "len", "temperature", "top-k", "top-p", "seed",
                                    "greedy"}
    assert set(census.controls) <= census.label_for                # every control has a label
    roles = {a.get("role") for _, a in census.tags}
    assert {"status", "alert"} <= roles


# ---------------------------------------------------------- in the browser
@needs_chromium
@pytest.mark.parametrize("cell", CELLS)
def test_page_predicts_as_charrnn_does(cell, runs, pages):
    """Probabilities within 1e-4 of charrnn's (with and without filters), and
    greedy text equal to `charrnn sample --argmax`."""
    model, ck = load_model(str(runs[cell] / "best.npz"))
    queries = [{"prime": PRIME}, {"prime": "<b>\"a"},
               {"prime": "the lazy", "temperature": 0.7, "top_k": 5, "top_p": 0.9},
               {"prime": ""}]
    res = ask(pages[cell], {"probs": queries,
                            "generate": [{"prime": PRIME, "len": 100, "greedy": True}]})
    assert res["vocab"] == list(ck.vocab)
    assert model.params["out.W"].dtype == (np.float64 if cell == "rnn" else np.float32)
    for q, got in zip(queries, res["probs"]):
        logits, _ = prime_state(model, ck.vocab, q["prime"] or "\n")
        want = probabilities(logits[0], q.get("temperature", 1.0), q.get("top_k"), q.get("top_p"))
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-4, err_msg=repr(q))
    assert sum(np.array(res["probs"][2]) == 0) >= len(ck.vocab) - 5      # top-k 5 dropped the rest
    r = charrnn("sample", "--checkpoint", runs[cell] / "best.npz", "--argmax", "--len", 100,
                "--prime", PRIME, "--no-echo-prime", "--no-newline")
    assert r.returncode == 0, r.stderr
    assert len(r.stdout) == 100 and len(set(r.stdout)) > 3        # not one repeated character
    assert res["generate"][0] == r.stdout


@needs_chromium
def test_form_streams_a_seeded_sample_and_stops(pages):
    page = pages["lstm"]
    form = {"prime": PRIME, "len": "300", "seed": "7", "temperature": "0.8", "top-p": "0.95"}
    one = ask(page, {"form": form}, "--virtual-time-budget=60000")["form"]
    assert one["error"] == "" and one["status"].startswith("Done: 300 characters (seed 7)")
    assert one["text"].startswith(PRIME) and len(one["text"]) == len(PRIME) + 300
    assert set(one["text"]) <= set(TEXT)
    again = ask(page, {"form": form}, "--virtual-time-budget=60000")["form"]
    assert again["text"] == one["text"]                             # the seed fixes the text
    other = ask(page, {"form": {**form, "seed": "8"}}, "--virtual-time-budget=60000")["form"]
    assert other["text"] != one["text"]
    # Greedy through the form ignores the sampling fields, even unusable ones
    greedy = ask(page, {"form": {**form, "greedy": True, "temperature": "0", "seed": "1.5"},
                        "generate": [{"prime": PRIME, "len": 300, "greedy": True}]},
                 "--virtual-time-budget=60000")
    assert greedy["form"]["status"].startswith("Done: 300 characters (greedy)")
    assert greedy["form"]["text"] == PRIME + greedy["generate"][0]
    for keys in (False, True):      # the buttons, then Ctrl+Enter in the prime and Escape
        stopped = ask(page, {"form": {**form, "len": "100000000"}, "stop_after": 50,
                             "keys": keys}, "--virtual-time-budget=60000")["form"]
        m = re.fullmatch(r"Stopped after (\d+) characters\.", stopped["status"])
        assert m, (keys, stopped["status"])
        assert 50 <= int(m.group(1)) < 100_000_000
        assert len(stopped["text"]) == len(PRIME) + int(m.group(1))


@needs_chromium
@pytest.mark.parametrize("form, field, words", [
    ({"prime": "the ¤"}, "prime", "1 character(s) the model never saw"),
    ({"temperature": "0"}, "temperature", "greater than 0"),
    ({"len": "-3"}, "len", "whole number"),
    ({"top-k": "0"}, "top-k", "1 or more"),
    ({"top-p": "1.5"}, "top-p", "(0, 1]"),
    ({"seed": "1.5"}, "seed", "whole number"),
])
def test_form_refuses_bad_settings_and_says_why(pages, form, field, words):
    res = ask(pages["rnn"], {"form": form}, "--virtual-time-budget=5000")["form"]
    assert res["invalid"] == [field]
    assert words in res["error"]
    assert res["text"] == ""


@needs_chromium
@pytest.mark.parametrize("width", [320, 360])
def test_page_fits_a_phone_and_labels_every_control(pages, tmp_path, width):
    """The page in a phone-wide frame (headless Chromium's window is at
    least 500 px wide): no sideways scrolling, every control labelled and
    large enough to hit."""
    query = urllib.parse.quote(json.dumps({"layout": True}))
    frame = tmp_path / "phone.html"
    frame.write_text(
        f'<!DOCTYPE html><html><body><pre id="r"></pre><iframe id="f" style="width:{width}px;'
        f'height:700px;border:0" src="{pages["gru"].as_uri()}#test={query}"></iframe><script>'
        "document.getElementById('f').addEventListener('load', () => {"
        "document.getElementById('r').textContent = document.getElementById('f')"
        ".contentDocument.getElementById('charrnn-test').textContent; });</script></body></html>",
        encoding="utf-8")
    r = run_chromium("--allow-file-access-from-files", "--dump-dom", frame.as_uri())
    assert r.returncode == 0, r.stderr[-2000:]
    m = re.search(r'<pre id="r">(.*?)</pre>', r.stdout, re.S)
    assert m and m.group(1), r.stdout[-2000:]
    lay = json.loads(html.unescape(m.group(1)))["layout"]
    assert lay["innerWidth"] == width
    assert lay["scrollWidth"] <= lay["innerWidth"]                  # no sideways scrolling
    assert lay["unlabelled"] == []
    assert lay["smallest_target"] >= 24                             # px, a fingertip's aim


# --------------------------------------------------------------- refusals
def test_the_title_names_at_most_three_training_files(runs, tmp_path):
    corpus = tmp_path / "part.txt"
    corpus.write_text(TEXT, encoding="utf-8")
    r = invoke("train", "-", corpus, corpus, corpus, "--hidden-size", 8, "--max-iters", 2,
               "--eval-every", 2, "--checkpoint-dir", tmp_path / "ck", "--quiet")
    assert r.exit_code == 0, r.output
    assert invoke("export", tmp_path / "m.html", "--checkpoint-dir", tmp_path / "ck").exit_code == 0
    text = (tmp_path / "m.html").read_text(encoding="utf-8")
    assert "<title>charrnn: rnn on &lt;stdin&gt;, part.txt, part.txt and 1 more</title>" in text


def test_export_refuses_to_replace_a_file_unless_told(runs, tmp_path):
    out = tmp_path / "model.html"
    out.write_text("mine", encoding="utf-8")
    r = invoke("export", out, "--checkpoint-dir", runs["rnn"])
    line = assert_one_line_error(r, 1)
    assert "already exists" in line and "--overwrite" in line
    assert out.read_text(encoding="utf-8") == "mine"
    r = invoke("export", out, "--checkpoint-dir", runs["rnn"], "--overwrite")
    assert r.exit_code == 0, r.output
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_export_says_what_is_missing(tmp_path):
    r = invoke("export", tmp_path / "m.html", "--checkpoint-dir", tmp_path / "none")
    assert "no checkpoint in" in assert_one_line_error(r, 1)
    r = invoke("export", tmp_path / "m.html", "--checkpoint", tmp_path / "nope.npz")
    assert_one_line_error(r, 1)
    assert not (tmp_path / "m.html").exists()


def test_export_to_a_missing_folder_leaves_nothing(runs, tmp_path):
    r = invoke("export", tmp_path / "no" / "m.html", "--checkpoint-dir", runs["rnn"])
    assert "cannot write" in assert_one_line_error(r, 1)
    assert list(tmp_path.iterdir()) == []


def test_export_refuses_a_model_too_large_for_a_browser(runs, tmp_path, monkeypatch):
    model, _ = load_model(str(runs["gru"] / "best.npz"))
    n = ex.weight_bytes(model.params)
    monkeypatch.setattr(ex, "MAX_WEIGHT_BYTES", n - 1)
    r = invoke("export", tmp_path / "m.html", "--checkpoint-dir", runs["gru"])
    line = assert_one_line_error(r, 1)
    assert "too large for a browser page" in line and "--hidden-size" in line
    assert not (tmp_path / "m.html").exists()
    monkeypatch.setattr(ex, "MAX_WEIGHT_BYTES", n)
    r = invoke("export", tmp_path / "m.html", "--checkpoint-dir", runs["gru"])
    assert r.exit_code == 0, r.output


def test_the_limit_is_what_the_docs_say():
    doc = (ROOT / "docs" / "export.md").read_text(encoding="utf-8")
    assert f"{ex.MAX_WEIGHT_BYTES >> 20} MB of weights" in doc
