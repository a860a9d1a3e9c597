//! The two Euclids of every class-group squaring, on fixed-size limb arrays: the inverse
//! b⁻¹ mod a that opens NUDUPL, and NUDUPL's and NUCOMP's partial reduction. Lehmer's method:
//! 64-bit leading words give runs of quotients (Jebelean's conditions say when they are still
//! the true ones), and each run is applied to the full-size numbers in one pass. Only the
//! cofactors that are needed are carried, as magnitudes: Euclid's cofactors alternate in sign,
//! so their magnitudes only ever add. GMP's `mpz_gcdext` does the same work on double words
//! with general-purpose bookkeeping; at the 512-bit sizes of a 1,024-bit discriminant this was
//! where a squaring spent most of its time (ADR 0022).

/// Limbs of the largest modulus: a < 2^512 for discriminants up to 1,024 bits.
pub(crate) const LIMBS: usize = 8;
/// One spare limb for the products of a run before they shrink again.
const W: usize = LIMBS + 1;

/// A nonnegative number on `W` limbs, least significant first, with its used length.
#[derive(Clone, Copy)]
struct Num {
    l: [u64; W],
    n: usize,
}

impl Num {
    fn from_limbs(x: &[u64]) -> Self {
        let mut l = [0u64; W];
        l[..x.len()].copy_from_slice(x);
        let mut v = Self { l, n: x.len() };
        v.trim();
        v
    }

    fn small(x: u64) -> Self {
        let mut l = [0u64; W];
        l[0] = x;
        Self {
            l,
            n: usize::from(x != 0),
        }
    }

    fn trim(&mut self) {
        while self.n > 0 && self.l[self.n - 1] == 0 {
            self.n -= 1;
        }
    }

    /// The 64 bits of this number that start at bit `shift` (bits above the top read as 0).
    fn word_at(&self, shift: u32) -> u64 {
        let (i, off) = ((shift / 64) as usize, shift % 64);
        let lo = if i < W { self.l[i] >> off } else { 0 };
        let hi = if off == 0 || i + 1 >= W {
            0
        } else {
            self.l[i + 1] << (64 - off)
        };
        lo | hi
    }

    fn less_than(&self, other: &Self) -> bool {
        if self.n != other.n {
            return self.n < other.n;
        }
        for i in (0..self.n).rev() {
            if self.l[i] != other.l[i] {
                return self.l[i] < other.l[i];
            }
        }
        false
    }

    fn bits(&self) -> u32 {
        if self.n == 0 {
            0
        } else {
            64 * self.n as u32 - self.l[self.n - 1].leading_zeros()
        }
    }
}

/// Runs stop before a matrix entry reaches this: a product of an entry and a limb then stays
/// under 2^126, so one signed 128-bit accumulator holds each whole column of a pass.
/// Word-level runs stop near half a word anyway (their entries stay near 2^32); only the exact
/// single-word tail can get here, and it then takes another run.
const NARROW: u64 = 1 << 62;

/// One pass over r0 and r1 (n limbs): (pa·r0 − qa·r1, pb·r1 − qb·r0), both known to be
/// nonnegative and below r0, for entries below [`NARROW`].
#[inline(always)]
fn apply_remainders(r0: &Num, r1: &Num, n: usize, m: [u64; 4]) -> (Num, Num) {
    let [pa, qa, pb, qb] = m.map(i128::from);
    let (mut u, mut v) = ([0u64; W], [0u64; W]);
    let (mut cu, mut cv) = (0i128, 0i128);
    for i in 0..n {
        let (x, y) = (i128::from(r0.l[i]), i128::from(r1.l[i]));
        cu += pa * x - qa * y;
        u[i] = cu as u64;
        cu >>= 64;
        cv += pb * y - qb * x;
        v[i] = cv as u64;
        cv >>= 64;
    }
    let (mut u, mut v) = (Num { l: u, n }, Num { l: v, n });
    u.trim();
    v.trim();
    (u, v)
}

/// (s0·c0 + t0·c1, s1·c0 + t1·c1) in one pass, for entries below [`NARROW`]; the caller
/// knows both fit in `W` limbs.
#[inline(always)]
fn apply_cofactors(c0: &Num, c1: &Num, m: [u64; 4]) -> (Num, Num) {
    let [s0, t0, s1, t1] = m.map(u128::from);
    let n = c0.n.max(c1.n);
    let (mut u, mut v) = ([0u64; W], [0u64; W]);
    let (mut cu, mut cv) = (0u128, 0u128);
    for i in 0..n {
        let (x, y) = (u128::from(c0.l[i]), u128::from(c1.l[i]));
        cu += s0 * x + t0 * y;
        u[i] = cu as u64;
        cu >>= 64;
        cv += s1 * x + t1 * y;
        v[i] = cv as u64;
        cv >>= 64;
    }
    let (mut nu, mut nv) = (n, n);
    if n < W {
        u[n] = cu as u64;
        v[n] = cv as u64;
        (nu, nv) = (n + 1, n + 1);
    }
    let (mut u, mut v) = (Num { l: u, n: nu }, Num { l: v, n: nv });
    u.trim();
    v.trim();
    (u, v)
}

/// One run of Euclid's quotients on leading words x0 ≥ x1, taking a step only while the
/// divisor is provably above the bound (`lim`, the bound's word; `None`: no bound). Returns
/// the cofactor magnitudes (s_k, t_k, s_{k+1}, t_{k+1}) of the last two remainders,
/// R_k = ±(s_k·r0 − t_k·r1), and k, the number of steps that are provably those of the full
/// numbers. `exact` when x0 and x1 are the whole numbers.
fn run(mut x0: u64, mut x1: u64, lim: Option<u64>, exact: bool) -> ([u64; 4], u32) {
    // Euclid on the words themselves bounds the cofactors by the words (|s_m| ≤ x1,
    // |t_m| ≤ x0, and |s_m| + |s_{m−1}| ≤ x1), so nothing below overflows.
    let (mut s0, mut t0, mut s1, mut t1) = (1u64, 0u64, 0u64, 1u64);
    let mut k = 0u32;
    loop {
        // Is the divisor above the bound? The first is a plain truncation of r1 and compares
        // exactly; a later word x_m is off from R_m / 2^shift by less than max(|s_m|, |t_m|).
        let above = match lim {
            None => x1 != 0,
            Some(lim) if exact || k == 0 => x1 > lim,
            Some(lim) => u128::from(x1) > u128::from(lim) + u128::from(s1.max(t1)),
        };
        if !above {
            break;
        }
        let q = x0 / x1;
        let x2 = x0 - q * x1;
        let s2 = q * s1 + s0;
        let t2 = q * t1 + t0;
        if s2 >= NARROW || t2 >= NARROW {
            break;
        }
        if !exact {
            // Jebelean: with m = k + 2 the index of x2, the quotient is the true one while
            // (m even) x2 ≥ |t_m| and x1 − x2 ≥ |s_m| + |s_{m−1}|,
            // (m odd)  x2 ≥ |s_m| and x1 − x2 ≥ |t_m| + |t_{m−1}|.
            let stop = if k & 1 == 0 {
                x2 < t2 || x1 - x2 < s2 + s1
            } else {
                x2 < s2 || x1 - x2 < t2 + t1
            };
            if stop {
                break;
            }
        }
        (x0, x1) = (x1, x2);
        (s0, t0, s1, t1) = (s1, t1, s2, t2);
        k += 1;
    }
    ([s0, t0, s1, t1], k)
}

/// Where Euclid stopped: remainders R_g = r0 > r1 = R_{g+1} and the magnitudes of their
/// cofactors of the second input (R_j ≡ T_j·r1_start mod r0_start, T_j = (−1)^(j+1)·|T_j|).
struct Stop {
    r0: Num,
    r1: Num,
    c0: Num,
    c1: Num,
    g: u64,
}

/// Euclid on (r0, r1), r0 ≥ r1, until r1 ≤ bound (bound 0: to the end). `None` when a
/// quotient is too large for a word-level run: the caller takes GMP's path.
fn euclid(mut r0: Num, mut r1: Num, bound: &Num) -> Option<Stop> {
    let (mut c0, mut c1) = (Num::small(0), Num::small(1));
    let mut g = 0u64;
    while bound.less_than(&r1) {
        let bounded = bound.n != 0;
        let ([s0, t0, s1, t1], k) = if r0.n > 1 {
            let shift = r0.bits() - 64;
            let lim = bounded.then(|| bound.word_at(shift));
            run(r0.word_at(shift), r1.word_at(shift), lim, false)
        } else {
            run(r0.l[0], r1.l[0], bounded.then_some(bound.l[0]), true)
        };
        if k == 0 {
            return None;
        }
        let n = r0.n;
        let m = if k & 1 == 0 {
            [s0, t0, t1, s1]
        } else {
            [s1, t1, t0, s0]
        };
        let (u, v) = apply_remainders(&r0, &r1, n, m);
        (r0, r1) = if k & 1 == 0 { (u, v) } else { (v, u) };
        (c0, c1) = apply_cofactors(&c0, &c1, [s0, t0, s1, t1]);
        g += u64::from(k);
    }
    Some(Stop { r0, r1, c0, c1, g })
}

fn limbs_of(x: &Num) -> Option<[u64; LIMBS]> {
    if x.n > LIMBS {
        return None;
    }
    let mut out = [0u64; LIMBS];
    out.copy_from_slice(&x.l[..LIMBS]);
    Some(out)
}

/// b⁻¹ mod a as (magnitude limbs, negative), for 0 < b ≤ a < 2^512 given as limbs (least
/// significant first). `None` when gcd(a, b) ≠ 1, or in the rare case of a quotient too large
/// for a word-level run: the caller then takes GMP's general path. The magnitude is at most a.
pub(crate) fn inverse(a: &[u64], b: &[u64]) -> Option<Signed> {
    if a.len() > LIMBS || b.len() > LIMBS {
        return None;
    }
    let (r0, r1) = (Num::from_limbs(a), Num::from_limbs(b));
    if r1.n == 0 || r0.less_than(&r1) {
        return None;
    }
    let stop = euclid(r0, r1, &Num::small(0))?;
    if stop.r0.n != 1 || stop.r0.l[0] != 1 {
        return None;
    }
    Some((limbs_of(&stop.c0)?, stop.g & 1 == 0))
}

/// A signed number as limbs: magnitude and sign (true: negative).
pub(crate) type Signed = ([u64; LIMBS], bool);

/// The GMP integer of a [`Signed`].
pub(crate) fn to_integer((magnitude, negative): Signed) -> rug::Integer {
    let v = rug::Integer::from_digits(&magnitude, rug::integer::Order::Lsf);
    if negative {
        -v
    } else {
        v
    }
}

/// Partial Euclid on (a, b), a ≥ b ≥ 0, down to the first remainder r1 ≤ bound, in the shape
/// of [`super::xgcd::partial_xgcd`]: (co2, co1, r2, r1) with r_i ≡ −co_i·b (mod a), each as
/// (magnitude, negative). Unlike that one (chiavdf's), it never steps past the first
/// remainder at or below the bound. `None` where a quotient needs GMP's path.
pub(crate) fn partial(a: &[u64], b: &[u64], bound: &[u64]) -> Option<[Signed; 4]> {
    if a.len() > LIMBS || b.len() > LIMBS || bound.len() > LIMBS {
        return None;
    }
    let (r0, r1) = (Num::from_limbs(a), Num::from_limbs(b));
    if r0.less_than(&r1) {
        return None;
    }
    let stop = euclid(r0, r1, &Num::from_limbs(bound))?;
    // co_j = −T_j = (−1)^j·|T_j|.
    let odd = stop.g & 1 == 1;
    Some([
        (limbs_of(&stop.c0)?, odd),
        (limbs_of(&stop.c1)?, !odd),
        (limbs_of(&stop.r0)?, false),
        (limbs_of(&stop.r1)?, false),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use rug::ops::RemRounding;
    use rug::Integer;

    /// splitmix64: a fixed stream of test inputs without a random-number dependency.
    struct Stream(u64);

    impl Stream {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }

        /// A number of at most `bits` bits.
        fn bits(&mut self, bits: u32) -> Integer {
            let limbs: Vec<u64> = (0..bits.div_ceil(64)).map(|_| self.next()).collect();
            Integer::from_digits(&limbs, rug::integer::Order::Lsf).keep_bits(bits)
        }
    }

    fn check(a: &Integer, b: &Integer) {
        let want = b.clone().invert(a).ok();
        let got = inverse(a.as_limbs(), b.as_limbs()).map(|v| to_integer(v).rem_euc(a));
        match (&want, &got) {
            (Some(w), Some(g)) => assert_eq!(g, w, "a = {a}, b = {b}"),
            (None, Some(g)) => panic!("no inverse exists, got {g}: a = {a}, b = {b}"),
            // A refusal is allowed (GMP takes over); count them in the caller.
            (_, None) => {}
        }
    }

    #[test]
    fn inverses_match_gmp_on_random_and_edge_inputs() {
        let mut rng = Stream(20261207);
        let mut refused = 0;
        for bits in [2u32, 63, 64, 65, 127, 128, 129, 200, 256, 383, 511, 512] {
            for _ in 0..2000 {
                let a = rng.bits(bits) | 1u32;
                let mut b = rng.bits(bits).rem_euc(&a);
                if b == 0 {
                    b += 1;
                }
                check(&a, &b);
                if b.clone().invert(&a).is_ok() && inverse(a.as_limbs(), b.as_limbs()).is_none() {
                    refused += 1;
                }
            }
        }
        // Edge shapes: b = 1, b = a − 1, Fibonacci neighbours (all quotients 1), a huge
        // first quotient (refused or right), powers of two.
        let mut fib = (Integer::from(1), Integer::from(1));
        while fib.1.significant_bits() < 511 {
            fib = (fib.1.clone(), Integer::from(&fib.0 + &fib.1));
        }
        let cases = [
            (
                Integer::from(Integer::u_pow_u(2, 511)) + 1,
                Integer::from(1),
            ),
            (
                Integer::from(Integer::u_pow_u(2, 511)) + 1,
                Integer::from(Integer::u_pow_u(2, 511)),
            ),
            (fib.1.clone(), fib.0.clone()),
            (
                Integer::from(Integer::u_pow_u(2, 511)) - 1,
                Integer::from(3),
            ),
            (
                Integer::from(Integer::u_pow_u(2, 500)) + 7,
                Integer::from(Integer::u_pow_u(2, 300)) + 1,
            ),
        ];
        for (a, b) in &cases {
            check(a, b);
        }
        // The fallback is for rare shapes only.
        assert!(refused < 20, "{refused} of 24,000 random inputs refused");
    }

    #[test]
    fn no_inverse_when_the_gcd_is_not_one() {
        let a = Integer::from(Integer::u_pow_u(3, 300)) * 5u32;
        let b = Integer::from(Integer::u_pow_u(3, 200)) * 7u32;
        assert!(inverse(a.as_limbs(), b.as_limbs()).is_none());
    }

    /// Euclid one quotient at a time: the definition the word-level versions must meet.
    fn plain_partial(
        a: &Integer,
        b: &Integer,
        bound: &Integer,
    ) -> (Integer, Integer, Integer, Integer) {
        let (mut r2, mut r1) = (a.clone(), b.clone());
        let (mut co2, mut co1) = (Integer::new(), Integer::from(-1));
        while r1 != 0 && r1 > *bound {
            let q = Integer::from(&r2 / &r1);
            r2 -= Integer::from(&q * &r1);
            std::mem::swap(&mut r2, &mut r1);
            co2 -= Integer::from(&q * &co1);
            std::mem::swap(&mut co2, &mut co1);
        }
        (co2, co1, r2, r1)
    }

    #[test]
    fn partial_euclid_stops_where_plain_euclid_does() {
        let mut rng = Stream(99);
        let (mut refused, mut chiavdf_later) = (0, 0);
        for bits in [64u32, 65, 128, 200, 256, 400, 511, 512] {
            for _ in 0..2000 {
                let a = rng.bits(bits);
                if a == 0 {
                    continue;
                }
                let b = rng.bits(bits).rem_euc(&a);
                // Bounds from 0 to about √a, the stopping point of NUDUPL and the encoding.
                let bound_bits = rng.next() as u32 % (bits / 2 + 2);
                let bound = rng.bits(bound_bits);
                let want = plain_partial(&a, &b, &bound);
                // chiavdf's word-level bound test (kept for the encoding) may stop later.
                let chia = crate::vdf::xgcd::partial_xgcd(a.clone(), b.clone(), &bound);
                if chia.3 != want.3 {
                    chiavdf_later += 1;
                }
                match partial(a.as_limbs(), b.as_limbs(), bound.as_limbs()) {
                    None => refused += 1,
                    Some(got) => {
                        let got = got.map(to_integer);
                        let want = [
                            want.0.clone(),
                            want.1.clone(),
                            want.2.clone(),
                            want.3.clone(),
                        ];
                        assert_eq!(got, want, "a = {a}, b = {b}, bound = {bound}");
                    }
                }
            }
        }
        assert!(refused < 20, "{refused} of 16,000 refused");
        println!("chiavdf's word-level stop went past the bound's first crossing in {chiavdf_later} of 16,000");
    }

    /// Timing beside GMP, not an assertion: `cargo test --release -p accel --lib
    /// lehmer::tests::speed -- --ignored --nocapture`.
    #[test]
    #[ignore = "timing, run by hand in release"]
    fn speed() {
        let mut rng = Stream(7);
        let pairs: Vec<(Integer, Integer)> = (0..20_000)
            .map(|_| {
                let a = rng.bits(511) | 1u32;
                let b = rng.bits(511).rem_euc(&a);
                (a, b)
            })
            .collect();
        let t = std::time::Instant::now();
        let mut sum = 0u64;
        for (a, b) in &pairs {
            sum = sum.wrapping_add(inverse(a.as_limbs(), b.as_limbs()).map_or(0, |(m, _)| m[0]));
        }
        let ours = t.elapsed().as_secs_f64() / pairs.len() as f64;
        let t = std::time::Instant::now();
        for (a, b) in &pairs {
            let (_, s) = crate::vdf::form::gcd_cofactor_for_tests(b, a);
            sum = sum.wrapping_add(s.to_u64_wrapping());
        }
        let gmp = t.elapsed().as_secs_f64() / pairs.len() as f64;
        println!(
            "inverse mod a 511-bit: lehmer {:.2} us, mpz_gcdext {:.2} us ({sum})",
            ours * 1e6,
            gmp * 1e6
        );
    }
}
