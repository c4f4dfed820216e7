#!/usr/bin/env bash
# Smoke test of unix_echo: the server refuses a path that is not a socket or has a live server,
# removes a stale socket file, echoes 20 concurrent checking clients, and on SIGTERM ends its
# connections and removes its socket file. A client with no server fails.
# Usage: bash unix_echo.sh BIN_DIR
set -euo pipefail
# shellcheck source=examples/smoke/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
smoke_begin "$0" "$@"
path=$work/echo.sock

# start_server NAME: runs the server on $path in the background; sets server_pid.
start_server() {
  local line=
  "$bin/unix_echo" --path "$path" >"$work/$1.out" 2>"$work/$1.err" &
  server_pid=$!
  pids+=("$server_pid")
  for _ in $(seq 100); do
    line=$(head -n 1 "$work/$1.out" 2>/dev/null || true) # not yet opened by the job: try again
    [[ -n $line ]] && break
    kill -0 "$server_pid" 2>/dev/null || fail "$1 exited at start"
    sleep 0.1
  done
  [[ $line == "listening on $path" ]] || fail "$1 first line: '$line'"
}

# wait_exit PID: waits at most 10 s for PID to exit; sets rc to its exit status.
wait_exit() {
  for _ in $(seq 100); do
    kill -0 "$1" 2>/dev/null || break
    sleep 0.1
  done
  rc=0
  wait "$1" || rc=$?
}

for bad in "--bogus" "--clients 0" "--path ''" "--path $(printf 'x%.0s' $(seq 120))"; do
  rc=0
  eval "\"$bin/unix_echo\" $bad" >/dev/null 2>&1 || rc=$?
  [[ $rc == 2 ]] || fail "unix_echo $bad exits $rc, not 2"
done
echo "ok: bad flags exit 2"

echo "precious" >"$work/file"
rc=0
timeout 10 "$bin/unix_echo" --path "$work/file" >/dev/null 2>"$work/notsock.err" || rc=$?
[[ $rc == 1 ]] || fail "a regular file as --path: exit $rc, not 1"
grep -q 'not a socket' "$work/notsock.err" || fail "no 'not a socket' message"
[[ $(<"$work/file") == precious ]] || fail "the regular file was touched"
echo "ok: refuses to replace a regular file"

start_server first
kill -KILL "$server_pid"
wait "$server_pid" 2>/dev/null || true
[[ -S $path ]] || fail "no stale socket file left by a killed server"
start_server main
grep -q "removed the stale socket file $path" "$work/main.err" || fail "stale file not reported"
echo "ok: a stale socket file is removed at start"

rc=0
timeout 10 "$bin/unix_echo" --path "$path" >/dev/null 2>"$work/second.err" || rc=$?
[[ $rc == 1 ]] || fail "a second server on a live path exits $rc, not 1"
grep -q 'already listening' "$work/second.err" || fail "no 'already listening' message"
[[ -S $path ]] || fail "the second server removed the live socket"
echo "ok: a second server leaves a live socket alone"

timeout 30 "$bin/unix_echo" --client --path "$path" --clients 20 --messages 50 \
  >"$work/client.out" 2>"$work/client.err" || fail "the client failed"
grep -q '^20 clients x 50 messages: 1000 echoed correctly, 0 failed$' "$work/client.out" ||
  fail "wrong client tally"
echo "ok: 20 concurrent clients x 50 messages echoed byte for byte"

timeout 30 "$bin/unix_echo" --client --path "$path" --clients 4 --messages 10000000 \
  >"$work/busy.out" 2>"$work/busy.err" &
busy=$!
pids+=("$busy")
sleep 0.5
kill -0 "$busy" 2>/dev/null || fail "the busy client ended early"
kill -TERM "$server_pid"
wait_exit "$server_pid"
[[ $rc == 0 ]] || fail "the server exited $rc after SIGTERM"
[[ ! -e $path ]] || fail "the socket file is still there after SIGTERM"
wait_exit "$busy"
[[ $rc == 1 ]] || fail "the client cut off by the server's stop exited $rc, not 1"
echo "ok: SIGTERM with 4 busy clients: clean exit, socket file removed, clients see it"

rc=0
timeout 10 "$bin/unix_echo" --client --path "$path" --clients 2 --messages 1 \
  >"$work/none.out" 2>"$work/none.err" || rc=$?
[[ $rc == 1 ]] || fail "a client with no server exits $rc, not 1"
grep -q '0 echoed correctly, 2 failed' "$work/none.out" || fail "no-server tally"
echo "ok: a client with no server fails"
echo "PASS unix_echo"
