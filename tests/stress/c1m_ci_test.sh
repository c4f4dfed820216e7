#!/usr/bin/env bash
# The million-connection setup at CI scale: c1m_server in 2 processes on 10 ports, driven by
# coil-stress in 2 processes with 30,000 connections (3,000 in a sanitized build) spread over 30
# source addresses, a 64-byte heartbeat a second on each, every echo verified, for 15 s (5 s
# sanitized). Passes if coil-stress exits 0 with every connection established, no error, no
# lost or corrupt echo, and the servers' summaries add up to the connections made.
#
#   c1m_ci_test.sh COIL_STRESS C1M_SERVER SANITIZE
set -euo pipefail

if [[ -z ${C1M_CI_TIMED:-} ]]; then
  C1M_CI_TIMED=1 exec timeout -k 5 110 bash "$0" "$@"
fi
stress=${1:?usage: c1m_ci_test.sh COIL_STRESS C1M_SERVER SANITIZE}
c1m=${2:?}
sanitize=${3:-}
n=30000
seconds=15
if [[ -n $sanitize ]]; then
  n=3000
  seconds=5
fi
work=$(mktemp -d)
server=
cleanup() {
  [[ -z $server ]] || kill "$server" 2>/dev/null || true
  [[ -z $server ]] || wait "$server" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*" >&2
  for f in "$work"/*; do [[ -s $f ]] && { echo "--- $f" && tail -n 30 "$f"; } >&2; done
  exit 1
}

started=
for _ in 1 2 3 4 5 6; do
  base=$((20000 + RANDOM % 12000))
  "$c1m" --ports "$base-$((base + 9))" --procs 2 --max-seconds 100 >"$work/c1m.out" \
    2>"$work/c1m.err" &
  server=$!
  for _ in $(seq 100); do
    (($(grep -c '^listening on ports' "$work/c1m.out") == 2)) && started=yes && break
    kill -0 "$server" 2>/dev/null || break
    sleep 0.1
  done
  [[ -n $started ]] && break
  grep -q 'Address already in use' "$work/c1m.err" || fail "c1m_server did not start"
  wait "$server" || true
  server=
done
[[ -n $started ]] || fail "no free port range in 6 tries"

rc=0
"$stress" 127.0.0.1 --ports "$base-$((base + 9))" --connections "$n" --procs 2 \
  --src 127.0.0.1-127.0.0.30 --interval 1 --duration "$seconds" --verify \
  --json "$work/run.json" >"$work/stress.out" 2>"$work/stress.err" || rc=$?
((rc == 0)) || fail "coil-stress exited $rc"
python3 - "$work/run.json" "$n" <<'PY' || fail "the JSON report is not a clean run"
import json, sys
r, n = json.load(open(sys.argv[1])), int(sys.argv[2])
assert r["ok"] is True, "ok"
assert r["connections"]["established"] == n, r["connections"]
assert r["errors_total"] == 0, r["errors_total"]
m = r["messages"]
assert m["lost"] == 0 and m.get("corrupt", 0) == 0, m
assert m["echoed"] == m["verified"] and m["echoed"] >= n, m
PY
kill -TERM "$server"
wait "$server" || fail "c1m_server exited non-zero after SIGTERM"
server=
accepted=$(sed -n 's/^summary: accepted \([0-9]*\) connections.*/\1/p' "$work/c1m.out" |
  awk '{ s += $1 } END { print s + 0 }')
((accepted == n)) || fail "the servers accepted $accepted connections, not $n"
grep -E '^connections:|^messages:|^client memory:|^kernel TCP' "$work/stress.out"
echo "ok: $n verified connections over 2+2 processes for $seconds s, no errors"
