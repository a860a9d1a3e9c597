// Word arithmetic shared by the device kernels and their host twin.
//
// Every routine in accel/cuda is written once and compiled twice: by nvcc for the GPU
// (kernels.cu, with ACCEL_HD = __host__ __device__) and by the host C++ compiler for
// host_twin.cpp, which `make test` checks against blst on every machine (ADR 0023).
#pragma once
#include <stddef.h>
#include <stdint.h>

// ACCEL_HD for small routines, inlined where they are used; ACCEL_CALL for the large ones
// (extension-field products, point formulas, exponentiations), kept as calls on the device
// so the PTX stays small and quick to build.
#if defined(__CUDACC__)
#define ACCEL_HD __host__ __device__ __forceinline__
#define ACCEL_CALL __host__ __device__ __noinline__
#else
#define ACCEL_HD static inline
#define ACCEL_CALL static inline
#endif

namespace bls {

typedef uint64_t u64;

// a + b*c + carry; the high word goes back in `carry`.
ACCEL_HD u64 mac(u64 a, u64 b, u64 c, u64 &carry) {
#if defined(__CUDA_ARCH__)
    u64 lo = b * c;
    u64 hi = __umul64hi(b, c);
    lo += a;
    hi += lo < a;
    lo += carry;
    hi += lo < carry;
    carry = hi;
    return lo;
#else
    unsigned __int128 t = (unsigned __int128)b * c + a + carry;
    carry = (u64)(t >> 64);
    return (u64)t;
#endif
}

// a + b + carry (carry is 0 or 1 in and out).
ACCEL_HD u64 adc(u64 a, u64 b, u64 &carry) {
    u64 s = a + b;
    u64 c1 = s < a;
    u64 t = s + carry;
    u64 c2 = t < s;
    carry = c1 | c2;
    return t;
}

// a - b - borrow (borrow is 0 or 1 in and out).
ACCEL_HD u64 sbb(u64 a, u64 b, u64 &borrow) {
    u64 d = a - b;
    u64 b1 = a < b;
    u64 t = d - borrow;
    u64 b2 = d < borrow;
    borrow = b1 | b2;
    return t;
}

}  // namespace bls
