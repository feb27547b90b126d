#!/usr/bin/env bash
# Cluster benchmark: broadcasts to N receivers spread over two nodes joined
# by Redis (a throwaway redis-server on a free loopback port), rollcall
# (examples/conformance with REDIS_URL) against Node socket.io with
# @socket.io/redis-adapter (benches/node/conformance.mjs with REDIS_URL),
# same load generator (examples/loadgen --addr2), one run each.
#
#   benches/cluster.sh [N]        default N = 10000
#
# Scenarios per implementation: `split` (half the receivers on each node,
# the sender on the first: throughput, then latency at RATES), `local`
# (every receiver on the sender's node: latency only) and `remote` (every
# receiver on the other node: latency only); remote minus local is what the
# Redis hop adds. Both nodes and redis-server share core 0, the generator
# core 1 (taskset). Environment: DURATION (default 5 s), RATES (default 20),
# SAMPLE (default 200), M (throughput broadcasts), OUT, SKIP_BUILD=1.
# Everything is loopback and bounded (loadgen --deadline).
set -euo pipefail
cd "$(dirname "$0")/.."

N=${1:-10000}
DURATION=${DURATION:-5}
RATES=${RATES:-20}
SAMPLE=${SAMPLE:-200}
OUT=${OUT:-target/bench-results/cluster-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
RESULTS=$OUT/results.jsonl
: >"$RESULTS"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

if [ "${SKIP_BUILD:-0}" != 1 ]; then
  cargo build --release --example conformance --example loadgen
fi
if [ ! -d benches/node/node_modules/@socket.io/redis-adapter ]; then
  (cd benches/node && npm ci --no-audit --no-fund)
fi
RC_BIN=target/release/examples/conformance
LOADGEN=target/release/examples/loadgen

PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  PIDS=()
}
REDIS_PID=
trap 'cleanup; [ -z "$REDIS_PID" ] || { kill "$REDIS_PID"; wait "$REDIS_PID"; } 2>/dev/null; rm -rf "$OUT/redis"' EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

REDIS_PORT=$(free_port)
mkdir -p "$OUT/redis"
taskset -c 0 redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no \
  --dir "$OUT/redis" >"$OUT/redis.log" 2>&1 &
REDIS_PID=$!
for _ in $(seq 1 100); do
  redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break
  sleep 0.1
done
export REDIS_URL=redis://127.0.0.1:$REDIS_PORT/

# Starts node $2 of implementation $1 for layout $3 on core 0; sets ADDR and LAST_PID.
start_node() {
  local log=$OUT/server-$1-$2-$3.log
  : >"$log"
  case $1 in
    rollcall) PORT=0 PING_INTERVAL=25000 PING_TIMEOUT=20000 taskset -c 0 "$RC_BIN" >"$log" 2>&1 & ;;
    node) PORT=0 PING_INTERVAL=25000 PING_TIMEOUT=20000 taskset -c 0 node benches/node/conformance.mjs >"$log" 2>&1 & ;;
  esac
  PIDS+=($!)
  LAST_PID=$!
  for _ in $(seq 1 100); do
    ADDR=$(sed -n 's/^listening on \(127\.0\.0\.1:[0-9]*\).*/\1/p' "$log" | head -1)
    [ -n "$ADDR" ] && return
    sleep 0.1
  done
  echo "$1 node $2 did not start:" >&2
  cat "$log" >&2
  exit 1
}

{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //') x $(nproc)"
  echo "redis: $(redis-server --version | cut -d' ' -f3)"
  echo "node: $(node --version)"
  echo "commit: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src examples || echo ' (+ uncommitted changes)')"
  echo "loadavg at start: $(cat /proc/loadavg)"
} | tee "$OUT/machine.txt"

for impl in rollcall node; do
  for layout in split local remote; do
    echo "== $impl, n=$N, $layout" >&2
    start_node "$impl" a "$layout"
    A=$ADDR
    A_PID=$LAST_PID
    start_node "$impl" b "$layout"
    B=$ADDR
    sleep 1
    mode=latency
    extra=(--addr2 "$B")
    case $layout in
      split) mode=all ;;
      local) extra=() ;;
      remote) extra+=(--remote-only) ;;
    esac
    [ -z "${M:-}" ] || extra+=(--m "$M")
    printf '{"scenario":"context","impl":"%s","layout":"%s","loadavg":"%s"}\n' \
      "$impl" "$layout" "$(cut -d' ' -f1-3 /proc/loadavg)" >>"$RESULTS"
    taskset -c 1 "$LOADGEN" "$mode" --addr "$A" "${extra[@]}" --n "$N" --server-pid "$A_PID" \
      --label "$impl-$layout" --duration "$DURATION" --rates "$RATES" --rate "${RATES%%,*}" \
      --sample "$SAMPLE" --deadline 170 | tee -a "$RESULTS" || true
    cleanup
    sleep 1
  done
done
