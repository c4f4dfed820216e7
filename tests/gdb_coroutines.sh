#!/usr/bin/env bash
# tools/coil-gdb.py against coroutine_probe, attached live and then on a core dump of it:
# "info coroutines" must list every probe coroutine in its state, with the pipe readers' and the
# poller's fd and the sleepers' deadlines; "coroutine bt" of a pipe reader must reach
# wait_for_data (the probe's function that called read()) and end at coil's entry function.
#
# Usage: gdb_coroutines.sh PROBE COIL_GDB_PY BACKEND (asm or boost). Exits 77 (skipped) when
# this machine forbids ptrace attach.
#
# The core comes from gdb's generate-core-file, which stops copying a mapping at the first page
# it cannot read: a MADV_GUARD_INSTALL guard (Linux >= 6.13) inside a slab of stacks loses the
# stacks above it. So the probe runs with COIL_STACK_GUARD=mprotect (guards are then mappings of
# their own, which gcore skips); docs/debugging.md says so too.
set -euo pipefail
probe=$1
script=$2
backend=$3
case $backend in
  asm) entry=coil_context_entry ;;
  boost) entry=fcontext_entry ;;
  *) echo "FAIL: unknown backend '$backend'"; exit 1 ;;
esac

work=$(mktemp -d)
pid=
# stop_probe kills the probe, quietly (no "Killed" note from bash).
stop_probe() {
  if [[ -n $pid ]]; then
    {
      kill -KILL "$pid" || true
      wait "$pid" || true
    } 2>/dev/null
    pid=
  fi
}
cleanup() {
  stop_probe
  rm -rf "$work"
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*"
  exit 1
}

# coil_gdb ARGS... runs gdb in batch mode with coil-gdb.py loaded, bounded in time.
coil_gdb() {
  timeout 25 gdb -nx -batch -x "$script" "$@" 2>&1
}

# expect FILE PATTERN WHAT fails unless FILE has a line matching the extended regex PATTERN.
expect() {
  grep -Eq -- "$2" "$1" || fail "$3 (no line matching: $2)"
}

# The commands refuse a program without coil's debug info with a message, not a traceback.
coil_gdb -ex 'info coroutines' /bin/true >"$work/nodebug.txt" || true
expect "$work/nodebug.txt" 'coil-gdb: no debug info for coil::' \
  "no message for a program without coil"
if grep -q Traceback "$work/nodebug.txt"; then
  fail "a Python traceback for a program without coil"
fi

COIL_STACK_GUARD=mprotect MALLOC_ARENA_MAX=1 "$probe" 60 >"$work/probe.out" 2>"$work/probe.err" &
pid=$!
for _ in $(seq 200); do
  grep -q '^coroutine_probe ready' "$work/probe.out" && break
  kill -0 "$pid" 2>/dev/null || fail "the probe exited early: $(cat "$work/probe.err")"
  sleep 0.05
done
ready=$(grep '^coroutine_probe ready' "$work/probe.out") ||
  fail "the probe did not get ready in 10 s"
read_fd=$(sed -E 's/.* read_fd=([0-9]+).*/\1/' <<<"$ready")
poll_fd=$(sed -E 's/.* poll_fd=([0-9]+).*/\1/' <<<"$ready")

# check_listing FILE LIVE checks "info coroutines"; LIVE=1 for a live process, 0 for a core.
check_listing() {
  local file=$1 live=$2 row='^ +[0-9]+ +' schedulers lwp
  if grep -Eq 'Traceback|Python Exception' "$file"; then fail "a Python error: $(cat "$file")"; fi
  schedulers=$(grep -Ec '^Scheduler 0x[0-9a-f]+ on thread [0-9]+ \(LWP [0-9]+\), 4 cor' "$file")
  ((schedulers == 2)) || fail "not two schedulers of 4 coroutines, each on a thread"
  expect "$file" "${row}parked +\"pipe-reader\" +fd $read_fd read$" "pipe-reader's fd wait"
  expect "$file" "${row}parked +\"pipe-reader-2\" +fd $read_fd read$" \
    "pipe-reader-2's fd wait (in the wait tree)"
  expect "$file" "${row}ready +\"yielder\" +ready$" "yielder ready"
  expect "$file" "${row}ready +\"unstarted\" +ready, not started$" "unstarted not started"
  expect "$file" '^\* +[0-9]+ +running +"reporter" +running$' "reporter running"
  expect "$file" '^\* +[0-9]+ +running +"blocker" +running$' "blocker running"
  if ((live)); then
    # An hour's sleep began less than a minute ago.
    expect "$file" "${row}parked +\"sleeper\" +deadline in 3[56][0-9]{2}\\.[0-9]{3} s$" \
      "sleeper's deadline, about an hour from now"
    expect "$file" "${row}parked +\"poller\" +fd $poll_fd read, deadline in 3[56][0-9]{2}\\." \
      "poller's fd and deadline"
    while read -r lwp; do
      [[ -d /proc/$pid/task/$lwp ]] || fail "LWP $lwp is not a thread of the probe"
    done < <(sed -nE 's/^Scheduler .*\(LWP ([0-9]+)\).*/\1/p' "$file")
  else
    expect "$file" "${row}parked +\"sleeper\" +deadline at [0-9]+\\.[0-9]{9} s \\(CLOCK_MONO" \
      "sleeper's raw deadline"
    expect "$file" "${row}parked +\"poller\" +fd $poll_fd read, deadline at [0-9]+\\." \
      "poller's fd and raw deadline"
  fi
}

# id_of FILE NAME prints the id of coroutine NAME in listing FILE.
id_of() {
  sed -nE "s/^[ *] +([0-9]+) +[a-z]+ +\"$2\" .*/\1/p" "$1"
}

# backtrace_of FILE NAME prints the "coroutine bt" output for coroutine NAME in FILE.
backtrace_of() {
  awk -v head="\"$2\"" '$1 == "Coroutine" { on = ($3 == head); if (on) print; next }
    on && /^#/ { print; next } { on = 0 }' "$1"
}

# check_backtraces FILE checks the output of the bt commands that bt_commands asked for.
check_backtraces() {
  local file=$1
  if grep -Eq 'Traceback|Python Exception' "$file"; then fail "a Python error: $(cat "$file")"; fi
  local reader
  reader=$(backtrace_of "$file" pipe-reader)
  grep -q '^#0 .* coil::detail::context_switch ' <<<"$reader" ||
    fail "pipe-reader's frame #0 is not coil's context switch: $reader"
  if grep -q ' in ?? (' <<<"$reader"; then fail "pipe-reader's backtrace has unknown frames"; fi
  grep -q "in (anonymous namespace)::wait_for_data (fd=$read_fd)" <<<"$reader" ||
    fail "pipe-reader's backtrace lacks wait_for_data: $reader"
  grep -Eq '^#[0-9]+ +.*\bread \(' <<<"$reader" || fail "pipe-reader's backtrace lacks read()"
  grep -q 'coroutine_main' <<<"$reader" || fail "pipe-reader's backtrace lacks coroutine_main"
  grep -E '^#' <<<"$reader" | tail -n 1 | grep -q "$entry" ||
    fail "pipe-reader's backtrace does not end at $entry"
  backtrace_of "$file" pipe-reader-2 | grep -q 'wait_for_data' ||
    fail "pipe-reader-2's backtrace lacks wait_for_data"
  backtrace_of "$file" sleeper | grep -q 'coil::sleep_until' ||
    fail "sleeper's backtrace lacks coil::sleep_until"
  backtrace_of "$file" yielder | grep -q 'spin_in_place' ||
    fail "yielder's backtrace lacks spin_in_place"
  expect "$file" 'coroutine [0-9]+ is running on thread [0-9]+' "no refusal for a running coroutine"
  expect "$file" 'coroutine [0-9]+ has not started yet' "no refusal for an unstarted coroutine"
  # coroutine select: gdb's own bt walks the coroutine until deselected.
  sed -n '/^=select/,/^=deselect/p' "$file" | grep -q 'wait_for_data' ||
    fail "bt after coroutine select lacks wait_for_data"
  if sed -n '/^=deselect/,$p' "$file" | grep -q 'wait_for_data'; then
    fail "bt after coroutine deselect still shows the coroutine"
  fi
}

# bt_commands LISTING prints the gdb arguments that take the probe's backtraces.
bt_commands() {
  local name
  for name in pipe-reader pipe-reader-2 sleeper yielder blocker unstarted; do
    printf '%s\n' -ex "coroutine bt $(id_of "$1" "$name")"
  done
  printf '%s\n' -ex 'echo =select\n' -ex "coroutine select $(id_of "$1" pipe-reader)" -ex bt \
    -ex 'coroutine deselect' -ex 'echo =deselect\n' -ex bt
}

# Live.
coil_gdb -p "$pid" -ex 'info coroutines' >"$work/live.txt" || true
if grep -q 'ptrace: Operation not permitted' "$work/live.txt"; then
  echo "SKIP: ptrace attach is not permitted here (see /proc/sys/kernel/yama/ptrace_scope)"
  exit 77
fi
check_listing "$work/live.txt" 1
mapfile -t commands < <(bt_commands "$work/live.txt")
coil_gdb -p "$pid" "${commands[@]}" -ex "generate-core-file $work/core" >"$work/live_bt.txt" || true
check_backtraces "$work/live_bt.txt"
echo "PASS: live: listing and backtraces"
grep -E '^(Scheduler|  |\*)' "$work/live.txt"
backtrace_of "$work/live_bt.txt" pipe-reader

# Core.
[[ -s $work/core ]] || fail "gdb wrote no core file: $(tail -n 3 "$work/live_bt.txt")"
stop_probe
coil_gdb -ex 'info coroutines' "$probe" "$work/core" >"$work/core.txt" || true
check_listing "$work/core.txt" 0
mapfile -t commands < <(bt_commands "$work/core.txt")
coil_gdb "${commands[@]}" "$probe" "$work/core" >"$work/core_bt.txt" || true
check_backtraces "$work/core_bt.txt"
echo "PASS: core: listing and backtraces"
grep -E '^(Scheduler|  |\*)' "$work/core.txt"
