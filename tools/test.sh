#!/usr/bin/env bash
# test.sh [asm|boost|asan]... installs what coil needs (Debian), then builds and runs the test
# suite in each configuration: asm (build/), boost (build-boost/) and asan (build-asan/,
# ASan+UBSan). With no argument it runs all three. It stops at the first failure and exits
# non-zero; at the end it prints one line per configuration and "N passed, M failed".
set -euo pipefail

tools_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tools/lib/deps.sh
source "$tools_dir/lib/deps.sh"
# shellcheck source=tools/lib/build.sh
source "$tools_dir/lib/build.sh"

configs=("$@")
if ((${#configs[@]} == 0)); then configs=(asm boost asan); fi
for name in "${configs[@]}"; do
  case $name in
    asm | boost | asan) ;;
    *)
      echo "usage: $0 [asm|boost|asan]..." >&2
      exit 2
      ;;
  esac
done

coil_ensure_packages "${COIL_TEST_PACKAGES[@]}"

summary=()
total_passed=0
total_failed=0

# finish STATUS [WHY] prints the summary so far, and why the run stopped, and exits with STATUS.
finish() {
  echo
  echo "== coil test summary"
  printf '%s\n' "${summary[@]}"
  echo "$total_passed passed, $total_failed failed${2:+ ($2)}"
  exit "$1"
}

for name in "${configs[@]}"; do
  dir=$(coil_config_dir "$name")
  mapfile -t args < <(coil_config_args "$name")
  echo
  echo "================================================================================"
  echo "== coil: configuration '$name' in ${dir#"$COIL_ROOT"/}/"
  echo "==   ${args[*]}"
  echo "================================================================================"
  start=$SECONDS

  if ! coil_build "$name"; then
    summary+=("$(printf '%-6s %-12s build FAILED' "$name" "${dir#"$COIL_ROOT"/}/")")
    finish 1 "stopped: configuration '$name' did not build"
  fi

  test_env=()
  if [[ $name == asan ]]; then
    test_env=("ASAN_OPTIONS=detect_leaks=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
      "UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}")
  fi
  log=$dir/ctest.log
  if env "${test_env[@]}" ctest --test-dir "$dir" --output-on-failure --no-tests=error \
    -j "$COIL_JOBS" --timeout 300 2>&1 | tee "$log"; then
    rc=0
  else
    rc=$?
  fi

  # ctest ends with "NN% tests passed, F tests failed out of T".
  result=$(grep -Eo '[0-9]+ tests? failed out of [0-9]+' "$log" | tail -n 1 || true)
  if [[ $result =~ ^([0-9]+)\ tests?\ failed\ out\ of\ ([0-9]+)$ ]]; then
    failed=${BASH_REMATCH[1]}
    total=${BASH_REMATCH[2]}
  else
    failed=1
    total=0
    rc=1
    echo "coil: could not read ctest's result line in $log" >&2
  fi
  passed=$((total - failed))
  total_passed=$((total_passed + passed))
  total_failed=$((total_failed + failed))
  summary+=("$(printf '%-6s %-12s %4d passed, %d failed (%ds)' "$name" "${dir#"$COIL_ROOT"/}/" \
    "$passed" "$failed" $((SECONDS - start)))")
  if ((rc != 0 || failed != 0)); then
    finish 1 "stopped at configuration '$name'; its ctest output is in ${log#"$COIL_ROOT"/}"
  fi
done

finish 0
