// The optimal ate Miller loop of BLS12-381, for one pair (P in G1, Q in G2), both affine.
//
// G2 sits on the M-type twist y^2 = x^3 + 4 xi, untwisted by (x, y) -> (x / w^2, y / w^3).
// A line through T with slope s (on the twist), evaluated at P and multiplied by w^3, is
//     (s x_T - y_T) + (-s x_P) v + (y_P) v w,
// i.e. only c0.c0, c0.c1 and c1.c1 are set. Factors in Fp2 and Fp4 (w^3, denominators)
// vanish in the final exponentiation, so lines are scaled to avoid every inversion:
//   doubling T = (X, Y, Z):      (3X^3 - 2Y^2,  -3 X^2 Z^2 x_P,  2 Y Z^3 y_P)
//   adding Q = (x_Q, y_Q) to T:  N = y_Q Z^3 - Y, D = Z (x_Q Z^2 - X):
//                                (N x_Q - D y_Q,  -N x_P,  D y_P)
// The loop runs over |x| = 0xd201000000010000; x is negative, so the result is conjugated
// (equal to the inverse after the final exponentiation). The value matches blst's Miller
// loop only after the final exponentiation, which the host runs (ADR 0023).
#pragma once
#include "curve.cuh"
#include "fp12.cuh"

namespace bls {

#define BLS_X_ABS 0xd201000000010000ull

ACCEL_CALL fp12 miller_loop(const g1_affine &p, const g2_affine &q) {
    if (is_infinity(p) || is_infinity(q)) return fp12_one();
    fp12 f = fp12_one();
    g2 t = from_affine(q);
    for (int i = 62; i >= 0; i--) {
        f = sqr(f);
        {
            fp2 xx = sqr(t.x);
            fp2 zz = sqr(t.z);
            fp2 xx3 = add(dbl(xx), xx);
            fp2 a0 = sub(mul(xx3, t.x), dbl(sqr(t.y)));
            fp2 a1 = neg(mul(mul(xx3, zz), p.x));
            fp2 b1 = mul(dbl(mul(mul(t.y, t.z), zz)), p.y);
            f = mul_by_line(f, a0, a1, b1);
            t = dbl(t);
        }
        if ((BLS_X_ABS >> i) & 1) {
            fp2 zz = sqr(t.z);
            fp2 n = sub(mul(q.y, mul(zz, t.z)), t.y);
            fp2 d = mul(t.z, sub(mul(q.x, zz), t.x));
            fp2 a0 = sub(mul(n, q.x), mul(d, q.y));
            fp2 a1 = neg(mul(n, p.x));
            fp2 b1 = mul(d, p.y);
            f = mul_by_line(f, a0, a1, b1);
            t = add_affine(t, q);
        }
    }
    return conj(f);
}

}  // namespace bls
