"""Colouring text by values: ANSI for terminals, markers for pipes."""
from __future__ import annotations

import io
import re

import numpy as np
import pytest

from charrnn.views import render

TEXTS = ["plain ascii", "two\nlines\n", "tabs\tand  spaces \n\nblank lines",
         "Ωmega café 日本語 😀 e\u0301\n", "\n", "x"]


@pytest.mark.parametrize("text", TEXTS)
@pytest.mark.parametrize("scale", ["diverging", "heat"])
def test_ansi_has_exactly_the_input_characters(text, scale):
    rng = np.random.default_rng(len(text))
    values = list(rng.uniform(-1.5, 7, len(text)))
    values[0] = float("nan")                               # undefined: no colour
    out = render.ansi(text, values, scale)
    assert render.strip_ansi(out) == text
    assert "\x1b[48;5;" in out or "48;5;" in out or len(text) == 1
    # no background is ever open across a newline, and every colour is closed
    for part in out.split("\n")[:-1]:
        assert part.rfind("\x1b[0m") >= part.rfind("48;5;")
    assert out.count("\x1b[0m") == len(re.findall(r"48;5;\d+m", out))


def test_ansi_colours_follow_the_values():
    out = render.ansi("abc", [-1.0, 0.0, 1.0], "diverging")
    codes = [int(c) for c in re.findall(r"48;5;(\d+)m", out)]
    assert codes == [render.cube_index((0, 0, 5)), 231, render.cube_index((5, 0, 0))]
    heat = render.ansi("ab", [0.0, 100.0], "heat")
    assert [int(c) for c in re.findall(r"48;5;(\d+)m", heat)] == [231, 196]


def test_runs_of_one_colour_share_one_code():
    out = render.ansi("aaaa", [0.5] * 4, "diverging")
    assert out.count("48;5;") == 1 and render.strip_ansi(out) == "aaaa"


def test_plain_markers_one_per_character():
    text = "ab\n\ncd 日e\u0301"
    values = [-1.0, 1.0, 0.0, 0.0, -1.0, 0.2, float("nan"), 1.0, 0.99, 0.0]
    out = render.plain(text, values, -1.0, 1.0).split("\n")
    assert out[0] == "ab" and out[1] == "▁█"
    assert out[2] == ""                                   # blank line: no marker line
    assert out[3] == "cd 日e\u0301"
    # undefined: a space; the wide character: two markers; the combining accent: none
    assert out[4] == "▁▅ ███"
    assert "\x1b" not in "\n".join(out)


def test_plain_trailing_newline_adds_no_marker_line():
    out = render.plain("ab\n", [0.0, 0.0, 0.0], -1, 1)
    assert out == "ab\n▅▅"


def test_use_colour(monkeypatch):
    class Tty(io.StringIO):
        def isatty(self):
            return True
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert render.use_colour("auto", Tty()) is True
    assert render.use_colour("auto", io.StringIO()) is False
    assert render.use_colour("always", io.StringIO()) is True
    assert render.use_colour("never", Tty()) is False
    monkeypatch.setenv("NO_COLOR", "1")
    assert render.use_colour("auto", Tty()) is False


def test_colour_scales_ends_and_middle():
    assert render.diverging_rgb(0.0) == (5, 5, 5)
    assert render.diverging_rgb(1.0) == (5, 0, 0) and render.diverging_rgb(-3.0) == (0, 0, 5)
    assert render.heat_rgb(0.0) == (5, 5, 5)
    assert render.heat_rgb(render.SURPRISE_CAP / 2) == (5, 5, 0)
    assert render.heat_rgb(1e9) == (5, 0, 0)
    assert render.cube_hex((5, 0, 0)) == "#ff0000" and render.cube_hex((0, 0, 0)) == "#000000"
