#!/usr/bin/env bash
# echo_threads.sh [BUILD_DIR] measures examples/echo_server with one worker thread against the
# same server with --threads 2 (a coil::Runtime, one SO_REUSEPORT listener per worker), at 1000
# connections of 64-byte ping-pong from tools/bench/load/echo_load, every echo checked:
#
#   coil-1t  echo_server, pinned to CPU 0
#   coil-2t  echo_server --threads 2 --pin: workers on CPUs 0 and 1
#
# The load runs on CPU 1 in both cases, so with two server threads it competes with worker 1 for
# that CPU: on this 2-core machine the ratio shows what a second worker buys when there is no
# CPU to spare, not a scaling figure. The script prints the medians of ECHO_RUNS runs (default
# 3; ECHO_SECONDS 5 s each after ECHO_WARMUP 1 s), msgs/s and the server's CPU (up to 200% for
# two workers), and the ratio coil-2t / coil-1t. ECHO_CONNECTIONS (default 1000). Exits 0
# whatever the ratio, 1 if a run fails, 2 if a prerequisite is missing.
set -euo pipefail

BENCH_NAME=echo_threads
# shellcheck source=SCRIPTDIR/lib/bench.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/bench.sh"

connections=${ECHO_CONNECTIONS:-1000}
runs=${ECHO_RUNS:-3}
seconds=${ECHO_SECONDS:-5}
warmup=${ECHO_WARMUP:-1}

bench_setup "${1:-}"
bench_build_coil echo_server
bench_build_peers
bench_check_quiet
peers=$BENCH_BUILD/bench-peers
results=$BENCH_TMP/results

declare -A port pid
bench_start_echo coil-1t taskset -c 0 "$BENCH_BUILD/bin/echo_server" --port 0
port[coil-1t]=$BENCH_PORT pid[coil-1t]=$BENCH_LAST_PID
bench_start_echo coil-2t taskset -c 0,1 "$BENCH_BUILD/bin/echo_server" --port 0 --threads 2 --pin
port[coil-2t]=$BENCH_PORT pid[coil-2t]=$BENCH_LAST_PID
contestants=(coil-1t coil-2t)

echo "echo_threads: coil-1t on CPU 0, coil-2t on CPUs 0 and 1; echo_load on CPU 1;" \
  "$connections connections; $runs runs of ${warmup} s + ${seconds} s each"
for ((run = 1; run <= runs; run++)); do
  for who in "${contestants[@]}"; do
    bench_spawn load taskset -c 1 "$peers/echo_load" --port "${port[$who]}" \
      --connections "$connections" --warmup "$warmup" --duration "$seconds" \
      --server-pid "${pid[$who]}"
    bench_wait "$BENCH_LAST_PID" || {
      cat "$BENCH_TMP/load.err" >&2
      echo "echo_threads: the load against $who failed (run $run)" >&2
      exit 1
    }
    line=$(grep '^connections=' "$BENCH_TMP/load.out")
    echo "  $who run $run: $line"
    echo "$who $line" >>"$results"
  done
done

python3 - "$results" <<'PY'
import statistics
import sys

rows = {}
for line in open(sys.argv[1]):
    who, *fields = line.split()
    r = dict(f.split("=", 1) for f in fields)
    r.pop("engine", None)
    rows.setdefault(who, []).append({k: float(v) for k, v in r.items()})

def med(who, key):
    return statistics.median(r[key] for r in rows[who])

print("\nmedians:")
print(f"  {'server':<8} {'msgs/s':>9} {'p50 us':>8} {'p99 us':>8} {'srv CPU%':>9} {'load CPU%':>9}")
for who in ("coil-1t", "coil-2t"):
    print(f"  {who:<8} {med(who, 'msgs_per_sec'):>9.0f} {med(who, 'p50_us'):>8.0f} "
          f"{med(who, 'p99_us'):>8.0f} {med(who, 'server_cpu_pct'):>9.1f} "
          f"{med(who, 'cpu_pct'):>9.1f}")
one, two = med("coil-1t", "msgs_per_sec"), med("coil-2t", "msgs_per_sec")
print(f"\nratio coil-2t / coil-1t (msgs/s): {two:.0f} / {one:.0f} = {two / one:.2f}"
      "  (the load shares CPU 1 with worker 1: see the header)")
PY
