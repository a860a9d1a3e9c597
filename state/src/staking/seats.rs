//! The seats of an epoch's committee, in signing order: the chain spec's (internal) keys first,
//! then the elected keys grouped by validator, each validator's keys in rank order. The
//! validators come in address order, or, under the `vdf` fork, in the order the epoch's VDF
//! output gives them (`keccak256(output ‖ address)`, ascending), which nobody could know or steer
//! when they staked. Bit i of a commit certificate's bitmap is seat i. Consensus builds its committee in
//! this order (`consensus::Committee::after_election`) and rewards and availability read the
//! certificates with it, so both must come from here.

use super::election::Slot;
use super::types::BlsKey;
use alloy_primitives::{keccak256, Address, B256, U256};
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
/// after the `internal` keys, validators ordered by `order` (the epoch's VDF output) when
/// given. An elected key that is also an internal key, or that appears twice, is left out: a
/// key signs once.
pub fn seats(internal: &[BlsKey], slots: &[Slot], order: Option<B256>) -> Vec<Seat> {
    let mut taken: HashSet<BlsKey> = internal.iter().copied().collect();
    let rank = |a: &Address| match order {
        Some(o) => keccak256([o.as_slice(), a.as_slice()].concat()),
        None => B256::left_padding_from(a.as_slice()),
    };
    let mut by_validator: BTreeMap<(B256, Address), Vec<&Slot>> = BTreeMap::new();
    for s in slots {
        if taken.insert(s.key) {
            by_validator
                .entry((rank(&s.validator), s.validator))
                .or_default()
                .push(s);
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

/// What an epoch's last header says about the next committee: the slots it elected (its
/// `committee`) and the order of their validators (its VDF output, under the `vdf` fork).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Elected {
    pub slots: Vec<Slot>,
    pub order: Option<alloy_primitives::B256>,
}

impl Elected {
    pub fn of(header: &crate::block::Header) -> Result<Self, crate::block::HeaderError> {
        let slots = match header.v2.as_ref() {
            Some(v2) if !v2.committee.is_empty() => crate::block::decode_exact(&v2.committee)?,
            _ => Vec::new(),
        };
        Ok(Self {
            slots,
            order: header.vdf_output(),
        })
    }

    /// The committee's seats after the `internal` keys ([`seats`]).
    pub fn seats(&self, internal: &[BlsKey]) -> Vec<Seat> {
        seats(internal, &self.slots, self.order)
    }
}
