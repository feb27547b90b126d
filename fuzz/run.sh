#!/usr/bin/env bash
# Builds the fuzz targets and runs them, each for a fixed time, on a working
# corpus seeded from fuzz/seeds/<target> with the protocol dictionary.
#
#   fuzz/run.sh [-t SECONDS] [-p PARALLEL] [-b] [TARGET...]
#
#   -t SECONDS   run time per target (default 30)
#   -p PARALLEL  targets run at the same time (default 1)
#   -b           build only
#   TARGET...    default: every target
#
# Toolchain: with a nightly toolchain installed (`rustup toolchain list`)
# the targets are built with `cargo +nightly fuzz` and AddressSanitizer;
# otherwise with the default (stable) toolchain and `-s none` (no
# sanitizer, still coverage-guided). Override with FUZZ_TOOLCHAIN=stable|nightly
# and FUZZ_SANITIZER=address|none|...
#
# Environment: FUZZ_TARGET_DIR (cargo target dir, default fuzz/target),
# FUZZ_CODEGEN_UNITS (e.g. 16: faster builds, slightly slower runs),
# FUZZ_ARGS (extra libFuzzer flags), FUZZ_LOG_DIR (default fuzz/artifacts/logs).
#
# Exit status: non-zero if a build fails or any target reports a crash, a
# timeout (an input running over 20 s) or an out-of-memory (2 GB); the
# failing input is in fuzz/artifacts/<target>/.
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_PER_TARGET=30
PARALLEL=1
BUILD_ONLY=0
while getopts "t:p:b" opt; do
  case $opt in
    t) SECONDS_PER_TARGET=$OPTARG ;;
    p) PARALLEL=$OPTARG ;;
    b) BUILD_ONLY=1 ;;
    *) sed -n '2,24p' "$0"; exit 2 ;;
  esac
done
shift $((OPTIND - 1))

ALL_TARGETS=(engine_packet ws_frames polling_payload sio_packet sio_msgpack sio_binary session)
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=("${ALL_TARGETS[@]}")

# Operation-sequence targets need long inputs early: grow the length limit faster.
extra_for() {
  case $1 in
    session | sio_binary) echo -len_control=10 ;;
    *) echo ;;
  esac
}

dict_for() {
  case $1 in
    sio_msgpack) echo fuzz/dict/msgpack.dict ;;
    sio_*) echo fuzz/dict/socketio.dict ;;
    *) echo fuzz/dict/engineio.dict ;;
  esac
}

if ! command -v cargo-fuzz >/dev/null 2>&1; then
  echo "== installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

toolchain=${FUZZ_TOOLCHAIN:-}
if [ -z "$toolchain" ]; then
  if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then toolchain=nightly; else toolchain=stable; fi
fi
if [ "$toolchain" = nightly ]; then
  TC=(+nightly)
  SAN=${FUZZ_SANITIZER:-address}
else
  TC=()
  SAN=${FUZZ_SANITIZER:-none}
fi
TARGET_DIR=${FUZZ_TARGET_DIR:-fuzz/target}
COMMON=(-s "$SAN" --target-dir "$TARGET_DIR")
# More codegen units build faster (CI) and run a little slower.
[ -n "${FUZZ_CODEGEN_UNITS:-}" ] && COMMON+=(--codegen-units "$FUZZ_CODEGEN_UNITS")
echo "== cargo ${TC[*]:-} fuzz (sanitizer: $SAN, target dir: $TARGET_DIR)"

cargo "${TC[@]}" fuzz build "${COMMON[@]}"
[ "$BUILD_ONLY" = 1 ] && exit 0

LOG_DIR=${FUZZ_LOG_DIR:-fuzz/artifacts/logs}
mkdir -p "$LOG_DIR"

run_one() {
  local t=$1 log="$LOG_DIR/$1.log"
  mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t"
  # shellcheck disable=SC2086
  if cargo "${TC[@]}" fuzz run "${COMMON[@]}" "$t" "fuzz/corpus/$t" "fuzz/seeds/$t" -- \
      -dict="$(dict_for "$t")" -max_total_time="$SECONDS_PER_TARGET" -timeout=20 \
      -rss_limit_mb=2048 -print_final_stats=1 $(extra_for "$t") ${FUZZ_ARGS:-} >"$log" 2>&1; then
    local last execs cov ft corp corpus
    last=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -1)
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
    ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
    corp=$(sed -n 's/.* corp: \([0-9]*\/[0-9a-zA-Z]*\).*/\1/p' <<<"$last")
    corpus=$(find "fuzz/corpus/$t" -type f | wc -l)
    echo "ok   $t: ${execs:-?} executions, cov ${cov:-?}, ft ${ft:-?}, corpus ${corp:-?} (libFuzzer) / $corpus files in fuzz/corpus/$t (log $log)"
  else
    echo "FAIL $t (log $log):"
    grep -E 'panicked|ERROR: libFuzzer|SUMMARY|Test unit written|^Base64' "$log" | head -8 | sed 's/^/     /'
    return 1
  fi
}

status=0
pids=()
for t in "${TARGETS[@]}"; do
  run_one "$t" &
  pids+=($!)
  if [ ${#pids[@]} -ge "$PARALLEL" ]; then
    wait "${pids[0]}" || status=1
    pids=("${pids[@]:1}")
  fi
done
for p in "${pids[@]}"; do wait "$p" || status=1; done
exit $status
