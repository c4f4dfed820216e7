#!/usr/bin/env bash
# preload_startup_test.sh PROBE LIBRARY: runs the plain C program PROBE (tests/preload/
# startup_probe.c) natively and with LIBRARY (libcoil_preload.so) preloaded, and checks that the
# preloaded run starts main() as a coroutine yet behaves the same: output, exit status, atexit
# handlers, argv and environment, I/O in constructors before main(), timeouts and sleeps. Also
# checks that a bad COIL_* value stops the program before main() with status 2 and the reason.
set -uo pipefail

probe=$1
library=$2
failures=0

fail() {
  echo "FAIL: $*"
  failures=$((failures + 1))
}

# run_both NAME ARGS... runs the probe both ways and compares stdout and exit status.
run_both() {
  local name=$1 native coil native_status coil_status
  shift
  native=$(STARTUP_PROBE=x timeout 20 "$probe" "$@" 2>&1)
  native_status=$?
  coil=$(STARTUP_PROBE=x LD_PRELOAD=$library timeout 20 "$probe" "$@" 2>&1)
  coil_status=$?
  if [[ $native != "$coil" || $native_status != "$coil_status" ]]; then
    fail "$name: native [$native] status $native_status; preloaded [$coil] status $coil_status"
  else
    echo "ok: $name: [$coil] status $coil_status"
  fi
}

# expect NAME WANT_STATUS WANT_TEXT COMMAND... checks one preloaded run's status and output.
expect() {
  local name=$1 want_status=$2 want_text=$3 out status
  shift 3
  out=$("$@" 2>&1)
  status=$?
  if [[ $status != "$want_status" || $out != *"$want_text"* ]]; then
    fail "$name: status $status (want $want_status), output [$out] (want it to contain [$want_text])"
  else
    echo "ok: $name"
  fi
}

expect "native main is on the process stack" 0 "main on the process stack: yes" "$probe" stack
expect "preloaded main is a coroutine (off the process stack)" 0 \
  "main on the process stack: no" env LD_PRELOAD="$library" "$probe" stack
expect "COIL_VERBOSE=1 says main is a coroutine" 0 "coil: main() runs as a coroutine" \
  env LD_PRELOAD="$library" COIL_VERBOSE=1 "$probe" stack

run_both "return 7 from main" return 7
run_both "exit(3) with an atexit handler" exit 3
run_both "argv and environment" args one "two words" ""
run_both "I/O in a constructor before main" early
run_both "SO_RCVTIMEO read" timeout
run_both "usleep and nanosleep" sleep

expect "bad COIL_STACK_SIZE stops before main" 2 "COIL_STACK_SIZE" \
  env LD_PRELOAD="$library" COIL_STACK_SIZE=junk "$probe" return 0
expect "bad COIL_THREADS stops before main" 2 "COIL_THREADS" \
  env LD_PRELOAD="$library" COIL_THREADS=zero "$probe" return 0

if ((failures > 0)); then
  echo "$failures check(s) failed"
  exit 1
fi
echo "all checks passed"
