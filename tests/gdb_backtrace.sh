#!/usr/bin/env bash
# A backtrace taken inside a coroutine must reach the coroutine's entry and,
# with the asm backend (backend=asm), end cleanly at coil's trampoline: no
# "corrupt stack", no frames of garbage beyond it. Boost's fcontext
# trampoline carries no terminating CFI, so with backend=boost only the
# frames down to coroutine_main are required.
set -euo pipefail
probe=$1
backend=${2:-asm}
out=$(gdb -nx -batch -ex run -ex bt "$probe" 2>&1)
echo "$out" | grep -E '^#' || true
frames=$(echo "$out" | grep -E '^#[0-9]+' )
last=$(echo "$frames" | tail -n 1)
if ! echo "$frames" | grep -q 'innermost'; then
  echo "FAIL: the trap in innermost() is not in the backtrace"; exit 1
fi
if ! echo "$frames" | grep -q 'coroutine_main'; then
  echo "FAIL: the backtrace does not reach coroutine_main"; exit 1
fi
if [ "$backend" = boost ]; then
  echo "PASS: backtrace reaches coroutine_main (boost backend)"
  exit 0
fi
if ! echo "$last" | grep -q 'coil_context_entry'; then
  echo "FAIL: the backtrace does not end at the coroutine entry trampoline: $last"; exit 1
fi
if echo "$out" | grep -qi 'corrupt\|previous frame identical'; then
  echo "FAIL: gdb reports a corrupt stack"; exit 1
fi
echo "PASS: backtrace ends at: $last"
