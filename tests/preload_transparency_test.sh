#!/usr/bin/env bash
# preload_transparency_test.sh COIL_RUN: programs with their own threads and event loops keep
# working under coil-run, unchanged. Each scenario runs natively and under COIL_RUN, and the
# results must be the same:
#  - python3 -m http.server (ThreadingHTTPServer: a thread per request) serving 40 concurrent
#    downloads of several files, fetched by curl natively; under coil-run also with --threads 3,
#    its threads (and the GIL's mutex and condition variable) spread over 3 workers;
#  - curl under coil-run downloading those files from the native python server;
#  - nginx (one process, no daemon, its own epoll) serving a file to curl.
# A program that is not installed is reported as skipped; python3 and curl are required.
set -uo pipefail

coil_run=$1
failures=0
pids=()
tmp=$(mktemp -d /tmp/coil-transparency.XXXXXX)
cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; done
  rm -rf "$tmp"
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*"
  failures=$((failures + 1))
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_port() {
  local port=$1
  for _ in $(seq 1 200); do
    curl -s -o /dev/null "http://127.0.0.1:$port/" && return 0
    sleep 0.05
  done
  return 1
}

mkdir -p "$tmp/www"
for i in 1 2 3 4; do head -c $((i * 70000)) /dev/urandom >"$tmp/www/file$i.bin"; done
echo "hello from coil" >"$tmp/www/index.html"
(cd "$tmp/www" && sha256sum ./* | sort) >"$tmp/want.sums"

# fetch_all PORT DIR [LAUNCHER...]: 40 downloads, 8 at a time, into DIR; prints their checksums.
fetch_all() {
  local port=$1 dir=$2
  shift 2
  mkdir -p "$dir"
  for i in $(seq 1 40); do echo "file$((i % 4 + 1)).bin $i"; done |
    xargs -P 8 -n 2 sh -c "$* curl -sf -o \"$dir/\$0.\$1\" http://127.0.0.1:$port/\$0" || return 1
  for i in 1 2 3 4; do
    [[ $(cat "$dir"/file$i.bin.* | sha256sum) == $(for _ in $(seq 1 10); do cat "$tmp/www/file$i.bin"; done | sha256sum) ]] || return 1
  done
}

# python_server LAUNCHER...: starts python3's threading HTTP server over $tmp/www; sets port.
python_server() {
  port=$(free_port)
  (cd "$tmp/www" && exec "$@" python3 -m http.server --bind 127.0.0.1 "$port") >"$tmp/py.log" 2>&1 &
  pids+=($!)
  wait_port "$port"
}

check_python_server() {
  local mode
  for mode in native coil coil-3-workers; do
    case $mode in
      native) python_server env ;;
      coil) python_server "$coil_run" -- ;;
      *) python_server "$coil_run" --threads 3 -- ;;  # its handler threads over 3 workers
    esac ||
      { fail "python3 http.server ($mode) did not start: $(cat "$tmp/py.log")"; continue; }
    if fetch_all "$port" "$tmp/py-$mode"; then
      echo "ok: python3 -m http.server ($mode): 40 concurrent downloads intact"
    else
      fail "python3 -m http.server ($mode): downloads differ"
    fi
    kill "${pids[-1]}"
  done
}

check_curl() {
  python_server env || { fail "python3 http.server did not start"; return; }
  if fetch_all "$port" "$tmp/curl-coil" "$coil_run" --; then
    echo "ok: curl under coil-run: 40 downloads intact"
  else
    fail "curl under coil-run: downloads differ"
  fi
  kill "${pids[-1]}"
}

check_nginx() {
  local nginx mode
  nginx=$(command -v nginx || echo /usr/sbin/nginx)
  [[ -x $nginx ]] || { echo "skipped: nginx is not installed"; return; }
  for mode in native coil; do
    port=$(free_port)
    mkdir -p "$tmp/nginx-$mode"
    cat >"$tmp/nginx-$mode/nginx.conf" <<CONF
daemon off;
master_process off;
worker_processes 1;
error_log $tmp/nginx-$mode/error.log;
pid $tmp/nginx-$mode/nginx.pid;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path $tmp/nginx-$mode;
  proxy_temp_path $tmp/nginx-$mode;
  fastcgi_temp_path $tmp/nginx-$mode;
  uwsgi_temp_path $tmp/nginx-$mode;
  scgi_temp_path $tmp/nginx-$mode;
  server { listen 127.0.0.1:$port; root $tmp/www; }
}
CONF
    if [[ $mode == native ]]; then
      "$nginx" -c "$tmp/nginx-$mode/nginx.conf" -e "$tmp/nginx-$mode/error.log" &
    else
      "$coil_run" -- "$nginx" -c "$tmp/nginx-$mode/nginx.conf" -e "$tmp/nginx-$mode/error.log" &
    fi
    pids+=($!)
    if wait_port "$port" && fetch_all "$port" "$tmp/ng-$mode"; then
      echo "ok: nginx ($mode): 40 concurrent downloads intact"
    else
      fail "nginx ($mode): $(cat "$tmp/nginx-$mode/error.log" 2>/dev/null)"
    fi
    kill "${pids[-1]}"
  done
}

check_python_server
check_curl
check_nginx
if ((failures > 0)); then
  echo "$failures check(s) failed"
  exit 1
fi
echo "all checks passed"
