#!/usr/bin/env bash
# echo_ratio.sh [BUILD_DIR] measures coil's toupper echo server (examples/echo_server.cpp, one
# coroutine per connection, one thread) against its peers, each on CPU 0 alone:
#
#   reactor  tools/bench/peers/echo_reactor.c: a hand-written level-triggered epoll reactor in C
#   go       tools/bench/peers/echo_go: a goroutine per connection, GOMAXPROCS=1 (if go is there)
#
# under tools/bench/load/echo_load on CPU 1: N connections, one 64-byte message in flight each,
# every echo checked. For N = 100, 1000 and 10000 it runs each server 3 times (1 s warm-up, 5 s
# measured; runs of the contestants interleaved) and prints the medians: messages per second,
# latency p50/p99, the server's CPU use and CPU time per message, then the ratios with coil's
# targets at 1000 connections:
#
#   coil / reactor  >= 1.0        coil / go  >= 1.3
#
# BUILD_DIR is a configured coil build (default: the Release configuration of tools/lib/build.sh,
# build-release/); the script builds echo_server there and compiles the peers and the load
# generator into BUILD_DIR/bench-peers. Environment: ECHO_CONNECTIONS (default "100 1000 10000"),
# ECHO_RUNS (3), ECHO_SECONDS (5), ECHO_WARMUP (1), ECHO_ENGINE (uring, the default: the load
# generator's io_uring engine, which falls back to epoll by itself where io_uring is unavailable;
# or epoll), ECHO_TIME_LIMIT (280: seconds the script may take; a run is repeated only while the
# runs still to do fit in it, at warm-up + duration + 2 s each). BENCH_RESULTS=FILE also appends
# the medians and the verdicts to FILE as JSON lines (tools/bench/lib/bench_results.py). Exits 0
# whether or not the targets are met, 1 if a run fails (a wrong echo, a server that dies), 2 if a
# prerequisite is missing.
set -euo pipefail

BENCH_NAME=echo_ratio
# shellcheck source=SCRIPTDIR/lib/bench.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/bench.sh"

connections=${ECHO_CONNECTIONS:-100 1000 10000}
runs=${ECHO_RUNS:-3}
seconds=${ECHO_SECONDS:-5}
warmup=${ECHO_WARMUP:-1}
engine=${ECHO_ENGINE:-uring}
limit=${ECHO_TIME_LIMIT:-280}  # seconds: runs are repeated only while all still fit in it

bench_setup "${1:-}"
bench_build_coil echo_server
bench_build_peers
bench_check_quiet
peers=$BENCH_BUILD/bench-peers
results=$BENCH_TMP/results

# The servers stay up for the whole script (idle while another is measured), each on CPU 0.
declare -A port pid
bench_start_echo reactor taskset -c 0 "$peers/echo_reactor" 0
port[reactor]=$BENCH_PORT pid[reactor]=$BENCH_LAST_PID
bench_start_echo coil taskset -c 0 "$BENCH_BUILD/bin/echo_server" --port 0
port[coil]=$BENCH_PORT pid[coil]=$BENCH_LAST_PID
contestants=(reactor coil)
if [[ -n $BENCH_GO ]]; then
  bench_start_echo go env GOMAXPROCS=1 taskset -c 0 "$BENCH_GO" 0
  port[go]=$BENCH_PORT pid[go]=$BENCH_LAST_PID
  contestants+=(go)
else
  echo "echo_ratio: go is not installed: the Go peer is skipped" >&2
fi

echo "echo_ratio: ${contestants[*]} on CPU 0; echo_load --engine $engine on CPU 1;" \
  "connections: $connections;" \
  "$runs runs of ${warmup} s + ${seconds} s each"
# A run during which the server or the load waited 5% of the time or more for its CPU (another
# process had it) is run again, at most twice, and only while the runs still to do fit in the limit.
per_run=$((${warmup%.*} + ${seconds%.*} + 2))
left=$(($(wc -w <<<"$connections") * runs * ${#contestants[@]}))
for n in $connections; do
  for ((run = 1; run <= runs; run++)); do
    for who in "${contestants[@]}"; do
      for ((try = 0; try <= 2; try++)); do
        bench_spawn load taskset -c 1 "$peers/echo_load" --port "${port[$who]}" \
          --connections "$n" --warmup "$warmup" --duration "$seconds" \
          --server-pid "${pid[$who]}" --engine "$engine"
        bench_wait "$BENCH_LAST_PID" || {
          cat "$BENCH_TMP/load.err" >&2
          kill -0 "${pid[$who]}" 2>/dev/null || cat "$BENCH_TMP/$who.err" >&2
          echo "echo_ratio: the load against $who failed at $n connections (run $run)" >&2
          exit 1
        }
        line=$(grep '^connections=' "$BENCH_TMP/load.out")
        echo "  $who n=$n run $run: $line"
        bench_run_is_clean "$line" || ((SECONDS + left * per_run > limit)) || {
          echo "  (another process shared a CPU: run again)"
          sleep 1
          continue
        }
        break
      done
      echo "$who $line" >>"$results"
      left=$((left - 1))
    done
  done
done

bench_python - "$results" <<'PY'
import statistics
import sys

import bench_results

rows, engines = {}, set()
for line in open(sys.argv[1]):
    who, *fields = line.split()
    r = dict(f.split("=", 1) for f in fields)
    engines.add(r.pop("engine", "?"))
    rows.setdefault((who, int(r["connections"])), []).append({k: float(v) for k, v in r.items()})

def med(who, n, key):
    runs = rows.get((who, n))
    return statistics.median(r[key] for r in runs) if runs else None

names = sorted({w for w, _ in rows}, key=["reactor", "coil", "go"].index)
counts = sorted({n for _, n in rows})
print(f"\nmedians (server on CPU 0, echo_load --engine {'/'.join(sorted(engines))} on CPU 1):")
print(f"  {'conns':>6} {'server':<8} {'msgs/s':>9} {'p50 us':>9} {'p99 us':>9} "
      f"{'srv CPU%':>8} {'srv us/msg':>10} {'load CPU%':>9} {'wait%':>6}")
warnings = []
for n in counts:
    for who in names:
        if (who, n) not in rows:
            continue
        rate = med(who, n, "msgs_per_sec")
        cpu = med(who, n, "server_cpu_pct")
        us_per_msg = 1e4 * cpu / rate  # cpu% of one second / messages per second, in us
        wait = max(max(r["server_wait_pct"], r["wait_pct"]) for r in rows[(who, n)])
        print(f"  {n:>6} {who:<8} {rate:>9.0f} {med(who, n, 'p50_us'):>9.0f} "
              f"{med(who, n, 'p99_us'):>9.0f} {cpu:>8.1f} {us_per_msg:>10.2f} "
              f"{med(who, n, 'cpu_pct'):>9.1f} {wait:>6.1f}")
        bench_results.emit("echo", server=who, connections=n, runs=len(rows[(who, n)]),
                           msgs_per_sec=rate, p50_us=med(who, n, "p50_us"),
                           p90_us=med(who, n, "p90_us"), p99_us=med(who, n, "p99_us"),
                           server_cpu_pct=cpu, us_per_msg=round(us_per_msg, 3),
                           load_cpu_pct=med(who, n, "cpu_pct"), wait_pct=wait,
                           engine="/".join(sorted(engines)))
        if wait >= 5:
            warnings.append(f"{who} at {n}: a process waited {wait:.0f}% of a run for its CPU "
                            "(another process shared it): rerun on a quiet machine")
        elif cpu < 90:
            warnings.append(f"{who} at {n}: the server used only {cpu:.0f}% of CPU 0: the load "
                            "generator or the network path, not the server, set this rate; "
                            "compare srv us/msg")

print("\nratios of the medians (msgs/s); targets at 1000 connections:")
met = total = 0
for n in counts:
    coil = med("coil", n, "msgs_per_sec")
    for peer, target in (("reactor", 1.0), ("go", 1.3)):
        other = med(peer, n, "msgs_per_sec")
        if coil is None or other is None:
            continue
        ratio = coil / other
        cpu_ratio = (med(peer, n, "server_cpu_pct") / other) / (med("coil", n, "server_cpu_pct") / coil)
        text = f"  coil / {peer:<7} at {n:>5}: {coil:.0f} / {other:.0f} = {ratio:.2f}"
        text += f"   (CPU per message, {peer} / coil: {cpu_ratio:.2f})"
        if n == 1000:
            total += 1
            met += ratio >= target
            text += f"   target >= {target}: {'PASS' if ratio >= target else 'MISS'}"
            bench_results.emit_target("echo", f"coil/{peer}@1000",
                                      f"coil / {peer} msgs/s at 1000 connections", ratio, ">=",
                                      target)
        print(text)
print(f"\n  targets met: {met}/{total}")
for w in warnings:
    print(f"  warning: {w}")
PY
