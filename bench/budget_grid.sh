#!/bin/bash
# The budget benchmark of the README ("Runs planned for their budget"),
# unattended and resumable: every run's result is written to RESULTS as it
# ends, and a rerun skips what is there.  About 2 h 45 min on a 2-core machine.
#
#   bash bench/budget_grid.sh [RESULTS_DIR]      # default /tmp/charrnn-budget
#
# targets.json: tiny Shakespeare on the whole machine, one run at a time
# (the recommended gru and the default rnn, chosen automatically).
# grid.json: the small and the large text, two runs at a time, each pinned
# to one core, so the automatic choice ("auto") and the hand-set sizes x
# dropout it is compared with all see the same one-core machine.
set -e
cd "$(dirname "$0")/.."
OUT=${1:-/tmp/charrnn-budget}
mkdir -p "$OUT"
PY=${PYTHON:-python}
G="--model gru --num-layers 2"
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
$PY bench/quality.py --grid "$OUT/targets.json" --show
$PY bench/quality.py --grid "$OUT/grid.json" --show
