# SPDX-License-Identifier: Apache-2.0
# Shared by scripts/test, scripts/demo and scripts/bench: configure and build
# vmtide in $VMTIDE_BUILD_DIR (default build/) with the project's settings.
VMTIDE_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VMTIDE_BUILD_DIR=${VMTIDE_BUILD_DIR:-$VMTIDE_ROOT/build}

# vmtide_build [TARGET...]: configure, then build the targets (default all).
vmtide_build() {
    # clang++ for everything: the libFuzzer targets need it, and one
    # compiler keeps warnings consistent (g++ 12 builds it too).
    local cc=${CC:-clang} cxx=${CXX:-clang++} targets=()
    for t in "$@"; do targets+=(--target "$t"); done
    echo "== configure ($VMTIDE_BUILD_DIR, $cxx)" >&2
    cmake -S "$VMTIDE_ROOT" -B "$VMTIDE_BUILD_DIR" -G Ninja \
        -DCMAKE_C_COMPILER="$cc" -DCMAKE_CXX_COMPILER="$cxx" \
        -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVMTIDE_WERROR=ON -DVMTIDE_TESTS=ON >/dev/null
    echo "== build ${*:-all}" >&2
    cmake --build "$VMTIDE_BUILD_DIR" -j "$(nproc)" "${targets[@]}"
}
