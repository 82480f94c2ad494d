# Sourced by the bench scripts that score CLI runs on tiny Shakespeare's
# held-out part: sets CHARRNN, PY, TEXT and VAL (OUT/val.txt, the last 10 %
# of TEXT, the split the trainer validates on), writing VAL once.
# Needs OUT set and the working directory at the checkout's top.
mkdir -p "$OUT"
CHARRNN=${CHARRNN:-charrnn}
PY=${PYTHON:-python}
TEXT=corpora/tinyshakespeare.txt
VAL="$OUT/val.txt"
[ -f "$VAL" ] || $PY -c "
t = open('$TEXT', encoding='utf-8').read()
open('$VAL', 'w', encoding='utf-8').write(t[int(len(t) * 0.9):])"
