#!/usr/bin/env bash
# echo_syscalls.sh [BUILD_DIR] counts the system calls an echo server makes per echoed message:
# coil's echo_server (examples/echo_server.cpp; the hooks issue's target is <= 2.05), and for
# comparison the epoll reactor (tools/bench/peers/echo_reactor.c) and, if go is installed, the Go
# peer. Each server runs on CPU 0 under tools/bench/load/echo_load --hold on CPU 1 with 1000
# connections and one 64-byte message in flight on each:
#
#   1. the load connects, warms up for 1 s, lets the messages in flight finish and waits;
#   2. `strace -c -f -p SERVER` attaches (so start-up and accepts are not counted);
#   3. the load runs 3 s, lets its messages finish and prints how many it sent;
#   4. strace detaches before the load closes its connections.
#
# syscalls per message = the server's system calls in that window / the messages echoed in it,
# with strace's per-call breakdown. strace stops the server at every call, which makes it slow and
# lets more connections be ready at each epoll_wait than at full speed, so the window is then run
# again with `perf stat -e raw_syscalls:sys_enter` (when perf and the tracepoint are available),
# which counts without slowing the server, for the total at full speed.
#
# BUILD_DIR is as for echo_ratio.sh. Environment: SYSCALLS_CONNECTIONS (1000), SYSCALLS_SECONDS
# (3). Exits 0 whether or not the target is met, 1 if a run fails, 2 if a prerequisite is missing.
set -euo pipefail

BENCH_NAME=echo_syscalls
# shellcheck source=SCRIPTDIR/lib/bench.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/bench.sh"

connections=${SYSCALLS_CONNECTIONS:-1000}
seconds=${SYSCALLS_SECONDS:-3}

bench_setup "${1:-}"
bench_require strace
bench_build_coil echo_server
bench_build_peers
peers=$BENCH_BUILD/bench-peers
have_perf=0
if command -v perf >/dev/null 2>&1 &&
  perf stat -e raw_syscalls:sys_enter -x, -o /dev/null true >/dev/null 2>&1; then
  have_perf=1
else
  echo "echo_syscalls: perf with the raw_syscalls tracepoint is not available (Debian:" \
    "linux-perf, run as root): only the strace counts are given" >&2
fi

# window NAME SERVER_PID TRACER... runs one measured window of the load against the server on
# port BENCH_PORT with TRACER (given the server's PID as its last argument) attached to it, and
# writes the load's result line to $BENCH_TMP/NAME.result.
window() {
  local name=$1 server=$2
  shift 2
  bench_spawn "$name-load" taskset -c 1 "$peers/echo_load" --port "$BENCH_PORT" \
    --connections "$connections" --warmup 1 --duration "$seconds" --hold
  local load=$BENCH_LAST_PID
  bench_wait_for "$load" "$BENCH_TMP/$name-load.out" '^ready' 120
  bench_spawn "$name-tracer" "$@" "$server"
  local tracer=$BENCH_LAST_PID
  if [[ $1 == strace ]]; then
    bench_wait_for "$tracer" "$BENCH_TMP/$name-tracer.err" 'attached' 15
  else
    sleep 1  # perf stat prints nothing when its counters are open
  fi
  kill -USR1 "$load"
  bench_wait_for "$load" "$BENCH_TMP/$name-load.out" '^done' $((seconds * 20 + 60))
  kill -INT "$tracer"
  bench_wait_timeout "$tracer" 30
  kill -USR1 "$load"
  bench_wait_timeout "$load" 30
  grep '^connections=' "$BENCH_TMP/$name-load.out" >"$BENCH_TMP/$name.result"
}

summary=$BENCH_TMP/summary
: >"$summary"
measure() {
  local who=$1
  shift
  bench_start_echo "$who" taskset -c 0 "$@"
  local server=$BENCH_LAST_PID
  window "$who-strace" "$server" strace -c -f -o "$BENCH_TMP/$who.strace" -p
  echo "$who strace $BENCH_TMP/$who-strace.result $BENCH_TMP/$who.strace" >>"$summary"
  if ((have_perf)); then
    window "$who-perf" "$server" perf stat -x, -o "$BENCH_TMP/$who.perf" \
      -e raw_syscalls:sys_enter -p
    echo "$who perf $BENCH_TMP/$who-perf.result $BENCH_TMP/$who.perf" >>"$summary"
  fi
  bench_stop "$server"
}

echo "echo_syscalls: $connections connections, ${seconds} s windows; strace slows the servers"
measure coil "$BENCH_BUILD/bin/echo_server" --port 0
measure reactor "$peers/echo_reactor" 0
if [[ -n $BENCH_GO ]]; then measure go env GOMAXPROCS=1 "$BENCH_GO" 0; fi

python3 - "$summary" <<'PY'
import sys


def result(path):
    fields = dict(f.split("=", 1) for f in open(path).read().split())
    fields.pop("engine", None)
    return {k: float(v) for k, v in fields.items()}


def strace_table(path):
    """[(calls, errors, name)] from strace -c output, and the total line's calls."""
    rows, total = [], None
    for line in open(path):
        parts = line.split()
        if len(parts) < 5 or not parts[0][0].isdigit():
            continue
        name = parts[-1]
        calls = int(parts[3])
        errors = int(parts[4]) if len(parts) == 6 else 0
        if name == "total":
            total = calls
        else:
            rows.append((calls, errors, name))
    return rows, total


def perf_total(path):
    for line in open(path):
        fields = line.strip().split(",")
        if len(fields) > 2 and fields[2] == "raw_syscalls:sys_enter":
            return int(fields[0])
    return None


TARGET = 2.05
verdicts = []
for line in open(sys.argv[1]):
    who, tool, res, data = line.split()
    r = result(res)
    msgs = r["msgs"]
    if tool == "strace":
        rows, total = strace_table(data)
        print(f"\n{who}: strace -c, {msgs:.0f} messages echoed in {r['seconds']:.1f} s "
              f"({r['msgs_per_sec']:.0f}/s under strace)")
        print(f"  {'syscall':<16} {'calls':>10} {'errors':>8} {'per message':>12}")
        for calls, errors, name in sorted(rows, reverse=True):
            print(f"  {name:<16} {calls:>10} {errors:>8} {calls / msgs:>12.3f}")
        print(f"  {'total':<16} {total:>10} {'':>8} {total / msgs:>12.3f}")
        verdicts.append((who, "strace", total / msgs))
    else:
        total = perf_total(data)
        print(f"\n{who}: perf stat raw_syscalls:sys_enter, {msgs:.0f} messages in "
              f"{r['seconds']:.1f} s ({r['msgs_per_sec']:.0f}/s): {total} syscalls, "
              f"{total / msgs:.3f} per message")
        verdicts.append((who, "perf", total / msgs))

print("\nsyscalls per echoed message:")
for who, tool, per in verdicts:
    text = f"  {who:<8} ({tool:<6}) {per:6.3f}"
    if who == "coil":
        text += f"   target <= {TARGET}: {'PASS' if per <= TARGET else 'MISS'}"
    print(text)
PY
