#!/usr/bin/env bash
# `make bench`: builds what the benchmarks need and runs bench/bench.py, which writes docs/BENCHMARKS.md.
# BENCH_QUICK=1 for a smoke run (see bench/bench.py for every variable).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}

# framepress itself: only the binary, from the existing build (make build configures it).
if [[ ! -x $BUILD_DIR/src/app/framepress ]]; then
  if [[ -f $BUILD_DIR/build.ninja ]]; then
    ninja -C "$BUILD_DIR" framepress
  else
    echo "bench: $BUILD_DIR/src/app/framepress is missing; run 'make build' first" >&2
    exit 1
  fi
fi

# The SSE load generator: its own CMake project, not part of the main build.
if [[ ! -f $BUILD_DIR/bench/build.ninja ]]; then
  cmake -S bench -B "$BUILD_DIR/bench" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
cmake --build "$BUILD_DIR/bench"

for tool in ffmpeg ffprobe curl dd python3; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is missing" >&2; exit 1; }
done

export FRAMEPRESS=${FRAMEPRESS:-$BUILD_DIR/src/app/framepress}
export SSE_LOAD=${SSE_LOAD:-$BUILD_DIR/bench/sse_load}
# bench.py cleans up its servers and temporary directory itself (atexit and signal handlers); exec keeps
# the signals of make going straight to it.
exec python3 bench/bench.py
