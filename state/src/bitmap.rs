//! Signer bitmap: committee key index i is byte i/8, bit i%8 (least significant first), as
//! Harmony's `LastCommitBitmap`.

/// A set of committee key indices.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Bitmap(Vec<u8>);

impl Bitmap {
    /// An empty bitmap sized for `n` keys.
    pub fn with_len(n: usize) -> Self {
        Self(vec![0; n.div_ceil(8)])
    }

    /// Parses wire bytes for a committee of `n` keys; refuses a wrong length or bits past `n`.
    pub fn from_bytes(bytes: &[u8], n: usize) -> Option<Self> {
        if bytes.len() != n.div_ceil(8) {
            return None;
        }
        if !n.is_multiple_of(8) {
            let last = *bytes.last()?;
            if last >> (n % 8) != 0 {
                return None;
            }
        }
        Some(Self(bytes.to_vec()))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn set(&mut self, i: usize) {
        self.0[i / 8] |= 1 << (i % 8);
    }

    pub fn get(&self, i: usize) -> bool {
        self.0.get(i / 8).is_some_and(|b| b & (1 << (i % 8)) != 0)
    }

    pub fn ones(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.0.len() * 8).filter(|&i| self.get(i))
    }

    pub fn count(&self) -> usize {
        self.0.iter().map(|b| b.count_ones() as usize).sum()
    }

    pub fn is_disjoint(&self, other: &Bitmap) -> bool {
        self.0.iter().zip(&other.0).all(|(a, b)| a & b == 0)
    }

    pub fn union_with(&mut self, other: &Bitmap) {
        for (a, b) in self.0.iter_mut().zip(&other.0) {
            *a |= b;
        }
    }
}

impl std::fmt::Debug for Bitmap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.ones()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_matches_harmony() {
        let mut b = Bitmap::with_len(10);
        b.set(0);
        b.set(9);
        assert_eq!(b.as_bytes(), &[0b0000_0001, 0b0000_0010]);
        assert_eq!(b.ones().collect::<Vec<_>>(), vec![0, 9]);
        assert_eq!(b.count(), 2);
    }

    #[test]
    fn parse_refuses_wrong_length_and_stray_bits() {
        assert!(Bitmap::from_bytes(&[1, 0], 10).is_some());
        assert!(Bitmap::from_bytes(&[1], 10).is_none());
        assert!(Bitmap::from_bytes(&[0, 0b100], 10).is_none());
        assert!(Bitmap::from_bytes(&[0xff], 8).is_some());
    }
}
