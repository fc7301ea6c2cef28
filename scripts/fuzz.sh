#!/usr/bin/env bash
# fuzz.sh -- builds the dataset readers' libFuzzer harness with clang (ASan + UBSan) and runs it for FUZZ_SECONDS.
#   FUZZ_SECONDS  run time in seconds (default 60)
#   FUZZ_DIR      build and corpus directory (default build-fuzz; the corpus grows across runs)
#   FUZZ_JOBS     parallel fuzzing processes (default 1)
# Exits non-zero if the fuzzer finds a crash, a leak or undefined behaviour; the input that
# triggered it is left in FUZZ_DIR as crash-* / leak-* / timeout-*.
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

mkdir -p "$FUZZ_DIR/seeds" "$FUZZ_DIR/corpus"
sources=(src/data/dataset.c src/data/read_cifar.c src/data/read_idx.c src/data/read_folder.c
         src/data/read_synth.c src/data/packed.c src/core/error.c src/core/file.c src/core/rng.c src/core/parse.c)
libs=(-ljpeg -lpng -lz -lm)
flags=(-std=c11 -g -O1 -Iinclude -Wall -Wextra -Wno-unknown-pragmas -fno-omit-frame-pointer)

echo "fuzz.sh: building $FUZZ_DIR/fuzz_readers"
"$CC" "${flags[@]}" -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  tests/fuzz/fuzz_readers.c "${sources[@]}" "${libs[@]}" -o "$FUZZ_DIR/fuzz_readers"
"$CC" "${flags[@]}" -fsanitize=address,undefined tests/fuzz/make_seeds.c "${sources[@]}" "${libs[@]}" \
  -o "$FUZZ_DIR/make_seeds"
"$FUZZ_DIR/make_seeds" "$FUZZ_DIR/seeds"
echo "fuzz.sh: $(ls "$FUZZ_DIR/seeds" | wc -l) seeds, $(ls "$FUZZ_DIR/corpus" | wc -l) corpus files; fuzzing for ${FUZZ_SECONDS}s"

export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
args=(-max_total_time="$FUZZ_SECONDS" -max_len=16384 -timeout=20 -rss_limit_mb=3072
      -artifact_prefix="$FUZZ_DIR/" -print_final_stats=1)
if [ "$FUZZ_JOBS" -gt 1 ]; then
  args+=(-fork="$FUZZ_JOBS" -ignore_crashes=0)
fi
set +e
"$FUZZ_DIR/fuzz_readers" "${args[@]}" "$FUZZ_DIR/corpus" "$FUZZ_DIR/seeds" 2>&1 | tee "$FUZZ_DIR/fuzz.log" | \
  grep -E "^#[0-9]+[[:space:]]+(INITED|DONE)|ERROR|SUMMARY|Test unit written|stat::"
rc=${PIPESTATUS[0]}
set -e
if [ "$rc" -ne 0 ]; then
  echo "fuzz.sh: FAILED (exit $rc): see $FUZZ_DIR/fuzz.log and the crash-*/leak-*/timeout-* files in $FUZZ_DIR/"
  exit 1
fi
echo "fuzz.sh: clean (${FUZZ_SECONDS}s, log in $FUZZ_DIR/fuzz.log)"
