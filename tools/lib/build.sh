# shellcheck shell=bash
# build.sh: the named build configurations of coil and the one function that configures and
# builds them. Sourced by the scripts in tools/; not a program of its own.

COIL_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
COIL_JOBS=$(nproc 2>/dev/null || echo 2)

# coil_config_dir NAME prints the build directory of configuration NAME.
coil_config_dir() {
  case $1 in
    asm) echo "$COIL_ROOT/build" ;;
    boost) echo "$COIL_ROOT/build-boost" ;;
    asan) echo "$COIL_ROOT/build-asan" ;;
    tsan) echo "$COIL_ROOT/build-tsan" ;;
    release) echo "$COIL_ROOT/build-release" ;;
    *) return 1 ;;
  esac
}

# coil_config_args NAME prints the CMake cache arguments of configuration NAME, one per line.
# Every configuration the test scripts run treats warnings as errors; the demo build does not.
coil_config_args() {
  case $1 in
    asm) printf '%s\n' -DCOIL_CONTEXT=asm -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCOIL_SANITIZE= \
      -DCOIL_WERROR=ON ;;
    boost) printf '%s\n' -DCOIL_CONTEXT=boost -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCOIL_SANITIZE= \
      -DCOIL_WERROR=ON ;;
    # Debug: the sanitizer build is also the one that keeps assert() on.
    asan) printf '%s\n' -DCOIL_CONTEXT=asm -DCMAKE_BUILD_TYPE=Debug \
      -DCOIL_SANITIZE=address,undefined -DCOIL_WERROR=ON ;;
    tsan) printf '%s\n' -DCOIL_CONTEXT=asm -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DCOIL_SANITIZE=thread -DCOIL_WERROR=ON ;;
    release) printf '%s\n' -DCMAKE_BUILD_TYPE=Release -DCOIL_SANITIZE= -DCOIL_BUILD_TESTS=OFF \
      -DCOIL_BUILD_TOOLS=ON -DCOIL_BUILD_EXAMPLES=ON ;;
    *) return 1 ;;
  esac
}

# coil_build NAME [TARGET...] configures (if needed) and builds configuration NAME, all of it or
# just TARGETs. It uses Ninja when installed, unless the directory was already configured with
# another generator.
coil_build() {
  local name=$1
  shift
  local dir args=() generator=() targets=()
  dir=$(coil_config_dir "$name") || {
    echo "coil: unknown build configuration '$name'" >&2
    return 2
  }
  mapfile -t args < <(coil_config_args "$name")
  if [[ ! -f $dir/CMakeCache.txt ]] && command -v ninja >/dev/null 2>&1; then
    generator=(-G Ninja)
  fi
  if (($# > 0)); then targets=(--target "$@"); fi
  cmake -S "$COIL_ROOT" -B "$dir" "${generator[@]}" "${args[@]}" &&
    cmake --build "$dir" -j "$COIL_JOBS" "${targets[@]}"
}
