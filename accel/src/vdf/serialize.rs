//! chiavdf's compressed form encoding ("bqfc"): a reduced form (a, b) of a discriminant of up
//! to 1024 bits in 100 bytes.
//!
//! Layout, for d = the discriminant's bit length rounded up to a multiple of 32:
//! byte 0 flags (bit 0: b < 0, bit 1: t < 0, bit 2: identity (1, 1), bit 3: generator (2, 1)),
//! byte 1 g_size, then little-endian a' (d/16 − g_size bytes), |t'| (d/32 − g_size bytes),
//! g (g_size + 1 bytes) and b0 (g_size + 1 bytes), zero padding to 100 bytes. Here t is the
//! cofactor that a partial extended Euclid on (a, |b|) reaches when the remainder first drops to
//! ⌊√a⌋ or below, g = gcd(a, t), a' = a/g, t' = t/g and b0 = ⌊|b| / a'⌋ (both when g > 1).
//! Decoding recovers b from t through a square root modulo a', and only the canonical encoding
//! of a reduced form is accepted.

use super::form::{Discriminant, Form, MAX_DISCRIMINANT_BITS};
use super::xgcd::partial_cofactor;
use super::VdfError;
use rug::integer::Order;
use rug::ops::{RemRounding, RemRoundingAssign};
use rug::Integer;

/// Bytes of one serialized form (any discriminant size up to 1024 bits).
pub const FORM_BYTES: usize = MAX_DISCRIMINANT_BITS.div_ceil(32) * 3 + 4;

const B_SIGN: u8 = 1;
const T_SIGN: u8 = 2;
const IS_ONE: u8 = 4;
const IS_GEN: u8 = 8;

/// Writes |n| little-endian into exactly `size` bytes.
fn put(out: &mut Vec<u8>, n: &Integer, size: usize) -> Result<(), ()> {
    let digits = n.to_digits::<u8>(Order::Lsf);
    if digits.len() > size {
        return Err(());
    }
    out.extend_from_slice(&digits);
    out.resize(out.len() + size - digits.len(), 0);
    Ok(())
}

/// Serializes a reduced form for a discriminant of `d_bits` bits.
pub(crate) fn serialize(f: &Form, d_bits: usize) -> Result<[u8; FORM_BYTES], VdfError> {
    let mut out = [0u8; FORM_BYTES];
    if d_bits == 0 || d_bits > MAX_DISCRIMINANT_BITS {
        return Err(VdfError::DiscriminantBits(d_bits));
    }
    if f.b == 1 && f.a <= 2 {
        out[0] = if f.a == 2 { IS_GEN } else { IS_ONE };
        return Ok(out);
    }
    let d = d_bits.div_ceil(32) * 32;
    let (a, t, g, b0, sign) = if f.a == f.b {
        (
            f.a.clone(),
            Integer::new(),
            Integer::new(),
            Integer::new(),
            false,
        )
    } else {
        let sign = f.b < 0;
        let bound = Integer::from(f.a.sqrt_ref());
        let t = -partial_cofactor(f.a.clone(), Integer::from(f.b.abs_ref()), &bound);
        let g = Integer::from(f.a.gcd_ref(&t));
        if g == 1 {
            (f.a.clone(), t, g, Integer::new(), sign)
        } else {
            let a = Integer::from(f.a.div_exact_ref(&g));
            let t = Integer::from(t.div_exact_ref(&g));
            let b0 = Integer::from(f.b.abs_ref()) / &a;
            (a, t, g, b0, sign)
        }
    };
    let g_size = (g.significant_bits().max(1) as usize).div_ceil(8) - 1;
    if g_size > 255 || g_size >= d / 32 {
        return Err(VdfError::Unserializable(d_bits));
    }
    let mut v = Vec::with_capacity(FORM_BYTES);
    v.push((u8::from(sign) * B_SIGN) | if t < 0 { T_SIGN } else { 0 });
    v.push(g_size as u8);
    put(&mut v, &a, d / 16 - g_size)
        .and_then(|_| put(&mut v, &t, d / 32 - g_size))
        .and_then(|_| put(&mut v, &g, g_size + 1))
        .and_then(|_| put(&mut v, &b0, g_size + 1))
        .map_err(|_| VdfError::Unserializable(d_bits))?;
    out[..v.len()].copy_from_slice(&v);
    Ok(out)
}

/// Decodes and checks: the bytes must be the canonical encoding of a reduced form of `disc`.
pub(crate) fn deserialize(disc: &Discriminant, bytes: &[u8]) -> Result<Form, VdfError> {
    if bytes.len() != FORM_BYTES {
        return Err(VdfError::FormLength {
            expected: FORM_BYTES,
            got: bytes.len(),
        });
    }
    let (a, b) = if bytes[0] & (IS_ONE | IS_GEN) != 0 {
        let a = if bytes[0] & IS_GEN != 0 { 2 } else { 1 };
        (Integer::from(a), Integer::from(1))
    } else {
        decompress(disc, bytes).ok_or(VdfError::BadForm)?
    };
    let f = Form::from_ab(a, b, disc).ok_or(VdfError::BadForm)?;
    if !f.is_reduced() || serialize(&f, disc.bits())?[..] != bytes[..] {
        return Err(VdfError::BadForm);
    }
    Ok(f)
}

fn decompress(disc: &Discriminant, s: &[u8]) -> Option<(Integer, Integer)> {
    let d = disc.bits().div_ceil(32) * 32;
    let g_size = s[1] as usize;
    if g_size >= d / 32 {
        return None;
    }
    let mut off = 2;
    let mut take = |n: usize| {
        let v = Integer::from_digits(&s[off..off + n], Order::Lsf);
        off += n;
        v
    };
    let a1 = take(d / 16 - g_size);
    let mut t = take(d / 32 - g_size);
    let g = take(g_size + 1);
    let b0 = take(g_size + 1);
    if s[0] & T_SIGN != 0 {
        t = -t;
    }
    if t == 0 {
        return Some((a1.clone(), a1));
    }
    if a1 == 0 {
        return None;
    }
    let t_pos = if t < 0 {
        Integer::from(&t + &a1)
    } else {
        t.clone()
    };
    let (one, mut t_inv, _) = t_pos.extended_gcd(a1.clone(), Integer::new());
    if one != 1 {
        return None;
    }
    if t_inv < 0 {
        t_inv += &a1;
    }
    // b ≡ √(t² D) / t (mod a').
    let dm = disc.value().clone().rem_euc(&a1);
    let mut sq = Integer::from(t.square_ref());
    sq.rem_euc_assign(&a1);
    sq *= dm;
    sq %= &a1;
    if !sq.is_perfect_square() {
        return None;
    }
    sq.sqrt_mut();
    let mut b = sq * t_inv;
    b %= &a1;
    let a = if g > 1 {
        Integer::from(&a1 * &g)
    } else {
        a1.clone()
    };
    if b0 > 0 {
        b += a1 * b0;
    }
    if s[0] & B_SIGN != 0 {
        b = -b;
    }
    if Integer::from(b.abs_ref()) > a {
        return None;
    }
    Some((a, b))
}

impl Form {
    /// chiavdf's 100-byte encoding for discriminant `d`.
    pub fn to_bytes(&self, d: &Discriminant) -> Result<[u8; FORM_BYTES], VdfError> {
        serialize(self, d.bits())
    }

    /// Decodes the canonical encoding of a reduced form of `d`.
    pub fn from_bytes(bytes: &[u8], d: &Discriminant) -> Result<Self, VdfError> {
        deserialize(d, bytes)
    }

    pub fn from_hex(s: &str, d: &Discriminant) -> Result<Self, VdfError> {
        let bytes = hex::decode(s.trim().trim_start_matches("0x"))
            .map_err(|e| VdfError::Hex(e.to_string()))?;
        Self::from_bytes(&bytes, d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_of_many_forms() {
        for bits in [128usize, 512, 1024] {
            let d = Discriminant::from_seed(&[bits as u8, 7], bits).unwrap();
            let g = Form::generator(&d);
            assert_eq!(g.to_bytes(&d).unwrap()[0], IS_GEN);
            assert_eq!(Form::identity(&d).to_bytes(&d).unwrap()[0], IS_ONE);
            let mut f = g.clone();
            for i in 0..200 {
                f = if i % 3 == 0 {
                    f.compose(&g, &d)
                } else {
                    f.square(&d)
                };
                let bytes = f.to_bytes(&d).unwrap();
                assert_eq!(
                    Form::from_bytes(&bytes, &d).unwrap(),
                    f,
                    "bits {bits} step {i}"
                );
                let mut inv = f.clone();
                inv.b = -inv.b;
                inv.reduce();
                let ib = inv.to_bytes(&d).unwrap();
                assert_eq!(Form::from_bytes(&ib, &d).unwrap(), inv);
            }
        }
    }

    #[test]
    fn bad_bytes_are_refused() {
        let d = Discriminant::from_seed(b"seed", 512).unwrap();
        let f = Form::generator(&d).pow(&Integer::from(12345), &d);
        let bytes = f.to_bytes(&d).unwrap();
        assert!(matches!(
            Form::from_bytes(&bytes[..99], &d),
            Err(VdfError::FormLength { .. })
        ));
        let mut refused = 0;
        for i in 2..60 {
            let mut b = bytes;
            b[i] ^= 0x21;
            match Form::from_bytes(&b, &d) {
                Err(_) => refused += 1,
                Ok(g) => assert!(g.is_reduced() && g.to_bytes(&d).unwrap() == b),
            }
        }
        assert!(refused > 40);
        assert!(Form::from_hex("zz", &d).is_err());
    }
}
