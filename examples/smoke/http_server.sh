#!/usr/bin/env bash
# Smoke test for http_server, all on 127.0.0.1, with bash's /dev/tcp as the client.
#
#   bash examples/smoke/http_server.sh BIN_DIR
#
# Checks: usage errors exit 2; the "listening on port N" line; /plaintext and a 4 KB file
# byte-exact; percent-decoding; / serves index.html; HEAD; keep-alive on HTTP/1.1 and
# HTTP/1.0; three pipelined requests answered in order; 404, 403 for a directory without
# index, 405 with Allow; path traversal (.., %2e%2e, %2f, absolute form, NUL, symlinks out of
# the root) never shows the file outside the root; 431 for big headers, 413 for big bodies
# (Content-Length and chunked), 400 for malformed requests; idle and slowloris connections
# closed after --idle-timeout-ms; a client that stops reading a large file is dropped; idle
# clients do not hold up others; out of fds, accept backs off without spinning and recovers
# (skipped for sanitizer builds). Kills only the servers it started.
set -euo pipefail
export LC_ALL=C
trap "" PIPE # a write to a connection the server closed fails instead of killing the script

bin=${1:?usage: http_server.sh BIN_DIR}
server=$bin/http_server
[[ -x $server ]] || {
  echo "FAIL: $server is not built" >&2
  exit 1
}

work=$(mktemp -d)
pids=()
servers=()
cleanup() {
  exec 3>&- 4>&- 5>&- 2>/dev/null || true
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

# start_server ARGS... starts http_server on port 0, with at most $fd_limit open files if that
# is set, and sets $port, $server_pid and $server_log.
start_server() {
  local launch=()
  # shellcheck disable=SC2016 # the inner shell expands them
  [[ -z ${fd_limit:-} ]] || launch=(bash -c 'ulimit -n "$0" && exec "$@"' "$fd_limit")
  server_log=$work/server.${#servers[@]}
  timeout 110 "${launch[@]}" "$server" --port 0 --host 127.0.0.1 --root "$work/root" "$@" \
    >"$server_log" 2>&1 &
  server_pid=$!
  pids+=("$server_pid")
  servers+=("$server_pid")
  for _ in $(seq 100); do
    port=$(head -n 1 "$server_log" 2>/dev/null | sed -n 's/^listening on port \([0-9][0-9]*\)$/\1/p' || true)
    [[ -z $port ]] || return 0
    kill -0 "$server_pid" 2>/dev/null || fail "http_server $* exited: $(cat "$server_log")"
    sleep 0.05
  done
  fail "http_server $* did not print 'listening on port N' first: $(head -c 300 "$server_log")"
}

# server_process PID prints the pid of the http_server that PID is or runs (through timeout).
server_process() {
  local pid=$1
  for _ in 1 2 3 4; do
    [[ $(cat "/proc/$pid/comm" 2>/dev/null) != http_server ]] || {
      echo "$pid"
      return 0
    }
    pid=$(cat "/proc/$pid/task/$pid/children" 2>/dev/null || pgrep -P "$pid" || true)
    pid=${pid%% *}
    [[ -n $pid ]] || return 1
  done
  return 1
}

# cpu_ticks PID prints the CPU time PID used so far, in clock ticks (user + system).
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# connect FD opens a connection to the server on file descriptor FD (3, 4 or 5).
connect() { eval "exec $1<>/dev/tcp/127.0.0.1/$port"; }

# exchange COMMAND... sends what COMMAND prints on a new connection and saves everything the
# server sends until it closes into $work/out; the server must close within 5 s. Sets
# $elapsed_ms.
exchange() {
  local start code=0
  start=$(now_ms)
  connect 3
  "$@" >&3 || true # the server may close before reading it all
  timeout 5 cat <&3 >"$work/out" || code=$?
  exec 3>&-
  elapsed_ms=$(($(now_ms) - start))
  ((code != 124)) || fail "the server kept the connection open: $(head -c 300 "$work/out")"
}

# status_of prints the status code of the first response in $work/out.
status_of() { head -n 1 "$work/out" | sed -n 's/^HTTP\/1\.1 \([0-9][0-9][0-9]\) .*\r$/\1/p'; }

# expect_status CODE: the first response in $work/out has status CODE.
expect_status() {
  [[ $(status_of) == "$1" ]] || fail "expected status $1, got: $(head -c 300 "$work/out")"
}

# expect_header LINE: the first response in $work/out has the header line LINE.
expect_header() {
  sed '/^\r$/q' "$work/out" | grep -qxF "$1"$'\r' || fail "no '$1' in: $(head -c 400 "$work/out")"
}

# body_of prints what follows the first response head in $work/out.
body_of() { sed '1,/^\r$/d' "$work/out"; }

# read_response FD reads one response (with Content-Length) from FD into $status and $body.
read_response() {
  local line length=0 ended=0
  IFS= read -r -t 3 line <&"$1" || fail "no response on the connection"
  status=$(sed -n 's/^HTTP\/1\.1 \([0-9][0-9][0-9]\) .*\r$/\1/p' <<<"$line")
  headers=
  while IFS= read -r -t 3 line <&"$1"; do
    line=${line%$'\r'}
    [[ -z $line ]] && ended=1 && break
    headers+=$line$'\n'
    [[ $line =~ ^Content-Length:\ ([0-9]+)$ ]] && length=${BASH_REMATCH[1]}
  done
  ((ended)) || fail "response head did not end: $headers"
  body=
  if ((length > 0)); then IFS= read -r -N "$length" -t 3 body <&"$1" || fail "short body"; fi
}

# raw BYTES [PATH] prints BYTES, then, given PATH, a GET of PATH with Connection: close.
raw() {
  printf '%s' "$1"
  (($# < 2)) || get "$2" 'Connection: close'
}

# pipelined prints three requests: /plaintext, /file4k.txt and / (with Connection: close).
pipelined() {
  get /plaintext
  get /file4k.txt
  get / 'Connection: close'
}

# get PATH [HEADER...] prints an HTTP/1.1 GET request with the given header lines.
get() {
  printf 'GET %s HTTP/1.1\r\nHost: test\r\n' "$1"
  shift
  (($# == 0)) || printf '%s\r\n' "$@"
  printf '\r\n'
}

echo "-- a document root, a file outside it and symlinks pointing out"
mkdir -p "$work/root/sub" "$work/root/emptydir" "$work/outside"
printf '<h1>coil index</h1>\n' >"$work/root/index.html"
printf '<p>sub index</p>\n' >"$work/root/sub/index.html"
for ((i = 0; i < 128; ++i)); do printf 'line %026d\n' "$i"; done >"$work/root/file4k.txt"
[[ $(wc -c <"$work/root/file4k.txt") -eq 4096 ]] || fail "test file is not 4096 bytes"
secret=TOP-SECRET-$$-$RANDOM
echo "$secret" >"$work/secret.txt"
echo "$secret" >"$work/outside/secret.txt"
ln -s ../secret.txt "$work/root/link-out"
ln -s "$work/secret.txt" "$work/root/abs-out"
ln -s ../outside "$work/root/dir-out"
ln -s file4k.txt "$work/root/link-in"
truncate -s 128M "$work/root/big.bin"

echo "-- usage errors exit 2"
for args in "--bogus" "--root $work/root" "--port 0 --root $work/missing" \
  "--port 0 --root $work/secret.txt" "--port 70000 --root $work/root" \
  "--port 0 --root $work/root --idle-timeout-ms x"; do
  code=0
  # shellcheck disable=SC2086 # split the flags on purpose
  timeout 5 "$server" $args >"$work/usage" 2>&1 || code=$?
  ((code == 2)) || fail "http_server $args: exit $code, expected 2: $(cat "$work/usage")"
  [[ -s $work/usage ]] || fail "http_server $args: no error message"
done

start_server --idle-timeout-ms 400 --max-header-bytes 4096 --max-body-bytes 1024

echo "-- /plaintext, a 4 KB file, /, HEAD"
exchange get /plaintext 'Connection: close'
expect_status 200
expect_header "Content-Length: 13"
expect_header "Content-Type: text/plain"
[[ $(body_of) == "Hello, World!" ]] || fail "/plaintext body: $(body_of)"
exchange get /file4k.txt 'Connection: close'
expect_status 200
expect_header "Content-Length: 4096"
body_of | cmp - "$work/root/file4k.txt" || fail "/file4k.txt body differs"
exchange get / 'Connection: close'
expect_status 200
expect_header "Content-Type: text/html; charset=utf-8"
body_of | cmp - "$work/root/index.html" || fail "/ is not index.html"
exchange get /sub/ 'Connection: close'
body_of | cmp - "$work/root/sub/index.html" || fail "/sub/ is not sub/index.html"
exchange get '/file4k.txt?x=1#f' 'Connection: close'
body_of | cmp - "$work/root/file4k.txt" || fail "a query string changed the file"
exchange get /file%34k%2Etxt 'Connection: close'
body_of | cmp - "$work/root/file4k.txt" || fail "/file%34k%2Etxt is not percent-decoded"
exchange get /link-in 'Connection: close'
body_of | cmp - "$work/root/file4k.txt" || fail "a symlink inside the root is not served"
exchange raw $'HEAD /file4k.txt HTTP/1.1\r\nConnection: close\r\n\r\n'
expect_status 200
expect_header "Content-Length: 4096"
[[ -z $(body_of) ]] || fail "HEAD sent a body"

echo "-- keep-alive: HTTP/1.1, and HTTP/1.0 with Connection: keep-alive"
connect 4
get /plaintext >&4 || fail "keep-alive closed"
read_response 4
[[ $status == 200 && $body == "Hello, World!" ]] || fail "keep-alive 1st: $status $body"
get /file4k.txt >&4 || fail "keep-alive closed"
read_response 4
[[ $status == 200 && $body == "$(cat "$work/root/file4k.txt")"$'\n' ]] || fail "keep-alive 2nd"
printf 'GET /plaintext HTTP/1.0\r\nConnection: keep-alive\r\n\r\n' >&4 || fail "keep-alive closed"
read_response 4
[[ $status == 200 && $headers == *$'Connection: keep-alive\n'* ]] ||
  fail "HTTP/1.0 keep-alive: $status $headers"
printf 'GET /plaintext HTTP/1.0\r\n\r\n' >&4 || fail "keep-alive closed"
read_response 4
[[ $status == 200 ]] || fail "HTTP/1.0 last request: $status"
timeout 3 cat <&4 >"$work/rest" || fail "HTTP/1.0 without keep-alive: connection not closed"
[[ ! -s $work/rest ]] || fail "bytes after the last response: $(cat "$work/rest")"
exec 4>&-

echo "-- pipelining: three requests in one write, answered in order"
exchange pipelined
[[ $(grep -ao $'HTTP/1.1 200 OK\r' "$work/out" | wc -l) -eq 3 ]] ||
  fail "pipelined: $(cat "$work/out")"
hello=$(grep -boa 'Hello, World!' "$work/out" | cut -d: -f1)
file=$(grep -boa 'line 0000' "$work/out" | head -n 1 | cut -d: -f1)
index=$(grep -boa 'coil index' "$work/out" | cut -d: -f1)
if [[ -z $hello || -z $file || -z $index ]] || ((hello > file || file > index)); then
  fail "pipelined responses out of order ($hello $file $index)"
fi

echo "-- 404, 403 for a directory without index, 405 with Allow, a small body is read past"
exchange get /missing.txt 'Connection: close'
expect_status 404
exchange get /emptydir/ 'Connection: close'
[[ $(status_of) == 403 || $(status_of) == 404 ]] || fail "directory without index: $(status_of)"
exchange raw $'DELETE /plaintext HTTP/1.1\r\nConnection: close\r\n\r\n'
expect_status 405
expect_header "Allow: GET, HEAD"
exchange raw $'POST /plaintext HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello' /plaintext
expect_status 405
[[ $(body_of) == *"Hello, World!" ]] || fail "no answer after a request with a body"

echo "-- path traversal never shows the file outside the root"
for target in /../secret.txt /%2e%2e/secret.txt /%2E%2E%2fsecret.txt /sub/../../secret.txt \
  /sub/%2e%2e/%2e%2e/secret.txt /link-out /abs-out /dir-out/secret.txt '/..%2fsecret.txt' \
  /index.html%00.txt http://test/../secret.txt '/%2e%2e%5csecret.txt' //../secret.txt; do
  exchange get "$target" 'Connection: close'
  grep -q "$secret" "$work/out" && fail "$target showed the secret"
  [[ $(status_of) =~ ^(400|403|404)$ ]] || fail "$target: $(head -n 1 "$work/out")"
done

echo "-- 431 for big headers, 413 for big bodies, 400 for malformed requests"
big=$(printf 'a%.0s' $(seq 6000))
exchange get /plaintext "X-Big: $big"
expect_status 431
exchange get "/$big"
expect_status 431
exchange raw $'GET /plaintext HTTP/1.1\r\nContent-Length: 5000\r\n\r\n'"$big"
expect_status 413
huge=$big$big$big$big$big$big$big$big$big$big$big # 66000 bytes, more than one read takes
exchange raw $'GET /plaintext HTTP/1.1\r\nContent-Length: 66000\r\n\r\n'"$huge"
expect_status 413
chunk=$(printf 'b%.0s' $(seq 500))
chunk=$'1f4\r\n'$chunk$'\r\n' # a chunk of 500 (0x1f4) bytes
chunked=$'GET /plaintext HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n'
exchange raw "$chunked$chunk$chunk$chunk"$'0\r\n\r\n'
expect_status 413
exchange raw "$chunked$chunk"$'0\r\n\r\n' /plaintext
expect_status 200 # a chunked body within the cap is read past
exchange raw $'GARBAGE\r\n\r\n'
expect_status 400
exchange raw $'GET /plaintext HTTP/1.1\r\nNo colon here\r\n\r\n'
expect_status 400
exchange raw $'GET /plaintext HTTP/9.x\r\n\r\n'
expect_status 400
exchange raw $'GET /%zz HTTP/1.1\r\n\r\n'
expect_status 400

echo "-- idle connections and slow requests are closed after --idle-timeout-ms 400"
exchange true
((elapsed_ms >= 300 && elapsed_ms < 3000)) || fail "idle connection closed after $elapsed_ms ms"
exchange get /plaintext
expect_status 200
((elapsed_ms >= 300 && elapsed_ms < 3000)) || fail "idle keep-alive closed after $elapsed_ms ms"
connect 3
start=$(now_ms)
printf 'GET /plaintext HTTP/1.1\r\n' >&3 || fail "cannot send a request"
(
  trap '' PIPE
  for i in $(seq 40); do # a header line every 100 ms for 4 s, each within the idle timeout
    sleep 0.1
    printf 'X-Slow-%d: 1\r\n' "$i" >&3 2>/dev/null || exit 0
  done
) &
trickler=$!
pids+=("$trickler")
timeout 8 cat <&3 >"$work/out" || true
elapsed_ms=$(($(now_ms) - start))
exec 3>&-
wait "$trickler" || true
((elapsed_ms < 2500)) || fail "slowloris request kept for $elapsed_ms ms"
grep -q 'Hello' "$work/out" && fail "slowloris request was answered"

echo "-- a client that stops reading a large file is dropped after the write timeout"
connect 3
get /big.bin 'Connection: close' >&3 || fail "cannot send a request"
sleep 1.5
size=$( (timeout 10 cat <&3 || true) | wc -c)
exec 3>&-
((size > 0 && size < 128 * 1024 * 1024)) || fail "non-reading client got $size bytes"
echo "   got $size of 134217728 bytes"

echo "-- --threads 2: each worker serves, files and /plaintext"
start_server --threads 2 --idle-timeout-ms 5000
for _ in $(seq 12); do
  exchange get /file4k.txt 'Connection: close'
  expect_status 200
  body_of | cmp - "$work/root/file4k.txt" || fail "/file4k.txt body differs with --threads 2"
  exchange get /plaintext 'Connection: close'
  expect_status 200
done
threads=$(awk '/^Threads:/ {print $2}' "/proc/$(server_process "$server_pid")/status")
((threads >= 3)) || fail "--threads 2 runs $threads threads"

echo "-- idle clients do not hold up others"
start_server --idle-timeout-ms 5000
connect 4
connect 5
printf 'GET /plaintext HTTP/1.1\r\nX-Partial: ' >&5 || fail "cannot send a request"
exchange get /plaintext 'Connection: close'
expect_status 200
((elapsed_ms < 2500)) || fail "a request waited $elapsed_ms ms behind idle connections"
exec 4>&- 5>&-

echo "-- out of fds: accept backs off (logged once, no spinning) and recovers"
if grep -qaE '__(asan|ubsan|tsan)_' "$server"; then
  # Their runtimes need free fds themselves (UBSan's vptr check probes memory through a pipe).
  echo "   skipped: http_server is built with sanitizers"
else
  fd_limit=16 start_server --idle-timeout-ms 5000
  process=$(server_process "$server_pid") || fail "no server process under pid $server_pid"
  clients=()
  for _ in $(seq 20); do
    exec {fd}<>"/dev/tcp/127.0.0.1/$port"
    clients+=("$fd")
  done
  sleep 0.5
  ticks=$(cpu_ticks "$process")
  sleep 1
  ticks=$(($(cpu_ticks "$process") - ticks))
  ((ticks < 30)) || fail "out of fds, the server used $ticks clock ticks of CPU in 1 s"
  [[ $(grep -c 'Too many open files' "$server_log") -eq 1 ]] ||
    fail "EMFILE not logged exactly once: $(cat "$server_log")"
  for fd in "${clients[@]}"; do exec {fd}>&-; done
  exchange get /plaintext 'Connection: close'
  expect_status 200
fi

for pid in "${servers[@]}"; do
  kill -0 "$pid" 2>/dev/null || fail "http_server died: $(cat "$work"/server.*)"
done
echo "PASS"
