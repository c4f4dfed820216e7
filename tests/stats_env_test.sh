#!/usr/bin/env bash
# COIL_STATS: a program linked with coil prints its runtime statistics at exit with COIL_STATS=1,
# nothing with 0 or unset, and refuses a malformed value with a clear message; coil-run --stats
# does the same for an unmodified program.
#   stats_env_test.sh COIL_DEMO [COIL_RUN]
set -euo pipefail
demo=$1
coil_run=${2:-}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
fail() {
  echo "FAIL: $*"
  exit 1
}
run_demo() { "$demo" --coroutines 200 --rounds 5 >/dev/null 2>"$out/err"; }

COIL_STATS=1 run_demo || fail "COIL_STATS=1: the program failed: $(cat "$out/err")"
grep -q "^coil: stats of process [0-9]*: 1 scheduler(s), 0 alive" "$out/err" ||
  fail "COIL_STATS=1 printed no stats header: $(cat "$out/err")"
for counter in "coroutines spawned *201 " "context switches" "epoll waits" "syscalls avoided" \
  "stack pool hits" "stack pool misses"; do
  grep -q "$counter" "$out/err" || fail "COIL_STATS=1: no '$counter' line: $(cat "$out/err")"
done
echo "ok: COIL_STATS=1 prints the counters"

for off in 0 no OFF ""; do
  COIL_STATS=$off run_demo || fail "COIL_STATS='$off': the program failed"
  if grep -q "coil: stats" "$out/err"; then fail "COIL_STATS='$off' printed stats"; fi
done
env -u COIL_STATS "$demo" --coroutines 20 --rounds 1 >/dev/null 2>"$out/err"
if grep -q "coil: stats" "$out/err"; then fail "unset COIL_STATS printed stats"; fi
echo "ok: COIL_STATS=0, no, OFF, empty or unset print nothing"

if COIL_STATS=maybe run_demo; then fail "COIL_STATS=maybe was accepted"; fi
grep -q "COIL_STATS='maybe' is not a boolean; use 1 or 0" "$out/err" ||
  fail "COIL_STATS=maybe: no clear message: $(cat "$out/err")"
echo "ok: COIL_STATS=maybe is refused, naming the variable"

if [[ -n $coil_run ]]; then
  "$coil_run" --stats -- false 2>"$out/err" && status=0 || status=$?
  [[ $status == 1 ]] || fail "coil-run --stats changed the exit status to $status"
  grep -q "^coil: stats of process [0-9]*: 1 scheduler(s), 1 alive" "$out/err" ||
    fail "coil-run --stats printed no stats: $(cat "$out/err")"
  # GNU cat closes stderr in an atexit handler (close_stdout) that runs before coil's: the stats
  # still come, through coil's own copy of fd 2.
  "$coil_run" --stats -- cat /dev/null 2>"$out/err" || fail "cat /dev/null failed under coil-run"
  grep -q "^coil: stats of process" "$out/err" ||
    fail "no stats from a program that closes stderr at exit: $(cat "$out/err")"
  if "$coil_run" --stats=maybe -- /bin/true 2>"$out/err"; then fail "--stats=maybe accepted"; fi
  grep -q -- "--stats=maybe: not a boolean" "$out/err" ||
    fail "coil-run --stats=maybe: no clear message: $(cat "$out/err")"
  echo "ok: coil-run --stats prints them for an unmodified program, refuses --stats=maybe"
fi
echo PASS
