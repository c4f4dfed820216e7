#!/usr/bin/env bash
# switch_ratio.sh [BUILD_DIR] [COIL_BENCH_FLAG...] runs BUILD_DIR/bin/coil_bench (default:
# build/) pinned to CPU 1, five repetitions, and prints coil's target ratios from the medians:
#
#   coil asm switch round trip / Boost fcontext round trip   <= 1.0
#   scheduler yield / Boost fcontext round trip              <= 2.0
#   spawn + run + exit + join on a warm pool                 <= 150 ns, with 0 stack maps
#   RSS of an idle (parked) coroutine, 1M of them            <= 4608 bytes (4.5 KiB)
#
# each marked PASS or MISS. Extra flags go to coil_bench (e.g. --benchmark_filter=switch).
# When the idle-coroutine benchmark ran and go is installed, it also runs the Go peer
# (tools/bench/peers/idle_go, built into BUILD_DIR/bench-peers) GO_IDLE_RUNS (3) times with
# GOMAXPROCS=1 on CPU 1, parking as many goroutines as coil parked coroutines, and prints the RSS
# of an idle goroutine beside coil's (no target).
# COIL_BENCH_REPETITIONS overrides the repetition count; COIL_BENCH_JSON=FILE keeps the JSON
# results in FILE; BENCH_RESULTS=FILE appends the medians and verdicts to FILE as JSON lines
# (tools/bench/lib/bench_results.py). Exits 0 whether or not targets are met; 2 on usage errors.
set -euo pipefail

BENCH_NAME=switch_ratio
# shellcheck source=SCRIPTDIR/lib/bench.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/bench.sh"
root=$COIL_ROOT
build=$root/build
if (($# > 0)) && [[ $1 != -* ]]; then
  build=$1
  shift
fi
bench=$build/bin/coil_bench
if [[ ! -x $bench ]]; then
  echo "switch_ratio.sh: no $bench; build it first, e.g." >&2
  echo "  cmake -S $root -B $build -G Ninja -DCMAKE_BUILD_TYPE=Release -DCOIL_BUILD_TESTS=OFF" >&2
  echo "  cmake --build $build --target coil_bench" >&2
  exit 2
fi
command -v python3 >/dev/null || {
  echo "switch_ratio.sh: needs python3 to read the JSON results" >&2
  exit 2
}

json=${COIL_BENCH_JSON:-$BENCH_TMP/coil_bench.json}
pin=()
if command -v taskset >/dev/null && taskset -c 1 true 2>/dev/null; then pin=(taskset -c 1); fi

"${pin[@]}" "$bench" --benchmark_repetitions="${COIL_BENCH_REPETITIONS:-5}" \
  --benchmark_report_aggregates_only=true \
  --benchmark_out="$json" --benchmark_out_format=json "$@"

# The Go peer of the idle-coroutine benchmark: as many goroutines as coil parked coroutines.
go_idle=$BENCH_TMP/idle_go
: >"$go_idle"
coroutines=$(python3 -c 'import json, sys
for r in json.load(open(sys.argv[1]))["benchmarks"]:
    if r.get("run_name", r["name"]).startswith("BM_idle_coroutines/") and "coroutines" in r:
        print(int(r["coroutines"]))
        break' "$json")
if [[ -n $coroutines ]] && command -v go >/dev/null 2>&1; then
  BENCH_BUILD=$(cd "$build" && pwd)
  mkdir -p "$BENCH_BUILD/bench-peers"
  idle_go=$(bench_go_build idle_go)
  for ((run = 1; run <= ${GO_IDLE_RUNS:-3}; run++)); do
    env GOMAXPROCS=1 "${pin[@]}" "$idle_go" "$coroutines" >>"$go_idle" ||
      bench_die "$idle_go $coroutines failed"
  done
elif [[ -n $coroutines ]]; then
  echo "switch_ratio.sh: go is not installed: the Go idle-goroutine peer is skipped" >&2
fi

bench_python - "$json" "$go_idle" <<'PY'
import json
import statistics
import sys

import bench_results

UNIT_NS = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}

with open(sys.argv[1]) as f:
    runs = json.load(f)["benchmarks"]


def median(name):
    """The median aggregate of the benchmark whose run name is name (or starts with name/)."""
    for r in runs:
        if r.get("aggregate_name", "median") != "median":
            continue
        run = r.get("run_name", r["name"])
        if run == name or run.startswith(name + "/"):
            return r
    return None


def ns(r):
    return r["real_time"] * UNIT_NS[r.get("time_unit", "ns")]


# Every median to BENCH_RESULTS, with its counters (the keys Google Benchmark does not set).
STANDARD = {"name", "family_index", "per_family_instance_index", "run_name", "run_type",
            "repetitions", "repetition_index", "threads", "aggregate_name", "aggregate_unit",
            "iterations", "real_time", "cpu_time", "time_unit", "error_occurred",
            "error_message"}
for r in runs:
    if r.get("aggregate_name", "median") != "median":
        continue
    unit = UNIT_NS[r.get("time_unit", "ns")]
    bench_results.emit("switch", case=r.get("run_name", r["name"]), runs=r.get("repetitions", 1),
                       real_ns=r["real_time"] * unit, cpu_ns=r["cpu_time"] * unit,
                       **{k: v for k, v in r.items() if k not in STANDARD})

met = total = 0


def verdict(name, label, value, limit, text, extra_ok=True):
    global met, total
    total += 1
    ok = value <= limit and extra_ok
    met += ok
    bench_results.emit_target("switch", name, label, value, "<=", limit, ok)
    print(f"  {label:<34} {text:<34} {'PASS' if ok else 'MISS'}")


print("\ncoil targets (medians):")
fcontext = median("BM_switch_boost_fcontext")
switch = median("BM_switch_asm")
if fcontext and switch:
    r = ns(switch) / ns(fcontext)
    verdict("switch/fcontext", "asm switch / fcontext round trip", r, 1.0,
            f"{ns(switch):.2f} / {ns(fcontext):.2f} ns = {r:.2f} (<= 1.0)")
elif fcontext:
    coil = median("BM_switch_coil_boost")
    if coil:
        print(f"  {'coil(boost) switch / fcontext':<34} "
              f"{ns(coil):.2f} / {ns(fcontext):.2f} ns = {ns(coil) / ns(fcontext):.2f}"
              "   (the 1.0 target is for the asm backend)")

yld = median("BM_yield_scheduler")
if yld and fcontext:
    r = ns(yld) / ns(fcontext)
    verdict("yield/fcontext", "yield / fcontext round trip", r, 2.0,
            f"{ns(yld):.2f} / {ns(fcontext):.2f} ns = {r:.2f} (<= 2.0)")

spawn = median("BM_spawn_run_exit")
if spawn:
    maps = spawn.get("stack_maps", 0)
    verdict("spawn", "spawn+run+exit+join", ns(spawn), 150.0,
            f"{ns(spawn):.1f} ns, {maps:.0f} stack maps (<= 150)", maps == 0)

idle = median("BM_idle_coroutines")
if idle and "rss_per_coroutine_bytes" in idle:
    rss = idle["rss_per_coroutine_bytes"]
    pte = idle.get("pte_per_coroutine_bytes", 0)
    verdict("idle-rss", "idle coroutine RSS", rss, 4608.0,
            f"{rss:.0f} B (+{pte:.0f} B page tables) (<= 4608)")

go = [dict((k, float(v)) for k, v in (f.split("=", 1) for f in line.split()))
      for line in open(sys.argv[2]) if line.strip()]
if go:
    go_rss = statistics.median(g["rss_per_goroutine_bytes"] for g in go)
    go_pte = statistics.median(g["pte_per_goroutine_bytes"] for g in go)
    n = int(go[0]["goroutines"])
    bench_results.emit("idle_go", goroutines=n, runs=len(go), rss_per_goroutine_bytes=go_rss,
                       pte_per_goroutine_bytes=go_pte,
                       seconds=statistics.median(g["seconds"] for g in go))
    text = f"{go_rss:.0f} B (+{go_pte:.0f} B page tables)"
    if idle and "rss_per_coroutine_bytes" in idle:
        text += f"; coil / Go = {idle['rss_per_coroutine_bytes'] / go_rss:.2f}"
    print(f"  {'idle goroutine RSS (Go peer)':<34} {text}   ({n} goroutines, GOMAXPROCS=1, "
          f"median of {len(go)})")

print(f"\n  targets met: {met}/{total}")
# Real time well above CPU time means the pinned CPU was shared: the figures are inflated.
shared = [r for r in runs if r.get("aggregate_name", "median") == "median" and r["cpu_time"] > 0
          and r["real_time"] > 1.05 * r["cpu_time"]]
if shared:
    worst = max(shared, key=lambda r: r["real_time"] / r["cpu_time"])
    print(f"  warning: real time exceeds CPU time by up to "
          f"{100 * (worst['real_time'] / worst['cpu_time'] - 1):.0f}% ({worst['name']}): another "
          "process shared the pinned CPU, so these figures are inflated; rerun on a quiet machine")
PY
