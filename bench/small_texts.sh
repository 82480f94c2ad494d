#!/bin/bash
# Issue 27 item 5: small texts in three scripts, each trained as a user
# would (`charrnn train TEXT --model gru --max-time BUDGET`, sizes chosen by
# the rule), scored by the validation loss of best.npz and of the last
# evaluation: a run that overfits ends far above its best.  Unattended and
# resumable (bench/quality.py --grid); give it the machine to itself:
# about nine runs x BUDGET, less where --stall-stop ends a run early.
#
#   bash bench/small_texts.sh [RESULTS.json] [BUDGET]   # default /tmp/charrnn-small.json 2m
#   EXTRA="--dropout 0.5" LABEL=d0.5 bash bench/small_texts.sh R.json   # another row
#
# The texts (bench/texts.py): 10, 50 and 200 KB of English (tiny
# Shakespeare), Cyrillic (vim's Russian, Ukrainian and Bulgarian tutors)
# and Japanese/Chinese/Korean (vim's tutors), 57 to 1,338 characters.
set -e
cd "$(dirname "$0")/.."
OUT=${1:-/tmp/charrnn-small.json}
BUDGET=${2:-2m}
PY=${PYTHON:-python}
TEXTS=${TEXTS:-en-10k,ru-10k,ja-10k,en-50k,ru-57k,ja-45k,en-200k,cyrillic-171k,cjk-126k}
LABEL=${LABEL:-auto}
# shellcheck disable=SC2086
$PY bench/quality.py --grid "$OUT" --text "$TEXTS" --budgets "$BUDGET" \
  --config "$LABEL=--model gru ${EXTRA:-}"
