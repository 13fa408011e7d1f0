#!/usr/bin/env bash
# test.sh: set up, build, and run the whole test suite (unit, fuzz corpus replay,
# integration against a real Unbound on 127.0.0.1).
#   scripts/test.sh              a normal build in build/
#   scripts/test.sh --werror     the same, with warnings as errors
#   scripts/test.sh --sanitize   AddressSanitizer + UndefinedBehaviorSanitizer build in
#                                build-asan/, warnings as errors
set -euo pipefail
cd "$(dirname "$0")/.."
dir=build
flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo)
for arg in "$@"; do
    case $arg in
    --werror) flags+=(-DDNSWARD_WERROR=ON) ;;
    --sanitize)
        dir=build-asan
        flags+=(-DDNSWARD_SANITIZE=ON -DDNSWARD_WERROR=ON)
        ;;
    *)
        sed -n '2,7p' "$0"
        exit 2
        ;;
    esac
done
scripts/setup.sh
cmake -S . -B "$dir" "${flags[@]}" >/dev/null
cmake --build "$dir" -j "$(nproc)"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
ctest --test-dir "$dir" --output-on-failure -j "$(nproc)"
