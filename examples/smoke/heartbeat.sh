#!/usr/bin/env bash
# Smoke test of heartbeat: a normal exchange of 5 beats; a client that falls silent
# (--stop-after) is declared dead by the server after its timeout, not before; a server that
# stops answering (SIGSTOP) is declared dead by the client, which exits 1.
# Usage: bash heartbeat.sh BIN_DIR
set -euo pipefail
# shellcheck source=examples/smoke/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
smoke_begin "$0" "$@"

# await FILE PATTERN: waits at most 10 s for a line matching the extended regex in FILE.
await() {
  for _ in $(seq 100); do
    grep -Eq "$2" "$1" && return 0
    sleep 0.1
  done
  fail "no line matching '$2' in $1"
}

# client_addr FILE: the address in the client's "connected from ADDR to ..." line.
client_addr() {
  sed -n 's/^connected from \([0-9.:]*\) to .*/\1/p' "$1"
}

for bad in "--bogus" "" "--server --client" "--client --port 0" "--client --port 1 --count 0"; do
  rc=0
  # shellcheck disable=SC2086 # the flags are split on purpose
  "$bin/heartbeat" $bad >/dev/null 2>&1 || rc=$?
  [[ $rc == 2 ]] || fail "heartbeat $bad exits $rc, not 2"
done
echo "ok: bad flags exit 2"

"$bin/heartbeat" --server --port 0 --timeout-ms 1000 >"$work/server.out" 2>"$work/server.err" &
server_pid=$!
pids+=("$server_pid")
await "$work/server.out" '^listening on port [0-9]+$'
port=$(sed -n 's/^listening on port //p' "$work/server.out")
[[ $(head -n 1 "$work/server.out") == "listening on port $port" ]] || fail "not the first line"

timeout 30 "$bin/heartbeat" --client --port "$port" --count 5 --interval-ms 50 \
  >"$work/normal.out" 2>"$work/normal.err" || fail "the normal client failed"
grep -q "^sent 5 heartbeats to 127.0.0.1:$port, all answered$" "$work/normal.out" ||
  fail "normal client tally"
addr=$(client_addr "$work/normal.out")
[[ -n $addr ]] || fail "the client did not print its address"
await "$work/server.out" "^peer $addr closed the connection after 5 heartbeats$"
echo "ok: 5 heartbeats exchanged, the server saw the client close"

timeout 30 "$bin/heartbeat" --client --port "$port" --count 100 --interval-ms 50 --stop-after 3 \
  >"$work/silent.out" 2>"$work/silent.err" || fail "the silent client failed"
addr=$(client_addr "$work/silent.out")
await "$work/server.out" "^peer $addr dead: no heartbeat for 1000 ms$"
waited=$(sed -n 's/^server .* closed the connection \([0-9]*\) ms after the last heartbeat$/\1/p' \
  "$work/silent.out")
[[ -n $waited ]] || fail "the silent client did not see the server close"
((waited >= 500)) || fail "the server gave up on a silent client after $waited ms, before 1000"
echo "ok: a client silent after 3 beats is declared dead by the server ($waited ms)"

timeout 30 "$bin/heartbeat" --client --port "$port" --count 1000 --interval-ms 50 \
  --timeout-ms 500 >"$work/stopped.out" 2>"$work/stopped.err" &
client_pid=$!
pids+=("$client_pid")
await "$work/stopped.out" '^connected from'
sleep 0.3
kill -STOP "$server_pid"
for _ in $(seq 100); do
  kill -0 "$client_pid" 2>/dev/null || break
  sleep 0.1
done
kill -CONT "$server_pid"
rc=0
wait "$client_pid" || rc=$?
[[ $rc == 1 ]] || fail "the client of a stopped server exits $rc, not 1"
grep -q "^peer 127.0.0.1:$port dead: no heartbeat for 500 ms$" "$work/stopped.out" ||
  fail "the client did not declare the stopped server dead"
addr=$(client_addr "$work/stopped.out")
await "$work/server.out" "^peer $addr closed the connection"
kill -0 "$server_pid" 2>/dev/null || fail "the server died"
[[ ! -s $work/server.err ]] || fail "the server reported errors"
echo "ok: a server that stops answering is declared dead by the client, which exits 1"
echo "PASS heartbeat"
