#!/usr/bin/env bash
# Side-by-side benchmark of rollcall (examples/conformance.rs) and the Node
# socket.io reference (benches/node/conformance.mjs), same contract, same load
# generator (examples/loadgen/), same settings, same CPU budget: the server
# on core 0, the load generator on core 1 (taskset).
#
#   benches/run.sh [RUNS] [N ...]        default: 3 runs, N = 1000 10000
#
# Environment:
#   DURATION  sending time of each latency scenario, s (default 10)
#   RATES     latency scenarios' broadcast rates per second (default 2,20)
#   SAMPLE    receivers that record latencies (default 200)
#   IMPLS     implementations to run (default "rollcall node"); any other name
#             starting with "rollcall" runs the binary in $BIN_<name> (dashes
#             as underscores), e.g. IMPLS="rollcall rollcall-base"
#             BIN_rollcall_base=/path/to/conformance, for before/after runs;
#             a name ending in "+deflate" (e.g. "rollcall+deflate node+deflate")
#             runs that implementation with DEFLATE=1 and the load generator
#             with --deflate (permessage-deflate on every connection)
#   MODE      load generator mode (default all; e.g. throughput)
#   M         broadcasts of the throughput scenario (default: loadgen's)
#   PAYLOAD_BYTES  roster padding of each broadcast, bytes (default 0)
#   SKIP_WRITE_COST=1  skip the write-cost calibration
#   OUT       results directory (default target/bench-results/<date>)
#   SKIP_BUILD=1  use the binaries already built
#
# Everything goes to loopback; every load generator run has a global deadline.
# Output: $OUT/results.jsonl (one JSON line per scenario and run),
# $OUT/machine.txt, and $OUT/summary.md (medians and ratios), also printed.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${1:-3}
shift || true
NS=${*:-"1000 10000"}
DURATION=${DURATION:-10}
RATES=${RATES:-2,20}
SAMPLE=${SAMPLE:-200}
IMPLS=${IMPLS:-"rollcall node"}
MODE=${MODE:-all}
PAYLOAD_BYTES=${PAYLOAD_BYTES:-0}
OUT=${OUT:-target/bench-results/$(date +%Y%m%d-%H%M%S)}
SERVER_CPU=0
GEN_CPU=1
mkdir -p "$OUT"
RESULTS=$OUT/results.jsonl
: >"$RESULTS"

# 10,000 connections need more than 10,000 descriptors in each process.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt 10100 ]; then
  echo "warning: ulimit -n is $(ulimit -n); N=10000 needs about 10,100" >&2
fi

if [ "${SKIP_BUILD:-0}" != 1 ]; then
  cargo build --release --example conformance --example loadgen
fi
if [ ! -d benches/node/node_modules/socket.io ]; then
  (cd benches/node && npm ci --no-audit --no-fund)
fi
RC_BIN=target/release/examples/conformance
LOADGEN=target/release/examples/loadgen

{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //') x $(nproc)"
  echo "memory: $(free -m | awk '/Mem:/ {print $2 " MiB"}')"
  echo "kernel: $(uname -r)"
  echo "rustc: $(rustc --version)"
  echo "node: $(node --version)"
  echo "socket.io: $(node -p 'require("./benches/node/node_modules/socket.io/package.json").version')"
  echo "ulimit -n: $(ulimit -n)"
  echo "commit: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src examples || echo ' (+ uncommitted changes)')"
  echo "loadavg at start: $(cat /proc/loadavg)"
} >"$OUT/machine.txt"
cat "$OUT/machine.txt"

# Context line: what else was running (other builds, fuzzers) when a run started.
context() {
  local fuzz
  fuzz=$(pgrep -fc 'fuzz/target|cargo-fuzz|cargo fuzz' || true)
  printf '{"scenario":"context","run":%s,"n":%s,"impl":"%s","loadavg":"%s","fuzzers":%s}\n' \
    "$1" "$2" "$3" "$(cut -d' ' -f1-3 /proc/loadavg)" "${fuzz:-0}" >>"$RESULTS"
}

SERVER_PID=
stop_server() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  SERVER_PID=
}
trap stop_server EXIT

# Starts implementation $1 on core $SERVER_CPU with an ephemeral port; sets SERVER_PID and ADDR.
start_server() {
  local log=$OUT/server-$1.log base=${1%+deflate} deflate=
  [ "$base" = "$1" ] || deflate=1
  : >"$log"
  case $base in
    rollcall*)
      local var="BIN_${base//-/_}" bin=$RC_BIN
      [ "$base" = rollcall ] || bin=${!var:?"set $var to the binary of $base"}
      DEFLATE=$deflate PORT=0 PING_INTERVAL=25000 PING_TIMEOUT=20000 taskset -c $SERVER_CPU "$bin" >"$log" 2>&1 &
      ;;
    node)
      DEFLATE=$deflate PORT=0 PING_INTERVAL=25000 PING_TIMEOUT=20000 taskset -c $SERVER_CPU node benches/node/conformance.mjs >"$log" 2>&1 &
      ;;
    *) echo "unknown implementation $1" >&2; exit 2 ;;
  esac
  SERVER_PID=$!
  ADDR=
  for _ in $(seq 1 100); do
    ADDR=$(sed -n 's/^listening on \(127\.0\.0\.1:[0-9]*\).*/\1/p' "$log" | head -1)
    [ -n "$ADDR" ] && break
    sleep 0.1
  done
  if [ -z "$ADDR" ]; then
    echo "$1 did not start:" >&2
    cat "$log" >&2
    exit 1
  fi
}

# The cost of one small write on a loopback socket: the writer on the
# server's core, the reader (woken by each write) on the generator's core.
for _ in $([ "${SKIP_WRITE_COST:-0}" = 1 ] || echo 1 2 3); do
  "$LOADGEN" write-cost --sockets 8000 --writer-cpu $SERVER_CPU --reader-cpu $GEN_CPU \
    --deadline 60 | tee -a "$RESULTS"
done

for run in $(seq 1 "$RUNS"); do
  for n in $NS; do
    # Alternate the order so that slow drifts of the machine hit both alike.
    order=$IMPLS
    if [ $((run % 2)) -eq 0 ]; then
      order=$(echo "$IMPLS" | tr ' ' '\n' | tac | tr '\n' ' ')
    fi
    for impl in $order; do
      echo "== run $run, n=$n, $impl" >&2
      context "$run" "$n" "$impl"
      start_server "$impl"
      sleep 0.5
      extra=()
      [ "${impl%+deflate}" = "$impl" ] || extra+=(--deflate)
      [ -z "${M:-}" ] || extra+=(--m "$M")
      taskset -c $GEN_CPU "$LOADGEN" "$MODE" --addr "$ADDR" --n "$n" --server-pid "$SERVER_PID" \
        --label "$impl" --duration "$DURATION" --rates "$RATES" --sample "$SAMPLE" \
        --payload-bytes "$PAYLOAD_BYTES" "${extra[@]}" --deadline 240 | sed "s/^{/{\"run\":$run,/" | tee -a "$RESULTS" || true
      stop_server
      sleep 1
    done
  done
done

summarize() {
  python3 - "$1" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
med = lambda xs: statistics.median(xs) if xs else None

def pick(scen, n, impl, key, rate=None):
    out = []
    for r in rows:
        if r.get("scenario") != scen or r.get("n") != n or r.get("impl") != impl:
            continue
        if rate is not None and r.get("rate") != rate:
            continue
        v = r
        for k in key.split("."):
            v = v[int(k)] if isinstance(v, list) else v.get(k)
            if v is None:
                break
        if isinstance(v, (int, float)):
            out.append(v)
    return out

def fmt(v):
    if v is None:
        return "-"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    if abs(v) >= 1:
        return f"{v:.2f}"
    return f"{v:.3f}"

wc = [r for r in rows if r.get("scenario") == "write-cost"]
if wc:
    m = lambda k: statistics.median(r[k] for r in wc) / 1000
    print(f"One-message loopback write, {wc[0]['sockets']:,} sockets round-robin, median of {len(wc)} runs: "
          f"{m('ns_per_write_reader_waiting'):.2f} us with the reader waiting in epoll on the other core, "
          f"{m('ns_per_write_round_robin'):.2f} us with no reader waiting; "
          f"{m('ns_per_msg_64_per_write'):.3f} us per message at 64 messages per write.\n")
impls = sorted({r["impl"] for r in rows if r.get("impl")},
               key=lambda x: (not x.startswith("rollcall"), x))
ns = sorted({r["n"] for r in rows if r.get("scenario") == "throughput"})
rates = sorted({r["rate"] for r in rows if r.get("scenario") == "latency"})
metrics = [("deliveries/s (throughput)", "throughput", "deliveries_per_s", None),
           ("bytes on the wire per delivery (throughput)", "throughput", "wire_bytes_per_delivery", None)]
for rate in rates:
    metrics += [
        (f"p50 latency at {rate:g}/s, ms", "latency", "p50_ms", rate),
        (f"p99 latency at {rate:g}/s, ms", "latency", "p99_ms", rate),
        (f"delivered at {rate:g}/s", "latency", "delivered_fraction", rate),
    ]
metrics += [
    ("KB per idle connection", "connect", "kb_per_conn", None),
    ("connections/s", "connect", "conn_per_s", None),
    ("generator CPU, throughput", "throughput", "gen_cpu", None),
    ("generator core busy, throughput", "throughput", "core_busy.1", None),
    ("server core busy, throughput", "throughput", "core_busy.0", None),
    ("generator CPU, connect", "connect", "gen_cpu", None),
]
for n in ns:
    runs = len(pick("throughput", n, impls[0], "deliveries_per_s"))
    print(f"### N = {n:,} receivers (medians of {runs} runs)\n")
    print("| metric | " + " | ".join(impls) + (" | ratio " + impls[0] + "/" + impls[1] if len(impls) > 1 else "") + " |")
    print("|---" * (len(impls) + 1 + (len(impls) > 1)) + "|")
    for label, scen, key, rate in metrics:
        vals = [med(pick(scen, n, i, key, rate)) for i in impls]
        line = f"| {label} | " + " | ".join(fmt(v) for v in vals)
        if len(impls) > 1:
            a, b = vals[0], vals[1]
            line += " | " + (f"{a / b:.2f}" if a is not None and b else "-")
        print(line + " |")
    print()
PY
}
summarize "$RESULTS" | tee "$OUT/summary.md"
echo "results: $RESULTS" >&2
