#!/usr/bin/env bash
# demo.sh installs what coil needs (Debian), builds a Release coil in build-release/ and shows it
# at work, in three parts that each stop by themselves:
#
#   1. coil-demo: 100k coroutines ping-ponging and sleeping, with the switch and spawn figures.
#   2. c1m_server (one coroutine per connection) on 10 ports, driven by coil-stress: 10,000
#      connections, a 64-byte heartbeat each second on each, every echo checked, for 10 s; then
#      coil-stress's report (connect rate, round-trip percentiles, errors, memory).
#   3. An unmodified thread-per-connection server (tests/preload/thread_echo_server.c, compiled
#      here with plain gcc -pthread) under coil-run, holding 2,000 connections from a plain
#      blocking client on one OS thread; the thread count is read from /proc.
#
# demo.sh [CONNECTIONS [SECONDS]] changes part 2's connection count (default 10000) and
# duration (default 10). Exits non-zero if a part fails.
set -euo pipefail

tools_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tools/lib/deps.sh
source "$tools_dir/lib/deps.sh"
# shellcheck source=tools/lib/build.sh
source "$tools_dir/lib/build.sh"

connections=${1:-10000}
seconds=${2:-10}
[[ $connections =~ ^[0-9]+$ && $seconds =~ ^[0-9]+$ ]] || {
  echo "usage: $0 [CONNECTIONS [SECONDS]]" >&2
  exit 2
}

coil_ensure_packages "${COIL_BUILD_PACKAGES[@]}" gcc
dir=$(coil_config_dir release)
coil_build release coil-demo c1m_server coil-stress coil-run coil_preload
work=$(mktemp -d /tmp/coil-demo.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

echo "== 1. coil-demo: coroutines ping-ponging and sleeping"
"$dir/bin/coil-demo"

echo
echo "== 2. c1m_server driven by coil-stress: $connections verified connections for $seconds s"
started=
for _ in 1 2 3 4 5; do
  base=$((20000 + RANDOM % 20000))
  "$dir/bin/c1m_server" --ports "$base-$((base + 9))" --max-seconds $((seconds + 120)) \
    >"$work/server.out" 2>"$work/server.err" &
  pids+=($!)
  for _ in $(seq 50); do
    grep -q '^listening on ports' "$work/server.out" && started=yes && break
    kill -0 "${pids[-1]}" 2>/dev/null || break
    sleep 0.1
  done
  [[ -n $started ]] && break
  wait "${pids[-1]}" 2>/dev/null || true
done
[[ -n $started ]] || {
  echo "demo: c1m_server did not start: $(cat "$work/server.err")" >&2
  exit 1
}
server=${pids[-1]}
echo "c1m_server (PID $server) listens on ports $base-$((base + 9))"
"$dir/bin/coil-stress" 127.0.0.1 --ports "$base-$((base + 9))" --connections "$connections" \
  --src 127.0.0.1-127.0.0.20 --interval 1 --duration "$seconds" --verify
echo "c1m_server's own view: $(grep -c . "$work/server.out") lines of output;" \
  "$(awk '/^VmRSS:/ {print $2 " " $3}' "/proc/$server/status") resident"
kill -TERM "$server"
wait "$server" || true
tail -n 2 "$work/server.out"

echo
echo "== 3. an unmodified thread-per-connection server under coil-run"
gcc -O2 -pthread -o "$work/thread_echo_server" "$COIL_ROOT/tests/preload/thread_echo_server.c"
gcc -O2 -o "$work/blocking_client" "$COIL_ROOT/tests/preload/blocking_client.c"
"$dir/bin/coil-run" -- "$work/thread_echo_server" 0 >"$work/threads.out" 2>&1 &
pids+=($!)
for _ in $(seq 50); do
  port=$(sed -n 's/^listening on port \([0-9]*\)$/\1/p' "$work/threads.out")
  [[ -n $port ]] && break
  sleep 0.1
done
[[ -n ${port:-} ]] || {
  echo "demo: thread_echo_server did not start: $(cat "$work/threads.out")" >&2
  exit 1
}
HOLD_FILE=$work/hold "$work/blocking_client" "$port" 2000 2 >"$work/client.out" 2>&1 &
client=$!
pids+=("$client")
for _ in $(seq 300); do
  [[ -f $work/hold ]] && break
  sleep 0.1
done
[[ -f $work/hold ]] || {
  echo "demo: the client did not open its connections: $(cat "$work/client.out")" >&2
  exit 1
}
echo "thread_echo_server (one pthread per connection, no coil in it) holds 2000 connections;" \
  "its OS threads: $(awk '/^Threads:/ {print $2}' "/proc/${pids[-2]}/status")," \
  "resident: $(awk '/^VmRSS:/ {print $2 " " $3}' "/proc/${pids[-2]}/status")"
rm -f "$work/hold"
wait "$client"
cat "$work/client.out"
