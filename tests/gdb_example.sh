#!/usr/bin/env bash
# tools/coil-gdb.py against a running example, examples/echo_server with two clients connected:
# "info coroutines" must show the accept loop parked on the listening socket and one "client"
# coroutine parked in read() on each connection, and "coroutine bt" of a client must reach
# serve_client's read().
#
# Usage: gdb_example.sh ECHO_SERVER COIL_GDB_PY. Exits 77 (skipped) when ptrace attach is
# forbidden here.
set -euo pipefail
server=$1
script=$2
work=$(mktemp -d)
pid=
cleanup() {
  if [[ -n $pid ]]; then
    {
      kill -KILL "$pid" || true
      wait "$pid" || true
    } 2>/dev/null
  fi
  rm -rf "$work"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*"
  [[ -f $work/gdb.txt ]] && cat "$work/gdb.txt"
  exit 1
}

"$server" --port 0 >"$work/server.out" 2>"$work/server.err" &
pid=$!
port=
for _ in $(seq 100); do
  port=$(sed -n 's/^listening on port \([0-9]*\)$/\1/p' "$work/server.out" 2>/dev/null || true)
  [[ -n $port ]] && break
  kill -0 "$pid" 2>/dev/null || fail "echo_server exited: $(cat "$work/server.err")"
  sleep 0.05
done
[[ -n $port ]] || fail "echo_server did not say its port"

# Two clients, each echoed once: their coroutines have run and now park in read().
exec {c1}<>"/dev/tcp/127.0.0.1/$port" {c2}<>"/dev/tcp/127.0.0.1/$port"
for fd in "$c1" "$c2"; do
  echo hello >&"$fd"
  IFS= read -r -t 5 line <&"$fd" || fail "no echo"
  [[ $line == HELLO ]] || fail "echo '$line', not HELLO"
done

timeout 25 gdb -nx -batch -x "$script" -p "$pid" -ex 'info coroutines' >"$work/gdb.txt" 2>&1 || true
if grep -q 'ptrace: Operation not permitted' "$work/gdb.txt"; then
  echo "SKIP: ptrace attach is not permitted here (see /proc/sys/kernel/yama/ptrace_scope)"
  exit 77
fi
if grep -Eq 'Traceback|Python Exception' "$work/gdb.txt"; then fail "a Python error"; fi
grep -Eq '^Scheduler 0x[0-9a-f]+ on thread 1 \(LWP [0-9]+\), 3 coroutine\(s\):' "$work/gdb.txt" ||
  fail "no scheduler with 3 coroutines on thread 1"
grep -Eq '^ +[0-9]+ +parked +"main" +fd [0-9]+ read$' "$work/gdb.txt" ||
  fail "the accept loop (main) is not parked on the listener"
clients=$(grep -Ec '^ +[0-9]+ +parked +"client" +fd [0-9]+ read$' "$work/gdb.txt" || true)
[[ $clients == 2 ]] || fail "$clients client coroutines parked in a read, not 2"

id=$(sed -nE 's/^ +([0-9]+) +parked +"client" .*/\1/p' "$work/gdb.txt" | head -n 1)
timeout 25 gdb -nx -batch -x "$script" -p "$pid" -ex "coroutine bt $id" >"$work/gdb.txt" 2>&1 ||
  true
grep -Eq '^#[0-9]+ .*serve_client' "$work/gdb.txt" || fail "client's backtrace lacks serve_client"
grep -Eq '^#[0-9]+ .*\bread \(' "$work/gdb.txt" || fail "client's backtrace lacks read()"
grep "^#" "$work/gdb.txt" | head -n 12 >&2 # the backtrace, for the log
echo "PASS: echo_server: the accept loop and both clients listed, a client's backtrace reaches read()"
