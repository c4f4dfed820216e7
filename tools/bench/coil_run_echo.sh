#!/usr/bin/env bash
# coil_run_echo.sh [BUILD_DIR] measures coil-run on an unmodified thread-per-connection server:
# tests/preload/thread_echo_server.c (plain C, one pthread per connection, no coil header or
# library) run three ways, each on CPU 0 alone:
#
#   native   the program as it is: one OS thread per connection
#   coil-run the same binary under coil-run: one green thread (a coroutine) per connection, one
#            OS thread
#   coil     examples/echo_server, which links coil directly (one coroutine per connection)
#
# under tools/bench/load/echo_load on CPU 1: N connections, one 64-byte message in flight each,
# every echo checked. For N = 1000 and 10000 the servers are started afresh, run 3 times each
# (1 s warm-up, 5 s measured; contestants interleaved), and the script prints the medians of
# msgs/s, the server's CPU time per message, its RSS and OS thread count read from
# /proc/PID/status in the middle of the measured window, and the kernel memory its threads cost
# (kern MB: the rise of KernelStack + PageTables in /proc/meminfo since the servers started;
# system-wide, so the load generator's share is in every row alike); then the ratios with
# coil-run's targets:
#
#   coil-run / native  >= 1.3 msgs/s at 1000 connections
#   coil-run / native  <= 0.2 RSS at 10000 connections
#   coil-run / coil    >= 0.9 msgs/s at 1000 connections
#
# BUILD_DIR is a configured coil build (default: build-release/). Environment: RUN_CONNECTIONS
# ("1000 10000"), RUN_RUNS (3), RUN_SECONDS (5), RUN_WARMUP (1); BENCH_RESULTS=FILE also appends
# the medians and the verdicts to FILE as JSON lines (tools/bench/lib/bench_results.py). Exits 0
# whether or not the targets are met, 1 if a run fails (a wrong echo, a server that dies), 2 if a
# prerequisite is missing.
set -euo pipefail

BENCH_NAME=coil_run_echo
# shellcheck source=SCRIPTDIR/lib/bench.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/bench.sh"

connections=${RUN_CONNECTIONS:-1000 10000}
runs=${RUN_RUNS:-3}
seconds=${RUN_SECONDS:-5}
warmup=${RUN_WARMUP:-1}

bench_setup "${1:-}"
bench_build_coil echo_server coil-run
bench_build_peers
bench_check_quiet
peers=$BENCH_BUILD/bench-peers
bin=$BENCH_BUILD/bin
# Compiled as such a program is: plain gcc -pthread, no coil header or library.
bench_compile "$peers/thread_echo_server" "$BENCH_DIR/../../tests/preload/thread_echo_server.c" \
  "${CC:-cc}" -std=gnu11 -pthread
results=$BENCH_TMP/results
contestants=(native coil-run coil)

# start WHO starts WHO's server on CPU 0 and sets port[WHO] and pid[WHO].
declare -A port pid
start() {
  case $1 in
    native) bench_start_echo "$1" taskset -c 0 "$peers/thread_echo_server" 0 ;;
    coil-run) bench_start_echo "$1" taskset -c 0 "$bin/coil-run" -- "$peers/thread_echo_server" 0 ;;
    coil) bench_start_echo "$1" taskset -c 0 "$bin/echo_server" --port 0 ;;
  esac
  port[$1]=$BENCH_PORT pid[$1]=$BENCH_LAST_PID
}

# kernel_kb prints the kernel memory that threads cost, system-wide: KernelStack + PageTables from
# /proc/meminfo (kB). A native thread has a 16 KiB kernel stack; a green thread has none.
kernel_kb() { awk '$1 == "KernelStack:" || $1 == "PageTables:" { kb += $2 } END { print kb }' /proc/meminfo; }

# status_field PID FIELD prints FIELD's number from /proc/PID/status (VmRSS in kB, Threads).
status_field() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"; }

echo "coil_run_echo: ${contestants[*]} on CPU 0; echo_load on CPU 1; connections: $connections;" \
  "$runs runs of ${warmup} s + ${seconds} s each"
for n in $connections; do
  for who in "${contestants[@]}"; do start "$who"; done
  declare -A idle_rss
  for who in "${contestants[@]}"; do idle_rss[$who]=$(status_field "${pid[$who]}" VmRSS); done
  idle_kernel=$(kernel_kb)
  for ((run = 1; run <= runs; run++)); do
    for who in "${contestants[@]}"; do
      bench_spawn load taskset -c 1 "$peers/echo_load" --port "${port[$who]}" \
        --connections "$n" --warmup "$warmup" --duration "$seconds" --server-pid "${pid[$who]}"
      load=$BENCH_LAST_PID
      sleep "$(python3 -c "print($warmup + $seconds / 2)")"
      rss=$(status_field "${pid[$who]}" VmRSS)
      threads=$(status_field "${pid[$who]}" Threads)
      kernel=$(($(kernel_kb) - idle_kernel))
      bench_wait "$load" || {
        cat "$BENCH_TMP/load.err" >&2
        kill -0 "${pid[$who]}" 2>/dev/null || cat "$BENCH_TMP/$who.err" >&2
        echo "coil_run_echo: the load against $who failed at $n connections (run $run)" >&2
        exit 1
      }
      line=$(grep '^connections=' "$BENCH_TMP/load.out")
      echo "  $who n=$n run $run: $line rss_kb=$rss kernel_kb=$kernel threads=$threads"
      echo "$who $line rss_kb=$rss idle_rss_kb=${idle_rss[$who]} kernel_kb=$kernel threads=$threads" \
        >>"$results"
      # Let the native server's threads end before the next load connects.
      sleep 1
    done
  done
  for who in "${contestants[@]}"; do bench_stop "${pid[$who]}"; done
done

bench_python - "$results" <<'PY'
import statistics
import sys

import bench_results

rows = {}
for line in open(sys.argv[1]):
    who, *fields = line.split()
    r = dict(f.split("=", 1) for f in fields)
    r.pop("engine", None)
    rows.setdefault((who, int(r["connections"])), []).append({k: float(v) for k, v in r.items()})

def med(who, n, key):
    return statistics.median(r[key] for r in rows[(who, n)])

names = ["native", "coil-run", "coil"]
counts = sorted({n for _, n in rows})
print("\nmedians (server on CPU 0, echo_load on CPU 1):")
print(f"  {'conns':>6} {'server':<9} {'msgs/s':>9} {'p99 us':>8} {'srv CPU%':>8} "
      f"{'srv us/msg':>10} {'RSS MB':>8} {'KB/conn':>8} {'kern MB':>8} {'threads':>7}")
for n in counts:
    for who in names:
        rate, cpu = med(who, n, "msgs_per_sec"), med(who, n, "server_cpu_pct")
        rss, idle = med(who, n, "rss_kb"), med(who, n, "idle_rss_kb")
        print(f"  {n:>6} {who:<9} {rate:>9.0f} {med(who, n, 'p99_us'):>8.0f} {cpu:>8.1f} "
              f"{1e4 * cpu / rate:>10.2f} {rss / 1024:>8.1f} {(rss - idle) / n:>8.1f} "
              f"{med(who, n, 'kernel_kb') / 1024:>8.1f} {med(who, n, 'threads'):>7.0f}")
        bench_results.emit("coil_run", server=who, connections=n, runs=len(rows[(who, n)]),
                           msgs_per_sec=rate, p50_us=med(who, n, "p50_us"),
                           p90_us=med(who, n, "p90_us"), p99_us=med(who, n, "p99_us"),
                           server_cpu_pct=cpu, us_per_msg=round(1e4 * cpu / rate, 3),
                           rss_kb=rss, kb_per_conn=round((rss - idle) / n, 2),
                           kernel_kb=med(who, n, "kernel_kb"),
                           kernel_kb_per_conn=round(max(med(who, n, "kernel_kb"), 0) / n, 2),
                           threads=med(who, n, "threads"))

print("\nratios of the medians; targets:")
met = total = 0
def report(name, text, value, target, at_least):
    global met, total
    ok = value >= target if at_least else value <= target
    total += 1
    met += ok
    bench_results.emit_target("coil_run", name, text, value, ">=" if at_least else "<=", target)
    print(f"  {text}: {value:.2f}   target {'>=' if at_least else '<='} {target}: "
          f"{'PASS' if ok else 'MISS'}")
def mem_total(n, who):
    return med(who, n, "rss_kb") + max(med(who, n, "kernel_kb"), 0)
for n in counts:
    rate = lambda who: med(who, n, "msgs_per_sec")
    print(f"  at {n}: coil-run / native msgs/s {rate('coil-run') / rate('native'):.2f}, "
          f"coil-run / coil msgs/s {rate('coil-run') / rate('coil'):.2f}, "
          f"coil-run / native RSS {med('coil-run', n, 'rss_kb') / med('native', n, 'rss_kb'):.2f}, "
          f"RSS + kernel {mem_total(n, 'coil-run') / mem_total(n, 'native'):.2f}")
if 1000 in counts:
    report("coil-run/native@1000", "coil-run / native msgs/s at 1000",
           med("coil-run", 1000, "msgs_per_sec") / med("native", 1000, "msgs_per_sec"), 1.3, True)
    report("coil-run/coil@1000", "coil-run / coil msgs/s at 1000",
           med("coil-run", 1000, "msgs_per_sec") / med("coil", 1000, "msgs_per_sec"), 0.9, True)
if 10000 in counts:
    report("coil-run/native-rss@10000", "coil-run / native RSS at 10000",
           med("coil-run", 10000, "rss_kb") / med("native", 10000, "rss_kb"), 0.2, False)
print(f"\n  targets met: {met}/{total}")
PY
