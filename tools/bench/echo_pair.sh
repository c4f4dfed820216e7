#!/usr/bin/env bash
# echo_pair.sh A B compares two echo servers by running them at the same time: both on CPU 0, each
# under its own echo_load on CPU 1 (N connections, one 64-byte message in flight each, every echo
# checked), for PAIR_ROUNDS rounds. It prints both rates per round and the median ratio B / A.
#
#   A, B   "reactor" (tools/bench/peers/echo_reactor.c), or a directory holding an echo_server
#          binary and the libcoil.so* it is to load (LD_LIBRARY_PATH is set to the directory)
#
#   echo_pair.sh snapshot BUILD_DIR DIR   builds echo_server in BUILD_DIR and copies it and its
#                                         libcoil into DIR, to compare against a later change
#
# Why run them together: this guest's speed drifts by up to 40 % between runs seconds apart (load
# on the host it cannot see), which swamps the 1-5 % a change to coil makes in the sequential runs
# of echo_ratio.sh. Run together, both servers share every slow and fast moment.
# Two ratios are printed per round and as medians: of the rates, and of the servers' CPU time per
# message (utime + stime from /proc, read inside the loads' measured window). Trust the second
# when A and B are different kinds of server: CPU 0 is shared by time, and a server that sleeps
# in epoll_wait more often gets a smaller share, so the rates of a reactor and of coil were seen
# to differ by 3 % more than their cost per message does. Repeated pairs of the same build agree
# within 1 %; pairs of different builds have drifted by up to 3 % between invocations, so only a
# consistent shift across rounds counts.
# Environment: PAIR_ROUNDS (6), PAIR_SECONDS (3), PAIR_WARMUP (1), PAIR_CONNECTIONS (1000).
# Exits 0 after printing, 1 if a server or a load fails, 2 on bad arguments.
set -euo pipefail

BENCH_NAME=echo_pair
# shellcheck source=SCRIPTDIR/lib/bench.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/bench.sh"

usage() { bench_die "usage: echo_pair.sh A B | echo_pair.sh snapshot BUILD_DIR DIR (see the script's header)"; }

if [[ ${1:-} == snapshot ]]; then
  (($# == 3)) || usage
  bench_setup "$2"
  bench_build_coil echo_server
  mkdir -p "$3"
  cp "$BENCH_BUILD/bin/echo_server" "$3/"
  cp -a "$BENCH_BUILD"/lib/libcoil.so* "$3/"
  echo "echo_pair: echo_server and libcoil of $BENCH_BUILD copied into $3"
  exit 0
fi
(($# == 2)) || usage
for who in "$1" "$2"; do
  [[ $who == reactor || -x $who/echo_server ]] || bench_die "$who: neither 'reactor' nor a directory with echo_server"
done

rounds=${PAIR_ROUNDS:-6}
seconds=${PAIR_SECONDS:-3}
warmup=${PAIR_WARMUP:-1}
connections=${PAIR_CONNECTIONS:-1000}
bench_setup ""
bench_build_peers
bench_check_quiet
peers=$BENCH_BUILD/bench-peers

# start NAME WHO starts WHO on CPU 0 and sets port[NAME] and pid[NAME].
declare -A port pid
start() {
  if [[ $2 == reactor ]]; then
    bench_start_echo "$1" taskset -c 0 "$peers/echo_reactor" 0
  else
    bench_start_echo "$1" env LD_LIBRARY_PATH="$2" taskset -c 0 "$2/echo_server" --port 0
  fi
  port[$1]=$BENCH_PORT pid[$1]=$BENCH_LAST_PID
}
start a "$1"
start b "$2"

echo "echo_pair: A=$1 B=$2 on CPU 0 together; two echo_load on CPU 1;" \
  "$connections connections each; $rounds rounds of ${warmup} s + ${seconds} s"
# cpu_ticks PID prints the clock ticks (user + system) PID has used so far.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
now() { date +%s.%N; }

rows=()
for ((round = 1; round <= rounds; round++)); do
  declare -A load ticks0 ticks1
  for side in a b; do
    bench_spawn "load-$side" taskset -c 1 "$peers/echo_load" --port "${port[$side]}" \
      --connections "$connections" --warmup "$warmup" --duration "$seconds"
    load[$side]=$BENCH_LAST_PID
  done
  # The servers' CPU time is read inside the loads' measured window, a little short of each end.
  sleep "$warmup.1"
  for side in a b; do ticks0[$side]=$(cpu_ticks "${pid[$side]}"); done
  t0=$(now)
  sleep "$(python3 -c "print($seconds - 0.2)")"
  for side in a b; do ticks1[$side]=$(cpu_ticks "${pid[$side]}"); done
  t1=$(now)
  declare -A rate
  for side in a b; do
    bench_wait "${load[$side]}" || {
      cat "$BENCH_TMP/load-$side.err" >&2
      echo "echo_pair: the load against ${side^^} failed in round $round" >&2
      exit 1
    }
    rate[$side]=$(sed -n 's/.*msgs_per_sec=\([0-9.]*\).*/\1/p' "$BENCH_TMP/load-$side.out")
  done
  rows+=("${rate[a]} ${rate[b]} $((ticks1[a] - ticks0[a])) $((ticks1[b] - ticks0[b])) $t0 $t1")
  python3 - "$round" "${rows[-1]}" "$(getconf CLK_TCK)" <<'PY'
import sys
rnd, row, hz = sys.argv[1], sys.argv[2].split(), int(sys.argv[3])
ra, rb, ta, tb, t0, t1 = map(float, row)
us = lambda ticks, rate: ticks / hz * 1e6 / (rate * (t1 - t0))
ua, ub = us(ta, ra), us(tb, rb)
print(f"round {rnd}: A {ra:.0f} msgs/s, {ua:.2f} CPU µs/msg; B {rb:.0f} msgs/s, {ub:.2f} CPU µs/msg;"
      f" B/A by rate {rb / ra:.3f}, by CPU per message {ua / ub:.3f}")
PY
done
python3 - "$(getconf CLK_TCK)" "${rows[@]}" <<'PY'
import statistics, sys
hz = int(sys.argv[1])
by_rate, by_cpu = [], []
for row in sys.argv[2:]:
    ra, rb, ta, tb, t0, t1 = map(float, row.split())
    by_rate.append(rb / ra)
    by_cpu.append((ta / ra) / (tb / rb))
for name, r in (("by rate", by_rate), ("by CPU per message", by_cpu)):
    print(f"B/A {name}: median {statistics.median(r):.3f} (min {min(r):.3f}, max {max(r):.3f})")
PY
