#!/usr/bin/env bash
# run_all.sh [--out DIR] [BUILD_DIR]
# run_all.sh --report-only RESULTS
#
# run_all.sh runs every comparison of coil against its peers on this machine, one script after
# the other, in about 12 minutes (under 15 on the project's 2-vCPU VM), and writes the report:
#
#   switch    switch_ratio.sh: context switch, yield, spawn and idle memory against Boost
#             fcontext and ucontext (coil_bench, 5 repetitions), and the idle memory of a Go
#             goroutine (peers/idle_go) when go is installed
#   echo      echo_ratio.sh: echo against the epoll reactor and Go at 100, 1000 and 10000
#             connections: throughput against connections, latency percentiles
#   http      http_ratio.sh: HTTP against nginx
#   coil_run  coil_run_echo.sh: a thread-per-connection program under coil-run against native
#             threads
#   connect   connect_rate.sh: coil-stress' connect rate against c1m_server, 20000 connections
#             over 2 + 2 processes
#
# Each script appends its medians to DIR/results.jsonl (BENCH_RESULTS; the records are described
# in lib/bench_results.py), after a record of the machine (CPU, kernel, memory, compiler, git
# revision, date, load average) taken before the first run; its output goes to the terminal and
# to DIR/NAME.log. A script that fails is recorded as such and the others still run. Then the
# results are copied to docs/benchmarks.jsonl, and report.py writes docs/benchmarks.md and its
# plots in docs/img/ (gnuplot). --report-only RESULTS (a results.jsonl or its directory) does only
# that last step, from saved results.
#
# BUILD_DIR is a configured coil build (default: the Release configuration of tools/lib/build.sh,
# build-release/, configured and built if needed); DIR defaults to
# BUILD_DIR/bench-results/DATE-TIME. The scripts' own knobs (ECHO_*, HTTP_*, RUN_*, CONNECT_*,
# COIL_BENCH_REPETITIONS, GO_IDLE_RUNS) are passed on; run_all.sh sets ECHO_TIME_LIMIT (260) and
# HTTP_TIME_LIMIT (170) unless they are set, and bounds each script with `timeout`. Every process
# is stopped by PID by the script that started it (lib/bench.sh). Exits 0 when every script
# succeeded (whether or not targets are met), 1 when one failed, 2 on a bad command line or a
# missing prerequisite.
set -euo pipefail

BENCH_NAME=run_all
# shellcheck source=SCRIPTDIR/lib/bench.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/bench.sh"

usage() {
  sed -n '2,3p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}/usage: /' >&2
  exit 2
}

out='' report_only='' build=''
while (($# > 0)); do
  case $1 in
    --out)
      (($# >= 2)) || usage
      out=$2
      shift 2 ;;
    --report-only)
      (($# >= 2)) || usage
      report_only=$2
      shift 2 ;;
    -h | --help) sed -n '2,36p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) usage ;;
    *)
      [[ -z $build ]] || usage
      build=$1
      shift ;;
  esac
done

docs=$COIL_ROOT/docs
saved=$docs/benchmarks.jsonl

# report RESULTS copies RESULTS (a results.jsonl or its directory) to docs/benchmarks.jsonl and
# writes docs/benchmarks.md and docs/img/*.png from it.
report() {
  local file=$1
  [[ -d $file ]] && file=$file/results.jsonl
  [[ -f $file ]] || bench_die "no results file $file"
  if [[ $(realpath "$file") != $(realpath -m "$saved") ]]; then cp "$file" "$saved"; fi
  python3 "$BENCH_DIR/report.py" "$saved" --markdown "$docs/benchmarks.md" \
    --img-dir "$docs/img" --results-name docs/benchmarks.jsonl
}

if [[ -n $report_only ]]; then
  [[ -z $out && -z $build ]] || usage
  report "$report_only"
  exit 0
fi

start=$SECONDS
bench_setup "$build"
bench_build_coil coil_bench echo_server http_server coil-run c1m_server coil-stress
out=${out:-$BENCH_BUILD/bench-results/$(date -u +%Y%m%d-%H%M%S)}
mkdir -p "$out"
out=$(cd "$out" && pwd)
export BENCH_RESULTS=$out/results.jsonl
: >"$BENCH_RESULTS"
bench_python "$BENCH_DIR/lib/bench_results.py" machine "$COIL_ROOT" "$BENCH_BUILD"
# emit_stage NAME STATUS SECONDS records one step's exit status and wall time.
emit_stage() {
  bench_python -c 'import sys, bench_results
bench_results.emit("stage", name=sys.argv[1], status=int(sys.argv[2]), seconds=int(sys.argv[3]))' \
    "$@"
}
emit_stage setup 0 $((SECONDS - start))  # packages and the build
export ECHO_CONNECTIONS=${ECHO_CONNECTIONS:-100 1000 10000}
export ECHO_TIME_LIMIT=${ECHO_TIME_LIMIT:-260} HTTP_TIME_LIMIT=${HTTP_TIME_LIMIT:-170}
echo "run_all: build $BENCH_BUILD, results in $out, load average $(cut -d' ' -f1-3 /proc/loadavg)"
bench_check_quiet

# stage NAME SECONDS COMMAND... runs one benchmark script, its output on the terminal and in
# OUT/NAME.log, stopped (TERM, then KILL a minute later) if it runs longer than SECONDS, and
# records its exit status and wall time.
failed=()
stage() {
  local name=$1 limit=$2 status=0 t0=$SECONDS
  shift 2
  echo
  echo "=== run_all: $name ($*) at +$((SECONDS - start)) s"
  timeout --foreground -k 60 "$limit" "$@" 2>&1 | tee "$out/$name.log" || status=$?
  echo "=== run_all: $name ended with status $status after $((SECONDS - t0)) s"
  ((status == 0)) || failed+=("$name")
  emit_stage "$name" "$status" $((SECONDS - t0))
}

# coil_bench: only the benchmarks with a peer or a target (not the sleep tree's, nor the
# switch-then-return series of bench_switch.md's analysis).
peer_cases='switch_asm|switch_coil_(asm|boost)|switch_boost_fcontext|switch_ucontext'
peer_cases+='|yield_scheduler|spawn_run_exit|idle_coroutines/.*'
stage switch 360 env COIL_BENCH_REPETITIONS="${COIL_BENCH_REPETITIONS:-5}" bash \
  "$BENCH_DIR/switch_ratio.sh" "$BENCH_BUILD" "--benchmark_filter=^BM_($peer_cases)\$"
stage echo $((ECHO_TIME_LIMIT + 120)) bash "$BENCH_DIR/echo_ratio.sh" "$BENCH_BUILD"
stage http $((HTTP_TIME_LIMIT + 120)) bash "$BENCH_DIR/http_ratio.sh" "$BENCH_BUILD"
stage coil_run 420 bash "$BENCH_DIR/coil_run_echo.sh" "$BENCH_BUILD"
stage connect 240 bash "$BENCH_DIR/connect_rate.sh" "$BENCH_BUILD"

echo
report "$BENCH_RESULTS"
elapsed=$((SECONDS - start))
printf 'run_all: elapsed %d min %02d s%s\n' $((elapsed / 60)) $((elapsed % 60)) \
  "$( ((elapsed <= 900)) || echo ' (over the 15-minute budget)')"
if ((${#failed[@]} > 0)); then
  echo "run_all: failed: ${failed[*]} (logs in $out)" >&2
  exit 1
fi
