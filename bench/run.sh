#!/usr/bin/env bash
# run.sh -- `make bench`: ncelab and the PyTorch baselines side by side in one run, with ratios.
# The theory engine, then the training step of convnet (batch 256, k 255) and resnet18
# (batch 64, k 126 = 2B - 2) on 2 threads: ncelab, PyTorch stock (NCHW, default allocator) and PyTorch
# tuned (channels_last, GLIBC_TUNABLES that keep activations in the heap), in REPEATS rounds
# (default 3; STEPS timed steps for the convnet, RESNET_STEPS for resnet18). JSON goes to out/.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-build/ncelab}
OUT=${OUT:-out/bench}
STEPS=${STEPS:-10}
RESNET_STEPS=${RESNET_STEPS:-4}
REPEATS=${REPEATS:-3}
THREADS=${THREADS:-2}
PY=/usr/bin/python3
mkdir -p "$OUT"
TUNED='glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=4294967295:glibc.malloc.hugetlb=1'

echo "== theory engine"
"$BIN" bench --theory --repeats 5 --json "$OUT/theory.json"

have_torch=0
if [ -x "$PY" ] && "$PY" -c 'import torch' 2>/dev/null; then have_torch=1; fi
[ $have_torch = 1 ] || echo "(no PyTorch in $PY: the baselines are skipped; apt-get install python3-torch)"

# The machine is shared and its speed drifts by 10-30% within minutes: each model runs REPEATS
# rounds of (ncelab, stock, tuned) back to back, and the ratios are those of the medians.
for cfg in "convnet 256 255 $STEPS" "resnet18 64 126 $RESNET_STEPS"; do
  set -- $cfg
  model=$1 batch=$2 k=$3 steps=$4
  echo "== $model, batch $batch, k $k, $THREADS threads, $REPEATS rounds of $steps steps"
  for r in $(seq 1 "$REPEATS"); do
    "$BIN" bench --model "$model" --batch "$batch" --k "$k" --threads "$THREADS" --steps "$steps" \
      --json "$OUT/ncelab_${model}_r$r.json" | sed "s/^/  [round $r] /"
    if [ $have_torch = 1 ]; then
      "$PY" bench/torch_step.py --model "$model" --batch "$batch" --k "$k" --threads "$THREADS" \
        --steps "$steps" --layout nchw --json "$OUT/torch_stock_${model}_r$r.json" >/dev/null
      GLIBC_TUNABLES=$TUNED "$PY" bench/torch_step.py --model "$model" --batch "$batch" --k "$k" \
        --threads "$THREADS" --steps "$steps" --layout channels_last --json "$OUT/torch_tuned_${model}_r$r.json" >/dev/null
    fi
  done
  if [ $have_torch = 1 ]; then
    "$PY" - "$OUT" "$model" "$REPEATS" <<'PYEOF'
import json, statistics, sys
out, model, R = sys.argv[1], sys.argv[2], int(sys.argv[3])
runs = {t: [json.load(open(f"{out}/{t}_{model}_r{r}.json")) for r in range(1, R + 1)]
        for t in ("ncelab", "torch_stock", "torch_tuned")}
med = {t: {f: statistics.median(x[f] for x in v) for f in ("imgs_per_sec", "ms_per_step", "peak_rss_mb")}
       for t, v in runs.items()}
print(f"  {'median of ' + str(R):16} {'images/s':>10} {'ms/step':>10} {'peak RSS MB':>12}   images/s by round")
for name, t in (("ncelab", "ncelab"), ("PyTorch stock", "torch_stock"), ("PyTorch tuned", "torch_tuned")):
    m = med[t]
    print(f"  {name:16} {m['imgs_per_sec']:10.1f} {m['ms_per_step']:10.1f} {m['peak_rss_mb']:12.0f}   "
          + " ".join(f"{x['imgs_per_sec']:.1f}" for x in runs[t]))
n, s, u = med["ncelab"], med["torch_stock"], med["torch_tuned"]
per_round = [a["imgs_per_sec"] / b["imgs_per_sec"] for a, b in zip(runs["ncelab"], runs["torch_stock"])]
print(f"  ratio images/s: {n['imgs_per_sec'] / s['imgs_per_sec']:.2f}x stock, {n['imgs_per_sec'] / u['imgs_per_sec']:.2f}x tuned"
      f" (per round against stock: {', '.join(f'{x:.2f}' for x in per_round)}); peak memory {n['peak_rss_mb'] / s['peak_rss_mb']:.2f} of stock")
json.dump({"model": model, "rounds": R, "median": med, "runs": runs,
           "speedup_vs_stock": n['imgs_per_sec'] / s['imgs_per_sec'],
           "speedup_vs_tuned": n['imgs_per_sec'] / u['imgs_per_sec'],
           "memory_vs_stock": n['peak_rss_mb'] / s['peak_rss_mb']}, open(f"{out}/compare_{model}.json", "w"), indent=1)
PYEOF
  fi
done
echo "== loader (simclr augmentation, batch 256)"
"$BIN" bench --loader --batch 256 --k 255 --threads "$THREADS" --json "$OUT/loader.json"
