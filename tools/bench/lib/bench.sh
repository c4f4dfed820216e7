# shellcheck shell=bash disable=SC2034  # BENCH_* globals are read by the scripts sourcing this
# bench.sh: what the benchmark scripts in tools/bench/ share: their build directory, the peers
# and the load generator they compile, starting, pinning and stopping the processes they run, and
# the machine-readable results (BENCH_RESULTS=FILE: bench_python runs their summaries with
# lib/bench_results.py importable, which appends their medians to FILE as JSON lines). Sourced;
# not a program of its own.
#
# Every process a script starts goes through bench_spawn, which records its PID; an EXIT trap
# stops exactly those PIDs (TERM, then KILL after 5 s). Nothing is ever stopped by name.

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=SCRIPTDIR/../../lib/build.sh
source "$BENCH_DIR/../lib/build.sh"
# shellcheck source=SCRIPTDIR/../../lib/deps.sh
source "$BENCH_DIR/../lib/deps.sh"

BENCH_NAME=${BENCH_NAME:-bench}
BENCH_PIDS=()
BENCH_TMP=$(mktemp -d "/tmp/coil-$BENCH_NAME.XXXXXX")
BENCH_LAST_PID=

bench_die() {
  echo "$BENCH_NAME: $*" >&2
  exit 2
}

# bench_forget PID drops PID from the processes to stop: it has ended and been waited for, and its
# number may soon belong to another process.
bench_forget() {
  local i
  for i in "${!BENCH_PIDS[@]}"; do
    if [[ ${BENCH_PIDS[i]} == "$1" ]]; then unset 'BENCH_PIDS[i]'; fi
  done
}

# bench_wait PID waits for process PID (started by bench_spawn) to end, forgets it and returns its
# exit status.
bench_wait() {
  local status=0
  wait "$1" || status=$?
  bench_forget "$1"
  return "$status"
}

# bench_wait_timeout PID SECONDS waits up to SECONDS for process PID to end; fails if it does not.
bench_wait_timeout() {
  local i
  for ((i = 0; i < $2 * 20; i++)); do
    if ! kill -0 "$1" 2>/dev/null; then
      bench_wait "$1" || true
      return 0
    fi
    sleep 0.05
  done
  bench_die "process $1 did not end within $2 s"
}

# bench_stop PID stops process PID if it is still running: SIGTERM, then SIGKILL after 5 s.
bench_stop() {
  local pid=$1 i
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
  fi
  bench_wait "$pid" 2>/dev/null || true
}

bench_cleanup() {
  local pid
  for pid in "${BENCH_PIDS[@]}"; do bench_stop "$pid"; done
  rm -rf "$BENCH_TMP"
}
trap bench_cleanup EXIT

# bench_spawn NAME COMMAND... starts COMMAND in the background with its output in
# $BENCH_TMP/NAME.out and NAME.err, records its PID and leaves it in BENCH_LAST_PID.
bench_spawn() {
  local name=$1
  shift
  "$@" >"$BENCH_TMP/$name.out" 2>"$BENCH_TMP/$name.err" &
  BENCH_LAST_PID=$!
  BENCH_PIDS+=("$BENCH_LAST_PID")
}

# bench_wait_for PID FILE PATTERN SECONDS waits until FILE has a line matching PATTERN; fails if
# process PID ends first or SECONDS pass.
bench_wait_for() {
  local pid=$1 file=$2 pattern=$3 seconds=$4 i
  for ((i = 0; i < seconds * 20; i++)); do
    grep -qE "$pattern" "$file" 2>/dev/null && return 0
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "$BENCH_NAME: process $pid ended before printing /$pattern/; its output:" >&2
      cat "${file%.*}.out" "${file%.*}.err" >&2 2>/dev/null || true
      exit 1
    fi
    sleep 0.05
  done
  echo "$BENCH_NAME: no /$pattern/ from process $pid in $seconds s" >&2
  exit 1
}

# bench_start_echo NAME COMMAND... starts an echo server that prints `listening on port N`
# (started with port 0) and sets BENCH_PORT to N and BENCH_LAST_PID to its PID.
bench_start_echo() {
  local name=$1
  shift
  bench_spawn "$name" "$@"
  bench_wait_for "$BENCH_LAST_PID" "$BENCH_TMP/$name.out" '^listening on port [0-9]+' 15
  BENCH_PORT=$(sed -n 's/^listening on port \([0-9]*\).*/\1/p' "$BENCH_TMP/$name.out" | head -1)
}

# bench_free_port prints a TCP port on 127.0.0.1 that was free a moment ago.
bench_free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# bench_wait_port PID PORT waits (up to 15 s) until 127.0.0.1:PORT accepts connections.
bench_wait_port() {
  local pid=$1 port=$2 i
  for ((i = 0; i < 300; i++)); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    kill -0 "$pid" 2>/dev/null || bench_die "the server (PID $pid) ended before listening on $port"
    sleep 0.05
  done
  bench_die "nothing listens on 127.0.0.1:$port after 15 s"
}

# bench_require COMMAND... fails with a clear message unless every COMMAND is on the PATH.
bench_require() {
  local c
  for c in "$@"; do
    command -v "$c" >/dev/null 2>&1 || bench_die "needs '$c' on the PATH (Debian packages: \
${COIL_BENCH_PACKAGES[*]})"
  done
}

# bench_setup [BUILD_DIR] installs the missing benchmark packages, checks for taskset and two
# CPUs, and sets BENCH_BUILD: BUILD_DIR if given (a configured coil build), else the Release
# configuration (tools/lib/build.sh: build-release/).
bench_setup() {
  coil_ensure_packages "${COIL_BENCH_PACKAGES[@]}" || bench_die "could not install the packages"
  bench_require taskset python3 cmake
  if ! taskset -c 0 true 2>/dev/null || ! taskset -c 1 true 2>/dev/null; then
    bench_die "needs CPUs 0 and 1 (the server is pinned to CPU 0, the load to CPU 1)"
  fi
  if (($# > 0)) && [[ -n $1 ]]; then
    [[ -f $1/CMakeCache.txt ]] || bench_die "$1 is not a configured CMake build directory"
    BENCH_BUILD=$(cd "$1" && pwd)
    BENCH_CONFIG=
  else
    BENCH_BUILD=$(coil_config_dir release)
    BENCH_CONFIG=release
  fi
  mkdir -p "$BENCH_BUILD/bench-peers"
}

# bench_build_coil TARGET... builds coil's example TARGETs in BENCH_BUILD.
bench_build_coil() {
  if [[ -n $BENCH_CONFIG ]]; then
    coil_build "$BENCH_CONFIG" "$@" >"$BENCH_TMP/build.log" 2>&1 || {
      tail -30 "$BENCH_TMP/build.log" >&2
      bench_die "building $* failed (log above)"
    }
  else
    cmake --build "$BENCH_BUILD" -j "$COIL_JOBS" --target "$@" >"$BENCH_TMP/build.log" 2>&1 || {
      tail -30 "$BENCH_TMP/build.log" >&2
      bench_die "building $* in $BENCH_BUILD failed (log above)"
    }
  fi
  local t
  for t in "$@"; do
    [[ -x $BENCH_BUILD/bin/$t ]] || bench_die "no $BENCH_BUILD/bin/$t after the build \
(is examples/$t.cpp there, and the build configured with COIL_BUILD_EXAMPLES=ON?)"
  done
}

# bench_compile OUT SOURCE COMPILER FLAGS... compiles SOURCE into OUT unless OUT is newer than
# every file in SOURCE's directory (its headers).
bench_compile() {
  local out=$1 src=$2
  shift 2
  if [[ -x $out ]] && [[ -z $(find "$(dirname "$src")" -maxdepth 1 -type f -newer "$out") ]]; then
    return 0
  fi
  "$@" -O2 -Wall -Wextra -Wshadow -Werror -o "$out" "$src" ||
    bench_die "compiling $src failed"
}

# bench_build_peers builds the load generator and the reactor into BENCH_BUILD/bench-peers, and
# the Go echo peer when go is installed (BENCH_GO is then its path, else empty).
bench_build_peers() {
  local dir=$BENCH_BUILD/bench-peers
  bench_require "${CC:-cc}" "${CXX:-c++}"
  bench_compile "$dir/echo_reactor" "$BENCH_DIR/peers/echo_reactor.c" "${CC:-cc}" -std=gnu11
  bench_compile "$dir/echo_load" "$BENCH_DIR/load/echo_load.cpp" "${CXX:-c++}" -std=c++20
  BENCH_GO=
  if command -v go >/dev/null 2>&1; then BENCH_GO=$(bench_go_build echo_go); fi
}

# bench_go_build NAME builds the Go peer tools/bench/peers/NAME into BENCH_BUILD/bench-peers/NAME
# (unless it is newer than its main.go) and prints its path. Needs go; no network: the peers use
# the standard library only.
bench_go_build() {
  local dir=$BENCH_BUILD/bench-peers src=$BENCH_DIR/peers/$1
  if [[ ! -x $dir/$1 || $src/main.go -nt $dir/$1 ]]; then
    (cd "$src" && env GOCACHE="$dir/go-cache" GOPATH="$dir/go-path" GOFLAGS= GOPROXY=off \
      GOTOOLCHAIN=local CGO_ENABLED=0 go build -o "$dir/$1" .) >&2 ||
      bench_die "go build of $src failed"
  fi
  echo "$dir/$1"
}

# bench_python ARG... runs python3 ARG... with tools/bench/lib on its module path, so that the
# scripts' summaries can `import bench_results` (and append to $BENCH_RESULTS when it is set).
bench_python() {
  PYTHONPATH=$BENCH_DIR/lib${PYTHONPATH:+:$PYTHONPATH} python3 "$@"
}

# bench_free_port_range COUNT prints FIRST-LAST, COUNT consecutive ports between 20000 and 32000
# (below the usual ephemeral range) on which no TCP socket listened a moment ago: a server that
# binds with SO_REUSEPORT would otherwise share its connections with another one on those ports.
bench_free_port_range() {
  python3 - "$1" <<'PY'
import random
import sys

count = int(sys.argv[1])
listening = set()
for path in ("/proc/net/tcp", "/proc/net/tcp6"):
    try:
        rows = [r.split() for r in open(path).read().splitlines()[1:]]
    except OSError:
        continue
    listening |= {int(r[1].rsplit(":", 1)[1], 16) for r in rows if r[3] == "0A"}
for _ in range(100):
    first = random.randrange(20000, 32000 - count)
    if not listening & set(range(first, first + count)):
        print(f"{first}-{first + count - 1}")
        sys.exit(0)
sys.exit("no free range of %d ports in 20000-32000" % count)
PY
}

# bench_check_quiet warns when the 1-minute load average says other work shares the CPUs.
bench_check_quiet() {
  local load
  load=$(cut -d' ' -f1 /proc/loadavg)
  if python3 -c "import sys; sys.exit(0 if float('$load') < 0.8 else 1)"; then return 0; fi
  echo "$BENCH_NAME: warning: load average $load: other processes may share the pinned CPUs" >&2
}

# bench_schedstat PID prints the run time and the run-queue wait, in ns, summed over the threads
# of process PID (from /proc/PID/task/*/schedstat).
bench_schedstat() {
  local f run wait total_run=0 total_wait=0
  for f in /proc/"$1"/task/*/schedstat; do
    read -r run wait _ <"$f" 2>/dev/null || continue
    total_run=$((total_run + run)) total_wait=$((total_wait + wait))
  done
  echo "$total_run $total_wait"
}

# bench_cpu_busy prints the busy time (all but idle and iowait), in clock ticks, of CPU 0 and of
# CPU 1 from /proc/stat. Busy time beyond what the measured processes used is someone else's.
bench_cpu_busy() {
  awk '$1 == "cpu0" || $1 == "cpu1" {
    busy = 0
    for (i = 2; i <= NF; i++) if (i != 5 && i != 6) busy += $i
    printf "%s%d", (n++ ? " " : ""), busy
  } END { print "" }' /proc/stat
}

# bench_run_is_clean LINE is true when every wait_pct, server_wait_pct and others_pct field of
# the result LINE is below 5: nothing measured waited long for its CPU, nor did others use it.
bench_run_is_clean() {
  local field value
  for field in $1; do
    case $field in
      wait_pct=* | server_wait_pct=* | others_pct=*)
        value=${field#*=}
        ((${value%.*} < 5)) || return 1
        ;;
    esac
  done
}
