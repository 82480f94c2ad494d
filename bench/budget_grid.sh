#!/bin/bash
# The budget benchmark of bench/README.md ("Budget planning"),
# unattended and resumable: every run's result is written to RESULTS as it
# ends, and a rerun skips what is there.  About 3 h 30 min on a 2-core machine.
#
#   bash bench/budget_grid.sh [RESULTS_DIR]      # default /tmp/charrnn-budget
#
# targets.json: tiny Shakespeare on the whole machine, one run at a time
# (the recommended gru and the default rnn, chosen automatically).
# grid.json: the small and the large text, two runs at a time, each pinned
# to one core, so the automatic choice ("auto") and the hand-set sizes x
# dropout it is compared with all see the same one-core machine (the
# hand-set rows keep the --model's own batch shape, 32 x 64).
# shape.json: tiny Shakespeare on the whole machine, the GRU at hand-set
# batch shapes (the measurements of the shape rule).  rnn.json: the same
# for the rnn's optimizer, sizes and shape (the Adagrad rows set it, as a
# budgeted rnn now takes Adam).
set -e
cd "$(dirname "$0")/.."
OUT=${1:-/tmp/charrnn-budget}
mkdir -p "$OUT"
PY=${PYTHON:-python}
G="--model gru --num-layers 2 --batch-size 32 --seq-len 64"
$PY bench/quality.py --grid "$OUT/targets.json" --text shakespeare --budgets 2m,5m,10m \
  --config "gru auto=--model gru"
$PY bench/quality.py --grid "$OUT/targets.json" --text shakespeare --budgets 2m,10m \
  --config "rnn auto="
$PY bench/quality.py --grid "$OUT/grid.json" --text licenses,code --budgets 2m,10m --jobs 2 \
  --config "auto=--model gru" \
  --config "2x128 d0=$G --hidden-size 128 --dropout 0" \
  --config "2x128 d0.2@licenses=$G --hidden-size 128 --dropout 0.2" \
  --config "2x128 d0.1@code=$G --hidden-size 128 --dropout 0.1" \
  --config "2x256 d0=$G --hidden-size 256 --dropout 0" \
  --config "2x256 d0.2@licenses=$G --hidden-size 256 --dropout 0.2" \
  --config "2x256 d0.1@code=$G --hidden-size 256 --dropout 0.1" \
  --config "2x512 d0=$G --hidden-size 512 --dropout 0" \
  --config "2x512 d0.2@licenses=$G --hidden-size 512 --dropout 0.2" \
  --config "2x512 d0.1@code=$G --hidden-size 512 --dropout 0.1"
S="--model gru"     # sizes and dropout chosen (2 x 256 at these speeds), the shape set
$PY bench/quality.py --grid "$OUT/shape.json" --text shakespeare --budgets 2m \
  --config "gru b128=$S --batch-size 128" --config "gru b64=$S --batch-size 64" \
  --config "gru b32=$S --batch-size 32 --seq-len 64" --config "gru t32=$S --seq-len 32" \
  --config "gru b16=$S --batch-size 16" --config "gru b16 t32=$S --batch-size 16 --seq-len 32" \
  --config "gru b8=$S --batch-size 8"
$PY bench/quality.py --grid "$OUT/shape.json" --text shakespeare --budgets 10m \
  --config "gru b32=$S --batch-size 32 --seq-len 64" \
  --config "gru b16 t32=$S --batch-size 16 --seq-len 32"
A="--optimizer adam --lr 0.004 --clip-mode norm"   # what a budgeted rnn now takes
$PY bench/quality.py --grid "$OUT/rnn.json" --text shakespeare --budgets 2m \
  --config "rnn auto=--optimizer adagrad --hidden-size 128 --num-layers 1" \
  --config "rnn 16x25=--optimizer adagrad --hidden-size 128 --num-layers 1 --batch-size 16 --seq-len 25" \
  --config "rnn lr0.06=--optimizer adagrad --lr 0.06 --hidden-size 128 --num-layers 1" \
  --config "rnn 1x256=--optimizer adagrad --hidden-size 256 --num-layers 1" \
  --config "rnn adam=$A" --config "rnn adam 1x256=$A --hidden-size 256 --num-layers 1" \
  --config "rnn adam 1x512=$A --hidden-size 512 --num-layers 1"
$PY bench/quality.py --grid "$OUT/targets.json" --show
$PY bench/quality.py --grid "$OUT/rnn.json" --show
$PY bench/quality.py --grid "$OUT/shape.json" --show
$PY bench/quality.py --grid "$OUT/grid.json" --show
