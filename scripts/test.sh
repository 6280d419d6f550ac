#!/usr/bin/env bash
# The whole test suite: dependencies, core unit tests under ASan/UBSan, build + install of the extension,
# pg_regress on a temporary instance, TAP tests on real clusters. Exit status 0 only if everything passed.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
JOBS=$(nproc)

bash "$ROOT/scripts/install-deps.sh"

echo "=== clang-format (.clang-format at the top of the tree) ==="
mapfile -t sources < <(cd "$ROOT" && find src test/unit test/fuzz bench/micro tools -name '*.cpp' -o -name '*.h' | sort)
(cd "$ROOT" && clang-format --dry-run --Werror "${sources[@]}")
echo "${#sources[@]} files formatted as .clang-format says"

echo "=== core unit tests (AddressSanitizer + UndefinedBehaviorSanitizer) ==="
cmake -S "$ROOT" -B "$ROOT/build/sanitize" -DS5V_SANITIZE=ON -DS5V_BENCH=OFF -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build "$ROOT/build/sanitize" -j"$JOBS"
(cd "$ROOT/build/sanitize" && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure -j"$JOBS")

echo "=== fuzz the cold-segment decoder (libFuzzer, 30 s) ==="
bash "$ROOT/test/fuzz/run.sh" 30 "$ROOT/build/fuzz" 2>&1 | tail -n 3

echo "=== build and install the extension ==="
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
make -C "$ROOT" -j"$JOBS" >/dev/null
$SUDO make -C "$ROOT" install >/dev/null

# pg_regress and TAP run PostgreSQL, which refuses to run as root: use an unprivileged user and a copy of the tree.
bash "$ROOT/scripts/pg-tests.sh" "$@"
