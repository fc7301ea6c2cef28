#!/usr/bin/env bash
# protocol.sh -- the Fashion-MNIST protocol, ncelab against its PyTorch reference, for a list of k.
# For each k: `ncelab train` + `ncelab eval` and bench/torch_protocol.py with the same settings
# (class positives, batch 256, lr 0.3, T 0.5, seed 0) and the same thread count; each one's wall
# time (training + evaluation, whole processes) with date +%s.%N; then a table of the test
# accuracies (mean classifier, linear probe, kNN; features and head), the wall times and the
# ratio PyTorch / ncelab, and OUT/protocol.json with everything.
#
#   bench/protocol.sh                                   # k 1,16,256, 1 epoch, 2 threads, all images
#   K=1,16 EPOCHS=1 TRAIN_LIMIT=2000 THREADS=1 bench/protocol.sh
#   bench/protocol.sh --k 1,16,256 --epochs 5 --threads 2 --out out/protocol
#
# Environment (or the flag after it): NCELAB (--ncelab, default build/ncelab of this tree), K
# (--k, default 1,16,256), EPOCHS (--epochs, 1), THREADS (--threads, 2), TRAIN_LIMIT
# (--train-limit, empty = all training images), OUT (--out, /tmp/ncelab_protocol).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)   # paths given by the caller stay relative to their directory
NCELAB=${NCELAB:-$ROOT/build/ncelab}
K=${K:-1,16,256}
EPOCHS=${EPOCHS:-1}
THREADS=${THREADS:-2}
TRAIN_LIMIT=${TRAIN_LIMIT:-}
OUT=${OUT:-/tmp/ncelab_protocol}
PY=/usr/bin/python3

while [ $# -gt 0 ]; do
  case "$1" in
    --ncelab) NCELAB=$2; shift 2 ;;
    --k) K=$2; shift 2 ;;
    --epochs) EPOCHS=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    --train-limit) TRAIN_LIMIT=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "protocol.sh: unknown option '$1' (--ncelab --k --epochs --threads --train-limit --out)" >&2; exit 2 ;;
  esac
done
[ -x "$NCELAB" ] || { echo "protocol.sh: $NCELAB: no ncelab binary (make, or set NCELAB)" >&2; exit 1; }
mkdir -p "$OUT"
: > "$OUT/walls.tsv"

have_torch=0
if [ -x "$PY" ] && "$PY" -c 'import torch' 2>/dev/null; then have_torch=1; fi
[ $have_torch = 1 ] || echo "(no PyTorch in $PY: the reference is skipped; apt-get install python3-torch)"

limit=()
[ -n "$TRAIN_LIMIT" ] && limit=(--train-limit "$TRAIN_LIMIT")
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

for k in ${K//,/ }; do
  dir="$OUT/ncelab_k$k"
  mkdir -p "$dir"
  echo "== k $k: ncelab, $EPOCHS epochs, $THREADS threads${TRAIN_LIMIT:+, $TRAIN_LIMIT training images}"
  t0=$(now)
  "$NCELAB" train --data fmnist --k "$k" --epochs "$EPOCHS" --lr 0.3 --batch 256 --temp 0.5 \
    --threads "$THREADS" --seed 0 ${limit[@]+"${limit[@]}"} --out "$dir" | tee "$dir/train.log"
  "$NCELAB" eval --checkpoint "$dir/ckpt.safetensors" --threads "$THREADS" --json "$dir/eval.json" \
    | tee "$dir/eval.log"
  t1=$(now)
  printf '%s\tncelab\t%s\n' "$k" "$(secs "$t0" "$t1")" >> "$OUT/walls.tsv"
  if [ $have_torch = 1 ]; then
    echo "== k $k: PyTorch, $EPOCHS epochs, $THREADS threads${TRAIN_LIMIT:+, $TRAIN_LIMIT training images}"
    t0=$(now)
    OMP_NUM_THREADS=$THREADS "$PY" "$ROOT/bench/torch_protocol.py" --k "$k" --epochs "$EPOCHS" --lr 0.3 --batch 256 \
      --temp 0.5 --threads "$THREADS" --seed 0 ${limit[@]+"${limit[@]}"} --json "$OUT/torch_k$k.json" | tee "$OUT/torch_k$k.log"
    t1=$(now)
    printf '%s\ttorch\t%s\n' "$k" "$(secs "$t0" "$t1")" >> "$OUT/walls.tsv"
  fi
done

"$PY" - "$OUT" "$K" "$EPOCHS" "$THREADS" "$TRAIN_LIMIT" "$NCELAB" <<'PYEOF'
import json, os, sys
out, ks, epochs, threads, limit, ncelab = sys.argv[1:]
walls = {}
for line in open(f"{out}/walls.tsv"):
    k, tool, s = line.split()
    walls[(int(k), tool)] = float(s)
F = ("mean_acc", "linear_acc", "knn_acc")
rows = []
for k in (int(v) for v in ks.split(",") if v):
    n = json.load(open(f"{out}/ncelab_k{k}/eval.json"))
    tp = f"{out}/torch_k{k}.json"
    t = json.load(open(tp)) if os.path.exists(tp) and (k, "torch") in walls else None
    row = {"k": k, "ncelab": {"features": n["features"], "head": n["head"], "wall_seconds": walls[(k, "ncelab")]}}
    if t:
        row["torch"] = dict(t, wall_seconds_outside=walls[(k, "torch")])
        row["torch_over_ncelab_wall"] = walls[(k, "torch")] / walls[(k, "ncelab")]
    rows.append(row)

def accs(r):
    return [f"{r[layer][f]:.4f}" for layer in ("features", "head") for f in F]

print(f"== Fashion-MNIST protocol: {epochs} epochs, {threads} threads, "
      f"{limit + ' training images' if limit else 'all training images'}; test accuracy")
hdr = ["feat mean", "feat lin", "feat knn", "head mean", "head lin", "head knn", "wall s"]
print(f"{'k':>5} {'tool':7} " + " ".join(f"{h:>9}" for h in hdr) + f" {'torch/ncelab':>12}")
for r in rows:
    n = r["ncelab"]
    print(f"{r['k']:>5} {'ncelab':7} " + " ".join(f"{v:>9}" for v in accs(n) + [f"{n['wall_seconds']:.1f}"]))
    if "torch" in r:
        t = r["torch"]
        print(f"{'':>5} {'torch':7} " + " ".join(f"{v:>9}" for v in accs(t) + [f"{t['wall_seconds_outside']:.1f}"])
              + f" {r['torch_over_ncelab_wall']:>12.2f}")
json.dump({"epochs": int(epochs), "threads": int(threads), "train_limit": int(limit) if limit else None,
           "batch": 256, "lr": 0.3, "temp": 0.5, "seed": 0, "ncelab": ncelab, "runs": rows},
          open(f"{out}/protocol.json", "w"), indent=1)
print(f"(wall: training + evaluation, whole processes; JSON in {out}/protocol.json)")
PYEOF
