#!/usr/bin/env bash
# check_install.sh BUILD_DIR installs a built coil into a temporary prefix and builds
# tests/install/consumer.cpp against it twice, as a user would: once with CMake
# (find_package(coil), shared and static), once with g++ and pkg-config. It runs each build and
# exits non-zero, saying which step failed, if anything goes wrong.
set -euo pipefail

fail() {
  echo "check_install: FAILED: $*" >&2
  exit 1
}

# run_logged LOG CMD... runs CMD with its output in LOG, and shows LOG if CMD fails.
run_logged() {
  local log=$1
  shift
  if ! "$@" >"$log" 2>&1; then
    cat "$log" >&2
    return 1
  fi
}

if [[ $# -ne 1 ]]; then
  echo "usage: $0 BUILD_DIR" >&2
  exit 2
fi
[[ -f $1/CMakeCache.txt ]] || fail "$1 is not a configured coil build directory"
build_dir=$(cd "$1" && pwd)
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/coil-install.XXXXXX")
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix

echo "check_install: installing $build_dir into $prefix"
run_logged "$work/install.log" cmake --install "$build_dir" --prefix "$prefix" ||
  fail "cmake --install $build_dir --prefix $prefix"
[[ -f $prefix/share/coil/coil-gdb.py ]] || fail "the gdb extension is not installed in share/coil"

# 1. CMake: find_package(coil) with the prefix on CMAKE_PREFIX_PATH, same compiler as coil.
cxx=$(sed -n 's/^CMAKE_CXX_COMPILER:[A-Z]*=//p' "$build_dir/CMakeCache.txt")
generator=()
if command -v ninja >/dev/null 2>&1; then generator=(-G Ninja); fi
echo "check_install: building the consumer with CMake (find_package(coil))"
run_logged "$work/configure.log" cmake -S "$here" -B "$work/cmake-build" "${generator[@]}" \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_PREFIX_PATH="$prefix" ${cxx:+"-DCMAKE_CXX_COMPILER=$cxx"} ||
  fail "configuring tests/install with CMAKE_PREFIX_PATH=$prefix (find_package(coil))"
run_logged "$work/build.log" cmake --build "$work/cmake-build" ||
  fail "building the consumer against coil::coil / coil::coil_static"
for exe in consumer consumer_static; do
  "$work/cmake-build/$exe" || fail "$exe (built with CMake) reported wrong results"
done

# 2. pkg-config: a plain g++ command line.
command -v pkg-config >/dev/null 2>&1 || fail "pkg-config is not installed"
pc_file=$(find "$prefix" -name coil.pc -print -quit)
[[ -n $pc_file ]] || fail "no coil.pc under $prefix"
export PKG_CONFIG_PATH
PKG_CONFIG_PATH=$(dirname "$pc_file")${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
pc_flags=$(pkg-config --cflags --libs coil) || fail "pkg-config --cflags --libs coil"
libdir=$(pkg-config --variable=libdir coil) || fail "pkg-config --variable=libdir coil"
echo "check_install: building the consumer with g++ -std=c++20 ... $pc_flags"
# shellcheck disable=SC2086  # pc_flags is a list of flags and must be split.
run_logged "$work/gxx.log" g++ -std=c++20 -o "$work/consumer_pc" "$here/consumer.cpp" $pc_flags ||
  fail "g++ -std=c++20 consumer.cpp \$(pkg-config --cflags --libs coil)"
LD_LIBRARY_PATH=$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} "$work/consumer_pc" ||
  fail "consumer (built with pkg-config) reported wrong results"

echo "check_install: ok"
