#!/usr/bin/env bash
# connect_rate.sh [BUILD_DIR] measures how fast coil-stress (tools/stress/) opens connections to
# examples/c1m_server, and what each connection costs in memory, at a scale that fits this
# machine in seconds: the C1M setup of tools/c1m.sh (docs/c1m.md) in small.
#
#   server  c1m_server --procs P on 100 free ports in 20000-32000 of 127.0.0.1, pinned to CPU 0
#   client  coil-stress --procs P --connections N --src 127.0.0.1-127.0.0.254 (the sources
#           spread over 127.0.0.0/8, IP_BIND_ADDRESS_NO_PORT), a verified 64-byte heartbeat a
#           second on each connection for D s after the connect phase, pinned to CPU 1
#
# Each of R runs starts a fresh server. The script prints the medians of the connect rate
# (connections / connect phase), the connect latency and echo round-trip percentiles, the
# echoes/s of the steady window, the client's RSS per connection (coil-stress' own figure) and the
# server's (the rise of its processes' VmHWM over their RSS before the client started, divided by
# N), then the connect rate against the C1M target (>= 50,000/s, set for a million connections;
# docs/c1m.md says why two shared vCPUs miss it).
#
# BUILD_DIR is a configured coil build (default: build-release/); c1m_server and coil-stress are
# built there. Environment: CONNECT_CONNECTIONS (20000), CONNECT_PROCS (2: the connections are
# split over this many client and server processes, each of which must hold its share under
# RLIMIT_NOFILE), CONNECT_RUNS (3), CONNECT_DURATION (2). BENCH_RESULTS=FILE also appends the
# medians and the verdict to FILE as JSON lines (tools/bench/lib/bench_results.py). Exits 0
# whether or not the target is met, 1 if a run fails (an error, a lost or corrupt echo, a server
# that did not accept every connection), 2 if a prerequisite is missing.
set -euo pipefail

BENCH_NAME=connect_rate
# shellcheck source=SCRIPTDIR/lib/bench.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/bench.sh"

connections=${CONNECT_CONNECTIONS:-20000}
procs=${CONNECT_PROCS:-2}
runs=${CONNECT_RUNS:-3}
duration=${CONNECT_DURATION:-2}
readonly PORTS=100 SOURCES=127.0.0.1-127.0.0.254

bench_setup "${1:-}"
bench_build_coil c1m_server coil-stress
bench_check_quiet
bin=$BENCH_BUILD/bin

# Each process holds its share of the connections; the server's share is uneven (SO_REUSEPORT
# spreads by hash), so it gets a quarter more room, besides its listeners.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
fd_limit=$(ulimit -n)
share=$(((connections + procs - 1) / procs))
if [[ $fd_limit != unlimited ]] && ((share * 5 / 4 + PORTS + 100 > fd_limit)); then
  bench_die "$connections connections over $procs processes need about $((share * 5 / 4 + PORTS \
+ 100)) descriptors per server process, more than RLIMIT_NOFILE $fd_limit: raise CONNECT_PROCS"
fi
# coil-stress waits up to 30 s + N/10000 s for the connects, then D s, then 5 s for the last
# echoes, and kills its clients 30 s after that; the server stops by itself a minute later.
server_bound=$((30 + connections / 10000 + duration + 5 + 30 + 60))

# server_children PID prints the PIDs of the processes whose parent is PID (c1m_server's forks).
server_children() { cat /proc/"$1"/task/*/children 2>/dev/null | tr ' ' '\n' | grep . || true; }
# rss_sum FIELD PID... prints the sum of FIELD (VmRSS, VmHWM; kB) over the PIDs.
rss_sum() {
  local field=$1 pid sum=0 kb
  shift
  for pid in "$@"; do
    kb=$(awk -v f="$field:" '$1 == f { print $2 }' "/proc/$pid/status" 2>/dev/null || true)
    sum=$((sum + ${kb:-0}))
  done
  echo "$sum"
}

echo "connect_rate: c1m_server --procs $procs on CPU 0; coil-stress --procs $procs on CPU 1;" \
  "$connections connections from $SOURCES, $runs runs (heartbeats for $duration s)"
results=$BENCH_TMP/results
for ((run = 1; run <= runs; run++)); do
  ports=$(bench_free_port_range "$PORTS") || bench_die "no free ports for c1m_server"
  bench_spawn "server$run" taskset -c 0 "$bin/c1m_server" --ports "$ports" --procs "$procs" \
    --max-seconds "$server_bound"
  server=$BENCH_LAST_PID
  for ((i = 0; i < 300; i++)); do  # up to 15 s for every process to listen on every port
    (($(grep -c '^listening on ports' "$BENCH_TMP/server$run.out" || true) >= procs)) && break
    kill -0 "$server" 2>/dev/null || break
    sleep 0.05
  done
  if (($(grep -c '^listening on ports' "$BENCH_TMP/server$run.out" || true) < procs)); then
    cat "$BENCH_TMP/server$run.out" "$BENCH_TMP/server$run.err" >&2
    echo "connect_rate: c1m_server did not listen on $ports in 15 s" >&2
    exit 1
  fi
  mapfile -t children < <(server_children "$server")
  idle_kb=$(rss_sum VmRSS "${children[@]}")

  bench_spawn "client$run" taskset -c 1 "$bin/coil-stress" 127.0.0.1 --ports "$ports" \
    --connections "$connections" --procs "$procs" --src "$SOURCES" --interval 1 \
    --duration "$duration" --verify --json "$BENCH_TMP/run$run.json"
  status=0
  bench_wait "$BENCH_LAST_PID" || status=$?
  peak_kb=$(rss_sum VmHWM "${children[@]}")
  bench_stop "$server"
  if ((status != 0)); then
    tail -15 "$BENCH_TMP/client$run.out" "$BENCH_TMP/client$run.err" >&2
    echo "connect_rate: coil-stress exited $status in run $run" >&2
    exit 1
  fi
  accepted=$(sed -n 's/^summary: accepted \([0-9]*\) connections.*/\1/p' \
    "$BENCH_TMP/server$run.out" | awk '{ s += $1 } END { print s + 0 }')
  if ((accepted != connections)); then
    echo "connect_rate: the servers accepted $accepted connections, not $connections" >&2
    exit 1
  fi
  echo "$BENCH_TMP/run$run.json $((peak_kb - idle_kb))" >>"$results"
  python3 - "$BENCH_TMP/run$run.json" "$run" <<'PY'
import json
import sys

r = json.load(open(sys.argv[1]))
c = r["connections"]
print(f"  run {sys.argv[2]}: {c['established']} established in {c['connect_phase_s']:.2f} s "
      f"({c['connects_per_s']:.0f}/s), connect p50 {r['connect_latency_us']['p50'] / 1e3:.1f} ms, "
      f"errors {r['errors_total']}, client RSS "
      f"{r['memory']['client_rss_per_connection_bytes'] / 1024:.1f} KiB/conn")
PY
done

bench_python - "$results" "$connections" "$procs" <<'PY'
import json
import statistics
import sys

import bench_results

runs = []
for line in open(sys.argv[1]):
    path, server_kb = line.split()
    runs.append((json.load(open(path)), int(server_kb)))
n, procs = int(sys.argv[2]), int(sys.argv[3])


def med(get):
    return statistics.median(get(r, kb) for r, kb in runs)


rate = med(lambda r, kb: r["connections"]["connects_per_s"])
row = dict(
    connections=n, procs=procs, runs=len(runs), connects_per_s=round(rate),
    connect_phase_s=med(lambda r, kb: r["connections"]["connect_phase_s"]),
    connect_p50_us=med(lambda r, kb: r["connect_latency_us"]["p50"]),
    connect_p90_us=med(lambda r, kb: r["connect_latency_us"]["p90"]),
    connect_p99_us=med(lambda r, kb: r["connect_latency_us"]["p99"]),
    rtt_p50_us=med(lambda r, kb: r["rtt_us"]["p50"]),
    rtt_p99_us=med(lambda r, kb: r["rtt_us"]["p99"]),
    echoes_per_s=round(med(lambda r, kb: r["messages"]["echoes_per_s"])),
    client_rss_per_conn_bytes=med(lambda r, kb: r["memory"]["client_rss_per_connection_bytes"]),
    server_rss_per_conn_bytes=round(med(lambda r, kb: kb * 1024 / n)),
    errors=sum(r["errors_total"] for r, _ in runs))
bench_results.emit("connect", **row)
print(f"\nmedians of {len(runs)} runs ({n} connections over {procs}+{procs} processes):")
print(f"  connect rate          {rate:.0f}/s (connect phase {row['connect_phase_s']:.2f} s)")
print(f"  connect latency       p50 {row['connect_p50_us'] / 1e3:.1f} ms, "
      f"p90 {row['connect_p90_us'] / 1e3:.1f} ms, p99 {row['connect_p99_us'] / 1e3:.1f} ms")
print(f"  echo round trip       p50 {row['rtt_p50_us'] / 1e3:.1f} ms, "
      f"p99 {row['rtt_p99_us'] / 1e3:.1f} ms; {row['echoes_per_s']} echoes/s steady")
print(f"  memory / connection   client {row['client_rss_per_conn_bytes'] / 1024:.1f} KiB, "
      f"server {row['server_rss_per_conn_bytes'] / 1024:.1f} KiB (RSS)")
met = rate >= 50000
bench_results.emit_target("connect", "connect-rate", f"connect rate at {n} connections", rate,
                          ">=", 50000)
print(f"\n  connect rate >= 50000/s (the C1M target): {'PASS' if met else 'MISS'}")
PY
