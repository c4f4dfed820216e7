#!/usr/bin/env bash
# coil-run's command line: each case checks the exit status and the message. Bad flags and bad
# COIL_* values are refused with status 2 before anything runs; a program that cannot be run gives
# 127 or 126; otherwise the program gets LD_PRELOAD with the library appended and the COIL_*
# settings in canonical form. Programs run with an empty library preloaded (COIL_PRELOAD_LIBRARY),
# so that these checks do not depend on libcoil_preload.so itself.
#
#   coil_run_cli_test.sh COIL_RUN EMPTY_PRELOAD_SO COIL_PRELOAD_SO
set -u

coil_run=$1
empty=$2
real=$3
failures=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
unset COIL_THREADS COIL_STACK_SIZE COIL_NATIVE_THREADS COIL_VERBOSE COIL_PRELOAD_LIBRARY LD_PRELOAD
# In an ASan build coil-run itself is started with LD_PRELOAD in some cases; the empty library
# intercepts nothing, so ASan's "runtime does not come first" check is beside the point.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"

fail() {
  echo "FAIL: $*"
  failures=$((failures + 1))
}

# expect NAME STATUS TEXT COMMAND...: COMMAND exits with STATUS and its output (stdout and stderr)
# holds TEXT. The output is left in $tmp/out.
expect() {
  local name=$1 want=$2 text=$3 status
  shift 3
  "$@" >"$tmp/out" 2>&1
  status=$?
  if [[ $status != "$want" ]]; then
    fail "$name: status $status, want $want; output:"
    sed 's/^/  | /' "$tmp/out"
  elif [[ -n $text ]] && ! grep -qF -- "$text" "$tmp/out"; then
    fail "$name: output lacks '$text'; output:"
    sed 's/^/  | /' "$tmp/out"
  else
    echo "ok: $name"
  fi
}

# refused NAME TEXT ARGS...: coil-run ARGS exits 2 and says "coil-run: TEXT".
refused() {
  local name=$1 text=$2
  shift 2
  expect "$name" 2 "coil-run: $text" "$@"
}

# has NAME LINE...: each LINE is a whole line of $tmp/out.
has() {
  local name=$1 line
  shift
  for line in "$@"; do
    grep -qxF -- "$line" "$tmp/out" || fail "$name: no line '$line' in: $(tr '\n' ' ' <"$tmp/out")"
  done
}

run_empty() {
  env COIL_PRELOAD_LIBRARY="$empty" "$@"
}

help_cases() {
  local word
  expect "--help" 0 "Usage: coil-run" "$coil_run" --help
  for word in --threads --stack-size --native-threads --verbose COIL_THREADS COIL_STACK_SIZE \
    COIL_NATIVE_THREADS COIL_VERBOSE COIL_PRELOAD_LIBRARY LD_PRELOAD "default 256K" \
    "at least 8M" RLIMIT_NOFILE thread_local preempted "round robin"; do
    grep -qF -- "$word" "$tmp/out" || fail "--help does not mention $word"
  done
}

flag_cases() {
  local size="use a byte count with an optional K, M or G suffix, from 16K to 1G"
  refused "unknown flag" "unknown option --bogus" "$coil_run" --bogus -- true
  refused "no program" "no program given" "$coil_run"
  refused "no program after --" "no program given" "$coil_run" --threads 1 --
  refused "--threads 0" "--threads=0: out of range; use a whole number from 1 to 256" \
    "$coil_run" --threads 0 true
  refused "--threads 300" "--threads=300: out of range" "$coil_run" --threads 300 true
  refused "--threads abc" "--threads=abc: not a whole number" "$coil_run" --threads abc true
  refused "--threads without a value" "--threads" "$coil_run" --threads
  refused "--stack-size 1K" "--stack-size=1K: too small; $size" "$coil_run" --stack-size 1K true
  refused "--stack-size 2G" "--stack-size=2G: too large; $size" "$coil_run" --stack-size 2G true
  refused "--stack-size 12Q" "--stack-size=12Q: not a size; $size" \
    "$coil_run" --stack-size 12Q true
  refused "--stack-size ''" "--stack-size=: empty; $size" "$coil_run" --stack-size '' true
  refused "--native-threads=maybe" "--native-threads" "$coil_run" --native-threads=maybe true
}

env_cases() {
  refused "COIL_STACK_SIZE=junk" "COIL_STACK_SIZE=junk: not a size" \
    env COIL_STACK_SIZE=junk "$coil_run" true
  refused "COIL_NATIVE_THREADS=maybe" "COIL_NATIVE_THREADS=maybe: not a boolean" \
    env COIL_NATIVE_THREADS=maybe "$coil_run" true
  refused "COIL_VERBOSE=2" "COIL_VERBOSE=2: not a boolean" env COIL_VERBOSE=2 "$coil_run" true
  refused "COIL_THREADS=-1" "COIL_THREADS=-1: out of range" env COIL_THREADS=-1 "$coil_run" true
  refused "COIL_THREADS=300" "COIL_THREADS=300: out of range" env COIL_THREADS=300 "$coil_run" true
}

exec_cases() {
  printf 'not a program\n' >"$tmp/plain"
  expect "nonexistent program" 127 "coil-run: cannot run '$tmp/none': No such file or directory" \
    run_empty "$coil_run" "$tmp/none"
  expect "program not in PATH" 127 "coil-run: cannot run 'coil-no-such-program'" \
    run_empty "$coil_run" coil-no-such-program
  expect "not executable" 126 "coil-run: cannot run '$tmp/plain': Permission denied" \
    run_empty "$coil_run" "$tmp/plain"
  expect "the program's status" 7 "" run_empty "$coil_run" sh -c 'exit 7'
  expect "arguments after -- are the program's" 0 "a|--threads|-x|" \
    run_empty "$coil_run" -- printf '%s|' a --threads -x
  expect "arguments after the program are its own" 0 "--verbose|--threads|" \
    run_empty "$coil_run" printf '%s|' --verbose --threads
}

library_cases() {
  refused "COIL_PRELOAD_LIBRARY missing" "COIL_PRELOAD_LIBRARY=$tmp/none.so: No such file" \
    env COIL_PRELOAD_LIBRARY="$tmp/none.so" "$coil_run" true
  refused "COIL_PRELOAD_LIBRARY a directory" "COIL_PRELOAD_LIBRARY=$tmp: not a regular file" \
    env COIL_PRELOAD_LIBRARY="$tmp" "$coil_run" true
  # The build tree's library, found from coil-run's own place (bin/../lib).
  expect "library beside coil-run" 127 "coil-run: LD_PRELOAD=$real" \
    "$coil_run" --verbose "$tmp/none"
  # A coil-run with no library beside it, then one with lib/ beside it (an install).
  mkdir -p "$tmp/prefix/bin"
  cp "$coil_run" "$tmp/prefix/bin/coil-run"
  refused "no library" "cannot find libcoil_preload.so (looked for $tmp/prefix/lib/" \
    "$tmp/prefix/bin/coil-run" true
  mkdir -p "$tmp/prefix/lib"
  cp "$empty" "$tmp/prefix/lib/libcoil_preload.so"
  expect "library in ../lib" 0 "LD_PRELOAD=$tmp/prefix/lib/libcoil_preload.so" \
    "$tmp/prefix/bin/coil-run" env
}

settings_cases() {
  expect "defaults" 0 "LD_PRELOAD=$empty" run_empty "$coil_run" env
  has "defaults" "LD_PRELOAD=$empty" COIL_THREADS=1 COIL_STACK_SIZE=256K COIL_NATIVE_THREADS=0 \
    COIL_VERBOSE=0
  expect "flags" 0 "COIL_STACK_SIZE=1M" \
    run_empty "$coil_run" --threads 1 --stack-size 1m --native-threads env
  has "flags" COIL_THREADS=1 COIL_STACK_SIZE=1M COIL_NATIVE_THREADS=1 COIL_VERBOSE=0
  expect "variables, canonical" 0 "COIL_STACK_SIZE=256K" \
    run_empty env COIL_STACK_SIZE=262144 COIL_NATIVE_THREADS=yes COIL_VERBOSE=off "$coil_run" env
  has "variables, canonical" COIL_STACK_SIZE=256K COIL_NATIVE_THREADS=1 COIL_VERBOSE=0
  expect "odd size kept in bytes" 0 "COIL_STACK_SIZE=100000" \
    run_empty env COIL_STACK_SIZE=100000 "$coil_run" env
  expect "flags override variables" 0 "COIL_STACK_SIZE=64K" \
    run_empty env COIL_THREADS=abc COIL_STACK_SIZE=12Q COIL_NATIVE_THREADS=maybe \
    "$coil_run" --threads 1 --stack-size 64K --native-threads env
  has "flags override variables" COIL_THREADS=1 COIL_STACK_SIZE=64K COIL_NATIVE_THREADS=1
  expect "the last of a repeated flag" 0 "COIL_STACK_SIZE=32K" \
    run_empty "$coil_run" --stack-size 1G --stack-size 32K env
  expect "--verbose" 0 "coil-run: LD_PRELOAD=$empty" run_empty "$coil_run" --verbose env
  has "--verbose" COIL_VERBOSE=1 "coil-run: COIL_VERBOSE=1" "coil-run: COIL_STACK_SIZE=256K"
}

preload_list_cases() {
  cp "$empty" "$tmp/other.so"
  cp "$empty" "$tmp/third.so"
  expect "LD_PRELOAD appended" 0 "LD_PRELOAD=$tmp/other.so:$empty" \
    run_empty env LD_PRELOAD="$tmp/other.so" "$coil_run" env
  expect "LD_PRELOAD with two entries" 0 "LD_PRELOAD=$tmp/other.so $tmp/third.so:$empty" \
    run_empty env LD_PRELOAD="$tmp/other.so $tmp/third.so" "$coil_run" env
  expect "LD_PRELOAD already has it" 0 "LD_PRELOAD=$empty:$tmp/other.so" \
    run_empty env LD_PRELOAD="$empty:$tmp/other.so" "$coil_run" env
  local other_spelling
  other_spelling="$(dirname "$empty")/../$(basename "$(dirname "$empty")")/$(basename "$empty")"
  expect "LD_PRELOAD has it spelled otherwise" 0 "LD_PRELOAD=$other_spelling" \
    run_empty env LD_PRELOAD="$other_spelling" "$coil_run" env
  has "LD_PRELOAD has it spelled otherwise" "LD_PRELOAD=$other_spelling"
  expect "relative COIL_PRELOAD_LIBRARY made absolute" 0 "LD_PRELOAD=$empty" \
    env -C "$(dirname "$empty")" COIL_PRELOAD_LIBRARY="$(basename "$empty")" "$coil_run" env
}

help_cases
flag_cases
env_cases
exec_cases
library_cases
settings_cases
preload_list_cases

if ((failures > 0)); then
  echo "$failures failed"
  exit 1
fi
echo "all passed"
