#!/usr/bin/env bash
# Smoke test of c1m_server on 4 random ports: it raises its fd soft limit, accepts and echoes
# ~1200 connections with the per-1000 report, survives disconnects, stops on SIGTERM or
# --max-seconds with an exact summary, and under a hard fd limit reports RLIMIT_NOFILE once
# while it keeps serving.
# Usage: bash c1m_server.sh BIN_DIR
set -euo pipefail
# shellcheck source=examples/smoke/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
smoke_begin "$0" "$@"

# start_server NAME SOFT HARD ARGS...: runs c1m_server on 4 random ports with `ulimit -S -n SOFT`
# and then `ulimit -H -n HARD` (retrying if a port is taken); sets server_pid and base.
start_server() {
  local name=$1 soft=$2 hard=$3 line=
  shift 3
  for _ in 1 2 3 4 5; do
    base=$((20000 + RANDOM % 20000))
    bash -c 'ulimit -S -n "$1" && ulimit -H -n "$2" && shift 2 && exec "$@"' _ "$soft" "$hard" \
      "$bin/c1m_server" --ports "$base-$((base + 3))" "$@" >"$work/$name.out" 2>"$work/$name.err" &
    server_pid=$!
    pids+=("$server_pid")
    for _ in $(seq 100); do
      line=$(head -n 1 "$work/$name.out" 2>/dev/null || true) # not yet opened by the job: try again
      [[ -n $line ]] || ! kill -0 "$server_pid" 2>/dev/null && break
      sleep 0.1
    done
    [[ $line == "listening on ports $base-$((base + 3))" ]] && return 0
    grep -q 'Address already in use' "$work/$name.err" || fail "$name first line: '$line'"
    wait "$server_pid" || true
  done
  fail "no free port range found in 5 tries"
}

# connect_all N: opens N connections round-robin over the 4 ports into conns[].
connect_all() {
  conns=()
  for ((i = 0; i < $1; i++)); do
    exec {fd}<>"/dev/tcp/127.0.0.1/$((base + i % 4))" || fail "connect $i"
    conns+=("$fd")
  done
}

# probe I: an echo round trip on connection I.
probe() {
  local fd=${conns[$1]} reply
  printf 'probe %d\n' "$1" >&"$fd"
  # Not `read -t`: bash waits for it with select(2), which aborts on fds above 1023.
  reply=$(timeout 10 head -n 1 <&"$fd") || fail "no echo on connection $1"
  [[ $reply == "probe $1" ]] || fail "connection $1 echoed '$reply'"
}

# stop_server NAME: SIGTERM, then expect a clean exit within 10 s.
stop_server() {
  kill -TERM "$server_pid"
  for _ in $(seq 100); do
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  local rc=0
  wait "$server_pid" || rc=$?
  [[ $rc == 0 ]] || fail "$1 exited $rc after SIGTERM"
}

for bad in "--ports 5-2" "--ports abc" "--ports 1-70000" "--max-seconds -1" "--bogus" \
  "--threads 0" "--procs 0"; do
  rc=0
  # shellcheck disable=SC2086 # the flags are split on purpose
  "$bin/c1m_server" $bad >/dev/null 2>&1 || rc=$?
  [[ $rc == 2 ]] || fail "c1m_server $bad exits $rc, not 2"
done
echo "ok: bad flags exit 2"

ulimit -n "$(ulimit -H -n)" 2>/dev/null || true  # this shell holds the client ends
n=$(($(ulimit -n) - 100))
((n > 1200)) && n=1200
((n >= 200)) || fail "ulimit -n $(ulimit -n) leaves too few fds for the test"
hard=$(ulimit -H -n)

start_server main 512 "$hard"
grep -q "raised the RLIMIT_NOFILE soft limit (ulimit -n) from 512 to the hard limit, $hard" \
  "$work/main.out" || fail "no report of the raised soft limit"
echo "ok: soft limit 512 raised to $hard"
connect_all "$n"
for i in $((n - 1)) $((n - 2)) $((n - 3)) $((n - 4)) 0; do probe "$i"; done
if ((n >= 1000)); then
  grep -Eq '^accepted 1000 connections, [0-9]+ ms per 1000$' "$work/main.out" ||
    fail "no 'accepted 1000 connections' report"
fi
echo "ok: $n connections accepted and echoing (more than the 512 soft limit)"
for ((i = 0; i < n / 2; i++)); do
  fd=${conns[i]}
  exec {fd}>&-
done
probe $((n - 1))
probe $((n / 2))
stop_server main
grep -Eq "^summary: accepted $n connections in [0-9.]+ s, peak $n open at once, 0 accept" \
  "$work/main.out" || fail "wrong summary"
echo "ok: half disconnected, rest still served; SIGTERM gives the exact summary"
for ((i = n / 2; i < n; i++)); do
  fd=${conns[i]}
  exec {fd}>&-
done

start_server timed "$hard" "$hard" --max-seconds 1
connect_all 3
probe 2
rc=0
for _ in $(seq 100); do
  kill -0 "$server_pid" 2>/dev/null || break
  sleep 0.1
done
wait "$server_pid" || rc=$?
[[ $rc == 0 ]] || fail "--max-seconds 1: exit status $rc"
grep -Eq '^summary: accepted 3 connections in [0-9.]+ s' "$work/timed.out" ||
  fail "--max-seconds 1: wrong summary"
for fd in "${conns[@]}"; do exec {fd}>&-; done
echo "ok: --max-seconds 1 stops by itself with a summary"

# summed_accepts NAME: the accepted counts of every summary line in NAME's output, added up.
summed_accepts() {
  sed -n 's/^summary: accepted \([0-9]*\) connections.*/\1/p' "$work/$1.out" |
    awk '{ n += $1 } END { print n + 0 }'
}

for mode in "--threads 2" "--procs 2" "--procs 2 --threads 2"; do
  name=${mode//[- ]/}
  # shellcheck disable=SC2086 # the flags are split on purpose
  start_server "$name" "$hard" "$hard" $mode
  connect_all 200
  for i in 199 100 0; do probe "$i"; done
  stop_server "$name"
  for fd in "${conns[@]}"; do exec {fd}>&-; done
  summaries=$(grep -c '^summary:' "$work/$name.out" || true)
  want=1
  [[ $mode == *procs* ]] && want=2
  [[ $summaries == "$want" ]] || fail "$mode: $summaries summaries, not $want"
  [[ $(summed_accepts "$name") == 200 ]] || fail "$mode: accepted $(summed_accepts "$name"), not 200"
  ! grep -v 'Terminated, stopping$' "$work/$name.err" || fail "$mode: errors on stderr"
  echo "ok: $mode: 200 connections echo, SIGTERM stops every worker, summaries add up to 200"
done

if sanitized "$bin/c1m_server"; then
  echo "skipped: a hard limit of 40 fds (a sanitizer build: see sanitized in lib.sh)"
else
  start_server limited 40 40
  grep -q 'RLIMIT_NOFILE (ulimit -n) is 40, its hard limit' "$work/limited.out" ||
    fail "no report that the limit is already the hard one"
  connect_all 60
  for _ in $(seq 50); do
    grep -q 'Too many open files' "$work/limited.err" && break
    sleep 0.1
  done
  grep -q 'Too many open files.*RLIMIT_NOFILE (ulimit -n)' "$work/limited.err" ||
    fail "no EMFILE report naming RLIMIT_NOFILE"
  sleep 0.5
  probe 0
  probe 1
  reports=$(grep -c 'Too many open files' "$work/limited.err" || true)
  [[ $reports == 1 ]] || fail "EMFILE reported $reports times, not once"
  stop_server limited
  grep -Eq '^summary: accepted [0-9]+ connections .*, [1-9][0-9]* accept retries' \
    "$work/limited.out" || fail "the summary does not count the accept retries"
  echo "ok: at a hard limit of 40 fds, EMFILE reported once and existing connections served"
fi
echo "PASS c1m_server"
