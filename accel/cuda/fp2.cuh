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

// A square root of a, if there is one, through the norm: with n = a0^2 + a1^2 = s^2, a root is
// x0 + x1 u with x0^2 = t = (a0 + s)/2 (or (a0 - s)/2) and x1 = a1 / (2 x0). One power
// c = t^((p-3)/4) gives both x0 = c t and 1/x0 = c, so the whole root costs two or three
// exponentiations in Fp, no inversion. The result is checked by squaring, so a non-residue
// returns false.
ACCEL_CALL bool sqrt(fp2 &out, const fp2 &a) {
    if (is_zero(a.c1)) {
        fp r;
        if (sqrt(r, a.c0)) {
            out = fp2{r, fp_zero()};
        } else {
            sqrt(r, neg(a.c0));  // a0 is a non-residue, so -a0 is a residue: (r u)^2 = a0
            out = fp2{fp_zero(), r};
        }
        return eq(sqr(out), a);
    }
    const u64 p_minus_3_over_4[6] = {0xee7fbfffffffeaaaull, 0x07aaffffac54ffffull,
                                     0xd9cc34a83dac3d89ull, 0xd91dd2e13ce144afull,
                                     0x92c6e9ed90d2eb35ull, 0x0680447a8e5ff9a6ull};
    // 1/2: (p + 1)/2 in Montgomery form.
    const fp half = {{0x1804000000015554ull, 0x855000053ab00001ull, 0x633cb57c253c276full,
                      0x6e22d1ec31ebb502ull, 0xd3916126f2d14ca2ull, 0x17fbb8571a006596ull}};
    fp s;
    if (!sqrt(s, add(sqr(a.c0), sqr(a.c1)))) return false;
    fp t = mul(add(a.c0, s), half);
    fp c = pow(t, p_minus_3_over_4, 6);
    fp x0 = mul(c, t);
    if (!eq(sqr(x0), t)) {
        t = mul(sub(a.c0, s), half);
        c = pow(t, p_minus_3_over_4, 6);
        x0 = mul(c, t);
    }
    out = fp2{x0, mul(mul(a.c1, c), half)};
    return eq(sqr(out), a);
}

// The "larger" root, as the compressed encoding's sign bit reads it: by c1, or by c0 when
// c1 is zero.
ACCEL_HD bool is_large(const fp2 &a) { return is_zero(a.c1) ? is_large(a.c0) : is_large(a.c1); }

}  // namespace bls
