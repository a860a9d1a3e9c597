// Points of G1 (over Fp) and G2 (over Fp2) in Jacobian coordinates (x = X/Z^2,
// y = Y/Z^3, Z = 0 at infinity), as blst_p1/blst_p2 lay them out; affine points as
// blst_p1_affine/blst_p2_affine, with (0, 0) for infinity.
#pragma once
#include "fp2.cuh"

namespace bls {

template <class F>
struct jacobian {
    F x, y, z;
};

template <class F>
struct affine {
    F x, y;
};

typedef jacobian<fp> g1;
typedef jacobian<fp2> g2;
typedef affine<fp> g1_affine;
typedef affine<fp2> g2_affine;

// The curves' b: 4 for y^2 = x^3 + 4, and 4(1 + u) for the twist that holds G2.
ACCEL_HD fp curve_b(const fp *) {
    return fp{{0xaa270000000cfff3ull, 0x53cc0032fc34000aull, 0x478fe97a6b0a807full,
               0xb1d37ebee6ba24d7ull, 0x8ec9733bbf78ab2full, 0x09d645513d83de7eull}};
}
ACCEL_HD fp2 curve_b(const fp2 *) {
    fp four = curve_b((const fp *)0);
    return fp2{four, four};
}

ACCEL_HD fp field_one(const fp *) { return fp_one(); }
ACCEL_HD fp2 field_one(const fp2 *) { return fp2_one(); }
ACCEL_HD fp field_zero(const fp *) { return fp_zero(); }
ACCEL_HD fp2 field_zero(const fp2 *) { return fp2_zero(); }

template <class F>
ACCEL_HD jacobian<F> infinity() {
    return jacobian<F>{field_one((const F *)0), field_one((const F *)0),
                       field_zero((const F *)0)};
}

template <class F>
ACCEL_HD bool is_infinity(const jacobian<F> &p) {
    return is_zero(p.z);
}

template <class F>
ACCEL_HD bool is_infinity(const affine<F> &p) {
    return is_zero(p.x) && is_zero(p.y);
}

template <class F>
ACCEL_HD jacobian<F> from_affine(const affine<F> &p) {
    if (is_infinity(p)) return infinity<F>();
    return jacobian<F>{p.x, p.y, field_one((const F *)0)};
}

// y^2 = x^3 + b (the point at infinity counts as on the curve).
template <class F>
ACCEL_HD bool on_curve(const affine<F> &p) {
    if (is_infinity(p)) return true;
    F rhs = add(mul(sqr(p.x), p.x), curve_b((const F *)0));
    return eq(sqr(p.y), rhs);
}

// dbl-2009-l (a = 0).
template <class F>
ACCEL_CALL jacobian<F> dbl(const jacobian<F> &p) {
    F a = sqr(p.x);
    F b = sqr(p.y);
    F c = sqr(b);
    F d = dbl(sub(sub(sqr(add(p.x, b)), a), c));
    F e = add(dbl(a), a);
    F f = sqr(e);
    F x3 = sub(f, dbl(d));
    F c8 = dbl(dbl(dbl(c)));
    F y3 = sub(mul(e, sub(d, x3)), c8);
    F z3 = dbl(mul(p.y, p.z));
    return jacobian<F>{x3, y3, z3};
}

// add-2007-bl, with the cases it does not cover (infinity, equal points, opposite points).
template <class F>
ACCEL_CALL jacobian<F> add(const jacobian<F> &p, const jacobian<F> &q) {
    if (is_infinity(p)) return q;
    if (is_infinity(q)) return p;
    F z1z1 = sqr(p.z);
    F z2z2 = sqr(q.z);
    F u1 = mul(p.x, z2z2);
    F u2 = mul(q.x, z1z1);
    F s1 = mul(mul(p.y, q.z), z2z2);
    F s2 = mul(mul(q.y, p.z), z1z1);
    F h = sub(u2, u1);
    F r = dbl(sub(s2, s1));
    if (is_zero(h)) return is_zero(r) ? dbl(p) : infinity<F>();
    F i = sqr(dbl(h));
    F j = mul(h, i);
    F v = mul(u1, i);
    F x3 = sub(sub(sqr(r), j), dbl(v));
    F y3 = sub(mul(r, sub(v, x3)), dbl(mul(s1, j)));
    F z3 = mul(sub(sub(sqr(add(p.z, q.z)), z1z1), z2z2), h);
    return jacobian<F>{x3, y3, z3};
}

// madd-2007-bl: p + q with q affine and not infinity.
template <class F>
ACCEL_CALL jacobian<F> add_affine(const jacobian<F> &p, const affine<F> &q) {
    if (is_infinity(p)) return jacobian<F>{q.x, q.y, field_one((const F *)0)};
    F z1z1 = sqr(p.z);
    F u2 = mul(q.x, z1z1);
    F s2 = mul(mul(q.y, p.z), z1z1);
    F h = sub(u2, p.x);
    F r = dbl(sub(s2, p.y));
    if (is_zero(h)) return is_zero(r) ? dbl(p) : infinity<F>();
    F hh = sqr(h);
    F i = dbl(dbl(hh));
    F j = mul(h, i);
    F v = mul(p.x, i);
    F x3 = sub(sub(sqr(r), j), dbl(v));
    F y3 = sub(mul(r, sub(v, x3)), dbl(mul(p.y, j)));
    F z3 = sub(sub(sqr(add(p.z, h)), z1z1), hh);
    return jacobian<F>{x3, y3, z3};
}

template <class F>
ACCEL_CALL affine<F> to_affine(const jacobian<F> &p) {
    if (is_infinity(p)) return affine<F>{field_zero((const F *)0), field_zero((const F *)0)};
    F zi = inverse(p.z);
    F zi2 = sqr(zi);
    return affine<F>{mul(p.x, zi2), mul(p.y, mul(zi2, zi))};
}

// [k]p for a scalar of `words` little-endian words, double-and-add from the top bit.
template <class F>
ACCEL_CALL jacobian<F> mul_scalar(const affine<F> &p, const u64 *k, int words) {
    jacobian<F> acc = infinity<F>();
    if (is_infinity(p)) return acc;
    for (int i = words * 64 - 1; i >= 0; i--) {
        acc = dbl(acc);
        if ((k[i / 64] >> (i % 64)) & 1) acc = add_affine(acc, p);
    }
    return acc;
}

// [k]p for a Jacobian p.
template <class F>
ACCEL_CALL jacobian<F> mul_scalar(const jacobian<F> &p, const u64 *k, int words) {
    jacobian<F> acc = infinity<F>();
    for (int i = words * 64 - 1; i >= 0; i--) {
        acc = dbl(acc);
        if ((k[i / 64] >> (i % 64)) & 1) acc = add(acc, p);
    }
    return acc;
}

template <class F>
ACCEL_HD jacobian<F> neg(const jacobian<F> &p) {
    return jacobian<F>{p.x, neg(p.y), p.z};
}

// [x]p for the curve parameter x = -0xd201000000010000.
template <class F>
ACCEL_HD jacobian<F> mul_by_x(const jacobian<F> &p) {
    const u64 x_abs = 0xd201000000010000ull;
    return neg(mul_scalar(p, &x_abs, 1));
}

// G1: [r]p = infinity, by plain scalar multiplication by r (G1 checks are off the hot path).
ACCEL_HD bool in_subgroup(const g1_affine &p) {
    const u64 r[4] = {0xffffffff00000001ull, 0x53bda402fffe5bfeull, 0x3339d80809a1d805ull,
                      0x73eda753299d7d48ull};
    return is_infinity(mul_scalar(p, r, 4));
}

// psi = untwist-Frobenius-twist on the twist: (x, y) -> (conj(x) cx, conj(y) cy) with
// cx = 1 / xi^((p-1)/3), cy = 1 / xi^((p-1)/2); on Jacobian coordinates Z is conjugated too.
ACCEL_CALL g2 psi(const g2 &p) {
    const fp2 cx = {fp_zero(), fp{{0x890dc9e4867545c3ull, 0x2af322533285a5d5ull,
                                   0x50880866309b7e2cull, 0xa20d1b8c7e881024ull,
                                   0x14e4f04fe2db9068ull, 0x14e56d3f1564853aull}}};
    const fp2 cy = {fp{{0x3e2f585da55c9ad1ull, 0x4294213d86c18183ull, 0x382844c88b623732ull,
                        0x92ad2afd19103e18ull, 0x1d794e4fac7cf0b9ull, 0x0bd592fc7d825ec8ull}},
                    fp{{0x7bcfa7a25aa30fdaull, 0xdc17dec12a927e7cull, 0x2f088dd86b4ebef1ull,
                        0xd1ca2087da74d4a7ull, 0x2da2596696cebc1dull, 0x0e2b7eedbbfd87d2ull}}};
    return g2{mul(conj(p.x), cx), mul(conj(p.y), cy), conj(p.z)};
}

template <class F>
ACCEL_HD bool eq_points(const jacobian<F> &a, const jacobian<F> &b) {
    if (is_infinity(a) || is_infinity(b)) return is_infinity(a) && is_infinity(b);
    F za = sqr(a.z), zb = sqr(b.z);
    return eq(mul(a.x, zb), mul(b.x, za)) &&
           eq(mul(mul(a.y, zb), b.z), mul(mul(b.y, za), a.z));
}

// G2: psi(p) = [x]p, the endomorphism test (Scott, "A note on group membership tests for G1,
// G2 and GT on BLS pairing-friendly curves", 2021): a 64-bit multiplication instead of one by
// the 255-bit r. The differential tests hold it to blst's answer on points off the subgroup.
ACCEL_HD bool in_subgroup(const g2_affine &p) {
    if (is_infinity(p)) return true;
    g2 q = from_affine(p);
    return eq_points(psi(q), mul_by_x(q));
}

// The codes blst returns for a point it refuses (BLST_ERROR), so both backends report alike.
enum decode_status {
    DECODE_OK = 0,
    DECODE_BAD_ENCODING = 1,
    DECODE_NOT_ON_CURVE = 2,
};

// Checks the three flag bits of a compressed point and the infinity encoding; returns
// DECODE_OK with *inf set for infinity, or -1 when a finite point follows.
ACCEL_HD int decode_flags(const uint8_t *in, int len, bool *inf) {
    uint8_t flags = in[0] & 0xe0;
    if (!(flags & 0x80)) return DECODE_BAD_ENCODING;  // not the compressed form
    *inf = (flags & 0x40) != 0;
    if (!*inf) return -1;
    uint8_t rest = (uint8_t)(in[0] & 0x3f);
    for (int i = 1; i < len; i++) rest |= in[i];
    return rest == 0 ? DECODE_OK : DECODE_BAD_ENCODING;
}

// A compressed G1 point (48 bytes, ZCash format) into affine form; no subgroup check.
ACCEL_CALL int decompress(g1_affine &out, const uint8_t *in) {
    bool inf;
    int f = decode_flags(in, 48, &inf);
    if (f >= 0) {
        out = g1_affine{fp_zero(), fp_zero()};
        return f;
    }
    fp x, y;
    if (!from_be_bytes(x, in, true)) return DECODE_BAD_ENCODING;
    fp y2 = add(mul(sqr(x), x), curve_b((const fp *)0));
    if (!sqrt(y, y2)) return DECODE_NOT_ON_CURVE;
    if (is_large(y) != ((in[0] & 0x20) != 0)) y = neg(y);
    out = g1_affine{x, y};
    return DECODE_OK;
}

// A compressed G2 point (96 bytes: x.c1 then x.c0, flags on the first byte).
ACCEL_CALL int decompress(g2_affine &out, const uint8_t *in) {
    bool inf;
    int f = decode_flags(in, 96, &inf);
    if (f >= 0) {
        out = g2_affine{fp2_zero(), fp2_zero()};
        return f;
    }
    fp2 x, y;
    if (!from_be_bytes(x.c1, in, true) || !from_be_bytes(x.c0, in + 48, false))
        return DECODE_BAD_ENCODING;
    fp2 y2 = add(mul(sqr(x), x), curve_b((const fp2 *)0));
    if (!sqrt(y, y2)) return DECODE_NOT_ON_CURVE;
    if (is_large(y) != ((in[0] & 0x20) != 0)) y = neg(y);
    out = g2_affine{x, y};
    return DECODE_OK;
}

}  // namespace bls
