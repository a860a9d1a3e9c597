//! Hash-to-prime as chiavdf defines it: SHA-256 over a big-endian counter added to the seed,
//! concatenated to `bits` bits, with some bits forced to one, until a probable prime.

use rug::integer::{IsPrime, Order};
use rug::Integer;
use sha2::{Digest, Sha256};

/// The first probable prime of the sequence for `seed`: each candidate takes the next
/// `bits / 8` bytes of SHA-256(seed + 1), SHA-256(seed + 2), ... (the seed read as a
/// big-endian counter that wraps), big-endian, with the bits in `force` and bit 0 set.
pub fn hash_prime(seed: &[u8], bits: usize, force: &[usize]) -> Integer {
    assert!(
        bits.is_multiple_of(8) && bits > 0,
        "hash_prime needs a whole number of bytes"
    );
    let mut sprout = seed.to_vec();
    let want = bits / 8;
    loop {
        let mut blob = Vec::with_capacity(want);
        while blob.len() < want {
            for byte in sprout.iter_mut().rev() {
                *byte = byte.wrapping_add(1);
                if *byte != 0 {
                    break;
                }
            }
            let h = Sha256::digest(&sprout);
            let take = (want - blob.len()).min(h.len());
            blob.extend_from_slice(&h[..take]);
        }
        let mut p = Integer::from_digits(&blob, Order::Msf);
        for &b in force {
            p.set_bit(b as u32, true);
        }
        p.set_bit(0, true);
        // GMP's test is Baillie-PSW followed by Miller-Rabin rounds; chiavdf uses BPSW.
        if p.is_probably_prime(30) != IsPrime::No {
            return p;
        }
    }
}
