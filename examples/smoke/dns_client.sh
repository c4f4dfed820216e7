#!/usr/bin/env bash
# Smoke test for dns_client against tests/programs/dns_responder, all on 127.0.0.1.
#
#   bash examples/smoke/dns_client.sh BIN_DIR
#
# Checks: 200 names resolved exactly (A and AAAA), answers delayed 200 ms each resolve
# concurrently (200 names well under 5 s, while --concurrency 2 takes its 5 rounds), dropped
# first queries are retried, stray packets are ignored, silent names and a closed port fail in
# bounded time, NXDOMAIN / SERVFAIL / CNAME, four kinds of malformed packets (error lines, no
# crash), name validation and usage errors (exit 2). Kills only the responders it started.
set -euo pipefail

bin=${1:?usage: dns_client.sh BIN_DIR}
client=$bin/dns_client
responder=$bin/dns_responder
for program in "$client" "$responder"; do
  [[ -x $program ]] || { echo "FAIL: $program is not built" >&2; exit 1; }
done

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# start_responder ARGS... starts a responder and sets $port (and $responder_pid).
start_responder() {
  local out=$work/responder.${#pids[@]}
  # -k: KILL 3 s after a TERM, so cleanup stays bounded even if a responder hangs on exit (seen
  # once with LeakSanitizer's ptrace tracer stuck in an ASan build).
  timeout -k 3 100 "$responder" --port 0 --max-seconds 90 "$@" >"$out" 2>&1 &
  responder_pid=$!
  pids+=("$responder_pid")
  for _ in $(seq 100); do
    if port=$(sed -n 's/^listening on port \([0-9][0-9]*\)$/\1/p' "$out") && [[ -n $port ]]; then
      return 0
    fi
    kill -0 "$responder_pid" 2>/dev/null || fail "dns_responder $* exited: $(cat "$out")"
    sleep 0.05
  done
  fail "dns_responder $* did not print its port"
}

# run_client ARGS... runs dns_client into $work/out; sets $status and $elapsed_ms.
run_client() {
  local start
  start=$(now_ms)
  status=0
  timeout 30 "$client" "$@" >"$work/out" 2>"$work/err" || status=$?
  elapsed_ms=$(($(now_ms) - start))
  ((status < 124)) || fail "dns_client $* died or hung (status $status): $(cat "$work/err")"
}

# expect_status N: the last run exited with N.
expect_status() {
  [[ $status -eq $1 ]] || fail "exit status $status, expected $1; output:
$(head -20 "$work/out")
$(head -5 "$work/err")"
}

# expect_lines FILE: the last run printed exactly FILE's lines, then the summary.
expect_lines() {
  local count
  count=$(wc -l <"$1")
  head -n -1 "$work/out" | diff -u "$1" - >&2 || fail "answers differ from $1 (see diff)"
  tail -n 1 "$work/out" | grep -Eq "^total: $count names in [0-9.]+ ms, " ||
    fail "bad summary: $(tail -n 1 "$work/out")"
}

# expect_summary OK FAILED: the summary line's counts.
expect_summary() {
  tail -n 1 "$work/out" | grep -Eq ", $1 ok, $2 failed$" ||
    fail "summary is not '$1 ok, $2 failed': $(tail -n 1 "$work/out")"
}

# host_names N writes host0.test .. host<N-1>.test, one per line.
host_names() { for ((k = 0; k < $1; ++k)); do echo "host$k.test"; done; }

# host_answers N TYPE writes the answers the responder gives for host_names N.
host_answers() {
  for ((k = 0; k < $1; ++k)); do
    if [[ $2 == A ]]; then
      echo "host$k.test A 10.0.$((k / 256)).$((k % 256))"
    elif ((k == 0)); then
      echo "host0.test AAAA fd00::"
    else
      printf 'host%d.test AAAA fd00::%x\n' "$k" "$k"
    fi
  done
}

start_responder
server=127.0.0.1:$port

echo "-- 200 names, A and AAAA, checked exactly"
host_names 200 >"$work/names"
for type in A AAAA; do
  run_client --server "$server" --concurrency 64 --type "$type" --file "$work/names"
  expect_status 0
  host_answers 200 "$type" >"$work/expected"
  expect_lines "$work/expected"
  expect_summary 200 0
done

echo "-- names on the command line and from a file keep their order; trailing dot, any case"
printf '# comment\n\n  host7.test  \nHOST8.Test.\n' >"$work/few"
run_client --server "$server" host3.test --file "$work/few"
expect_status 0
printf '%s\n' "host3.test A 10.0.0.3" "host7.test A 10.0.0.7" "HOST8.Test. A 10.0.0.8" \
  >"$work/expected"
expect_lines "$work/expected"

echo "-- CNAME, NXDOMAIN, SERVFAIL, REFUSED, no record, in input order"
run_client --server "$server" alias.test nosuch.test host300.test servfail.test example.com \
  host01.test
expect_status 1
cat >"$work/expected" <<'EOF'
alias.test CNAME host1.test A 10.0.0.1
nosuch.test error: NXDOMAIN
host300.test A 10.0.1.44
servfail.test error: SERVFAIL
example.com error: REFUSED
host01.test error: NXDOMAIN
EOF
expect_lines "$work/expected"
expect_summary 2 4
run_client --server "$server" --type AAAA alias.test test
expect_status 1
printf '%s\n' "alias.test CNAME host1.test AAAA fd00::1" "test error: no AAAA record" \
  >"$work/expected"
expect_lines "$work/expected"

echo "-- invalid names fail alone; usage errors exit 2"
long_label=$(printf 'a%.0s' $(seq 64))
long_name=$(printf 'abcdefghi.%.0s' $(seq 26))test # 264 characters
run_client --server "$server" "$long_label.test" "$long_name" "a..test" host2.test
expect_status 1
cat >"$work/expected" <<EOF
$long_label.test error: invalid name: label longer than 63 characters
$long_name error: invalid name: name longer than 253 characters
a..test error: invalid name: empty label
host2.test A 10.0.0.2
EOF
expect_lines "$work/expected"
for args in "--bogus host1.test" "--server 127.0.0.1:99999 host1.test" \
  "--server localhost:53 host1.test" "--server 1.2.3:53 host1.test" "--type MX host1.test" \
  "--concurrency 0 host1.test" "--server $server" "--file $work/missing"; do
  # shellcheck disable=SC2086 # split the flags on purpose
  run_client $args
  expect_status 2
done

echo "-- 200 answers delayed 200 ms each resolve concurrently"
start_responder --delay-ms 200
run_client --server "127.0.0.1:$port" --concurrency 200 --file "$work/names"
expect_status 0
host_answers 200 A >"$work/expected"
expect_lines "$work/expected"
echo "   200 names in $elapsed_ms ms"
((elapsed_ms >= 200)) || fail "answers delayed 200 ms came in $elapsed_ms ms"
((elapsed_ms < 5000)) || fail "200 delayed names took $elapsed_ms ms: queries did not overlap"
host_names 10 >"$work/ten"
run_client --server "127.0.0.1:$port" --concurrency 2 --file "$work/ten"
expect_status 0
((elapsed_ms >= 950)) || fail "--concurrency 2 did 5 rounds of 200 ms in $elapsed_ms ms"

echo "-- first query of every name dropped: the retry resolves it"
start_responder --drop-first 1
run_client --server "127.0.0.1:$port" --timeout-ms 300 --retries 1 --file "$work/names"
expect_status 0
host_answers 200 A >"$work/expected"
expect_lines "$work/expected"
((elapsed_ms >= 290)) || fail "dropped queries answered in $elapsed_ms ms, before any retry"
run_client --server "127.0.0.1:$port" --timeout-ms 200 --retries 0 alias.test
expect_status 1
echo "alias.test error: timeout after 1 try" >"$work/expected"
expect_lines "$work/expected"

echo "-- stray packets (wrong id, wrong question) before every answer are ignored"
start_responder --stray
run_client --server "127.0.0.1:$port" --file "$work/names"
expect_status 0
host_answers 200 A >"$work/expected"
expect_lines "$work/expected"

echo "-- a silent name times out after 3 tries, in bounded time"
run_client --server "$server" --timeout-ms 200 --retries 2 silent.test host5.test
expect_status 1
printf '%s\n' "silent.test error: timeout after 3 tries" "host5.test A 10.0.0.5" >"$work/expected"
expect_lines "$work/expected"
((elapsed_ms >= 580 && elapsed_ms < 5000)) || fail "3 tries of 200 ms took $elapsed_ms ms"

echo "-- nothing listening on the port: errors, exit 1, bounded time"
start_responder
closed_port=$port
kill "$responder_pid"
wait "$responder_pid" || true
run_client --server "127.0.0.1:$closed_port" --timeout-ms 200 host1.test host2.test
expect_status 1
[[ $(grep -c -E '^host[12]\.test error: (connection refused|timeout) after 3 tries$' \
  "$work/out") -eq 2 ]] || fail "closed port: $(cat "$work/out")"
expect_summary 0 2
((elapsed_ms < 5000)) || fail "closed port took $elapsed_ms ms"

echo "-- malformed answers are errors, not crashes"
start_responder --garbage loop.test --garbage cut.test --garbage short.test \
  --garbage label.test
run_client --server "127.0.0.1:$port" loop.test cut.test short.test label.test host9.test
expect_status 1
cat >"$work/expected" <<'EOF'
loop.test error: malformed response: compression pointer loop
cut.test error: malformed response: truncated packet
short.test error: malformed response: A record of 3 bytes
label.test error: malformed response: unknown label type
host9.test A 10.0.0.9
EOF
expect_lines "$work/expected"

echo "PASS"
