#!/usr/bin/env bash
# check_valgrind.sh [GTEST_ARG...] builds the asm configuration in build/ and runs its GoogleTest
# binaries (build/bin/coil_tests, build/bin/*_test*) under valgrind's memcheck with full leak
# checking. Left out: death tests (they fork), million-coroutine tests (too slow), stack-overflow
# tests (valgrind does not let a program handle the fault), and the hook test that passes a bad
# pointer to read() on purpose to compare EFAULTs. The MXCSR/x87 control-word test
# skips itself under valgrind, which keeps only the rounding mode. Extra arguments go to every test
# binary. Exits non-zero when any binary reports an error, a leak or a failed test.
set -euo pipefail

tools_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tools/lib/deps.sh
source "$tools_dir/lib/deps.sh"
# shellcheck source=tools/lib/build.sh
source "$tools_dir/lib/build.sh"

coil_ensure_packages "${COIL_TEST_PACKAGES[@]}"
dir=$(coil_config_dir asm)
echo "== coil: valgrind over the test binaries of ${dir#"$COIL_ROOT"/}/"
coil_build asm || {
  echo "check_valgrind: FAILED: the asm configuration did not build" >&2
  exit 1
}

# The GoogleTest binaries among the candidates: those with gtest's flags compiled in.
shopt -s nullglob
binaries=()
for bin in "$dir/bin/coil_tests" "$dir"/bin/*_test*; do
  [[ -f $bin && -x $bin ]] || continue
  [[ " ${binaries[*]} " == *" $bin "* ]] && continue
  grep -qa -- '--gtest_filter' "$bin" && binaries+=("$bin")
done
if ((${#binaries[@]} == 0)); then
  echo "check_valgrind: FAILED: no GoogleTest binaries in $dir/bin" >&2
  exit 1
fi

failed=()
for bin in "${binaries[@]}"; do
  echo
  echo "== valgrind ${bin#"$COIL_ROOT"/}"
  if ! valgrind --error-exitcode=1 --leak-check=full --show-leak-kinds=definite,possible \
    --num-callers=30 -- "$bin" '--gtest_filter=-*Death*:*Million*:*Overflow*:HookDiffIo.EbadfAndEnotsockOnClosedAndWrongFds' "$@"; then
    failed+=("${bin#"$COIL_ROOT"/}")
  fi
done

echo
if ((${#failed[@]} > 0)); then
  echo "check_valgrind: FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "check_valgrind: ok (${#binaries[@]} binaries)"
