#!/usr/bin/env bash
# check_tsan.sh builds coil with ThreadSanitizer in build-tsan/ and runs its test suite there.
# When TSan cannot place its shadow memory because of the kernel's address-space randomisation
# ("unexpected memory mapping"), it reruns the suite with randomisation off (setarch -R).
# Exits non-zero when the build or any test fails.
set -euo pipefail

tools_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tools/lib/deps.sh
source "$tools_dir/lib/deps.sh"
# shellcheck source=tools/lib/build.sh
source "$tools_dir/lib/build.sh"

coil_ensure_packages "${COIL_TEST_PACKAGES[@]}"
dir=$(coil_config_dir tsan)
echo "== coil: ThreadSanitizer build in ${dir#"$COIL_ROOT"/}/"
coil_build tsan || {
  echo "check_tsan: FAILED: the TSan build did not build" >&2
  exit 1
}

export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1${TSAN_OPTIONS:+:$TSAN_OPTIONS}"
log=$dir/ctest.log

# run_ctest [LAUNCHER...] runs the suite, under LAUNCHER if given, with its output in $log.
run_ctest() {
  "$@" ctest --test-dir "$dir" --output-on-failure --no-tests=error -j "$COIL_JOBS" \
    --timeout 600 2>&1 | tee "$log"
}

if run_ctest; then
  echo "check_tsan: ok"
  exit 0
fi
if grep -q 'unexpected memory mapping' "$log"; then
  echo "check_tsan: TSan could not map its shadow memory with ASLR on; rerunning with" \
    "setarch $(uname -m) -R (ASLR off)"
  if ! setarch "$(uname -m)" -R true 2>/dev/null; then
    echo "check_tsan: FAILED: setarch -R is not permitted here (a container's seccomp policy?);" \
      "lower vm.mmap_rnd_bits to 28 on the host or run where personality(2) is allowed" >&2
    exit 1
  fi
  if run_ctest setarch "$(uname -m)" -R; then
    echo "check_tsan: ok (with ASLR off)"
    exit 0
  fi
fi
echo "check_tsan: FAILED: see $log" >&2
exit 1
