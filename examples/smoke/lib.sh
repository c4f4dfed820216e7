# shellcheck shell=bash
# lib.sh: the frame the smoke tests of examples/ share. A test begins with
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#   smoke_begin "$0" "$@"
# and then uses bin, work, pids and fail. Not a program of its own.

# smoke_begin SCRIPT BIN_DIR re-runs SCRIPT once under `timeout`, so that the whole test is
# bounded in time, then sets bin (BIN_DIR), work (a fresh temporary directory) and pids (the
# processes the test starts). At exit every pid in pids is resumed if stopped, killed and
# reaped, and work is removed.
smoke_begin() {
  local script=$1
  shift
  if [[ -z ${SMOKE_TIMED:-} ]]; then
    SMOKE_TIMED=1 exec timeout -k 5 100 bash "$script" "$@"
  fi
  bin=${1:?usage: $(basename "$script") BIN_DIR}
  work=$(mktemp -d)
  pids=()
  trap smoke_cleanup EXIT
}

smoke_cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill -CONT "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}

# fail MESSAGE... says what failed, shows every non-empty log in work/ and exits 1.
fail() {
  echo "FAIL: $*" >&2
  local f
  for f in "$work"/*.out "$work"/*.err; do [[ -s $f ]] && { echo "--- $f" && cat "$f"; } >&2; done
  exit 1
}

# sanitized BINARY is true when BINARY was built with a sanitizer. Sanitizer runtimes need free
# fds themselves (UBSan's vptr check probes memory through a pipe and reports a false "invalid
# vptr" when it cannot get one), so the parts of a test that exhaust fds are skipped there.
sanitized() { grep -qaE '__(asan|ubsan|tsan)_' "$1"; }
