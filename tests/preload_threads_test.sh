#!/usr/bin/env bash
# preload_threads_test.sh BIN_DIR LIBRARY: green threads under LIBRARY (libcoil_preload.so), with
# the plain C programs of tests/preload/ in BIN_DIR.
#  - thread_api (the pthread API) and fork_probe (fork() in a threaded program) print the same
#    checks, all ok, natively, preloaded (green threads, on 1 worker and on 3 with COIL_THREADS=3)
#    and preloaded with COIL_NATIVE_THREADS=1 (every pthread call passed through);
#  - thread_echo_server, one pthread per connection, holds 10000 connections from blocking_client
#    on one OS thread (Threads: in /proc/PID/status at most 1 worker + 3), and on 3 workers (at
#    most 3 + 3), and echoes every message right; natively it serves 200 connections (a check of
#    the test programs themselves).
set -uo pipefail

bin=$1
library=$2
failures=0
server_pid=
tmp=$(mktemp -d /tmp/coil-preload-threads.XXXXXX)
cleanup() {
  [[ -n $server_pid ]] && kill "$server_pid" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*"
  failures=$((failures + 1))
}

# same_everywhere PROGRAM: PROGRAM prints the same checks, all ok, with status 0, natively, with
# green threads, and with COIL_NATIVE_THREADS=1 (every pthread call passed through).
same_everywhere() {
  local program=$1 native preloaded passthrough status
  native=$(timeout 60 "$bin/$program" 2>&1) || fail "$program natively: $native"
  preloaded=$(LD_PRELOAD=$library timeout 60 "$bin/$program" 2>&1)
  status=$?
  [[ $status == 0 && $preloaded == "$native" ]] ||
    fail "$program with green threads (status $status): [$preloaded], natively [$native]"
  passthrough=$(COIL_NATIVE_THREADS=1 LD_PRELOAD=$library timeout 60 "$bin/$program" 2>&1)
  status=$?
  [[ $status == 0 && $passthrough == "$native" ]] ||
    fail "$program with COIL_NATIVE_THREADS=1 (status $status): [$passthrough]"
  workers=$(COIL_THREADS=3 LD_PRELOAD=$library timeout 60 "$bin/$program" 2>&1)
  status=$?
  [[ $status == 0 && $workers == "$native" ]] ||
    fail "$program with COIL_THREADS=3 (status $status): [$workers], natively [$native]"
  echo "$program: $(grep -c '^ok' <<<"$native") checks agree natively, green (1 and 3" \
    "workers) and pass-through"
}

# start_server [PRELOAD] starts thread_echo_server and sets server_pid and port.
start_server() {
  env ${1:+LD_PRELOAD=$1} "$bin/thread_echo_server" 0 >"$tmp/server.out" 2>&1 &
  server_pid=$!
  for _ in $(seq 1 100); do
    port=$(sed -n 's/^listening on port \([0-9]*\)$/\1/p' "$tmp/server.out" 2>/dev/null || true)
    [[ -n $port ]] && return 0
    sleep 0.05
  done
  fail "thread_echo_server did not start: $(cat "$tmp/server.out")"
  return 1
}

stop_server() {
  kill "$server_pid" 2>/dev/null
  wait "$server_pid" 2>/dev/null
  server_pid=
}

# echo_run CONNECTIONS MAX_THREADS: blocking_client against the running server; with
# MAX_THREADS, checks the server's OS threads while every connection is open.
echo_run() {
  local connections=$1 max_threads=${2:-} out threads
  HOLD_FILE=$tmp/hold timeout 120 "$bin/blocking_client" "$port" "$connections" 2 \
    >"$tmp/client.out" 2>&1 &
  local client=$!
  for _ in $(seq 1 1200); do
    [[ -f $tmp/hold ]] && break
    sleep 0.05
  done
  threads=$(awk '/^Threads:/ { print $2 }' "/proc/$server_pid/status")
  rm -f "$tmp/hold"
  wait "$client"
  out=$(cat "$tmp/client.out")
  [[ $out == "verified $((2 * connections)) echoes over $connections connections" ]] ||
    fail "echo over $connections connections: $out"
  if [[ -n $max_threads ]] && ((threads > max_threads)); then
    fail "the server ran $threads OS threads with $connections connections (at most $max_threads)"
  fi
  echo "echo: $out; server OS threads with all open: $threads"
}

same_everywhere thread_api
same_everywhere fork_probe
start_server "" && echo_run 200 && stop_server
start_server "$library" && echo_run 10000 4 && stop_server
# Three workers: the thread-per-connection server's green threads spread over 3 OS threads
# (plus the main one's), at most N + 3 in all.
COIL_THREADS=3 start_server "$library" && echo_run 10000 6 && stop_server

if ((failures > 0)); then
  echo "$failures check(s) failed"
  exit 1
fi
echo "all checks passed"
