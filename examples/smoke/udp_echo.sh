#!/usr/bin/env bash
# Smoke test of udp_echo: one client and four at once get every datagram back intact; with the
# server gone, the client's receive timeouts count every datagram lost and it exits 1 promptly.
# Usage: bash udp_echo.sh BIN_DIR
set -euo pipefail
# shellcheck source=examples/smoke/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
smoke_begin "$0" "$@"

for bad in "--bogus" "--client --port 0" "--client --port 1 --count 0" "--timeout-ms x"; do
  rc=0
  # shellcheck disable=SC2086 # the flags are split on purpose
  "$bin/udp_echo" $bad >/dev/null 2>&1 || rc=$?
  [[ $rc == 2 ]] || fail "udp_echo $bad exits $rc, not 2"
done
echo "ok: bad flags exit 2"

"$bin/udp_echo" --port 0 >"$work/server.out" 2>"$work/server.err" &
server_pid=$!
pids+=("$server_pid")
line=
for _ in $(seq 100); do
  line=$(head -n 1 "$work/server.out" 2>/dev/null || true) # not yet opened by the job: try again
  [[ -n $line ]] && break
  kill -0 "$server_pid" 2>/dev/null || fail "the server exited at start"
  sleep 0.1
done
[[ $line =~ ^listening\ on\ port\ ([0-9]+)$ ]] || fail "server first line: '$line'"
port=${BASH_REMATCH[1]}

timeout 30 "$bin/udp_echo" --client --port "$port" --count 300 >"$work/one.out" 2>"$work/one.err" ||
  fail "the client failed"
grep -Eq "^sent 300 datagrams to 127.0.0.1:$port: ok 300, lost 0, corrupt 0" "$work/one.out" ||
  fail "wrong tally: $(cat "$work/one.out")"
echo "ok: 300 datagrams of 6-1400 bytes echoed intact"

clients=()
for i in 1 2 3 4; do
  timeout 30 "$bin/udp_echo" --client --port "$port" --count 200 >"$work/c$i.out" 2>"$work/c$i.err" &
  clients+=("$!")
done
for i in 1 2 3 4; do
  wait "${clients[i - 1]}" || fail "concurrent client $i failed"
  grep -q 'ok 200, lost 0, corrupt 0' "$work/c$i.out" || fail "client $i: $(cat "$work/c$i.out")"
done
echo "ok: 4 concurrent clients each get their own 200 echoes"
[[ ! -s $work/server.err ]] || fail "the server reported errors"

kill "$server_pid"
wait "$server_pid" 2>/dev/null || true
start=$SECONDS
rc=0
timeout 10 "$bin/udp_echo" --client --port "$port" --count 3 --timeout-ms 200 \
  >"$work/lost.out" 2>"$work/lost.err" || rc=$?
[[ $rc == 1 ]] || fail "with no server the client exits $rc, not 1"
grep -q 'ok 0, lost 3, corrupt 0' "$work/lost.out" || fail "no-server tally: $(cat "$work/lost.out")"
((SECONDS - start < 5)) || fail "3 timeouts of 200 ms took $((SECONDS - start)) s"
echo "ok: with no server, 3 datagrams counted lost after their 200 ms timeouts, exit 1"
echo "PASS udp_echo"
