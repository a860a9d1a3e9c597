//! The seats of an epoch's committee, in signing order: the chain spec's (internal) keys first,
//! then the elected keys grouped by validator in address order, each validator's keys in rank
//! order. Bit i of a commit certificate's bitmap is seat i. Consensus builds its committee in
//! this order (`consensus::Committee::after_election`) and rewards and availability read the
//! certificates with it, so both must come from here.

use super::election::Slot;
use super::types::BlsKey;
use alloy_primitives::{Address, U256};
use std::collections::{BTreeMap, HashSet};

/// One key of a committee.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seat {
    pub key: BlsKey,
    /// The elected validator holding the key; None for an internal key.
    pub validator: Option<Address>,
    /// The key's effective stake from the election (zero for an internal key).
    pub effective_stake: U256,
}

/// The seats of the committee elected as `slots` (an epoch's last header's `committee`),
/// after the `internal` keys. An elected key that is also an internal key, or that appears
/// twice, is left out: a key signs once.
pub fn seats(internal: &[BlsKey], slots: &[Slot]) -> Vec<Seat> {
    let mut taken: HashSet<BlsKey> = internal.iter().copied().collect();
    let mut by_validator: BTreeMap<Address, Vec<&Slot>> = BTreeMap::new();
    for s in slots {
        if taken.insert(s.key) {
            by_validator.entry(s.validator).or_default().push(s);
        }
    }
    let internal = internal.iter().map(|k| Seat {
        key: *k,
        validator: None,
        effective_stake: U256::ZERO,
    });
    let elected = by_validator.into_values().flatten().map(|s| Seat {
        key: s.key,
        validator: Some(s.validator),
        effective_stake: s.effective_stake,
    });
    internal.chain(elected).collect()
}
