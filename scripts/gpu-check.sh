#!/usr/bin/env bash
# The CUDA backend on a GPU machine that has the driver but no cargo (ADR 0023).
#
#   scripts/gpu-check.sh build   here: builds accel's device tests and the accel_device
#                                bench with the `cuda` feature (nvcc from PyPI, stub libcuda
#                                for linking) and copies them to target/gpu-check/
#   scripts/gpu-check.sh run     on the GPU machine, from the repository root, with
#                                target/gpu-check carried there: runs the tests on the device
#                                (conformance vectors, batches against the CPU backend) and
#                                the bench (RLC batches of 1k, 16k, 128k, quorums; CUDA beside
#                                the CPU); output under $OUT (or target/gpu-check/out)
#
# ACCEL_CUDA_SASS (e.g. sm_90) at build time puts machine code in the binaries, so the run
# spends no time on the driver's JIT.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=target/gpu-check

case "${1:-}" in
build)
    eval "$(scripts/cuda-toolchain.sh)"
    rm -rf "$dest" && mkdir -p "$dest"
    list() { python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable"):
        print(m["target"]["name"], m["executable"])'; }
    # The tests that reach the device: the conformance vectors (every backend that runs) and
    # the CUDA batches against the CPU backend. The kernels' differential tests run on the
    # host twin in `make test` and need no GPU machine's time.
    cargo test -p accel --features cuda --no-run --message-format=json 2>/dev/null | list |
        grep -E '^(bls_vectors|cuda) ' |
        while read -r name exe; do cp "$exe" "$dest/test-$name"; done
    cargo bench -p benches --bench accel_device --features cuda --no-run \
        --message-format=json 2>/dev/null | list | grep '^accel_device ' |
        while read -r name exe; do cp "$exe" "$dest/bench-$name"; done
    # Stripped, so that everything travels to the device machine under its 64 MiB limit.
    strip "$dest"/*
    ls -la "$dest"
    ;;
run)
    out=${OUT:-$dest/out}
    mkdir -p "$out"
    nvidia-smi -L | tee "$out/gpu.txt" || true
    export ACCEL_BLS_VECTORS="$PWD/accel/tests/vectors"
    # The built-in kernels (PTX from the nvcc 13 wheel, or a fatbin) need a CUDA 13 driver
    # (580 or newer). Only an older driver gets PTX from the machine's own nvcc: a toolkit
    # newer than the driver would make PTX that loads nowhere, and the override would also
    # bypass a fatbin's machine code.
    driver_cuda=$( (nvidia-smi 2>/dev/null || true) | sed -n 's/.*CUDA Version: *\([0-9]*\)\..*/\1/p' | head -n 1)
    echo "driver's CUDA version: ${driver_cuda:-unknown}" >>"$out/gpu.txt"
    if [ "${driver_cuda:-0}" -lt 13 ] && command -v nvcc >/dev/null; then
        nvcc -ptx -arch=sm_80 -O3 -std=c++14 -o "$out/kernels.ptx" accel/cuda/kernels.cu &&
            export ACCEL_CUDA_PTX="$out/kernels.ptx"
        nvcc --version | tail -n 2 >>"$out/gpu.txt"
    fi
    status=0
    for t in "$dest"/test-*; do
        echo "== $t" | tee -a "$out/tests.txt"
        # One test at a time: each starts the device backend, and the output stays readable.
        "$t" --test-threads 1 2>&1 | tee -a "$out/tests.txt" || status=1
    done
    ACCEL_BATCH_SIZES=${ACCEL_BATCH_SIZES:-1024,16384,131072} \
        "$dest/bench-accel_device" --bench 2>&1 | tee "$out/bench.txt" || status=1
    exit $status
    ;;
*)
    echo "usage: scripts/gpu-check.sh build|run (see the comment at the top)" >&2
    exit 2
    ;;
esac
