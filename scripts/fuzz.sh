#!/usr/bin/env bash
# fuzz.sh -- builds every libFuzzer harness in tests/fuzz/ (fuzz_*.c) with clang (ASan + UBSan)
# and runs each for FUZZ_SECONDS, seeded from tests/fuzz/corpus/<target>/.
#   FUZZ_SECONDS  run time of each target in seconds (default 60)
#   FUZZ_TARGETS  the targets to run, e.g. "values folder" (default: all of them)
#   FUZZ_DIR      build and corpus directory (default build-fuzz; each target's corpus grows across
#                 runs in FUZZ_DIR/corpus/<target>)
#   FUZZ_JOBS     parallel fuzzing processes per target (default 1)
# Exits non-zero if a fuzzer finds a crash, a leak or undefined behaviour, naming the target; the
# input that triggered it is left as FUZZ_DIR/<target>-crash-* (or -leak-*, -timeout-*, -oom-*).
# Reproduce with FUZZ_DIR/fuzz_<target> FILE.
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZ_SECONDS=${FUZZ_SECONDS:-60}
FUZZ_DIR=${FUZZ_DIR:-build-fuzz}
FUZZ_JOBS=${FUZZ_JOBS:-1}
CC=${FUZZ_CC:-clang}

# clang with libFuzzer: install it if missing (as root), otherwise skip.
probe() {
  local tmp
  tmp=$(mktemp -d)
  echo 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { (void)d; (void)n; return 0; }' >"$tmp/p.c"
  "$CC" -fsanitize=fuzzer,address,undefined "$tmp/p.c" -o "$tmp/p" >/dev/null 2>&1
  local rc=$?
  rm -rf "$tmp"
  return $rc
}
if ! command -v "$CC" >/dev/null 2>&1 || ! probe; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "fuzz.sh: installing clang and libFuzzer (clang, libclang-rt-14-dev)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q --no-install-recommends clang libclang-rt-14-dev >/dev/null 2>&1 ||
      { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q --no-install-recommends clang libclang-rt-14-dev >/dev/null 2>&1; } || true
  fi
  if ! command -v "$CC" >/dev/null 2>&1 || ! probe; then
    echo "fuzz.sh: skipped: $CC with -fsanitize=fuzzer is not available (as root: apt-get install -y clang libclang-rt-14-dev)"
    exit 0
  fi
fi

all_targets=$(ls tests/fuzz/fuzz_*.c | sed 's|.*/fuzz_||; s|\.c$||')
targets=${FUZZ_TARGETS:-$all_targets}
for t in $targets; do
  [ -f "tests/fuzz/fuzz_$t.c" ] || { echo "fuzz.sh: no target '$t' (targets: $(echo $all_targets))"; exit 2; }
done

# The library sources the harnesses reach, instrumented once into one archive; each harness
# links only the members it needs.
sources=(src/core/error.c src/core/file.c src/core/file_regular.c src/core/utf8.c src/core/rng.c
         src/core/parse.c src/core/jsonio.c src/core/safetensors.c src/core/progress.c
         src/data/dataset.c src/data/read_cifar.c src/data/read_cifar_py.c src/data/read_pickle.c
         src/data/read_idx.c src/data/read_folder.c src/data/read_synth.c
         src/data/packed.c src/data/augment.c src/theory/model.c src/run/config.c src/optim/optim.c
         src/optim/schedule.c src/contrast/sampler.c)
libs=(-ljpeg -lpng -lz -lcjson -lm)
flags=(-std=c11 -g -O1 -Iinclude -Wall -Wextra -Wno-unknown-pragmas -fno-omit-frame-pointer
       -fsanitize=address,undefined -fno-sanitize-recover=undefined)

mkdir -p "$FUZZ_DIR/obj" "$FUZZ_DIR/seeds"
echo "fuzz.sh: building the library (${#sources[@]} files) and $(echo $targets | wc -w) targets in $FUZZ_DIR"
rm -f "$FUZZ_DIR/obj/"*.o "$FUZZ_DIR/libncelab_fuzz.a"
compile() { "$CC" "${flags[@]}" -fsanitize=fuzzer-no-link -c "$1" -o "$FUZZ_DIR/obj/$(echo "$1" | tr / _).o"; }
pids=()
for s in "${sources[@]}"; do
  compile "$s" &
  pids+=($!)
  if [ ${#pids[@]} -ge "$(nproc)" ]; then wait "${pids[0]}"; pids=("${pids[@]:1}"); fi
done
for p in "${pids[@]}"; do wait "$p"; done
ar rcs "$FUZZ_DIR/libncelab_fuzz.a" "$FUZZ_DIR/obj/"*.o
for t in $targets; do
  "$CC" "${flags[@]}" -fsanitize=fuzzer "tests/fuzz/fuzz_$t.c" "$FUZZ_DIR/libncelab_fuzz.a" "${libs[@]}" \
    -o "$FUZZ_DIR/fuzz_$t"
done
# the readers' seeds are images and datasets, written by a program rather than kept in the repository
if [[ " $targets " == *" readers "* ]]; then
  "$CC" "${flags[@]}" tests/fuzz/make_seeds.c "$FUZZ_DIR/libncelab_fuzz.a" "${libs[@]}" -o "$FUZZ_DIR/make_seeds"
  "$FUZZ_DIR/make_seeds" "$FUZZ_DIR/seeds"
fi

# per-target input size limit: images need room, option values do not
max_len() {
  case $1 in
    readers|pickle) echo 16384 ;;
    values) echo 256 ;;
    *) echo 4096 ;;
  esac
}

# the harnesses hand their inputs to the readers as files: in memory when /dev/shm is there
# (30 to 80 times as many runs per second as on a disk here)
if [ -z "${TMPDIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then export TMPDIR=/dev/shm; fi
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
failed=()
for t in $targets; do
  mkdir -p "$FUZZ_DIR/corpus/$t"
  seeds=()
  [ -d "tests/fuzz/corpus/$t" ] && seeds+=("tests/fuzz/corpus/$t")
  [ "$t" = readers ] && seeds+=("$FUZZ_DIR/seeds")
  args=(-max_total_time="$FUZZ_SECONDS" -max_len="$(max_len "$t")" -timeout=20 -rss_limit_mb=3072
        -artifact_prefix="$FUZZ_DIR/$t-" -print_final_stats=1)
  [ "$FUZZ_JOBS" -gt 1 ] && args+=(-fork="$FUZZ_JOBS" -ignore_crashes=0)
  log="$FUZZ_DIR/$t.log"
  set +e
  "$FUZZ_DIR/fuzz_$t" "${args[@]}" "$FUZZ_DIR/corpus/$t" "${seeds[@]}" >"$log" 2>&1
  rc=$?
  set -e
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  if [ "$rc" -ne 0 ]; then
    failed+=("$t")
    echo "fuzz.sh: $t: FAILED (exit $rc) after ${runs:-?} runs; log $log"
    grep -E "ERROR|SUMMARY|runtime error|Test unit written" "$log" | head -8 | sed 's/^/  /'
  else
    echo "fuzz.sh: $t: clean, ${runs:-?} runs in ${FUZZ_SECONDS}s (${rate:-?}/s), corpus $(ls "$FUZZ_DIR/corpus/$t" | wc -l) files"
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz.sh: FAILED: ${failed[*]} (reproducers: $FUZZ_DIR/<target>-crash-*, -leak-*, -timeout-*, -oom-*;"
  echo "         rerun one with $FUZZ_DIR/fuzz_<target> FILE)"
  exit 1
fi
echo "fuzz.sh: clean: $(echo $targets) (${FUZZ_SECONDS}s each)"
