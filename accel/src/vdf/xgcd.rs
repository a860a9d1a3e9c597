//! Partial extended Euclid on big integers, word-level (Lehmer): the step both form reduction
//! (NUDUPL/NUCOMP) and the compressed encoding take, so both stop exactly where chiavdf does.

use rug::{Assign, Integer};

// The word-level Euclid below reads 64-bit limbs.
const _: () = assert!(std::mem::size_of::<gmp_mpfr_sys::gmp::limb_t>() == 8);

/// The low 64 bits of `|x| >> shift`, as a signed word, read from the limbs (no allocation).
fn word_at(x: &Integer, shift: u32) -> i64 {
    let limbs = x.as_limbs();
    // limb_t is u64 on 64-bit targets, u32 elsewhere (where this word logic would need two).
    #[allow(clippy::unnecessary_cast)]
    let limb = |i: usize| -> u64 { limbs.get(i).map_or(0, |&l| l as u64) };
    let (idx, off) = ((shift / 64) as usize, shift % 64);
    let lo = limb(idx) >> off;
    let hi = if off == 0 {
        0
    } else {
        limb(idx + 1) << (64 - off)
    };
    (lo | hi) as i64
}

fn bit_len(x: &Integer) -> i64 {
    i64::from(x.significant_bits().max(1))
}

/// Partial extended Euclid on (r2, r1) = (a, |b|), stopping once r1 ≤ bound. Steps are taken
/// on the leading 64-bit words while they are provably the true quotients (Lehmer with
/// Jebelean's conditions), so the stopping point, and with it the returned cofactor of |b|,
/// is exactly chiavdf's.
pub(crate) fn partial_cofactor(r2: Integer, r1: Integer, bound: &Integer) -> Integer {
    partial_xgcd(r2, r1, bound).1
}

/// The partial Euclid itself: returns (co2, co1, r2, r1), where r_i ≡ −co_i · r1_start
/// (mod r2_start) and r1 ≤ bound. Its bound test reads leading words, as chiavdf's
/// `mpz_xgcd_partial` does, and like it can take a step or two past the first remainder below
/// the bound (a differential test against plain Euclid shows it): the compressed encoding
/// needs exactly chiavdf's stopping point. NUDUPL and NUCOMP, whose result is reduced
/// afterwards, use the exact and faster [`super::lehmer::partial`].
pub(crate) fn partial_xgcd(
    mut r2: Integer,
    mut r1: Integer,
    bound: &Integer,
) -> (Integer, Integer, Integer, Integer) {
    let mut co2 = Integer::new();
    let mut co1 = Integer::from(-1);
    let mut q = Integer::new();
    let mut tmp = Integer::new();
    while r1 != 0 && r1 > *bound {
        let shift = (bit_len(&r2).max(bit_len(&r1)) - 63).max(0) as u32;
        let mut x2 = word_at(&r2, shift);
        let mut x1 = word_at(&r1, shift);
        let lim = word_at(bound, shift);
        // Matrix [[m22, m21], [m12, m11]] applied to (r2, r1): new r2 = m22·r2 + m21·r1...
        let (mut a2, mut a1, mut b2, mut b1) = (0i64, 1i64, 1i64, 0i64);
        let mut steps = 0u32;
        while x1 != 0 && x1 > lim {
            let qq = x2 / x1;
            let t1 = x2.wrapping_sub(qq.wrapping_mul(x1));
            let t2 = a2.wrapping_sub(qq.wrapping_mul(a1));
            let t3 = b2.wrapping_sub(qq.wrapping_mul(b1));
            let stop = if steps & 1 == 1 {
                t1 < t3.wrapping_neg() || x1.wrapping_sub(t1) < t2.wrapping_sub(a1)
            } else {
                t1 < t2.wrapping_neg() || x1.wrapping_sub(t1) < t3.wrapping_sub(b1)
            };
            if stop {
                break;
            }
            (x2, x1) = (x1, t1);
            (a2, a1) = (a1, t2);
            (b2, b1) = (b1, t3);
            steps += 1;
        }
        if steps == 0 {
            // One full-precision division step.
            q.assign(&r2 / &r1);
            r2 -= &q * &r1;
            std::mem::swap(&mut r2, &mut r1);
            co2 -= &co1 * &q;
            std::mem::swap(&mut co2, &mut co1);
        } else {
            tmp.assign(&r2 * b2);
            tmp += &r1 * a2;
            r1 *= a1;
            r1 += &r2 * b1;
            std::mem::swap(&mut r2, &mut tmp);
            tmp.assign(&co2 * b2);
            tmp += &co1 * a2;
            co1 *= a1;
            co1 += &co2 * b1;
            std::mem::swap(&mut co2, &mut tmp);
            if r1 < 0 {
                co1 = -co1;
                r1 = -r1;
            }
            if r2 < 0 {
                co2 = -co2;
                r2 = -r2;
            }
        }
    }
    if r2 < 0 {
        co2 = -co2;
        co1 = -co1;
        r2 = -r2;
    }
    (co2, co1, r2, r1)
}
