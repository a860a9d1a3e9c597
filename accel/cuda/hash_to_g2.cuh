// Hash to G2 from the expanded message (RFC 9380, BLS12381G2_XMD:SHA-256_SSWU_RO_): the host
// runs expand_message_xmd (SHA-256, cheap and byte-serial) and hands over its 256 bytes; the
// device reduces them to two Fp2 elements, maps each with the simplified SWU map to the
// isogenous curve E': y^2 = x^3 + 240i x + 1012(1 + i), takes both through the 3-isogeny to E,
// adds them and clears the cofactor.
#pragma once
#include "curve.cuh"
#include "h2c_constants.cuh"

namespace bls {

ACCEL_HD fp fp_small(u64 v) { return to_mont(fp{{v, 0, 0, 0, 0, 0}}); }

// 64 big-endian bytes mod p: lo + hi * 2^384, with lo taken unreduced (Montgomery
// multiplication by R^2 accepts any lo < 2^384).
ACCEL_HD fp fp_from_64_be(const uint8_t *in) {
    fp hi = fp_zero(), lo = fp_zero();
    for (int i = 0; i < 64; i++) {
        int word = (63 - i) / 8;  // little-endian word index of byte i of the integer
        u64 b = in[i];
        int shift = ((63 - i) % 8) * 8;
        if (word >= 6)
            hi.l[word - 6] |= b << shift;
        else
            lo.l[word] |= b << shift;
    }
    return add(mul(lo, fp_r2()), mul(hi, fp_r3()));
}

// sgn0 of RFC 9380 section 4.1 for Fp2.
ACCEL_HD bool sgn0(const fp2 &a) {
    fp c0 = from_mont(a.c0), c1 = from_mont(a.c1);
    bool sign0 = c0.l[0] & 1;
    bool zero0 = is_zero(c0);
    bool sign1 = c1.l[0] & 1;
    return sign0 || (zero0 && sign1);
}

ACCEL_HD fp2 iso_curve_rhs(const fp2 &x, const fp2 &a, const fp2 &b) {
    return add(add(mul(sqr(x), x), mul(a, x)), b);
}

// The simplified SWU map to E' (straight-line form of RFC 9380 section 6.6.2).
ACCEL_CALL g2_affine map_to_curve_sswu(const fp2 &u) {
    fp2 a = fp2{fp_zero(), fp_small(240)};
    fp2 b = fp2{fp_small(1012), fp_small(1012)};
    fp2 z = fp2{neg(fp_small(2)), neg(fp_one())};
    fp2 zu2 = mul(z, sqr(u));
    fp2 den = add(sqr(zu2), zu2);
    fp2 x1;
    if (is_zero(den)) {
        x1 = mul(b, inverse(mul(z, a)));  // the exceptional case: x1 = B / (Z A)
    } else {
        x1 = mul(neg(mul(b, inverse(a))), add(fp2_one(), inverse(den)));
    }
    // g(x1) or g(Z u^2 x1) is a square (the choice of Z guarantees it).
    fp2 x = x1, y;
    if (!sqrt(y, iso_curve_rhs(x1, a, b))) {
        x = mul(zu2, x1);
        sqrt(y, iso_curve_rhs(x, a, b));
    }
    if (sgn0(u) != sgn0(y)) y = neg(y);
    return g2_affine{x, y};
}

// The coefficient table is a template argument, so the device code calls it directly (an
// indirect call would leave ptxas unable to bound the stack).
template <fp2 (*coeff)(int)>
ACCEL_HD fp2 horner(int len, const fp2 &x) {
    fp2 acc = coeff(len - 1);
    for (int i = len - 2; i >= 0; i--) acc = add(mul(acc, x), coeff(i));
    return acc;
}

// The 3-isogeny E' -> E; a zero denominator gives the identity, as the RFC requires.
ACCEL_CALL g2 iso_map(const g2_affine &p) {
    fp2 xden = horner<iso_xden>(ISO_XDEN_LEN, p.x);
    fp2 yden = horner<iso_yden>(ISO_YDEN_LEN, p.x);
    if (is_zero(xden) || is_zero(yden)) return infinity<fp2>();
    fp2 x = mul(horner<iso_xnum>(ISO_XNUM_LEN, p.x), inverse(xden));
    fp2 y = mul(mul(p.y, horner<iso_ynum>(ISO_YNUM_LEN, p.x)), inverse(yden));
    return g2{x, y, fp2_one()};
}

// [h_eff]p by the endomorphism (Budroni-Pintore; RFC 9380 appendix G.3):
// [x^2 - x - 1]p + [x - 1]psi(p) + psi^2(2p), two 64-bit multiplications instead of one by
// the 636-bit h_eff. The tests hold it to blst's map_to_g2.
ACCEL_CALL g2 clear_cofactor(const g2 &p) {
    g2 t1 = mul_by_x(p);
    g2 t2 = psi(p);
    g2 t3 = psi(psi(dbl(p)));
    t3 = add(t3, neg(t2));
    t2 = mul_by_x(add(t1, t2));
    t3 = add(add(t3, t2), neg(t1));
    return add(t3, neg(p));
}

// map_to_curve of two field elements, summed, cofactor cleared: blst_map_to_g2(u0, u1).
ACCEL_CALL g2 map_to_g2(const fp2 &u0, const fp2 &u1) {
    g2 q0 = iso_map(map_to_curve_sswu(u0));
    g2 q1 = iso_map(map_to_curve_sswu(u1));
    return clear_cofactor(add(q0, q1));
}

// H(m) from expand_message_xmd(m, DST, 256): four 64-byte field elements, u0 then u1.
ACCEL_CALL g2_affine hash_to_g2_expanded(const uint8_t *uniform) {
    fp2 u0 = fp2{fp_from_64_be(uniform), fp_from_64_be(uniform + 64)};
    fp2 u1 = fp2{fp_from_64_be(uniform + 128), fp_from_64_be(uniform + 192)};
    return to_affine(map_to_g2(u0, u1));
}

}  // namespace bls
