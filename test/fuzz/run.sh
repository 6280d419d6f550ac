#!/bin/sh
# Builds the segment-decoder fuzz target with clang (libFuzzer + ASan + UBSan) and runs it for N seconds.
# usage: test/fuzz/run.sh [SECONDS] [BUILD_DIR]
set -eu
seconds=${1:-60}
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${2:-/tmp/s5v-fuzz-build}
CC=clang CXX=clang++ cmake -S "$root" -B "$build" -DS5V_BENCH=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" --target s5_segment_fuzz -j"$(nproc)"
corpus="$build/s5_segment_corpus"
mkdir -p "$corpus"
# Seed: a valid segment (2 dims, 1 row), so the fuzzer starts inside the format.
printf '\252\000\160s5vector-segment\001\001\002\002\003\003\004\120\240\241\242\243\244\245\246\247\250\251\252\253\254\255\256\257\005\031\004\322\006\007\007\001\010\110\000\000\200\077\000\000\000\300\011\110\010\007\006\005\004\003\002\001' \
	>"$corpus/seed-valid"
exec "$build/s5_segment_fuzz" -max_total_time="$seconds" -max_len=4096 "$corpus"
