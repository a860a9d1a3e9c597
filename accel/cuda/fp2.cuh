// Fp2 = Fp[u]/(u^2 + 1), laid out as blst_fp2 (c0, c1).
#pragma once
#include "fp.cuh"

namespace bls {

struct fp2 {
    fp c0, c1;
};

ACCEL_HD fp2 fp2_zero() { return fp2{fp_zero(), fp_zero()}; }
ACCEL_HD fp2 fp2_one() { return fp2{fp_one(), fp_zero()}; }

ACCEL_HD bool is_zero(const fp2 &a) { return is_zero(a.c0) && is_zero(a.c1); }
ACCEL_HD bool eq(const fp2 &a, const fp2 &b) { return eq(a.c0, b.c0) && eq(a.c1, b.c1); }
ACCEL_HD fp2 add(const fp2 &a, const fp2 &b) { return fp2{add(a.c0, b.c0), add(a.c1, b.c1)}; }
ACCEL_HD fp2 sub(const fp2 &a, const fp2 &b) { return fp2{sub(a.c0, b.c0), sub(a.c1, b.c1)}; }
ACCEL_HD fp2 neg(const fp2 &a) { return fp2{neg(a.c0), neg(a.c1)}; }
ACCEL_HD fp2 dbl(const fp2 &a) { return add(a, a); }
ACCEL_HD fp2 conj(const fp2 &a) { return fp2{a.c0, neg(a.c1)}; }

ACCEL_CALL fp2 mul(const fp2 &a, const fp2 &b) {
    fp t0 = mul(a.c0, b.c0);
    fp t1 = mul(a.c1, b.c1);
    fp s = mul(add(a.c0, a.c1), add(b.c0, b.c1));
    return fp2{sub(t0, t1), sub(sub(s, t0), t1)};
}

ACCEL_CALL fp2 sqr(const fp2 &a) {
    fp m = mul(a.c0, a.c1);
    return fp2{mul(add(a.c0, a.c1), sub(a.c0, a.c1)), add(m, m)};
}

// By an element of the base field.
ACCEL_HD fp2 mul(const fp2 &a, const fp &b) { return fp2{mul(a.c0, b), mul(a.c1, b)}; }

// By xi = 1 + u, the non-residue that builds Fp6 (and the twist's b' = 4 xi).
ACCEL_HD fp2 mul_by_xi(const fp2 &a) { return fp2{sub(a.c0, a.c1), add(a.c0, a.c1)}; }

ACCEL_CALL fp2 inverse(const fp2 &a) {
    fp t = inverse(add(sqr(a.c0), sqr(a.c1)));
    return fp2{mul(a.c0, t), neg(mul(a.c1, t))};
}

ACCEL_CALL fp2 pow(const fp2 &a, const u64 *e, int words) {
    fp2 r = fp2_one();
    for (int i = words * 64 - 1; i >= 0; i--) {
        r = sqr(r);
        if ((e[i / 64] >> (i % 64)) & 1) r = mul(r, a);
    }
    return r;
}

// A square root of a, if there is one (Adj and Rodriguez-Henriquez, algorithm 9, for
// p = 3 mod 4); the result is checked by squaring, so a non-residue returns false.
ACCEL_CALL bool sqrt(fp2 &out, const fp2 &a) {
    const u64 p_minus_3_over_4[6] = {0xee7fbfffffffeaaaull, 0x07aaffffac54ffffull,
                                     0xd9cc34a83dac3d89ull, 0xd91dd2e13ce144afull,
                                     0x92c6e9ed90d2eb35ull, 0x0680447a8e5ff9a6ull};
    const u64 p_minus_1_over_2[6] = {0xdcff7fffffffd555ull, 0x0f55ffff58a9ffffull,
                                     0xb39869507b587b12ull, 0xb23ba5c279c2895full,
                                     0x258dd3db21a5d66bull, 0x0d0088f51cbff34dull};
    fp2 a1 = pow(a, p_minus_3_over_4, 6);
    fp2 alpha = mul(sqr(a1), a);
    fp2 x0 = mul(a1, a);
    fp2 minus_one = neg(fp2_one());
    if (eq(alpha, minus_one)) {
        out = fp2{neg(x0.c1), x0.c0};  // u * x0
    } else {
        fp2 b = pow(add(fp2_one(), alpha), p_minus_1_over_2, 6);
        out = mul(b, x0);
    }
    return eq(sqr(out), a);
}

// The "larger" root, as the compressed encoding's sign bit reads it: by c1, or by c0 when
// c1 is zero.
ACCEL_HD bool is_large(const fp2 &a) { return is_zero(a.c1) ? is_large(a.c0) : is_large(a.c1); }

}  // namespace bls
