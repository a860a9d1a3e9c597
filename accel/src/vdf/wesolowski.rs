//! Wesolowski proofs as chiavdf makes them: y = x^(2^T), B = HashPrime(ser(x) ‖ ser(y), 264
//! bits, top bit forced), π = x^⌊2^T / B⌋, and the check π^B · x^(2^T mod B) = y.
//! π is unique as a reduced form, so any correct prover gives chiavdf's bytes.

use super::form::{Discriminant, Form};
use super::hash_prime::hash_prime;
use super::serialize::FORM_BYTES;
use super::VdfError;
use rayon::prelude::*;
use rug::Integer;

/// Bits of the Fiat-Shamir prime B.
pub const B_BITS: usize = 264;

/// chiavdf's `GetB`.
pub fn get_b(d: &Discriminant, x: &Form, y: &Form) -> Result<Integer, VdfError> {
    let mut seed = x.to_bytes(d)?.to_vec();
    seed.extend_from_slice(&y.to_bytes(d)?);
    Ok(hash_prime(&seed, B_BITS, &[B_BITS - 1]))
}

/// Output and proof of one evaluation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proof {
    pub y: Form,
    pub pi: Form,
}

impl Proof {
    /// `ser(y) ‖ ser(π)`, exactly what chiavdf's `prove` returns.
    pub fn to_bytes(&self, d: &Discriminant) -> Result<Vec<u8>, VdfError> {
        let mut out = self.y.to_bytes(d)?.to_vec();
        out.extend_from_slice(&self.pi.to_bytes(d)?);
        Ok(out)
    }

    pub fn from_bytes(bytes: &[u8], d: &Discriminant) -> Result<Self, VdfError> {
        if bytes.len() != 2 * FORM_BYTES {
            return Err(VdfError::ProofLength {
                expected: 2 * FORM_BYTES,
                got: bytes.len(),
            });
        }
        Ok(Self {
            y: Form::from_bytes(&bytes[..FORM_BYTES], d)?,
            pi: Form::from_bytes(&bytes[FORM_BYTES..], d)?,
        })
    }
}

/// Block size of the proof: minimises T/k compositions plus 2^(k+1) for the final product.
fn block_bits(t: u64) -> u32 {
    (1..=20u32)
        .min_by_key(|&k| t / u64::from(k) + (1u64 << (k + 1)))
        .unwrap_or(1)
}

/// Evaluates T squarings of `x` and proves them, on the calling thread.
pub fn prove(d: &Discriminant, x: &Form, iterations: u64) -> Result<Proof, VdfError> {
    prove_with_progress(d, x, iterations, None, |_| {})
}

/// As [`prove`]; the proof (not the squarings, which are sequential by nature) is spread over
/// `pool` when one is given. `progress(i)` is called every 2^16 squarings.
pub fn prove_with_progress(
    d: &Discriminant,
    x: &Form,
    iterations: u64,
    pool: Option<&rayon::ThreadPool>,
    mut progress: impl FnMut(u64),
) -> Result<Proof, VdfError> {
    let k = block_bits(iterations);
    let mut checkpoints = Vec::with_capacity((iterations / u64::from(k) + 1) as usize);
    let mut y = x.clone();
    for i in 0..iterations {
        if i % u64::from(k) == 0 {
            checkpoints.push(y.clone());
        }
        y = y.square(d);
        if i & 0xffff == 0xffff {
            progress(i + 1);
        }
    }
    let b = get_b(d, x, &y)?;
    let digits = proof_digits(iterations, k, &b);
    let buckets = match pool {
        None => fill_buckets(d, &checkpoints, &digits, k),
        Some(pool) => pool.install(|| {
            let parts = rayon::current_num_threads().max(1);
            let chunk = digits.len().div_ceil(parts).max(1);
            checkpoints
                .par_chunks(chunk)
                .zip(digits.par_chunks(chunk))
                .map(|(c, dg)| fill_buckets(d, c, dg, k))
                .reduce_with(|l, r| merge_buckets(d, l, r))
                .unwrap_or_else(|| vec![None; 1usize << k])
        }),
    };
    Ok(Proof {
        y,
        pi: combine_buckets(d, &buckets),
    })
}

/// q_i = ⌊2^k · (2^(T − k(i+1)) mod B) / B⌋ for i < ⌊T/k⌋: the k-bit digits of ⌊2^T / B⌋,
/// least significant first.
fn proof_digits(t: u64, k: u32, b: &Integer) -> Vec<u32> {
    let blocks = (t / u64::from(k)) as usize;
    let mut digits = vec![0u32; blocks];
    if blocks == 0 {
        return digits;
    }
    // r = 2^(T − k·blocks) mod B for the last block, then × 2^k per block downwards.
    let mut r = Integer::from(2)
        .pow_mod(&Integer::from(t - u64::from(k) * blocks as u64), b)
        .expect("B > 0");
    for digit in digits.iter_mut().rev() {
        *digit = (Integer::from(&r << k) / b).to_u32().expect("digit < 2^k");
        r <<= k;
        r %= b;
    }
    digits
}

/// bucket[q] = Π of the checkpoints x_i = x^(2^(k i)) whose digit q_i is q.
fn fill_buckets(
    d: &Discriminant,
    checkpoints: &[Form],
    digits: &[u32],
    k: u32,
) -> Vec<Option<Form>> {
    let mut buckets: Vec<Option<Form>> = vec![None; 1usize << k];
    for (x, &digit) in checkpoints.iter().zip(digits) {
        if digit != 0 {
            let slot = &mut buckets[digit as usize];
            *slot = Some(match slot.take() {
                None => x.clone(),
                Some(acc) => acc.compose(x, d),
            });
        }
    }
    buckets
}

fn merge_buckets(
    d: &Discriminant,
    l: Vec<Option<Form>>,
    r: Vec<Option<Form>>,
) -> Vec<Option<Form>> {
    l.into_iter()
        .zip(r)
        .map(|pair| match pair {
            (Some(a), Some(b)) => Some(a.compose(&b, d)),
            (a, b) => a.or(b),
        })
        .collect()
}

/// π = Π_q bucket_q^q, by a running product from the top digit down (2·2^k compositions).
fn combine_buckets(d: &Discriminant, buckets: &[Option<Form>]) -> Form {
    let mut running: Option<Form> = None;
    let mut result: Option<Form> = None;
    for bucket in buckets.iter().skip(1).rev() {
        if let Some(f) = bucket {
            running = Some(match running {
                None => f.clone(),
                Some(r) => r.compose(f, d),
            });
        }
        if let Some(r) = &running {
            result = Some(match result {
                None => r.clone(),
                Some(acc) => acc.compose(r, d),
            });
        }
    }
    result.unwrap_or_else(|| Form::identity(d))
}

/// Accepts exactly when π^B · x^(2^T mod B) = y with B = GetB(x, y).
pub fn verify(
    d: &Discriminant,
    x: &Form,
    y: &Form,
    pi: &Form,
    iterations: u64,
) -> Result<bool, VdfError> {
    let b = get_b(d, x, y)?;
    let r = Integer::from(2)
        .pow_mod(&Integer::from(iterations), &b)
        .expect("B > 0");
    let lhs = pi.pow(&b, d).compose(&x.pow(&r, d), d);
    Ok(lhs == *y)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prove_then_verify_and_tamper() {
        let d = Discriminant::from_seed(b"\xab\xcd", 512).unwrap();
        let x = Form::generator(&d);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .unwrap();
        for t in [0u64, 1, 2, 7, 100, 1000, 2345] {
            let p = prove(&d, &x, t).unwrap();
            let pp = prove_with_progress(&d, &x, t, Some(&pool), |_| {}).unwrap();
            assert_eq!(p, pp, "parallel proof, T = {t}");
            assert_eq!(p.y, x.pow(&(Integer::from(1) << t as u32), &d));
            assert!(verify(&d, &x, &p.y, &p.pi, t).unwrap(), "T = {t}");
            assert!(!verify(&d, &x, &p.y, &p.pi, t + 1).unwrap());
            let bytes = p.to_bytes(&d).unwrap();
            assert_eq!(Proof::from_bytes(&bytes, &d).unwrap(), p);
            let wrong = p.y.compose(&x, &d);
            assert!(!verify(&d, &x, &wrong, &p.pi, t).unwrap());
        }
        assert!(matches!(
            Proof::from_bytes(&[0u8; 10], &d),
            Err(VdfError::ProofLength { .. })
        ));
    }
}
