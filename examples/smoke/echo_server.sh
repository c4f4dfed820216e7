#!/usr/bin/env bash
# Smoke test of echo_server: upper-cased echoes on one, many and a large connection; a server
# out of file descriptors says so once, does not spin, keeps serving and recovers.
# Usage: bash echo_server.sh BIN_DIR
set -euo pipefail
# shellcheck source=examples/smoke/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
smoke_begin "$0" "$@"

# start_server NAME COMMAND...: runs COMMAND in the background; sets server_pid and port.
start_server() {
  local name=$1 line=
  shift
  "$@" >"$work/$name.out" 2>"$work/$name.err" &
  server_pid=$!
  pids+=("$server_pid")
  for _ in $(seq 100); do
    line=$(head -n 1 "$work/$name.out" 2>/dev/null || true) # not yet opened by the job: try again
    [[ -n $line ]] && break
    kill -0 "$server_pid" 2>/dev/null || fail "$name exited at start"
    sleep 0.1
  done
  [[ $line =~ ^listening\ on\ port\ ([0-9]+)$ ]] || fail "$name first line: '$line'"
  port=${BASH_REMATCH[1]}
}

# cpu_ticks PID: user + system time of PID in clock ticks.
cpu_ticks() {
  local stat
  stat=$(<"/proc/$1/stat")
  stat=${stat##*) }  # drop "pid (comm) "; utime and stime are then fields 12 and 13
  read -r -a f <<<"$stat"
  echo $((f[11] + f[12]))
}

rc=0
"$bin/echo_server" --bogus >/dev/null 2>&1 || rc=$?
[[ $rc == 2 ]] || fail "a bad flag exits $rc, not 2"
rc=0
"$bin/echo_server" --port 70000 >/dev/null 2>&1 || rc=$?
[[ $rc == 2 ]] || fail "--port 70000 exits $rc, not 2"
echo "ok: bad flags exit 2"

start_server main "$bin/echo_server" --port 0
exec {fd}<>"/dev/tcp/127.0.0.1/$port" || fail "connect to $port"
printf 'hello, Coil 123\n' >&"$fd"
read -r -t 5 -u "$fd" reply || fail "no echo"
[[ $reply == 'HELLO, COIL 123' ]] || fail "echo was '$reply'"
exec {fd}>&-
echo "ok: one connection echoes upper-cased"

conns=()
for i in $(seq 50); do
  exec {fd}<>"/dev/tcp/127.0.0.1/$port" || fail "connect $i"
  conns+=("$fd")
  printf 'connection %d says hi\n' "$i" >&"$fd"
done
for ((i = 50; i >= 1; i--)); do
  fd=${conns[i - 1]}
  read -r -t 5 -u "$fd" reply || fail "no echo on connection $i"
  [[ $reply == "CONNECTION $i SAYS HI" ]] || fail "connection $i got '$reply'"
  exec {fd}>&-
done
echo "ok: 50 concurrent connections each get their own echo"

head -c 300000 /dev/urandom | base64 -w 76 >"$work/big.in"
tr 'a-z' 'A-Z' <"$work/big.in" >"$work/big.expected"
size=$(stat -c %s "$work/big.in")
exec {fd}<>"/dev/tcp/127.0.0.1/$port" || fail "connect for the large echo"
cat "$work/big.in" >&"$fd" &  # written while the echo is read, so neither side stalls
writer=$!
timeout 20 head -c "$size" <&"$fd" >"$work/big.out" || fail "large echo timed out"
wait "$writer" || fail "writing the large payload failed"
exec {fd}>&-
cmp -s "$work/big.out" "$work/big.expected" || fail "the $size-byte echo differs"
echo "ok: a $size-byte payload comes back upper-cased, byte for byte"

kill -0 "$server_pid" 2>/dev/null || fail "the server died after its clients left"
[[ ! -s $work/main.err ]] || fail "unexpected errors: $(cat "$work/main.err")"
echo "ok: server alive, no errors reported"

# --threads: two workers, each with its own SO_REUSEPORT listener on the one port.
rc=0
"$bin/echo_server" --threads 0 >/dev/null 2>&1 || rc=$?
[[ $rc == 2 ]] || fail "--threads 0 exits $rc, not 2"
start_server threads "$bin/echo_server" --port 0 --threads 2
threads=$(awk '/^Threads:/ {print $2}' "/proc/$server_pid/status")
((threads >= 3)) || fail "--threads 2 runs $threads threads"
conns=()
for i in $(seq 64); do
  exec {fd}<>"/dev/tcp/127.0.0.1/$port" || fail "connect $i to --threads 2"
  conns+=("$fd")
  printf 'worker test %d\n' "$i" >&"$fd"
done
for ((i = 64; i >= 1; i--)); do
  fd=${conns[i - 1]}
  read -r -t 5 -u "$fd" reply || fail "no echo on connection $i to --threads 2"
  [[ $reply == "WORKER TEST $i" ]] || fail "connection $i to --threads 2 got '$reply'"
  exec {fd}>&-
done
[[ ! -s $work/threads.err ]] || fail "--threads 2 errors: $(cat "$work/threads.err")"
echo "ok: --threads 2 ($threads OS threads) echoes 64 concurrent connections"

if sanitized "$bin/echo_server"; then
  echo "skipped: out of file descriptors (a sanitizer build: see sanitized in lib.sh)"
else
  # Out of descriptors: a server limited to 24 fds gets 40 clients.
  start_server limited bash -c 'ulimit -n 24 && exec "$0" --port 0' "$bin/echo_server"
  limited_pid=$server_pid
  conns=()
  for i in $(seq 40); do
    exec {fd}<>"/dev/tcp/127.0.0.1/$port" || fail "connect $i to the limited server"
    conns+=("$fd")
  done
  for _ in $(seq 50); do
    grep -q 'Too many open files' "$work/limited.err" && break
    sleep 0.1
  done
  grep -q 'Too many open files.*ulimit -n' "$work/limited.err" || fail "no EMFILE report"
  before=$(cpu_ticks "$limited_pid")
  sleep 1
  after=$(cpu_ticks "$limited_pid")
  ((after - before < 30)) || fail "out of fds, the server used $((after - before)) ticks in 1 s"
  fd=${conns[0]}
  printf 'still served\n' >&"$fd"
  read -r -t 5 -u "$fd" reply || fail "no echo while out of fds"
  [[ $reply == 'STILL SERVED' ]] || fail "echo while out of fds was '$reply'"
  for fd in "${conns[@]}"; do exec {fd}>&-; done
  exec {fd}<>"/dev/tcp/127.0.0.1/$port" || fail "connect after the shortage"
  printf 'recovered\n' >&"$fd"
  read -r -t 10 -u "$fd" reply || fail "no echo after the shortage"
  [[ $reply == 'RECOVERED' ]] || fail "echo after the shortage was '$reply'"
  exec {fd}>&-
  reports=$(grep -c 'Too many open files' "$work/limited.err" || true)
  [[ $reports == 1 ]] || fail "EMFILE reported $reports times, not once"
  grep -q 'accepting again' "$work/limited.err" || fail "no 'accepting again' after the shortage"
  kill -0 "$limited_pid" 2>/dev/null || fail "the limited server died"
  echo "ok: EMFILE reported once, no spinning ($((after - before)) ticks/s), clients served, recovered"
fi
echo "PASS echo_server"
