"""`charrnn eval` on a long text: exact single stream vs segments side by side.

Scores one text with one checkpoint both ways, in the same run, and prints
the wall time of each, their nats/char and the difference:

  exact      one stream, one character after another (``charrnn eval --exact``)
  segmented  charrnn.generate.scoring's default: ROWS segments read side by side,
             each warmed up on the WARMUP characters before it

    python bench/eval_speed.py CHECKPOINT                   # on tiny Shakespeare
    python bench/eval_speed.py CHECKPOINT --text FILE --warmup 250 500 1000

The issue's figure is for a 2x256 LSTM (charrnn train corpora/tinyshakespeare.txt
--model lstm --max-time 3m --checkpoint-dir /tmp/lstm, then best.npz).
"""
from __future__ import annotations

import argparse
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from charrnn.nn.blas import configure_env  # noqa: E402  (numpy-free)

configure_env()   # as the charrnn command does; must precede numpy

from charrnn.generate import scoring as ev  # noqa: E402
from charrnn.api.verbs import load_model  # noqa: E402
from charrnn.text.data import read_text  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint")
    ap.add_argument("--text", default=os.path.join(ROOT, "corpora", "tinyshakespeare.txt"))
    ap.add_argument("--warmup", type=int, nargs="*", default=[ev.WARMUP],
                    help="warm-up lengths to try (characters)")
    ap.add_argument("--rows", type=int, default=ev.ROWS, help="segments side by side")
    ap.add_argument("--skip-exact", action="store_true", help="segmented only")
    a = ap.parse_args()
    model, ck = load_model(a.checkpoint)
    text = read_text(a.text)
    m = model.cfg
    print(f"{os.path.basename(a.text)}: {len(text):,} chars; {m.model} {m.num_layers}x"
          f"{m.hidden_size} {m.dtype} ({a.checkpoint})")
    rows = []
    exact = None
    if not a.skip_exact:
        t0 = time.perf_counter()
        exact = ev.score_text(model, ck.vocab, text, exact=True)
        rows.append(("exact (one stream)", time.perf_counter() - t0, exact))
    for w in a.warmup:
        t0 = time.perf_counter()
        r = ev.score_text(model, ck.vocab, text, rows=a.rows, warmup=w)
        rows.append((f"segmented {r['segments']} x warm-up {w}", time.perf_counter() - t0, r))
    print(f"{'method':<34} {'seconds':>8} {'nats/char':>10} {'minus exact':>12} {'speed-up':>9}")
    for name, secs, r in rows:
        diff = f"{r['nats_per_char'] - exact['nats_per_char']:+.6f}" if exact else "-"
        speed = f"{rows[0][1] / secs:.1f}x" if exact else "-"
        print(f"{name:<34} {secs:>8.1f} {r['nats_per_char']:>10.5f} {diff:>12} {speed:>9}")


if __name__ == "__main__":
    main()
