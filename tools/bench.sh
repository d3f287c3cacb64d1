#!/usr/bin/env bash
# Builds warren and prints the benchmark figures (jail backend; needs root).
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
build/bench_tools build/warren
