#!/usr/bin/env bash
# demo.sh [ARG...] installs what coil needs (Debian), builds a Release coil in build-release/ and
# runs build-release/bin/coil-demo with ARGs: 100k coroutines ping-ponging and sleeping, with
# the switch and spawn figures it measures.
set -euo pipefail

tools_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tools/lib/deps.sh
source "$tools_dir/lib/deps.sh"
# shellcheck source=tools/lib/build.sh
source "$tools_dir/lib/build.sh"

coil_ensure_packages "${COIL_BUILD_PACKAGES[@]}"
dir=$(coil_config_dir release)
coil_build release coil-demo
exec "$dir/bin/coil-demo" "$@"
