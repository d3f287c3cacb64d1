#!/usr/bin/env bash
# Builds warren and prints the benchmark figures (jail backend, then the qemu backend
# when its guest kernel is built; needs root).
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
build/tests/bench_tools build/warren
if [ -e build/guest/vmlinuz ] && command -v qemu-system-x86_64 >/dev/null; then
    build/tests/bench_vm build/warren
fi
build/tests/bench_snapshot build/warren
build/tests/bench_git build/warren
build/tests/bench_images build/warren
build/tests/bench_density build/warren
build/tests/bench_pool build/warren
if [ -e build/guest/vmlinuz ] && command -v qemu-system-x86_64 >/dev/null; then
    build/tests/bench_pool build/warren qemu
fi
build/tests/bench_net build/warren
build/tests/bench_egress build/warren
build/tests/bench_cpu build/warren
build/tests/bench_apikeys
