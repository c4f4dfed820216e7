# shellcheck shell=bash disable=SC2034  # the arrays are used by the scripts sourcing this
# deps.sh: the Debian packages coil needs and the one function that installs the missing ones.
# Sourced by tools/test.sh and tools/demo.sh; not a program of its own.

# COIL_BUILD_PACKAGES build libcoil and its examples.
COIL_BUILD_PACKAGES=(build-essential cmake ninja-build pkg-config libboost-context-dev libboost-dev
  libcli11-dev libhttp-parser-dev liburing-dev)
# COIL_TEST_PACKAGES add what the tests, benchmarks and checking scripts use.
# gnuplot-nox draws the plots of docs/benchmarks.md (tools/bench/report.py, tested by ctest).
COIL_TEST_PACKAGES=("${COIL_BUILD_PACKAGES[@]}" libgtest-dev libbenchmark-dev valgrind clang gdb
  strace curl python3 nginx-light gnuplot-nox)
# COIL_BENCH_PACKAGES add the peers the whole-system benchmarks (tools/bench/*.sh) run against.
COIL_BENCH_PACKAGES=("${COIL_TEST_PACKAGES[@]}" wrk nginx-light golang-go)

# coil_ensure_packages PACKAGE... installs, with apt-get, those of PACKAGE that dpkg does not
# report as installed. It runs apt-get update once, and only when something is missing, and uses
# sudo only when not root. On a system without dpkg it lists the packages and carries on.
coil_ensure_packages() {
  if ! command -v dpkg-query >/dev/null 2>&1; then
    echo "coil: not a Debian system; make sure these (or their equivalents) are installed: $*" >&2
    return 0
  fi
  local missing=() pkg
  for pkg in "$@"; do
    if ! dpkg -s "$pkg" >/dev/null 2>&1 ||
      [[ $(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null) != installed ]]; then
      missing+=("$pkg")
    fi
  done
  ((${#missing[@]} > 0)) || return 0

  local sudo=()
  if ((EUID != 0)); then
    if ! command -v sudo >/dev/null 2>&1; then
      echo "coil: missing packages: ${missing[*]}; run as root or install sudo" >&2
      return 1
    fi
    sudo=(sudo)
  fi
  echo "coil: installing missing packages: ${missing[*]}"
  if [[ -z ${COIL_APT_UPDATED:-} ]]; then
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update
    COIL_APT_UPDATED=1
  fi
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"
}
