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
# of echo_ratio.sh. Run together, both servers share every slow and fast moment, and the CPU
# scheduler gives each half of CPU 0, so the ratio of their rates is the inverse ratio of their CPU
# time per message. Repeated pairs of the same build agree within 1 %; pairs of different builds
# have drifted by up to 3 % between invocations, so only a consistent shift across rounds counts.
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
ratios=()
for ((round = 1; round <= rounds; round++)); do
  declare -A load
  for side in a b; do
    bench_spawn "load-$side" taskset -c 1 "$peers/echo_load" --port "${port[$side]}" \
      --connections "$connections" --warmup "$warmup" --duration "$seconds"
    load[$side]=$BENCH_LAST_PID
  done
  declare -A rate
  for side in a b; do
    bench_wait "${load[$side]}" || {
      cat "$BENCH_TMP/load-$side.err" >&2
      echo "echo_pair: the load against ${side^^} failed in round $round" >&2
      exit 1
    }
    rate[$side]=$(sed -n 's/.*msgs_per_sec=\([0-9.]*\).*/\1/p' "$BENCH_TMP/load-$side.out")
  done
  ratio=$(python3 -c "print(f'{${rate[b]} / ${rate[a]}:.3f}')")
  ratios+=("$ratio")
  echo "round $round: A ${rate[a]} msgs/s, B ${rate[b]} msgs/s, B/A $ratio"
done
python3 - "${ratios[@]}" <<'PY'
import statistics, sys
r = [float(x) for x in sys.argv[1:]]
print(f"B/A median {statistics.median(r):.3f} (min {min(r):.3f}, max {max(r):.3f})")
PY
