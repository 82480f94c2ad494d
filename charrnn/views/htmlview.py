"""One self-contained HTML page (no network resources): the text coloured by
the model's surprise and by each chosen unit; hovering a character shows
the model's top predictions for it, its loss and the unit's activation.

Every character of the text is one ``<span class="ch">`` in every section;
unit sections are ``<section class="unit">``.  Opening the page with
``#show=S,I`` shows the tooltip of character I in section S (0 is the
surprise section), as hovering would.
"""
from __future__ import annotations

import html
import json

from charrnn.views import render
from charrnn.views import json_number

CSS = """
body { font-family: sans-serif; margin: 1.5em; color: #222; background: #fff; }
h1 { font-size: 1.25em; margin: 0 0 .2em; }
h2 { font-size: 1em; margin: 1.2em 0 .3em; }
p.meta, p.scale { color: #555; font-size: .9em; margin: .2em 0; }
pre.text { font-family: "DejaVu Sans Mono", monospace; font-size: 14px; line-height: 1.45;
  white-space: pre-wrap; word-break: break-all; margin: 0; padding: .5em;
  border: 1px solid #ddd; border-radius: 4px; }
span.ch { cursor: default; }
span.ch.oov { outline: 1px dashed #999; }
span.ch.on { outline: 2px solid #000; }
#tip { position: fixed; display: none; pointer-events: none; z-index: 10;
  background: #fffff0; border: 1px solid #888; border-radius: 4px; padding: .4em .6em;
  font: 13px "DejaVu Sans Mono", monospace; box-shadow: 2px 2px 6px rgba(0,0,0,.25); }
#tip table { border-collapse: collapse; }
#tip td { padding: 0 .5em 0 0; }
"""

JS = """
const D = JSON.parse(document.getElementById('data').textContent);
const tip = document.getElementById('tip');
function shown(c) {
  if (c === '\\n') return '\\\\n';
  if (c === '\\t') return '\\\\t';
  if (c === ' ') return '\\u2423';
  return c;
}
function fmt(v, d) { return (v === null || v === undefined) ? '\\u2013' : v.toFixed(d); }
function esc(s) { return s.replace(/[&<>]/g, m => ({'&':'&amp;','<':'&lt;','>':'&gt;'})[m]); }
function show(span, x, y) {
  const i = +span.dataset.i, sec = span.closest('section');
  const ch = D.text[i];
  let h = '<b>' + esc(shown(ch)) + '</b> at position ' + i;
  if (sec.classList.contains('unit')) {
    const u = D.units[+sec.dataset.k];
    h += '<br>' + esc(u.label) + ' = ' + fmt(u.values[i], 3);
  }
  if (D.oov[i]) {
    h += '<br>not in the vocabulary (skipped)';
  } else if (D.loss[i] === null) {
    h += '<br>context only (not scored)';
  } else {
    h += '<br>loss ' + fmt(D.loss[i], 2) + ' nats; the model expected:<table>';
    for (const [c, p] of D.top[i]) {
      const mark = c === ch ? ' \\u2190' : '';
      h += '<tr><td>' + esc(shown(c)) + '</td><td>' + (100 * p).toFixed(1) + '%' + mark + '</td></tr>';
    }
    h += '</table>';
  }
  tip.innerHTML = h;
  tip.style.display = 'block';
  tip.style.left = Math.min(x + 14, window.innerWidth - tip.offsetWidth - 4) + 'px';
  tip.style.top = Math.min(y + 14, window.innerHeight - tip.offsetHeight - 4) + 'px';
  document.querySelectorAll('span.ch.on').forEach(s => s.classList.remove('on'));
  span.classList.add('on');
}
document.addEventListener('mouseover', e => {
  const s = e.target.closest && e.target.closest('span.ch');
  if (s) show(s, e.clientX, e.clientY); else tip.style.display = 'none';
});
const secs = document.querySelectorAll('section');
const n = document.querySelectorAll('section.unit').length;
document.getElementById('status').textContent =
  n + ' unit' + (n === 1 ? '' : 's') + ', ' + D.text.length + ' characters';
const m = /show=(\\d+),(\\d+)/.exec(location.hash);
if (m && secs[+m[1]]) {
  const s = secs[+m[1]].querySelectorAll('span.ch')[+m[2]];
  if (s) { const r = s.getBoundingClientRect(); show(s, r.right, r.bottom); }
}
"""


def _spans(text: str, values, scale: str, oov) -> str:
    parts = []
    for i, (ch, rgb) in enumerate(zip(text, render.colours(values, scale))):
        cls = "ch oov" if oov[i] else "ch"
        style = ""
        if rgb is not None:
            fg = "#fff" if render.dark(rgb) else "#000"
            style = f' style="background:{render.cube_hex(rgb)};color:{fg}"'
        parts.append(f'<span class="{cls}" data-i="{i}"{style}>{html.escape(ch)}</span>')
    return "".join(parts)


def _num(v, digits=4):          # rounded for the view's JSON and page
    return json_number(v, digits)


def page(view: dict) -> str:
    """The HTML page for a cells view (see api.verbs.cells for its keys)."""
    text = view["text"]
    oov = [bool(x) for x in view["oov_mask"]]
    loss = [_num(v) for v in view["surprise"]["losses"]]
    units = [{"label": u["label"], "values": [_num(v) for v in u["values"]]} for u in view["units"]]
    data = {"text": text, "loss": loss, "oov": oov, "top": view["predictions_all"],
            "units": units}
    blob = json.dumps(data, ensure_ascii=True).replace("<", "\\u003c")
    title = f"charrnn: inside {view['checkpoint']}"
    s = view["surprise"]
    mean = (f"{s['nats_per_char']:.3f} nats/char over {s['chars_scored']:,} characters"
            if s["nats_per_char"] is not None else "nothing scored")
    out = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title>", f"<style>{CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f'<p class="meta">{html.escape(view["model_summary"])} &middot; '
        f'<span id="status">(scripts off)</span> &middot; hover a character for the '
        f"model's predictions</p>",
        '<section class="surprise">',
        f"<h2>surprise: loss on each character ({html.escape(mean)})</h2>",
        f'<p class="scale">white 0 nats &rarr; yellow {render.SURPRISE_CAP / 2:g} &rarr; '
        f"red {render.SURPRISE_CAP:g}+ nats</p>",
        f'<pre class="text">{_spans(text, loss, "heat", oov)}</pre></section>',
    ]
    for k, u in enumerate(view["units"]):
        why = (f"follows <b>{html.escape(u['feature'])}</b>, r = {u['r']:+.2f}"
               if u.get("feature") else "no feature varies in this text")
        out += [
            f'<section class="unit" data-k="{k}" data-layer="{u["layer"]}" '
            f'data-unit="{u["unit"]}">',
            f"<h2>{html.escape(u['label'])}: {why}</h2>",
            '<p class="scale">blue &minus;1 &rarr; white 0 &rarr; red +1</p>',
            f'<pre class="text">{_spans(text, units[k]["values"], "diverging", oov)}</pre>'
            "</section>",
        ]
    out += ['<div id="tip"></div>',
            f'<script type="application/json" id="data">{blob}</script>',
            f"<script>{JS}</script>", "</body></html>"]
    return "\n".join(out) + "\n"
