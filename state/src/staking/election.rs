//! The election at the last block of each epoch (Harmony's `staking/effective`): which BLS keys
//! sign the next epoch, and with what voting power.
//!
//! 1. Eligible: Active validators whose self-delegation meets their declared minimum.
//! 2. Each validator's delegated stake is split evenly over its keys (the remainder of the
//!    division stays unassigned).
//! 3. Keys are ranked by that stake, ties by validator address, then key; a validator wins at
//!    most [`StakingParams::max_slots_per_validator`] slots (further keys are passed over) and
//!    the first [`StakingParams::slots`] keys win.
//! 4. The median of the winners' stakes is taken (the mean of the two middle ones for an even
//!    count) and every winner's effective stake is its stake clamped to
//!    `[(1 − c)·median, (1 + c)·median]`, c = [`StakingParams::effective_band`].
//! 5. A slot's voting power is its effective stake over the sum of them.
//!
//! The result depends only on the staking state, never on iteration or insertion order.

use super::dec::Dec;
use super::ledger::StakingState;
use super::params::StakingParams;
use super::types::{BlsKey, Validator, ValidatorStatus};
use alloy_primitives::{Address, U256};
use std::collections::BTreeMap;

/// One elected key (the header's `committee` is the RLP list of them).
#[derive(Debug, Clone, PartialEq, Eq, alloy_rlp::RlpEncodable, alloy_rlp::RlpDecodable)]
pub struct Slot {
    pub validator: Address,
    pub key: BlsKey,
    /// The validator's delegated stake over its key count.
    pub raw_stake: U256,
    /// `raw_stake` clamped to the band around the median.
    pub effective_stake: U256,
}

/// The outcome of one election: winners in rank order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Election {
    pub slots: Vec<Slot>,
    /// Median raw stake of the winners (zero when nobody was elected).
    pub median: U256,
}

impl Election {
    pub fn total_effective_stake(&self) -> U256 {
        self.slots.iter().map(|s| s.effective_stake).sum()
    }

    /// Each slot's share of the voting power, in slot order (rounded down, so the shares sum
    /// to at most one).
    pub fn voting_power(&self) -> Vec<Dec> {
        let total = self.total_effective_stake();
        if total.is_zero() {
            return vec![Dec::ZERO; self.slots.len()];
        }
        self.slots
            .iter()
            .map(|s| Dec::ratio(s.effective_stake, total))
            .collect()
    }

    /// Elected validators (addresses, sorted), each once.
    pub fn validators(&self) -> Vec<Address> {
        let mut v: Vec<Address> = self.slots.iter().map(|s| s.validator).collect();
        v.sort();
        v.dedup();
        v
    }
}

/// Whether `v` may stand in an election.
pub fn eligible(v: &Validator) -> bool {
    v.status == ValidatorStatus::Active
        && !v.bls_keys.is_empty()
        && v.self_delegation() >= v.min_self_delegation
        && !v.total_delegation().is_zero()
}

/// Elects the next committee from `state`.
pub fn elect(state: &StakingState, params: &StakingParams) -> Election {
    // (stake, address, key) for every key of every eligible validator.
    let mut candidates: Vec<(U256, Address, BlsKey)> = Vec::new();
    for v in state.validators().filter(|v| eligible(v)) {
        let per_key = v.total_delegation() / U256::from(v.bls_keys.len());
        candidates.extend(v.bls_keys.iter().map(|k| (per_key, v.address, *k)));
    }
    // Highest stake first; ties by address, then key (both ascending).
    candidates.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    let limit = params.max_slots_per_validator();
    let mut won: BTreeMap<Address, usize> = BTreeMap::new();
    let mut winners = Vec::with_capacity(params.slots.min(candidates.len()));
    for (stake, validator, key) in candidates {
        if winners.len() == params.slots {
            break;
        }
        let n = won.entry(validator).or_default();
        if *n == limit {
            continue;
        }
        *n += 1;
        winners.push((stake, validator, key));
    }
    let median = median(winners.iter().map(|w| w.0).collect());
    let c = params.effective_band;
    let low = median - c.mul_amount(median).min(median);
    let high = median + c.mul_amount(median);
    Election {
        slots: winners
            .into_iter()
            .map(|(raw, validator, key)| Slot {
                validator,
                key,
                raw_stake: raw,
                effective_stake: raw.clamp(low, high),
            })
            .collect(),
        median,
    }
}

/// Median of `stakes` (sorted here); the mean of the middle two for an even count.
fn median(mut stakes: Vec<U256>) -> U256 {
    if stakes.is_empty() {
        return U256::ZERO;
    }
    stakes.sort_unstable();
    let n = stakes.len();
    if n % 2 == 1 {
        stakes[n / 2]
    } else {
        (stakes[n / 2 - 1] + stakes[n / 2]) / U256::from(2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        let u = |v: &[u64]| v.iter().map(|&x| U256::from(x)).collect::<Vec<_>>();
        assert_eq!(median(u(&[])), U256::ZERO);
        assert_eq!(median(u(&[5, 1, 3])), U256::from(3));
        assert_eq!(median(u(&[4, 1, 3, 2])), U256::from(2)); // (2 + 3) / 2, rounded down
    }
}
