#!/usr/bin/env bash
# The CUDA backend on a GPU machine that has the driver but no cargo (ADR 0023).
#
#   scripts/gpu-check.sh build   here: builds accel's tests and the accel_device bench with the
#                                `cuda` feature (nvcc from PyPI, stub libcuda for linking) and
#                                copies them to target/gpu-check/
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
    # The unit tests (with the kernels' differential tests), the conformance vectors, the
    # engine's cross-backend tests and the CUDA batches; the VDF tests need Python peers.
    cargo test -p accel --features cuda --no-run --message-format=json 2>/dev/null | list |
        grep -E '^(accel|bls_vectors|engine|cuda) ' |
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
    # PTX from the nvcc 13 wheel needs a CUDA 13 driver; with the machine's own nvcc the
    # kernels match its driver whatever its version.
    if command -v nvcc >/dev/null; then
        nvcc -ptx -arch=sm_80 -O3 -std=c++14 -o "$out/kernels.ptx" accel/cuda/kernels.cu &&
            export ACCEL_CUDA_PTX="$out/kernels.ptx"
        nvcc --version | tail -n 2 >>"$out/gpu.txt"
    fi
    status=0
    for t in "$dest"/test-*; do
        echo "== $t" | tee -a "$out/tests.txt"
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
