#!/usr/bin/env bash
# run.sh -- `make bench`: ncelab and the PyTorch baselines side by side in one run, with ratios.
# The theory engine, then the training step of convnet (batch 256, k 255) and resnet18
# (batch 64, k 126 = 2B - 2) on 2 threads: ncelab, PyTorch stock (NCHW, default allocator) and PyTorch
# tuned (channels_last, GLIBC_TUNABLES that keep activations in the heap), in REPEATS rounds
# (default 5: with 3, which engine's spread came out wider was mostly which one a slow phase of
# the host fell on; bench/README.md). In a round every engine times its steps over the same window
# of wall time, WINDOW seconds for the convnet (default 8) and RESNET_WINDOW for resnet18 (default
# 16), and at least STEPS and RESNET_STEPS steps (default 3: PyTorch stock's 3 ResNet-18 steps take
# about 16 s); a window of 0 times exactly that many steps. JSON goes to out/.
# TORCH_VENV=DIR (optional, e.g. /work/venv-torch with the newest torch from PyPI): each round also
# runs DIR/bin/python's torch eager stock, eager tuned and torch.compile (stock layout).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-build/ncelab}
OUT=${OUT:-out/bench}
STEPS=${STEPS:-3}
RESNET_STEPS=${RESNET_STEPS:-3}
REPEATS=${REPEATS:-5}
WINDOW=${WINDOW:-8}
RESNET_WINDOW=${RESNET_WINDOW:-16}
THREADS=${THREADS:-2}
PY=/usr/bin/python3
mkdir -p "$OUT"
TUNED='glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=4294967295:glibc.malloc.hugetlb=1'

echo "== theory engine"
"$BIN" bench --theory --repeats 5 --json "$OUT/theory.json"

have_torch=0
if [ -x "$PY" ] && "$PY" -c 'import torch' 2>/dev/null; then have_torch=1; fi
[ $have_torch = 1 ] || echo "(no PyTorch in $PY: the baselines are skipped; apt-get install python3-torch)"
VPY=
if [ -n "${TORCH_VENV:-}" ]; then
  if "$TORCH_VENV/bin/python" -c 'import torch; torch.compile' 2>/dev/null; then
    VPY="$TORCH_VENV/bin/python"
    echo "(TORCH_VENV: torch $("$VPY" -c 'import torch; print(torch.__version__)') beside Debian's)"
  else
    echo "(TORCH_VENV=$TORCH_VENV has no importable torch with torch.compile: skipped)"
  fi
fi
ENGINES="ncelab"
[ $have_torch = 1 ] && ENGINES="$ENGINES torch_stock torch_tuned"
[ -n "$VPY" ] && ENGINES="$ENGINES venv_stock venv_tuned venv_compile"

# The machine is shared and its speed drifts by 10-30% within minutes, in phases of seconds: each
# model runs REPEATS rounds of (ncelab, stock, tuned, ...) back to back, the even rounds in reverse
# order, each engine over the same window of wall time (an engine 3x faster would otherwise sample
# the host's phases over a third of the time), and the ratios are those of the medians; each
# engine's images/s is printed as min / median / max over the rounds with its spread,
# (max - min) / median, and its coefficient of variation (standard deviation / mean of the
# rounds), with ncelab's ratio to it in each round (min-max, median); compare_MODEL.json holds
# them.

# engine_run ENGINE R: ENGINE's round R of the current model (model, batch, k, steps, win)
engine_run() {
  local py=$PY tuned=() args
  case $1 in
    ncelab)
      "$BIN" bench --model "$model" --batch "$batch" --k "$k" --threads "$THREADS" --steps "$steps" "${win[@]}" \
        --json "$OUT/ncelab_${model}_r$2.json" | sed "s/^/  [round $2] /"
      return ;;
    venv_*) py=$VPY ;;
  esac
  case $1 in
    *_stock) args=(--layout nchw) ;;
    *_tuned) args=(--layout channels_last); tuned=("GLIBC_TUNABLES=$TUNED") ;;
    venv_compile) args=(--layout nchw --compile) ;;
  esac
  env "${tuned[@]}" "$py" bench/torch_step.py --model "$model" --batch "$batch" --k "$k" --threads "$THREADS" \
    --steps "$steps" "${win[@]}" --json "$OUT/${1}_${model}_r$2.json" "${args[@]}" >/dev/null 2>"$OUT/${1}_${model}_r$2.log"
}
for cfg in "convnet 256 255 $STEPS $WINDOW" "resnet18 64 126 $RESNET_STEPS $RESNET_WINDOW"; do
  set -- $cfg
  model=$1 batch=$2 k=$3 steps=$4 window=$5
  win=()
  [ "$window" = 0 ] || win=(--seconds "$window")
  echo "== $model, batch $batch, k $k, $THREADS threads, $REPEATS rounds of $steps steps" \
    "$([ "$window" = 0 ] || echo "or more, to fill $window s each")"
  for r in $(seq 1 "$REPEATS"); do
    # odd rounds run the engines in ENGINES order, even rounds in reverse: a drift of the host
    # across a round then weighs on every engine alike over the run
    order=$ENGINES
    [ $((r % 2)) = 0 ] && order=$(printf '%s\n' $ENGINES | tac)
    for e in $order; do engine_run "$e" "$r"; done
  done
  if [ "$ENGINES" != ncelab ]; then
    "$PY" - "$OUT" "$model" "$REPEATS" $ENGINES <<'PYEOF'
import json, statistics, sys
out, model, R, engines = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
names = {"ncelab": "ncelab", "torch_stock": "PyTorch stock", "torch_tuned": "PyTorch tuned",
         "venv_stock": "stock", "venv_tuned": "tuned", "venv_compile": "torch.compile"}
runs = {t: [json.load(open(f"{out}/{t}_{model}_r{r}.json")) for r in range(1, R + 1)] for t in engines}
med = {t: {f: statistics.median(x[f] for x in v) for f in ("imgs_per_sec", "ms_per_step", "peak_rss_mb")}
       for t, v in runs.items()}
n = med["ncelab"]
print(f"  {'median of ' + str(R) + ' rounds':28} {'images/s':>10} {'ms/step':>10} {'peak RSS MB':>12} {'ncelab is':>10}"
      f"   {'images/s min':>12} {'max':>8} {'spread':>7} {'cv':>6} {'steps':>6}   {'ncelab is, per round (median)'}")
for t in engines:
    m, label = med[t], names[t]
    if t.startswith("venv_"):
        label = f"torch {runs[t][0]['torch_version'].split('+')[0]} {names[t]}"
    ratio = "" if t == "ncelab" else f"{n['imgs_per_sec'] / m['imgs_per_sec']:.2f}x"
    ips = [x["imgs_per_sec"] for x in runs[t]]
    m["imgs_per_sec_min"], m["imgs_per_sec_max"] = min(ips), max(ips)
    m["spread"] = (max(ips) - min(ips)) / m["imgs_per_sec"]  # (max - min) / median over the rounds
    m["cv"] = statistics.pstdev(ips) / statistics.mean(ips)   # standard deviation / mean of the rounds
    per_round = ""
    if t != "ncelab":  # ncelab's rate over this engine's, round by round
        per = m["per_round_ratios"] = [a["imgs_per_sec"] / b["imgs_per_sec"] for a, b in zip(runs["ncelab"], runs[t])]
        per_round = f"{min(per):.2f}-{max(per):.2f}x ({statistics.median(per):.2f})"
    print(f"  {label:28} {m['imgs_per_sec']:10.1f} {m['ms_per_step']:10.1f} {m['peak_rss_mb']:12.0f} {ratio:>10}"
          f"   {min(ips):12.1f} {max(ips):8.1f} {100 * m['spread']:6.0f}% {100 * m['cv']:5.1f}% {sum(x.get('steps', 0) for x in runs[t]):6d}   {per_round}")
summary = {"model": model, "rounds": R, "median": med, "runs": runs,
           "steps_per_round": {t: [x.get("steps") for x in v] for t, v in runs.items()}}
for t in engines[1:]:
    summary[f"speedup_vs_{t}"] = n["imgs_per_sec"] / med[t]["imgs_per_sec"]
    summary[f"memory_vs_{t}"] = n["peak_rss_mb"] / med[t]["peak_rss_mb"]
if "torch_stock" in med:  # the names of the earlier summaries
    summary["speedup_vs_stock"] = summary["speedup_vs_torch_stock"]
    summary["speedup_vs_tuned"] = summary["speedup_vs_torch_tuned"]
    summary["memory_vs_stock"] = summary["memory_vs_torch_stock"]
json.dump(summary, open(f"{out}/compare_{model}.json", "w"), indent=1)
PYEOF
  fi
done
echo "== loader (simclr augmentation, batch 256)"
"$BIN" bench --loader --batch 256 --k 255 --threads "$THREADS" --json "$OUT/loader.json"
