//! Fixed-point decimals with 18 places, as Harmony's `numeric.Dec`: commission rates, the
//! effective-stake band, voting-power shares. Exact (integer) arithmetic, so every node computes
//! the same election.

use alloy_primitives::U256;
use alloy_rlp::{Decodable, Encodable};

/// 10^18: the scale of [`Dec`].
pub const PRECISION: u128 = 1_000_000_000_000_000_000;

/// A non-negative decimal with 18 places: `Dec(x)` is x / 10^18.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Dec(pub u128);

/// Why a decimal string does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a decimal with at most 18 places (e.g. \"0.05\")")]
pub struct DecParseError(pub String);

impl Dec {
    pub const ZERO: Dec = Dec(0);
    pub const ONE: Dec = Dec(PRECISION);

    /// `n` / 100.
    pub const fn percent(n: u128) -> Dec {
        Dec(n * (PRECISION / 100))
    }

    /// `amount` × self, rounded down.
    pub fn mul_amount(self, amount: U256) -> U256 {
        amount * U256::from(self.0) / U256::from(PRECISION)
    }

    /// `num` / `den` as a decimal, rounded down (`den` > 0; saturates above u128).
    pub fn ratio(num: U256, den: U256) -> Dec {
        let q = num * U256::from(PRECISION) / den;
        Dec(u128::try_from(q).unwrap_or(u128::MAX))
    }

    pub fn abs_diff(self, other: Dec) -> Dec {
        Dec(self.0.abs_diff(other.0))
    }

    pub fn saturating_sub(self, other: Dec) -> Dec {
        Dec(self.0.saturating_sub(other.0))
    }
}

impl std::str::FromStr for Dec {
    type Err = DecParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || DecParseError(s.to_string());
        let (int, frac) = s.split_once('.').unwrap_or((s, ""));
        if int.is_empty() && frac.is_empty()
            || frac.len() > 18
            || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit())
        {
            return Err(bad());
        }
        let int: u128 = if int.is_empty() {
            0
        } else {
            int.parse().map_err(|_| bad())?
        };
        let frac_scaled: u128 = if frac.is_empty() {
            0
        } else {
            frac.parse::<u128>().map_err(|_| bad())? * 10u128.pow(18 - frac.len() as u32)
        };
        int.checked_mul(PRECISION)
            .and_then(|i| i.checked_add(frac_scaled))
            .map(Dec)
            .ok_or_else(bad)
    }
}

impl std::fmt::Display for Dec {
    /// Harmony's form: always 18 places (`"0.050000000000000000"`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{:018}", self.0 / PRECISION, self.0 % PRECISION)
    }
}

impl Encodable for Dec {
    fn encode(&self, out: &mut dyn alloy_rlp::BufMut) {
        self.0.encode(out)
    }
    fn length(&self) -> usize {
        self.0.length()
    }
}

impl Decodable for Dec {
    fn decode(buf: &mut &[u8]) -> alloy_rlp::Result<Self> {
        u128::decode(buf).map(Dec)
    }
}

impl serde::Serialize for Dec {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Dec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_prints_and_multiplies() {
        let d: Dec = "0.05".parse().unwrap();
        assert_eq!(d, Dec::percent(5));
        assert_eq!(d.to_string(), "0.050000000000000000");
        assert_eq!("1".parse::<Dec>().unwrap(), Dec::ONE);
        assert_eq!(".5".parse::<Dec>().unwrap(), Dec::percent(50));
        for bad in ["", ".", "-1", "0.1.2", "1e5", "0.0000000000000000001", "x"] {
            assert!(bad.parse::<Dec>().is_err(), "{bad}");
        }
        assert_eq!(
            Dec::percent(35).mul_amount(U256::from(1000)),
            U256::from(350)
        );
        assert_eq!(
            Dec::ratio(U256::from(1), U256::from(3)),
            Dec(333_333_333_333_333_333)
        );
        let mut buf = Vec::new();
        d.encode(&mut buf);
        assert_eq!(Dec::decode(&mut &buf[..]).unwrap(), d);
    }
}
