// The base field of BLS12-381: six 64-bit limbs, little-endian, in Montgomery form with
// R = 2^384 — the same layout as blst_fp, so values cross the FFI and the PCIe bus as is.
#pragma once
#include "arith.cuh"

namespace bls {

struct fp {
    u64 l[6];
};

#define BLS_P {0xb9feffffffffaaabull, 0x1eabfffeb153ffffull, 0x6730d2a0f6b0f624ull, \
               0x64774b84f38512bfull, 0x4b1ba7b6434bacd7ull, 0x1a0111ea397fe69aull}
// -p^-1 mod 2^64
#define BLS_P_INV 0x89f3fffcfffcfffdull

ACCEL_HD fp fp_zero() { return fp{{0, 0, 0, 0, 0, 0}}; }
// R mod p: one in Montgomery form.
ACCEL_HD fp fp_one() {
    return fp{{0x760900000002fffdull, 0xebf4000bc40c0002ull, 0x5f48985753c758baull,
               0x77ce585370525745ull, 0x5c071a97a256ec6dull, 0x15f65ec3fa80e493ull}};
}
// R^2 mod p: multiplying by it enters Montgomery form.
ACCEL_HD fp fp_r2() {
    return fp{{0xf4df1f341c341746ull, 0x0a76e6a609d104f1ull, 0x8de5476c4c95b6d5ull,
               0x67eb88a9939d83c0ull, 0x9a793e85b519952dull, 0x11988fe592cae3aaull}};
}

ACCEL_HD bool is_zero(const fp &a) {
    u64 acc = 0;
    for (int i = 0; i < 6; i++) acc |= a.l[i];
    return acc == 0;
}

ACCEL_HD bool eq(const fp &a, const fp &b) {
    u64 acc = 0;
    for (int i = 0; i < 6; i++) acc |= a.l[i] ^ b.l[i];
    return acc == 0;
}

// a - p if a >= p (a < 2p).
ACCEL_HD fp reduce_once(const fp &a) {
    const u64 p[6] = BLS_P;
    fp d;
    u64 borrow = 0;
    for (int i = 0; i < 6; i++) d.l[i] = sbb(a.l[i], p[i], borrow);
    return borrow ? a : d;
}

ACCEL_HD fp add(const fp &a, const fp &b) {
    fp s;
    u64 carry = 0;
    for (int i = 0; i < 6; i++) s.l[i] = adc(a.l[i], b.l[i], carry);
    // p < 2^382, so a + b < 2^383 never carries out of the top limb.
    return reduce_once(s);
}

ACCEL_HD fp sub(const fp &a, const fp &b) {
    const u64 p[6] = BLS_P;
    fp d;
    u64 borrow = 0;
    for (int i = 0; i < 6; i++) d.l[i] = sbb(a.l[i], b.l[i], borrow);
    if (borrow) {
        u64 carry = 0;
        for (int i = 0; i < 6; i++) d.l[i] = adc(d.l[i], p[i], carry);
    }
    return d;
}

ACCEL_HD fp neg(const fp &a) { return sub(fp_zero(), a); }

ACCEL_HD fp dbl(const fp &a) { return add(a, a); }

// Montgomery product a*b/R mod p (CIOS) on 64-bit words: the host's form.
ACCEL_HD fp mul64(const fp &a, const fp &b) {
    const u64 p[6] = BLS_P;
    u64 t[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (int i = 0; i < 6; i++) {
        u64 c = 0;
        for (int j = 0; j < 6; j++) t[j] = mac(t[j], a.l[j], b.l[i], c);
        u64 k = 0;
        t[6] = adc(t[6], c, k);
        t[7] = k;
        u64 m = t[0] * BLS_P_INV;
        c = 0;
        mac(t[0], m, p[0], c);
        for (int j = 1; j < 6; j++) t[j - 1] = mac(t[j], m, p[j], c);
        k = 0;
        t[5] = adc(t[6], c, k);
        t[6] = t[7] + k;
    }
    fp r;
    for (int i = 0; i < 6; i++) r.l[i] = t[i];
    return reduce_once(r);
}

// The same product on 32-bit words (twelve limbs, same memory layout): on a GPU a 64-bit
// multiply is emulated with several 32-bit ones and carries cost compares, while a 32x32->64
// product is one wide multiply, so the device build uses this form (ADR 0023; define
// ACCEL_FP_MUL64 to compare). The tests check it against blst on the host like the rest.
ACCEL_CALL fp mul32(const fp &a, const fp &b) {
    const u64 p64[6] = BLS_P;
    uint32_t x[12], y[12], p[12], t[14];
    for (int i = 0; i < 6; i++) {
        x[2 * i] = (uint32_t)a.l[i];
        x[2 * i + 1] = (uint32_t)(a.l[i] >> 32);
        y[2 * i] = (uint32_t)b.l[i];
        y[2 * i + 1] = (uint32_t)(b.l[i] >> 32);
        p[2 * i] = (uint32_t)p64[i];
        p[2 * i + 1] = (uint32_t)(p64[i] >> 32);
    }
    for (int i = 0; i < 14; i++) t[i] = 0;
    const uint32_t inv = (uint32_t)BLS_P_INV;  // -p^-1 mod 2^32
    for (int i = 0; i < 12; i++) {
        u64 c = 0;
        for (int j = 0; j < 12; j++) {
            u64 s = (u64)x[j] * y[i] + t[j] + c;  // < 2^64: (2^32-1)^2 + 2 (2^32-1)
            t[j] = (uint32_t)s;
            c = s >> 32;
        }
        u64 s = (u64)t[12] + c;
        t[12] = (uint32_t)s;
        t[13] = (uint32_t)(s >> 32);
        uint32_t m = t[0] * inv;
        s = (u64)m * p[0] + t[0];
        c = s >> 32;
        for (int j = 1; j < 12; j++) {
            s = (u64)m * p[j] + t[j] + c;
            t[j - 1] = (uint32_t)s;
            c = s >> 32;
        }
        s = (u64)t[12] + c;
        t[11] = (uint32_t)s;
        t[12] = t[13] + (uint32_t)(s >> 32);
    }
    fp r;
    for (int i = 0; i < 6; i++) r.l[i] = (u64)t[2 * i] | ((u64)t[2 * i + 1] << 32);
    return reduce_once(r);
}

ACCEL_HD fp mul(const fp &a, const fp &b) {
#if defined(__CUDA_ARCH__) && !defined(ACCEL_FP_MUL64)
    return mul32(a, b);
#else
    return mul64(a, b);
#endif
}

ACCEL_HD fp sqr(const fp &a) { return mul(a, a); }

// a^e for an exponent of `words` little-endian words, square-and-multiply from the top.
ACCEL_CALL fp pow(const fp &a, const u64 *e, int words) {
    fp r = fp_one();
    for (int i = words * 64 - 1; i >= 0; i--) {
        r = sqr(r);
        if ((e[i / 64] >> (i % 64)) & 1) r = mul(r, a);
    }
    return r;
}

// 1/a (0 for 0), as a^(p-2).
ACCEL_CALL fp inverse(const fp &a) {
    const u64 e[6] = {0xb9feffffffffaaa9ull, 0x1eabfffeb153ffffull, 0x6730d2a0f6b0f624ull,
                      0x64774b84f38512bfull, 0x4b1ba7b6434bacd7ull, 0x1a0111ea397fe69aull};
    return pow(a, e, 6);
}

// A square root of a, if there is one: a^((p+1)/4), since p = 3 mod 4.
ACCEL_CALL bool sqrt(fp &out, const fp &a) {
    const u64 e[6] = {0xee7fbfffffffeaabull, 0x07aaffffac54ffffull, 0xd9cc34a83dac3d89ull,
                      0xd91dd2e13ce144afull, 0x92c6e9ed90d2eb35ull, 0x0680447a8e5ff9a6ull};
    out = pow(a, e, 6);
    return eq(sqr(out), a);
}

// Out of Montgomery form: the canonical integer, for comparisons and encoding.
ACCEL_HD fp from_mont(const fp &a) { return mul(a, fp{{1, 0, 0, 0, 0, 0}}); }

ACCEL_HD fp to_mont(const fp &a) { return mul(a, fp_r2()); }

// Whether a (canonical, not Montgomery) is > (p-1)/2: the "larger" of a root and its
// negation, which picks the sign bit of a compressed point.
ACCEL_HD bool canonical_is_large(const fp &a) {
    const u64 half[6] = {0xdcff7fffffffd555ull, 0x0f55ffff58a9ffffull, 0xb39869507b587b12ull,
                         0xb23ba5c279c2895full, 0x258dd3db21a5d66bull, 0x0d0088f51cbff34dull};
    u64 borrow = 0;
    for (int i = 0; i < 6; i++) sbb(half[i], a.l[i], borrow);
    return borrow != 0;
}

ACCEL_HD bool is_large(const fp &a) { return canonical_is_large(from_mont(a)); }

// 48 big-endian bytes (the top three bits masked off) into Montgomery form; false if the
// integer is not below p.
ACCEL_HD bool from_be_bytes(fp &out, const uint8_t *in, bool mask_flags) {
    fp a;
    for (int i = 0; i < 6; i++) {
        u64 w = 0;
        for (int k = 0; k < 8; k++) {
            uint8_t byte = in[(5 - i) * 8 + k];
            if (mask_flags && i == 5 && k == 0) byte &= 0x1f;
            w = (w << 8) | byte;
        }
        a.l[i] = w;
    }
    const u64 p[6] = BLS_P;
    u64 borrow = 0;
    for (int i = 0; i < 6; i++) sbb(a.l[i], p[i], borrow);
    if (!borrow) return false;
    out = to_mont(a);
    return true;
}

}  // namespace bls
