#!/usr/bin/env bash
# http_ratio.sh [BUILD_DIR] measures coil's HTTP server (examples/http_server.cpp, a coroutine per
# connection, one thread) against nginx with one worker, each pinned to CPU 0, under
# `wrk -t1 -c100 -d5s --latency` pinned to CPU 1, on two URLs:
#
#   /plaintext   "Hello, World!" (nginx: `location = /plaintext { return 200 ...; }`)
#   /file4k.html a 4096-byte file of a shared root directory (both send it with sendfile)
#
# 3 runs of each (interleaved), medians of requests/s, and the ratios with coil's targets:
#
#   coil / nginx  >= 1.1 on /plaintext       coil / nginx  >= 1.0 on the 4 KiB file
#
# One wrk thread is the bottleneck on /plaintext: it cannot send one request at a time faster
# than either server answers (both stay near 85 % of CPU 0). So /plaintext is also run pipelined
# (`/plaintext*16`: wrk sends 16 requests per write through a Lua script, as TechEmpower's
# plaintext test does), which makes the servers the bottleneck; that ratio is printed beside the
# targets, not in place of them.
#
# nginx gets a generated nginx.conf in a temporary directory: `daemon off; master_process off;`
# (one process, started as the current user, with its pid file, error log and temp paths in that
# directory), `access_log off`, sendfile on, keep-alive without a request cap
# (keepalive_requests 1000000; the default 1000 would make wrk reconnect) and an open-file cache,
# so that it, like coil's server, does not open the file for every request.
#
# BUILD_DIR is as for echo_ratio.sh. Environment: HTTP_RUNS (3), HTTP_SECONDS (5),
# HTTP_CONNECTIONS (100), HTTP_PIPELINE (16: the depth of the pipelined run; 0 skips it),
# HTTP_TIME_LIMIT (240: seconds the script may take; a run is repeated
# only while the runs still to do fit in it, at duration + 2 s each). BENCH_RESULTS=FILE also
# appends the medians and the verdicts to FILE as JSON lines (tools/bench/lib/bench_results.py).
# Exits 0 whether or not the targets are met, 1 if a run fails (a wrong body, errors reported by
# wrk, a server that dies), 2 if a prerequisite is missing.
set -euo pipefail

BENCH_NAME=http_ratio
# shellcheck source=SCRIPTDIR/lib/bench.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/bench.sh"

runs=${HTTP_RUNS:-3}
seconds=${HTTP_SECONDS:-5}
conns=${HTTP_CONNECTIONS:-100}
depth=${HTTP_PIPELINE:-16}
urls=(/plaintext /file4k.html)
if ((depth > 0)); then urls+=("/plaintext*$depth"); fi
limit=${HTTP_TIME_LIMIT:-240}  # seconds: runs are repeated only while all still fit in it

bench_setup "${1:-}"
bench_require wrk nginx timeout
bench_build_coil http_server
bench_check_quiet

# The shared root: a 4096-byte text file (both servers run as this user; nginx in single-process
# mode does not change user, but the tree is world-readable in case it would).
www=$BENCH_TMP/www
mkdir -p "$www" "$BENCH_TMP/nginx"
chmod 755 "$BENCH_TMP" "$www"
python3 -c '
import sys
line = "coil http benchmark: a 4 KiB static file served with sendfile.\n"
text = (line * (4096 // len(line) + 1))[:4095] + "\n"
open(sys.argv[1], "w").write(text)' "$www/file4k.html"
chmod 644 "$www/file4k.html"

nginx_port=$(bench_free_port)
temp_paths="client_body_temp_path $BENCH_TMP/nginx/client_body;"
for module in proxy fastcgi uwsgi scgi; do
  if ! nginx -V 2>&1 | grep -q -- "--without-http_${module}_module"; then
    temp_paths+=" ${module}_temp_path $BENCH_TMP/nginx/$module;"
  fi
done
cat >"$BENCH_TMP/nginx/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
pid $BENCH_TMP/nginx/nginx.pid;
error_log $BENCH_TMP/nginx/error.log warn;
events {
  worker_connections 4096;
}
http {
  access_log off;
  $temp_paths
  types { text/html html; text/plain txt; }
  default_type application/octet-stream;
  sendfile on;
  tcp_nopush off;
  keepalive_timeout 65;
  keepalive_requests 1000000;
  open_file_cache max=256 inactive=60s;
  server {
    listen 127.0.0.1:$nginx_port;
    root $www;
    location = /plaintext {
      default_type text/plain;
      return 200 "Hello, World!";
    }
  }
}
EOF

declare -A port pid
bench_spawn nginx taskset -c 0 nginx -p "$BENCH_TMP/nginx" -e "$BENCH_TMP/nginx/error.log" \
  -c "$BENCH_TMP/nginx/nginx.conf"
pid[nginx]=$BENCH_LAST_PID port[nginx]=$nginx_port
bench_wait_port "${pid[nginx]}" "$nginx_port"
bench_start_echo coil taskset -c 0 "$BENCH_BUILD/bin/http_server" --host 127.0.0.1 --port 0 \
  --root "$www"
pid[coil]=$BENCH_LAST_PID port[coil]=$BENCH_PORT

# Both must answer both URLs correctly before anything is timed.
for who in nginx coil; do
  python3 - "${port[$who]}" "$www/file4k.html" "$who" <<'PY' || exit 1
import sys
import urllib.request

port, path, who = sys.argv[1], sys.argv[2], sys.argv[3]
want = {"/plaintext": b"Hello, World!", "/file4k.html": open(path, "rb").read()}
for url, body in want.items():
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{url}", timeout=5) as r:
        got = r.read()
    if r.status != 200 or got != body:
        sys.exit(f"http_ratio: {who} answered {url} with {r.status} and {len(got)} bytes "
                 f"({got[:40]!r}...), not 200 and the {len(body)} expected")
PY
done

# wrk_args URL prints wrk's arguments for URL: PATH, or PATH*DEPTH for DEPTH pipelined requests
# per write (a Lua script that wrk sends as one request; it counts each response).
wrk_args() {
  local path=${1%\**} script
  if [[ $1 == *"*"* ]]; then
    script=$BENCH_TMP/pipeline${1##*\*}.lua
    cat >"$script" <<LUA
init = function(args)
  local r = {}
  for i = 1, ${1##*\*} do r[i] = wrk.format(nil, "$path") end
  req = table.concat(r)
end
request = function() return req end
LUA
    printf '%s\n' -s "$script"
  fi
  echo "http://127.0.0.1:${port[$who]}$path"
}

# wrk_once WHO URL runs wrk once against server WHO and prints the result line: requests/s,
# latency, errors, the server's CPU use and run-queue wait, wrk's CPU use (from bash's `times`)
# and the CPU time others took on CPUs 0 and 1 (/proc/stat busy time less the server's and wrk's).
wrk_once() {
  local who=$1 url=$2 out=$BENCH_TMP/wrk.out run0 wait0 run1 wait1 busy0 busy1 busy0_end busy1_end
  read -r run0 wait0 < <(bench_schedstat "${pid[$who]}")
  read -r busy0 busy1 < <(bench_cpu_busy)
  times >"$BENCH_TMP/times0"  # the CPU time of this shell's children: wrk's, once it ends
  local args
  mapfile -t args < <(wrk_args "$url")
  bench_spawn wrk timeout $((seconds + 30)) taskset -c 1 wrk -t1 -c"$conns" -d"${seconds}s" \
    --latency "${args[@]}"
  bench_wait "$BENCH_LAST_PID" || {
    cat "$out" "$BENCH_TMP/wrk.err" >&2
    bench_die "wrk against $who $url failed"
  }
  times >"$BENCH_TMP/times1"
  read -r busy0_end busy1_end < <(bench_cpu_busy)
  read -r run1 wait1 < <(bench_schedstat "${pid[$who]}")
  kill -0 "${pid[$who]}" 2>/dev/null || {
    cat "$BENCH_TMP/$who.err" >&2
    echo "http_ratio: $who died during the run" >&2
    exit 1
  }
  python3 - "$out" "$who" "$url" "$((run1 - run0))" "$((wait1 - wait0))" "$seconds" \
    "$BENCH_TMP/times0" "$BENCH_TMP/times1" "$((busy0_end - busy0))" "$((busy1_end - busy1))" <<'PY'
import os
import re
import sys

text = open(sys.argv[1]).read()
who, url, run_ns, wait_ns, seconds, times0, times1, busy0, busy1 = sys.argv[2:]
tick = os.sysconf("SC_CLK_TCK")


def children_cpu(path):
    """User + system seconds of the shell's finished children, from bash's `times`."""
    line = open(path).read().splitlines()[1]
    return sum(int(m) * 60 + float(s) for m, s in re.findall(r"(\d+)m([\d.]+)s", line))


unit = {"us": 1.0, "ms": 1e3, "s": 1e6}
rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
lat = dict(re.findall(r"^\s+(50|90|99)%\s+([\d.]+\w+)", text, re.M))
def us(v):
    m = re.match(r"([\d.]+)(\w+)", v)
    return float(m.group(1)) * unit[m.group(2)]
errors = 0
m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
if m:
    errors += int(m.group(1))
m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
if m:
    errors += sum(int(x) for x in m.groups())
if not rps:
    sys.exit("http_ratio: no Requests/sec in wrk's output:\n" + text)
secs = float(seconds)
server_cpu = int(run_ns) / 1e9
wrk_cpu = children_cpu(times1) - children_cpu(times0)
# CPU time on the two pinned CPUs that neither the server nor wrk used: other processes'.
others = max(int(busy0) / tick - server_cpu, int(busy1) / tick - wrk_cpu, 0)
print(f"{who} {url} rps={float(rps.group(1)):.0f} p50_us={us(lat['50']):.0f} "
      f"p90_us={us(lat['90']):.0f} p99_us={us(lat['99']):.0f} errors={errors} "
      f"server_cpu_pct={100 * server_cpu / secs:.1f} "
      f"server_wait_pct={100 * int(wait_ns) / 1e9 / secs:.1f} "
      f"wrk_cpu_pct={100 * wrk_cpu / secs:.1f} others_pct={100 * others / secs:.1f}")
PY
}

# A run during which others used 5% of CPU 0 or 1 or more is run again, at most twice, and only
# while the runs still to do fit in the time limit.
echo "http_ratio: nginx and coil on CPU 0; wrk -t1 -c$conns -d${seconds}s on CPU 1; $runs runs"
results=$BENCH_TMP/results
per_run=$((${seconds%.*} + 2))
left=$((runs * 2 * ${#urls[@]}))
for ((run = 1; run <= runs; run++)); do
  for url in "${urls[@]}"; do
    for who in nginx coil; do
      for ((try = 0; try <= 2; try++)); do
        wrk_once "$who" "$url" >"$BENCH_TMP/line"
        line=$(<"$BENCH_TMP/line")
        echo "  run $run: $line"
        if [[ $line != *" errors=0 "* ]]; then
          cat "$BENCH_TMP/wrk.out" >&2
          echo "http_ratio: wrk saw errors from $who on $url" >&2
          exit 1
        fi
        bench_run_is_clean "$line" || ((SECONDS + left * per_run > limit)) || {
          echo "  (another process shared a CPU: run again)"
          sleep 1
          continue
        }
        break
      done
      echo "$line" >>"$results"
      left=$((left - 1))
    done
  done
done

bench_python - "$results" <<'PY'
import statistics
import sys

import bench_results

rows = {}
for line in open(sys.argv[1]):
    who, url, *fields = line.split()
    rows.setdefault((who, url), []).append({k: float(v) for k, v in
                                            (f.split("=", 1) for f in fields)})

def med(who, url, key):
    return statistics.median(r[key] for r in rows[(who, url)])

print("\nmedians (server on CPU 0, wrk on CPU 1):")
print(f"  {'url':<13} {'server':<6} {'requests/s':>10} {'p50 us':>8} {'p99 us':>8} "
      f"{'srv CPU%':>8} {'srv us/req':>10} {'wrk CPU%':>8} {'others%':>7}")
warnings = []
urls = list(dict.fromkeys(url for _, url in rows))
for url in urls:
    for who in ("nginx", "coil"):
        rps, cpu = med(who, url, "rps"), med(who, url, "server_cpu_pct")
        others = max(max(r["server_wait_pct"], r["others_pct"]) for r in rows[(who, url)])
        print(f"  {url:<13} {who:<6} {rps:>10.0f} {med(who, url, 'p50_us'):>8.0f} "
              f"{med(who, url, 'p99_us'):>8.0f} {cpu:>8.1f} {1e4 * cpu / rps:>10.2f} "
              f"{med(who, url, 'wrk_cpu_pct'):>8.1f} {others:>7.1f}")
        bench_results.emit("http", server=who, url=url, runs=len(rows[(who, url)]), rps=rps,
                           p50_us=med(who, url, "p50_us"), p90_us=med(who, url, "p90_us"),
                           p99_us=med(who, url, "p99_us"), server_cpu_pct=cpu,
                           us_per_req=round(1e4 * cpu / rps, 3),
                           wrk_cpu_pct=med(who, url, "wrk_cpu_pct"), others_pct=others)
        if others > 5:
            warnings.append(f"{who} {url}: other processes took up to {others:.0f}% of CPU 0 "
                            "or 1 during a run: rerun on a quiet machine")
        elif cpu < 90:
            warnings.append(f"{who} {url}: the server used only {cpu:.0f}% of CPU 0: wrk, not "
                            "the server, set this rate; compare srv us/req")

print("\nratios of the medians (requests/s):")
met = 0
targets = (("/plaintext", 1.1), ("/file4k.html", 1.0))
for url, target in targets:
    coil, nginx = med("coil", url, "rps"), med("nginx", url, "rps")
    ratio = coil / nginx
    cpu_ratio = (med("nginx", url, "server_cpu_pct") / nginx) / (med("coil", url, "server_cpu_pct") / coil)
    met += ratio >= target
    bench_results.emit_target("http", f"coil/nginx{url}", f"coil / nginx requests/s on {url}",
                              ratio, ">=", target)
    print(f"  coil / nginx on {url:<13} {coil:.0f} / {nginx:.0f} = {ratio:.2f}   "
          f"(CPU per request, nginx / coil: {cpu_ratio:.2f})   target >= {target}: "
          f"{'PASS' if ratio >= target else 'MISS'}")
for url in urls:
    if "*" not in url:
        continue
    coil, nginx = med("coil", url, "rps"), med("nginx", url, "rps")
    print(f"  coil / nginx on {url:<13} {coil:.0f} / {nginx:.0f} = {coil / nginx:.2f}   "
          f"(pipelined, {url.split('*')[1]} requests per write: the servers, not wrk, set the rate)")
print(f"\n  targets met: {met}/{len(targets)}")
for w in warnings:
    print(f"  warning: {w}")
PY
