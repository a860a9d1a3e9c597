// Fp6 = Fp2[v]/(v^3 - xi) and Fp12 = Fp6[w]/(w^2 - v): the tower blst uses, with the same
// layout (blst_fp6, blst_fp12), so a Miller loop's value is handed to blst's final
// exponentiation unchanged.
#pragma once
#include "fp2.cuh"

namespace bls {

struct fp6 {
    fp2 c0, c1, c2;
};

struct fp12 {
    fp6 c0, c1;
};

ACCEL_HD fp6 fp6_zero() { return fp6{fp2_zero(), fp2_zero(), fp2_zero()}; }
ACCEL_HD fp6 fp6_one() { return fp6{fp2_one(), fp2_zero(), fp2_zero()}; }
ACCEL_HD fp12 fp12_one() { return fp12{fp6_one(), fp6_zero()}; }

ACCEL_HD bool eq(const fp6 &a, const fp6 &b) {
    return eq(a.c0, b.c0) && eq(a.c1, b.c1) && eq(a.c2, b.c2);
}
ACCEL_HD bool eq(const fp12 &a, const fp12 &b) { return eq(a.c0, b.c0) && eq(a.c1, b.c1); }

ACCEL_HD fp6 add(const fp6 &a, const fp6 &b) {
    return fp6{add(a.c0, b.c0), add(a.c1, b.c1), add(a.c2, b.c2)};
}
ACCEL_HD fp6 sub(const fp6 &a, const fp6 &b) {
    return fp6{sub(a.c0, b.c0), sub(a.c1, b.c1), sub(a.c2, b.c2)};
}
ACCEL_HD fp6 neg(const fp6 &a) { return fp6{neg(a.c0), neg(a.c1), neg(a.c2)}; }

// Karatsuba over the cubic extension.
ACCEL_CALL fp6 mul(const fp6 &a, const fp6 &b) {
    fp2 t0 = mul(a.c0, b.c0);
    fp2 t1 = mul(a.c1, b.c1);
    fp2 t2 = mul(a.c2, b.c2);
    fp2 c0 = add(mul_by_xi(sub(sub(mul(add(a.c1, a.c2), add(b.c1, b.c2)), t1), t2)), t0);
    fp2 c1 = add(sub(sub(mul(add(a.c0, a.c1), add(b.c0, b.c1)), t0), t1), mul_by_xi(t2));
    fp2 c2 = add(sub(sub(mul(add(a.c0, a.c2), add(b.c0, b.c2)), t0), t2), t1);
    return fp6{c0, c1, c2};
}

// By v: (c0, c1, c2) -> (xi c2, c0, c1).
ACCEL_HD fp6 mul_by_v(const fp6 &a) { return fp6{mul_by_xi(a.c2), a.c0, a.c1}; }

ACCEL_CALL fp12 mul(const fp12 &a, const fp12 &b) {
    fp6 t0 = mul(a.c0, b.c0);
    fp6 t1 = mul(a.c1, b.c1);
    fp6 c1 = sub(sub(mul(add(a.c0, a.c1), add(b.c0, b.c1)), t0), t1);
    return fp12{add(t0, mul_by_v(t1)), c1};
}

ACCEL_CALL fp12 sqr(const fp12 &a) {
    // (a0 + a1 w)^2 = a0^2 + v a1^2 + 2 a0 a1 w, with two products instead of three.
    fp6 t = mul(a.c0, a.c1);
    fp6 c0 = sub(sub(mul(add(a.c0, a.c1), add(a.c0, mul_by_v(a.c1))), t), mul_by_v(t));
    return fp12{c0, add(t, t)};
}

ACCEL_HD fp12 conj(const fp12 &a) { return fp12{a.c0, neg(a.c1)}; }

// c * (a0 + a1 v): five products in Fp2 (Karatsuba on the first two terms).
ACCEL_HD fp6 mul_by_01(const fp6 &c, const fp2 &a0, const fp2 &a1) {
    fp2 t0 = mul(c.c0, a0);
    fp2 t1 = mul(c.c1, a1);
    fp2 mid = sub(sub(mul(add(c.c0, c.c1), add(a0, a1)), t0), t1);
    return fp6{add(t0, mul_by_xi(mul(c.c2, a1))), mid, add(t1, mul(c.c2, a0))};
}

// c * (b1 v) = (xi c2 b1, c0 b1, c1 b1).
ACCEL_HD fp6 mul_by_1(const fp6 &c, const fp2 &b1) {
    return fp6{mul_by_xi(mul(c.c2, b1)), mul(c.c0, b1), mul(c.c1, b1)};
}

// By a line's value l = (a0 + a1 v) + (b1 v) w, the only coefficients a line has (see
// pairing.cuh): 13 products in Fp2 instead of a full product's 18.
ACCEL_CALL fp12 mul_by_line(const fp12 &f, const fp2 &a0, const fp2 &a1, const fp2 &b1) {
    fp6 t0 = mul_by_01(f.c0, a0, a1);
    fp6 t1 = mul_by_1(f.c1, b1);
    fp6 c1 = sub(sub(mul_by_01(add(f.c0, f.c1), a0, add(a1, b1)), t0), t1);
    return fp12{add(t0, mul_by_v(t1)), c1};
}

}  // namespace bls
