//! Binary quadratic forms (a, b, c) with b² − 4ac = D < 0, kept reduced: |b| ≤ a ≤ c, and
//! b ≥ 0 when |b| = a or a = c. Reduced forms are unique in their class, which is what makes
//! serialized outputs comparable byte for byte.
// GMP calls through gmp-mpfr-sys where rug has no in-place equivalent.
#![allow(unsafe_code)]

use super::hash_prime::hash_prime;
use super::VdfError;

/// Largest discriminant supported (the compressed encoding's limit), in bits.
pub const MAX_DISCRIMINANT_BITS: usize = 1024;
use rug::ops::{DivRoundingAssign, RemRounding, RemRoundingAssign};
use rug::{Assign, Integer};

/// A negative discriminant D ≡ 1 (mod 8), as chiavdf derives it: −HashPrime(seed, bits) with
/// bits 0, 1, 2 and bits − 1 forced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Discriminant {
    d: Integer,
    /// ⌊|D|^¼⌋, the stopping bound of NUDUPL's partial reduction.
    l: Integer,
}

impl Discriminant {
    /// chiavdf's `create_discriminant(challenge, bits)`.
    pub fn from_seed(seed: &[u8], bits: usize) -> Result<Self, VdfError> {
        if bits == 0 || !bits.is_multiple_of(8) || bits > MAX_DISCRIMINANT_BITS {
            return Err(VdfError::DiscriminantBits(bits));
        }
        if seed.is_empty() {
            return Err(VdfError::EmptySeed);
        }
        let p = hash_prime(seed, bits, &[0, 1, 2, bits - 1]);
        Ok(Self::new(-p))
    }

    /// A discriminant given as an integer (for example chiavdf's decimal string): must be
    /// negative, ≡ 1 (mod 4) and at most 1024 bits.
    pub fn from_integer(d: Integer) -> Result<Self, VdfError> {
        let bits = d.significant_bits() as usize;
        if d >= 0 || d.mod_u(4) != 1 || bits > MAX_DISCRIMINANT_BITS {
            return Err(VdfError::DiscriminantBits(bits));
        }
        Ok(Self::new(d))
    }

    fn new(d: Integer) -> Self {
        let l = Integer::from(d.abs_ref()).root(4);
        Self { d, l }
    }

    pub(crate) fn fourth_root(&self) -> &Integer {
        &self.l
    }

    pub fn value(&self) -> &Integer {
        &self.d
    }

    /// Bit length of |D|, which sizes the serialization.
    pub fn bits(&self) -> usize {
        self.d.significant_bits() as usize
    }
}

impl std::fmt::Display for Discriminant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.d)
    }
}

/// (g, s) with g = gcd(x, y) = s·x + t·y, without computing t (GMP skips that work).
fn gcd_cofactor(x: &Integer, y: &Integer) -> (Integer, Integer) {
    let mut g = Integer::new();
    let mut s = Integer::new();
    // SAFETY: all pointers come from live, initialized rug Integers; `g` and `s` are distinct
    // outputs, and GMP documents a null `t` as "do not compute".
    unsafe {
        gmp_mpfr_sys::gmp::mpz_gcdext(
            g.as_raw_mut(),
            s.as_raw_mut(),
            std::ptr::null_mut(),
            x.as_raw(),
            y.as_raw(),
        );
    }
    (g, s)
}

#[cfg(test)]
pub(crate) fn gcd_cofactor_for_tests(x: &Integer, y: &Integer) -> (Integer, Integer) {
    gcd_cofactor(x, y)
}

/// x⁻¹ mod m (some representative) for |x| ≤ m < 2^512 on fixed limbs; `None` when the gcd
/// is not 1 or the sizes need GMP's path.
fn inverse_mod(x: &Integer, m: &Integer) -> Option<Integer> {
    let v = super::lehmer::to_integer(super::lehmer::inverse(m.as_limbs(), x.as_limbs())?);
    // The inverse of |x|, then of x.
    Some(if *x < 0 { -v } else { v })
}

/// NUDUPL's and NUCOMP's partial Euclid on (a, k), 0 ≤ k < a, down to the bound: (co2, co1,
/// r1). On fixed limbs where the sizes allow; GMP (chiavdf's variant) otherwise. Either
/// stopping point gives the same form once it is reduced.
fn partial_reduction(a: &Integer, k: Integer, bound: &Integer) -> (Integer, Integer, Integer) {
    let signed = super::lehmer::to_integer;
    if k >= 0 {
        if let Some([co2, co1, _, r1]) =
            super::lehmer::partial(a.as_limbs(), k.as_limbs(), bound.as_limbs())
        {
            return (signed(co2), signed(co1), signed(r1));
        }
    }
    let (co2, co1, _, r1) = super::xgcd::partial_xgcd(a.clone(), k, bound);
    (co2, co1, r1)
}

/// A positive definite binary quadratic form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Form {
    pub a: Integer,
    pub b: Integer,
    pub c: Integer,
}

impl Form {
    /// The form (a, b, (b² − D) / 4a), if that division is exact and a > 0.
    pub fn from_ab(a: Integer, b: Integer, d: &Discriminant) -> Option<Self> {
        if a <= 0 {
            return None;
        }
        let mut num = Integer::from(&b * &b);
        num -= &d.d;
        let four_a = Integer::from(&a << 2);
        if !num.is_divisible(&four_a) {
            return None;
        }
        num.div_exact_mut(&four_a);
        Some(Self { a, b, c: num })
    }

    /// The identity (1, 1, (1 − D)/4).
    pub fn identity(d: &Discriminant) -> Self {
        Self::from_ab(Integer::from(1), Integer::from(1), d).expect("D ≡ 1 mod 4")
    }

    /// The generator chiavdf starts from: (2, 1, (1 − D)/8).
    pub fn generator(d: &Discriminant) -> Self {
        Self::from_ab(Integer::from(2), Integer::from(1), d).expect("D ≡ 1 mod 8")
    }

    pub fn is_reduced(&self) -> bool {
        let abs_b = Integer::from(self.b.abs_ref());
        if abs_b > self.a || self.a > self.c {
            return false;
        }
        if (abs_b == self.a || self.a == self.c) && self.b < 0 {
            return false;
        }
        true
    }

    /// Brings b into (−a, a] by the substitution x → x + ry.
    fn normalize(&mut self, t: &mut Integer, r: &mut Integer) {
        // -a < b <= a already?
        let inside = if self.b > 0 {
            self.b <= self.a
        } else {
            self.b.cmp_abs(&self.a) == std::cmp::Ordering::Less
        };
        if inside {
            return;
        }
        // r = floor((a - b) / 2a)
        t.assign(&self.a - &self.b);
        r.assign(&self.a << 1);
        t.div_floor_assign(&*r);
        std::mem::swap(r, t);
        // c += r * (b + a r); b += 2 a r
        t.assign(&self.a * &*r);
        self.b += &*t;
        self.c += &self.b * &*r;
        self.b += &*t;
    }

    /// Reduces in place to the unique reduced form of the class.
    pub fn reduce(&mut self) {
        let mut t = Integer::new();
        let mut r = Integer::new();
        self.normalize(&mut t, &mut r);
        while self.a > self.c || (self.a == self.c && self.b < 0) {
            std::mem::swap(&mut self.a, &mut self.c);
            self.b = -std::mem::take(&mut self.b);
            self.normalize(&mut t, &mut r);
        }
    }

    /// The square of this form, reduced: NUDUPL (Shanks; Jacobson and van der Poorten), which
    /// runs the reducing continued fraction on half-size numbers before the product is formed,
    /// then a final (short) reduction.
    pub fn square(&self, d: &Discriminant) -> Self {
        let mut f = self.nudupl(d);
        f.reduce();
        f
    }

    fn nudupl(&self, d: &Discriminant) -> Self {
        // s = gcd(b, a) = v·b + w·a;  A = a/s;  k = −c·v mod A  (so the unreduced square is
        // (A², b + 2Ak, ·) up to the factor s).
        let (s, v) = match inverse_mod(&self.b, &self.a) {
            Some(v) => (Integer::from(1), v),
            None => gcd_cofactor(&self.b, &self.a),
        };
        let scaled;
        let (big_a, c1) = if s == 1 {
            (&self.a, &self.c)
        } else {
            scaled = (
                Integer::from(self.a.div_exact_ref(&s)),
                Integer::from(&self.c * &s),
            );
            (&scaled.0, &scaled.1)
        };
        let mut k = Integer::from(&self.c * &v);
        k = -k;
        k.rem_euc_assign(big_a);
        let bound = d.fourth_root();
        if *big_a < *bound {
            let t = Integer::from(big_a * &k);
            let mut b = Integer::from(&t << 1);
            b += &self.b;
            let mut c = Integer::from(&self.b + &t);
            c *= &k;
            c += c1;
            c.div_exact_mut(big_a);
            let a = Integer::from(big_a.square_ref());
            return Self { a, b, c };
        }
        // Partial Euclid on (A, k) down to ⌊|D|^¼⌋: r1 ≡ −co1·k (mod A).
        let (co2, co1, r1) = partial_reduction(big_a, k, bound);
        // m2 = (b·r1 − c1·co1) / A
        let mut m2 = Integer::from(&self.b * &r1);
        m2 -= c1 * &co1;
        m2.div_exact_mut(big_a);
        // a' = ±(r1² − co1·m2)
        let mut a = Integer::from(r1.square_ref());
        a -= &co1 * &m2;
        if co1 >= 0 {
            a = -a;
        }
        // b' = (2(A·r1 − a'·co2)/co1 − b) mod 2a'
        let mut b = Integer::from(big_a * &r1);
        b -= &a * &co2;
        b <<= 1;
        b.div_exact_mut(&co1);
        b -= &self.b;
        let two_a = Integer::from(&a << 1);
        b.rem_floor_assign(&two_a);
        let mut c = Integer::from(b.square_ref());
        c -= &d.d;
        c.div_exact_mut(&a);
        c >>= 2;
        if a < 0 {
            a = -a;
            c = -c;
        }
        Self { a, b, c }
    }

    /// The square by the plain formula (a reference for tests).
    pub fn square_plain(&self, d: &Discriminant) -> Self {
        // d1 = gcd(b, a) = u b + v a;  A = a / d1;  k = −c u mod A;
        // a' = A², b' = b + 2 A k, c' = (b'² − D) / 4a'.
        let (g, u, _) = self.b.clone().extended_gcd(self.a.clone(), Integer::new());
        let big_a = Integer::from(self.a.div_exact_ref(&g));
        let mut k = Integer::from(&self.c * &u);
        k = -k;
        k.rem_euc_assign(&big_a);
        let mut b = Integer::from(&big_a * &k);
        b <<= 1;
        b += &self.b;
        let a = Integer::from(big_a.square_ref());
        let mut f = Self::with_ab(a, b, d);
        f.reduce();
        f
    }

    /// The product of two forms of the same discriminant, reduced: NUCOMP (Shanks; Jacobson and
    /// van der Poorten), the composition counterpart of NUDUPL.
    pub fn compose(&self, other: &Self, d: &Discriminant) -> Self {
        let mut f = self.nucomp(other, d);
        f.reduce();
        f
    }

    fn nucomp(&self, other: &Self, d: &Discriminant) -> Self {
        let (f, g) = if self.a > other.a {
            (other, self)
        } else {
            (self, other)
        };
        let mut a1 = f.a.clone();
        let mut a2 = g.a.clone();
        let mut c2 = g.c.clone();
        // ss = (b1 + b2)/2, m = (b1 − b2)/2 (both exact: b1 ≡ b2 mod 2).
        let ss = Integer::from(&f.b + &g.b) >> 1u32;
        let m = Integer::from(&f.b - &g.b) >> 1u32;
        // sp = gcd(a2 mod a1, a1) = v1·(a2 mod a1) + ·a1
        let t = a2.clone().rem_euc(&a1);
        let (sp, v1) = if t == 0 {
            (a1.clone(), Integer::new())
        } else if let Some(v) = inverse_mod(&t, &a1) {
            (Integer::from(1), v)
        } else {
            let (g0, v, _) = t.extended_gcd(a1.clone(), Integer::new());
            (g0, v)
        };
        let mut k = Integer::from(&m * &v1);
        k.rem_euc_assign(&a1);
        if sp != 1 {
            let (s, v2, u2) = ss.clone().extended_gcd(sp, Integer::new());
            k *= &u2;
            k -= Integer::from(&v2 * &c2);
            if s != 1 {
                a1.div_exact_mut(&s);
                a2.div_exact_mut(&s);
                c2 *= &s;
            }
            k.rem_euc_assign(&a1);
        }
        let bound = d.fourth_root();
        if a1 < *bound {
            let t = Integer::from(&a2 * &k);
            let a = Integer::from(&a2 * &a1);
            let mut b = Integer::from(&t << 1);
            b += &g.b;
            let mut c = Integer::from(&g.b + &t);
            c *= &k;
            c += &c2;
            c.div_exact_mut(&a1);
            return Self { a, b, c };
        }
        let (co2, co1, r1) = partial_reduction(&a1, k, bound);
        // m1 = (m·co1 + a2·r1) / a1;  m2 = (ss·r1 − c2·co1) / a1
        let t = Integer::from(&a2 * &r1);
        let mut m1 = Integer::from(&m * &co1);
        m1 += &t;
        m1.div_exact_mut(&a1);
        let mut m2 = Integer::from(&ss * &r1);
        m2 -= Integer::from(&c2 * &co1);
        m2.div_exact_mut(&a1);
        // a = −sgn(co1)·(r1·m1 − co1·m2)
        let mut a = Integer::from(&r1 * &m1);
        a -= Integer::from(&co1 * &m2);
        if co1 >= 0 {
            a = -a;
        }
        // b = (2(t − a·co2)/co1 − b2) mod 2a
        let mut b = Integer::from(&a * &co2);
        b = t - b;
        b <<= 1;
        b.div_exact_mut(&co1);
        b -= &g.b;
        let two_a = Integer::from(&a << 1);
        b.rem_floor_assign(&two_a);
        let mut c = Integer::from(b.square_ref());
        c -= &d.d;
        c.div_exact_mut(&a);
        c >>= 2;
        if a < 0 {
            a = -a;
            c = -c;
        }
        Self { a, b, c }
    }

    /// The product by Cohen's Algorithm 5.4.7 (a reference for tests).
    pub fn compose_plain(&self, other: &Self, d: &Discriminant) -> Self {
        let (f1, f2) = if self.a > other.a {
            (other, self)
        } else {
            (self, other)
        };
        // Cohen, Algorithm 5.4.7.
        let s = Integer::from(&f1.b + &f2.b) >> 1u32;
        let n = Integer::from(&f2.b - &s);
        let (dd, y1) = if f2.a.is_divisible(&f1.a) {
            (f1.a.clone(), Integer::new())
        } else {
            let (g, u, _) = f2.a.clone().extended_gcd(f1.a.clone(), Integer::new());
            (g, u)
        };
        let (d1, x2, y2) = if s.is_divisible(&dd) {
            (dd, Integer::new(), Integer::from(-1))
        } else {
            let (g, x, y) = s.clone().extended_gcd(dd, Integer::new());
            (g, x, -y)
        };
        let v1 = Integer::from(f1.a.div_exact_ref(&d1));
        let v2 = Integer::from(f2.a.div_exact_ref(&d1));
        let mut r = Integer::from(&y1 * &y2);
        r *= &n;
        r -= Integer::from(&x2 * &f2.c);
        r.rem_euc_assign(&v1);
        let mut b = Integer::from(&v2 * &r);
        b <<= 1;
        b += &f2.b;
        let a = Integer::from(&v1 * &v2);
        let mut f = Self::with_ab(a, b, d);
        f.reduce();
        f
    }

    fn with_ab(a: Integer, b: Integer, d: &Discriminant) -> Self {
        let mut c = Integer::from(&b * &b);
        c -= &d.d;
        c.div_exact_mut(&Integer::from(&a << 2));
        Self { a, b, c }
    }

    /// This form to the power `e` ≥ 0, reduced.
    pub fn pow(&self, e: &Integer, d: &Discriminant) -> Self {
        let mut acc = Self::identity(d);
        if *e <= 0 {
            return acc;
        }
        for i in (0..e.significant_bits()).rev() {
            acc = acc.square(d);
            if e.get_bit(i) {
                acc = acc.compose(self, d);
            }
        }
        acc
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn disc() -> Discriminant {
        Discriminant::from_seed(b"\x01\x02", 256).unwrap()
    }

    #[test]
    fn discriminant_shape() {
        let d = disc();
        assert_eq!(d.bits(), 256);
        assert_eq!(Integer::from(-d.value()).mod_u(8), 7);
        assert!(Discriminant::from_seed(b"", 256).is_err());
        assert!(Discriminant::from_seed(b"x", 100).is_err());
        assert!(Discriminant::from_seed(b"x", 2048).is_err());
    }

    #[test]
    fn group_laws() {
        let d = disc();
        let g = Form::generator(&d);
        let id = Form::identity(&d);
        assert!(g.is_reduced() && id.is_reduced());
        assert_eq!(g.compose(&id, &d), g);
        let g2 = g.square(&d);
        assert_eq!(g2, g.compose(&g, &d));
        // NUDUPL and NUCOMP agree with the plain formulas along a long chain.
        let g3 = g2.compose_plain(&g, &d);
        let mut f = g.clone();
        for i in 0..2000 {
            let want = f.square_plain(&d);
            f = f.square(&d);
            assert_eq!(f, want, "step {i}");
            if i % 7 == 0 {
                let want = f.compose_plain(&g3, &d);
                f = f.compose(&g3, &d);
                assert_eq!(f, want, "compose at step {i}");
                let h = f.square(&d);
                assert_eq!(h.compose(&f, &d), f.compose_plain(&h, &d));
            }
        }
        let g3 = g2.compose(&g, &d);
        assert_eq!(g3, g.compose(&g2, &d));
        assert_eq!(g3.square(&d), g.pow(&Integer::from(6), &d));
        assert_eq!(
            g.pow(&Integer::from(1000), &d),
            g.pow(&Integer::from(999), &d).compose(&g, &d)
        );
        for f in [&g2, &g3] {
            assert!(f.is_reduced());
            let disc = Integer::from(&f.b * &f.b) - Integer::from(&f.a * &f.c) * 4;
            assert_eq!(&disc, d.value());
        }
        // The inverse (a, −b, c) composes to the identity.
        let mut inv = g3.clone();
        inv.b = -inv.b;
        inv.reduce();
        assert_eq!(g3.compose(&inv, &d), id);
    }
}
