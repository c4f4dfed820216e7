#!/usr/bin/env bash
# preload_sync_test.sh PROGRAM LIBRARY [--same-output]: the differential test of the pthread
# synchronisation objects emulated for green threads. PROGRAM, a plain C test of tests/preload/
# (prodcons, sync_zoo), runs four times, each under `timeout 60`:
#  - natively;
#  - with LIBRARY (libcoil_preload.so) preloaded, so that its threads are green, and
#    EXPECT_GREEN=1 so that it may check they are;
#  - preloaded with COIL_NATIVE_THREADS=1, where every pthread call is passed through to glibc;
#  - preloaded with COIL_THREADS=3: green threads spread over three worker threads, so that the
#    objects are shared between OS threads.
# Every run must exit with status 0; with --same-output, every run must print what the native
# run printed.
set -uo pipefail

program=$1
library=$2
same_output=${3:-}
name=$(basename "$program")
failures=0

fail() {
  echo "FAIL: $*"
  failures=$((failures + 1))
}

# check_run LABEL OUTPUT STATUS: the run must have exited 0 (and printed what the native run did).
check_run() {
  local label=$1 out=$2 status=$3
  echo "--- $name, $label (status $status):"
  echo "$out"
  ((status == 0)) || fail "$name $label exited with status $status"
  if [[ $same_output == --same-output && $out != "$native" ]]; then
    fail "$name $label printed other lines than natively"
    diff <(echo "$native") <(echo "$out")
  fi
}

native=$(timeout 60 "$program" 2>&1)
check_run natively "$native" $?
green=$(EXPECT_GREEN=1 LD_PRELOAD=$library timeout 60 "$program" 2>&1)
check_run "with green threads" "$green" $?
passthrough=$(COIL_NATIVE_THREADS=1 LD_PRELOAD=$library timeout 60 "$program" 2>&1)
check_run "with COIL_NATIVE_THREADS=1" "$passthrough" $?
workers=$(COIL_THREADS=3 EXPECT_GREEN=1 LD_PRELOAD=$library timeout 60 "$program" 2>&1)
check_run "with green threads on 3 workers (COIL_THREADS=3)" "$workers" $?

if ((failures > 0)); then
  echo "$failures check(s) failed"
  exit 1
fi
echo "$name: the same natively, with green threads on 1 and 3 workers, and passed through"
