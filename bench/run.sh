#!/usr/bin/env bash
# run.sh -- `make bench`: ncelab and the PyTorch baselines side by side in one run, with ratios.
# The theory engine, then the training step of convnet (batch 256, k 255) and resnet18
# (batch 64, k 126 = 2B - 2) on 2 threads: ncelab, PyTorch stock (NCHW, default allocator) and PyTorch
# tuned (channels_last, GLIBC_TUNABLES that keep activations in the heap). JSON goes to out/.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-build/ncelab}
OUT=${OUT:-out/bench}
STEPS=${STEPS:-10}
THREADS=${THREADS:-2}
PY=/usr/bin/python3
mkdir -p "$OUT"
TUNED='glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=4294967295:glibc.malloc.hugetlb=1'

echo "== theory engine"
"$BIN" bench --theory --repeats 5 --json "$OUT/theory.json"

have_torch=0
if [ -x "$PY" ] && "$PY" -c 'import torch' 2>/dev/null; then have_torch=1; fi
[ $have_torch = 1 ] || echo "(no PyTorch in $PY: the baselines are skipped; apt-get install python3-torch)"

for cfg in "convnet 256 255" "resnet18 64 126"; do
  set -- $cfg
  model=$1 batch=$2 k=$3
  echo "== $model, batch $batch, k $k, $THREADS threads"
  "$BIN" bench --model "$model" --batch "$batch" --k "$k" --threads "$THREADS" --steps "$STEPS" \
    --json "$OUT/ncelab_$model.json"
  if [ $have_torch = 1 ]; then
    "$PY" bench/torch_step.py --model "$model" --batch "$batch" --k "$k" --threads "$THREADS" \
      --steps "$STEPS" --layout nchw --json "$OUT/torch_stock_$model.json" >/dev/null
    GLIBC_TUNABLES=$TUNED "$PY" bench/torch_step.py --model "$model" --batch "$batch" --k "$k" \
      --threads "$THREADS" --steps "$STEPS" --layout channels_last --json "$OUT/torch_tuned_$model.json" >/dev/null
    "$PY" - "$OUT" "$model" <<'PYEOF'
import json, sys
out, model = sys.argv[1], sys.argv[2]
n = json.load(open(f"{out}/ncelab_{model}.json"))
s = json.load(open(f"{out}/torch_stock_{model}.json"))
t = json.load(open(f"{out}/torch_tuned_{model}.json"))
print(f"  {'':16} {'images/s':>10} {'ms/step':>10} {'peak RSS MB':>12}")
for name, r in (("ncelab", n), ("PyTorch stock", s), ("PyTorch tuned", t)):
    print(f"  {name:16} {r['imgs_per_sec']:10.1f} {r['ms_per_step']:10.1f} {r['peak_rss_mb']:12.0f}")
print(f"  ratio images/s: {n['imgs_per_sec'] / s['imgs_per_sec']:.2f}x stock, {n['imgs_per_sec'] / t['imgs_per_sec']:.2f}x tuned;"
      f" peak memory {n['peak_rss_mb'] / s['peak_rss_mb']:.2f} of stock")
json.dump({"model": model, "ncelab": n, "torch_stock": s, "torch_tuned": t,
           "speedup_vs_stock": n['imgs_per_sec'] / s['imgs_per_sec'],
           "speedup_vs_tuned": n['imgs_per_sec'] / t['imgs_per_sec'],
           "memory_vs_stock": n['peak_rss_mb'] / s['peak_rss_mb']}, open(f"{out}/compare_{model}.json", "w"), indent=1)
PYEOF
  fi
done
echo "== loader (simclr augmentation, batch 256)"
"$BIN" bench --loader --batch 256 --k 255 --threads "$THREADS" --json "$OUT/loader.json"
