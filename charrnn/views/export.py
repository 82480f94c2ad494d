"""`charrnn export`: a checkpoint's model as one self-contained HTML page.

The page (template: export_page.html beside this module, shipped as package
data) embeds the vocabulary and every weight matrix, each as base64 of its
little-endian float32 (or float64) bytes, and runs the forward pass of
charrnn/nn/cells.py in JavaScript, one character at a time, with the
sampling controls of `charrnn sample`.  No network, no external script: it
works opened from disk.

    model_data(cfg, params, vocab) -> the JSON-ready dict the page reads
    encode_array(a) / decode_array(d) -> one matrix to and from that form
    page(cfg, params, vocab, title, summary) -> the HTML text
"""
from __future__ import annotations

import base64
import html
import json
import re
from importlib import resources

import numpy as np

from charrnn.errors import CheckpointError
from charrnn.nn.model import ModelConfig

TEMPLATE = "export_page.html"

# The most weight bytes a page may embed.  A browser runs the page's forward
# pass on one thread at roughly a fixed number of multiply-adds a second, so
# its speed falls with the weight count: at this limit (16.7M float32
# weights, a page of about 90 MB) it writes a few dozen characters a second,
# about as fast as one reads, and a phone holds the page text, its parsed
# strings and the decoded weights (some 250 MB) at the edge of what a mobile
# tab may use.  The default GRU's measured speed: bench/results/export.json;
# the reasoning: docs/export.md.
MAX_WEIGHT_BYTES = 64 << 20


def encode_array(a: np.ndarray) -> dict:
    """{"shape", "dtype", "data"}: data is base64 of the array's C-order,
    little-endian bytes, float32 unless the array is float64."""
    dtype = np.dtype("<f8") if a.dtype == np.float64 else np.dtype("<f4")
    raw = np.ascontiguousarray(a, dtype=dtype).tobytes()
    return {"shape": list(a.shape), "dtype": dtype.name, "data": base64.b64encode(raw).decode("ascii")}


def decode_array(d: dict) -> np.ndarray:
    """The array of encode_array's dict (the page decodes it the same way)."""
    dtype = np.dtype("<f8") if d["dtype"] == "float64" else np.dtype("<f4")
    return np.frombuffer(base64.b64decode(d["data"]), dtype=dtype).reshape(d["shape"])


def weight_bytes(params: dict[str, np.ndarray]) -> int:
    """Bytes of the weights as the page embeds them (before base64, which adds a third)."""
    return sum(a.size * (8 if a.dtype == np.float64 else 4) for a in params.values())


def check_size(params: dict[str, np.ndarray], what: str) -> None:
    """CheckpointError when the weights are too large for a browser page."""
    n = weight_bytes(params)
    if n > MAX_WEIGHT_BYTES:
        count = sum(a.size for a in params.values())
        raise CheckpointError(
            f"{what} has {count / 1e6:.1f}M weights ({n / 2**20:.0f} MB), too large for a "
            f"browser page (at most {MAX_WEIGHT_BYTES >> 20} MB of weights, where a browser "
            f"still writes a few dozen characters a second); train a smaller model for the "
            f"page (--hidden-size, --num-layers)")


def model_data(cfg: ModelConfig, params: dict[str, np.ndarray], vocab: str) -> dict:
    """What the page's script reads: cell, layers, hidden, embed, vocab (a list
    of one-character strings, in id order) and params {name: encode_array}."""
    return {"cell": cfg.model, "layers": cfg.num_layers, "hidden": cfg.hidden_size,
            "embed": cfg.embed_size, "vocab": list(vocab),
            "params": {name: encode_array(a) for name, a in params.items()}}


def script_json(data) -> str:
    """JSON safe inside <script>: ASCII only, and no '<' (so never '</script>')."""
    return json.dumps(data, ensure_ascii=True, separators=(",", ":")).replace("<", "\\u003c")


def template() -> str:
    return resources.files("charrnn.views").joinpath(TEMPLATE).read_text(encoding="utf-8")


def page(cfg: ModelConfig, params: dict[str, np.ndarray], vocab: str, title: str,
         summary: str) -> str:
    """The HTML page of a model (title and summary are plain text)."""
    from charrnn import __version__
    parts = {"@@TITLE@@": html.escape(title), "@@SUMMARY@@": html.escape(summary),
             "@@VERSION@@": html.escape(__version__),
             "@@MODEL@@": script_json(model_data(cfg, params, vocab))}
    # one pass, so no text put in is searched for markers again
    return re.sub(r"@@[A-Z]+@@", lambda m: parts[m.group(0)], template())


def describe(cfg: ModelConfig, vocab: str) -> str:
    """'gru, 2 layers x 256 units, 65 characters'"""
    L = cfg.num_layers
    return (f"{cfg.model}, {L} layer{'s' if L != 1 else ''} x {cfg.hidden_size} units, "
            f"{len(vocab)} characters")
