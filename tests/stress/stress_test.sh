#!/usr/bin/env bash
# coil-stress end to end on loopback, against c1m_server on 4 free ports:
#  - 2000 verified connections over 2 processes pass: exit 0, and the JSON report says every
#    connection was established, no errors, echoes counted and verified;
#  - with RLIMIT_NOFILE at 1000 and no --procs it picks 2 processes itself, says so, and passes;
#  - bad flag values exit 2 with a message; --threads above --connections is refused;
#  - --procs 2 --threads 2: four clients on two coil::Runtime workers each, all verified;
#  - --procs 1 with more connections than RLIMIT_NOFILE allows exits 2 naming RLIMIT_NOFILE and
#    the --procs needed;
#  - a SIGINT stops a long run early with a report and a non-zero status;
#  - with echo_server (which upper-cases), --verify reports corrupt echoes and fails;
#  - a closed port fails with ECONNREFUSED counted and the listen-backlog hint.
# Every process the test starts is killed by its pid at exit; the whole test runs under timeout.
#
#   stress_test.sh COIL_STRESS C1M_SERVER SANITIZE [ECHO_SERVER]
set -euo pipefail

if [[ -z ${STRESS_TEST_TIMED:-} ]]; then
  STRESS_TEST_TIMED=1 exec timeout -k 5 90 bash "$0" "$@"
fi
stress=${1:?usage: stress_test.sh COIL_STRESS C1M_SERVER SANITIZE [ECHO_SERVER]}
c1m=${2:?}
sanitize=${3:-}
echo_server=${4:-}
work=$(mktemp -d)
pids=()

# reaped PID drops a pid that has been waited for, so that cleanup never signals a number the
# system may have given to another process since.
reaped() {
  local keep=() pid
  for pid in "${pids[@]}"; do [[ $pid == "$1" ]] || keep+=("$pid"); done
  pids=("${keep[@]}")
}

cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*" >&2
  local f
  for f in "$work"/*.out "$work"/*.err "$work"/*.json; do
    [[ -s $f ]] && { echo "--- $f" && cat "$f"; } >&2
  done
  exit 1
}

# jget FILE FILTER prints a jq filter's value from a JSON file (python3 if jq is missing); it
# fails the test if the file is not valid JSON.
jget() {
  if command -v jq >/dev/null; then
    jq -r "$2" "$1" || fail "$1 is not valid JSON (or lacks $2)"
  else
    # The filters used here are paths: .a.b, .a[0].b, .a["b.c"].
    python3 - "$1" "$2" <<'EOF' || fail "$1 is not valid JSON (or lacks $2)"
import json, re, sys
value = json.load(open(sys.argv[1]))
for name, index, quoted in re.findall(r'\.(\w+)|\[(\d+)\]|\["([^"]+)"\]', sys.argv[2]):
    value = value[int(index)] if index else value[name or quoted]
print(json.dumps(value) if isinstance(value, (bool, type(None))) else value)
EOF
  fi
}

# expect_eq WHAT GOT WANT
expect_eq() { [[ $2 == "$3" ]] || fail "$1 is '$2', not '$3'"; }

# start_c1m: c1m_server on 4 random ports below the ephemeral range (retried if one is taken);
# sets base and c1m_pid.
start_c1m() {
  local line=
  for _ in 1 2 3 4 5 6; do
    base=$((20000 + RANDOM % 12000))
    "$c1m" --ports "$base-$((base + 3))" --max-seconds 80 >"$work/c1m.out" 2>"$work/c1m.err" &
    c1m_pid=$!
    pids+=("$c1m_pid")
    for _ in $(seq 100); do
      line=$(head -n 1 "$work/c1m.out" 2>/dev/null || true) # not yet opened by the job: try again
      [[ -n $line ]] || ! kill -0 "$c1m_pid" 2>/dev/null && break
      sleep 0.1
    done
    [[ $line == "listening on ports $base-$((base + 3))" ]] && return 0
    grep -q 'Address already in use' "$work/c1m.err" || fail "c1m_server first line: '$line'"
    wait "$c1m_pid" || true
    reaped "$c1m_pid"
  done
  fail "no free port range for c1m_server in 6 tries"
}

n=2000
[[ -n $sanitize ]] && n=500  # sanitized builds are slower; the checks stay the same
start_c1m
ports="$base-$((base + 3))"

# A passing run.
rc=0
"$stress" 127.0.0.1 --ports "$ports" --connections "$n" --verify --interval 0.2 --duration 3 \
  --procs 2 --json "$work/run.json" >"$work/run.out" 2>"$work/run.err" || rc=$?
expect_eq "exit status of the passing run" "$rc" 0
expect_eq "ok" "$(jget "$work/run.json" .ok)" true
expect_eq "connections.requested" "$(jget "$work/run.json" .connections.requested)" "$n"
expect_eq "connections.established" "$(jget "$work/run.json" .connections.established)" "$n"
expect_eq "errors_total" "$(jget "$work/run.json" .errors_total)" 0
expect_eq "processes" "$(jget "$work/run.json" .processes)" 2
echoed=$(jget "$work/run.json" .messages.echoed)
((echoed > 0)) || fail "no echoes counted"
# Each connection pings every 0.2 s for 3 s: about 15 per connection; ask for a third of that.
((echoed >= n * 5)) || fail "only $echoed echoes from $n connections in 3 s"
expect_eq "messages.verified" "$(jget "$work/run.json" .messages.verified)" "$echoed"
expect_eq "messages.sent" "$(jget "$work/run.json" .messages.sent)" "$echoed"
expect_eq "messages.lost" "$(jget "$work/run.json" .messages.lost)" 0
rtt_count=$(jget "$work/run.json" .rtt_us.count)
expect_eq "rtt_us.count" "$rtt_count" "$echoed"
p50=$(jget "$work/run.json" .rtt_us.p50)
p999=$(jget "$work/run.json" .rtt_us['"p99.9"'])
max=$(jget "$work/run.json" .rtt_us.max)
((p50 <= p999 && p999 <= max)) || fail "rtt percentiles out of order: $p50 $p999 $max"
(($(jget "$work/run.json" .memory.client_rss_bytes) > 0)) || fail "no client RSS"
# The kernel's TCP memory counts pages of socket buffers holding data, which a few hundred idle
# connections may not have at the moment it is read: the sockets in use are what must show.
(($(jget "$work/run.json" .memory.kernel_tcp_sockets_in_use) >= n)) ||
  fail "fewer TCP sockets in use than connections"
(($(jget "$work/run.json" .memory.kernel_tcp_mem_bytes) >= 0)) || fail "no kernel TCP memory"
grep -q '^result: PASS' "$work/run.out" || fail "the report does not say PASS"
grep -Eq "^ +[0-9.]+ s  established $n/$n" "$work/run.out" || fail "no plain progress line"
if grep -q $'\r' "$work/run.out"; then fail "carriage returns in output that is not a terminal"; fi
echo "ok: $n verified connections over 2 processes, $echoed echoes, JSON report"

# Two processes of two worker threads each.
rc=0
"$stress" 127.0.0.1 --ports "$ports" --connections "$n" --verify --interval 0.2 --duration 2 \
  --procs 2 --threads 2 --json "$work/threads.json" >"$work/threads.out" 2>"$work/threads.err" ||
  rc=$?
expect_eq "exit status with --threads 2" "$rc" 0
expect_eq "established with --threads 2" \
  "$(jget "$work/threads.json" .connections.established)" "$n"
expect_eq "processes with --threads 2" "$(jget "$work/threads.json" .processes)" 2
expect_eq "errors with --threads 2" "$(jget "$work/threads.json" .errors_total)" 0
grep -q 'over 2 processes of 2 worker threads each' "$work/threads.out" ||
  fail "the report does not name the worker threads"
echo "ok: --procs 2 --threads 2: $n verified connections"

# RLIMIT_NOFILE 1000 and no --procs: two processes of 750 connections each.
rc=0
bash -c 'ulimit -n 1000 && exec "$@"' _ "$stress" 127.0.0.1 --ports "$ports" --connections 1500 \
  --interval 0.5 --duration 1 >"$work/auto.out" 2>"$work/auto.err" || rc=$?
expect_eq "exit status with RLIMIT_NOFILE 1000" "$rc" 0
grep -q '^coil-stress: 2 processes: RLIMIT_NOFILE is 1000, so one process holds at most 900' \
  "$work/auto.out" || fail "no line saying why 2 processes"
grep -q '1500 established' "$work/auto.out" || fail "not every connection established"
echo "ok: under RLIMIT_NOFILE 1000, 1500 connections split over 2 processes by themselves"

# Bad command lines: status 2 and a message on stderr, before anything runs.
expect_usage_error() {
  local text=$1 rc=0
  shift
  "$stress" "$@" >"$work/bad.out" 2>"$work/bad.err" || rc=$?
  [[ $rc == 2 ]] || fail "coil-stress $* exits $rc, not 2"
  grep -qF -- "$text" "$work/bad.err" || fail "coil-stress $*: stderr lacks '$text'"
}
expect_usage_error "--interval" 127.0.0.1 --ports "$ports" --connections 10 --interval -1
expect_usage_error "--ports" 127.0.0.1 --ports 5-2 --connections 10
expect_usage_error "--src" 127.0.0.1 --connections 10 --src 127.0.0.9-127.0.0.1
expect_usage_error "--connections" 127.0.0.1 --connections 0
expect_usage_error "--connections" 127.0.0.1
expect_usage_error "is more than --connections" 127.0.0.1 --connections 2 --threads 3
expect_usage_error "--message-size" 127.0.0.1 --connections 10 --message-size 0
expect_usage_error "--procs 20 is more than --connections 10" 127.0.0.1 --connections 10 --procs 20
echo "ok: bad values exit 2 with a message"

# --procs 1 too small: the message names RLIMIT_NOFILE, the cap and the --procs needed.
rc=0
bash -c 'ulimit -n 1000 && exec "$@"' _ "$stress" 127.0.0.1 --ports "$ports" --connections 5000 \
  --procs 1 >"$work/limit.out" 2>"$work/limit.err" || rc=$?
expect_eq "exit status of --procs 1 under RLIMIT_NOFILE 1000" "$rc" 2
grep -q 'RLIMIT_NOFILE (1000) caps a process at 900 connections' "$work/limit.err" ||
  fail "the message does not name RLIMIT_NOFILE and the cap"
grep -qF -- 'use --procs 6 or more' "$work/limit.err" || fail "the message lacks the --procs needed"
echo "ok: --procs 1 under RLIMIT_NOFILE 1000 refused, naming the limit and --procs 6"

# SIGINT stops a long run: a report, status 1, well before --duration.
rc=0
start=$SECONDS
"$stress" 127.0.0.1 --ports "$ports" --connections 200 --duration 60 --interval 0.1 \
  --procs 2 --json "$work/int.json" >"$work/int.out" 2>"$work/int.err" &
stress_pid=$!
pids+=("$stress_pid")
for _ in $(seq 200); do  # until every connection is up and the steady window runs
  grep -q 'established 200/200' "$work/int.out" && break
  sleep 0.1
done
grep -q 'established 200/200' "$work/int.out" || fail "200 connections not up within 20 s"
sleep 0.5
kill -INT "$stress_pid"
wait "$stress_pid" || rc=$?
reaped "$stress_pid"
((SECONDS - start < 20)) || fail "SIGINT took $((SECONDS - start)) s to stop the run"
[[ $rc == 1 ]] || fail "an interrupted run exits $rc, not 1"
expect_eq "interrupted" "$(jget "$work/int.json" .interrupted)" true
expect_eq "established when interrupted" "$(jget "$work/int.json" .connections.established)" 200
grep -q 'the run was interrupted' "$work/int.out" || fail "the report does not say interrupted"
echo "ok: SIGINT ends a 60 s run early with a report and status 1"

# --verify catches changed bytes: echo_server upper-cases what it echoes.
if [[ -n $echo_server ]]; then
  "$echo_server" --port 0 >"$work/echo.out" 2>"$work/echo.err" &
  pids+=("$!")
  for _ in $(seq 100); do
    grep -q '^listening on port' "$work/echo.out" && break
    sleep 0.1
  done
  echo_port=$(sed -n 's/^listening on port \([0-9]*\)$/\1/p' "$work/echo.out")
  [[ -n $echo_port ]] || fail "echo_server did not say its port"
  rc=0
  "$stress" 127.0.0.1 --ports "$echo_port" --connections 20 --interval 0.1 --duration 1 \
    --verify --json "$work/corrupt.json" >"$work/corrupt.out" 2>"$work/corrupt.err" || rc=$?
  [[ $rc == 1 ]] || fail "corrupt echoes: exit status $rc, not 1"
  corrupt=$(jget "$work/corrupt.json" .messages.corrupt)
  ((corrupt > 0)) || fail "upper-cased echoes not reported as corrupt"
  grep -q 'echoes were corrupt\|echo was corrupt' "$work/corrupt.out" ||
    fail "the report does not say corrupt"
  rc=0
  "$stress" 127.0.0.1 --ports "$echo_port" --connections 20 --interval 0.1 --duration 1 \
    >"$work/noverify.out" 2>"$work/noverify.err" || rc=$?
  [[ $rc == 0 ]] || fail "without --verify the same run exits $rc, not 0"
  echo "ok: --verify reports $corrupt corrupt echoes from an upper-casing server"
fi

# A closed port: stop c1m_server, then connect to its ports.
kill -TERM "$c1m_pid"
wait "$c1m_pid" || fail "c1m_server did not stop cleanly"
reaped "$c1m_pid"
rc=0
"$stress" 127.0.0.1 --ports "$ports" --connections 10 --json "$work/closed.json" \
  >"$work/closed.out" 2>"$work/closed.err" || rc=$?
[[ $rc != 0 ]] || fail "connections to a closed port exit 0"
expect_eq "established to a closed port" "$(jget "$work/closed.json" .connections.established)" 0
expect_eq "errors_total to a closed port" "$(jget "$work/closed.json" .errors_total)" 10
expect_eq "the error" "$(jget "$work/closed.json" '.errors[0].error')" ECONNREFUSED
expect_eq "the error's phase" "$(jget "$work/closed.json" '.errors[0].phase')" connect
expect_eq "ECONNREFUSED count" "$(jget "$work/closed.json" '.errors[0].count')" 10
grep -q 'ECONNREFUSED' "$work/closed.out" || fail "the report does not list ECONNREFUSED"
grep -q 'net.core.somaxconn' "$work/closed.out" || fail "no listen-backlog hint"
echo "ok: a closed port gives status $rc and 10 ECONNREFUSED"
echo "PASS coil-stress"
