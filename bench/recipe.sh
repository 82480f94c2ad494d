#!/bin/bash
# Issue 27's recipe, each piece alone and then together: real `charrnn
# train` runs of the GRU on tiny Shakespeare at one --max-time, each scored
# by `charrnn eval --exact` on the last 10 % (the split the trainer
# validates on, read as one stream), from best.npz.  Unattended and
# resumable: a row whose result is in RESULTS_DIR is skipped, a row cut
# short starts again.  Give it the machine to itself (no tests or builds
# beside it): about (rows x BUDGET) + 1 minute a row.
#
#   bash bench/recipe.sh [BUDGET] [SEED] [RESULTS_DIR]    # default 5m 1234 /tmp/charrnn-recipe
#   ROWS="base avg" bash bench/recipe.sh 10m               # only these rows
#   PIN="" bash bench/recipe.sh                             # let the rule choose sizes too
#   PIN="" MODEL= BUSY=20 ROWS=base bash bench/recipe.sh 2m  # the README's first run (default
#                                     model) with a busy loop on one core from 20 s in
#
# Every row pins the sizes and batch shape (PIN) to what the rule chooses for
# the plain GRU at 5 and 10 minutes on tiny Shakespeare (2 x 256, dropout
# 0.1, 32 x 64): the rule times the model for a few steps before choosing,
# and a piece that costs time (--weight-drop draws a mask per chunk) or
# plain noise in that timing can tip it to another batch shape or dropout,
# so the row would measure another model, not the piece.
#
# Prints one line per row (exact loss, the trainer's best, steps) and
# writes RESULTS_DIR/recipe-BUDGET-sSEED.json with every row and the
# command that produced it.
set -e
cd "$(dirname "$0")/.."
BUDGET=${1:-5m}
SEED=${2:-1234}
OUT=${3:-/tmp/charrnn-recipe}
. bench/heldout.sh

declare -A ROW
ROW[base]=""
ROW[avg]="--weight-average 0.998"
ROW[wdrop]="--weight-drop 0.2"
ROW[var]="--dropout-mask chunk"
ROW[shift]="--shift-epochs"
ROW[b2]="--adam-beta2 0.99"
ROW[floor0]="--lr-floor 0"
ROW[all]="--weight-average 0.998 --weight-drop 0.2 --dropout-mask chunk --shift-epochs --adam-beta2 0.99 --lr-floor 0"
ORDER=${ROWS:-base avg wdrop var shift b2 floor0 all}
PIN=${PIN---hidden-size 256 --num-layers 2 --dropout 0.1 --batch-size 32 --seq-len 64}
MODEL=${MODEL-gru}          # empty: the default model (no --model)
BUSY=${BUSY:-}              # seconds: a busy loop takes one core from then to the run's end

NAMES=()
for row in $ORDER; do
  label=$row${BUSY:+-busy$BUSY}
  [ -z "$MODEL" ] && label=default-$label
  NAMES+=("$label")
  key="$OUT/$BUDGET-s$SEED-$label"
  [ -f "$key.json" ] && continue
  # shellcheck disable=SC2086
  set -- train "$TEXT" --quiet ${MODEL:+--model $MODEL} --max-time "$BUDGET" --seed "$SEED" \
    $PIN ${ROW[$row]}
  if [ ! -f "$key.trained" ]; then
    rm -rf "$key"
    busy=
    if [ -n "$BUSY" ]; then
      ( sleep "$BUSY"; exec $PY -c "while True: pass" ) &
      busy=$!
    fi
    "$CHARRNN" "$@" --checkpoint-dir "$key"
    [ -n "$busy" ] && kill "$busy"
    touch "$key.trained"
  fi
  "$CHARRNN" eval "$VAL" --checkpoint "$key/best.npz" --exact --json > "$key.eval"
  "$CHARRNN" inspect "$key/latest.npz" --json > "$key.inspect"
  $PY - "$key" "$label" "charrnn $*" > "$key.tmp" <<'PY'
import json, sys
key, label, command = sys.argv[1:4]
ev, ins = json.load(open(key + ".eval")), json.load(open(key + ".inspect"))
p = ins["progress"]
json.dump({"row": label, "command": command, "exact": ev["nats_per_char"],
           "trainer_best": ins["best_val"]["nats_per_char"],
           "last_train_loss": ins["last_train_loss"], "steps": p["iterations"],
           "wall_s": p["wall_time_s"], "chosen": (ins.get("choices") or {}).get("reason")},
          sys.stdout, indent=1)
PY
  mv "$key.tmp" "$key.json"
done

$PY - "$OUT" "$BUDGET" "$SEED" "${NAMES[@]}" <<'PY'
import json, os, sys
out, budget, seed, rows = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
got = []
for r in rows:
    path = os.path.join(out, f"{budget}-s{seed}-{r}.json")
    if os.path.exists(path):
        got.append(json.load(open(path)))
base = next((g["exact"] for g in got if g["row"] == "base"), None)
for g in got:
    d = "" if base is None else f"{g['exact'] - base:+.4f}"
    print(f"{g['row']:8} exact {g['exact']:.4f} {d:>8}  trainer best {g['trainer_best']:.4f}  "
          f"train {g['last_train_loss']:.4f}  {g['steps']} steps in {g['wall_s']:.0f} s")
json.dump({"budget": budget, "seed": seed, "rows": got},
          open(os.path.join(out, f"recipe-{budget}-s{seed}.json"), "w"), indent=1)
PY
