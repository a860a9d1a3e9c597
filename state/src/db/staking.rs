//! The staking state in MDBX: one record per validator (table [`super::Validators`]), and its
//! root: a Merkle-Patricia trie keyed by keccak256(operator address), each leaf the RLP of the
//! validator record (delegations included), which header version 2 commits to.
//!
//! The root is computed from the whole staking state, in memory, when a block changes it;
//! blocks that do not keep their parent's. At 1,000 validators that is a few milliseconds
//! (see `benches/README.md`), a fraction of an epoch's election.

use super::{DbError, RwTx, Tx, Validators};
use crate::block::EMPTY_ROOT;
use crate::staking::{StakingState, Validator};
use alloy_primitives::{keccak256, Address, B256};
use alloy_trie::{HashBuilder, Nibbles};
use libmdbx::TransactionKind;

/// Every stored validator.
pub fn load<K: TransactionKind>(tx: &Tx<'_, K>) -> Result<StakingState, DbError> {
    let mut validators = Vec::new();
    tx.walk::<Validators>(&Address::ZERO, |_, v| {
        validators.push(v);
        Ok(true)
    })?;
    Ok(StakingState::from_validators(validators))
}

/// Writes the validators that changed.
pub fn write(tx: &RwTx<'_>, changed: &[Validator]) -> Result<(), DbError> {
    for v in changed {
        tx.put::<Validators>(v.address, v)?;
    }
    Ok(())
}

/// The staking root of `state`.
pub fn root(state: &StakingState) -> B256 {
    let mut leaves: Vec<(B256, Vec<u8>)> = state
        .validators()
        .map(|v| (keccak256(v.address), alloy_rlp::encode(v)))
        .collect();
    if leaves.is_empty() {
        return EMPTY_ROOT;
    }
    leaves.sort_unstable_by_key(|l| l.0);
    let mut hb = HashBuilder::default();
    for (key, value) in &leaves {
        hb.add_leaf(Nibbles::unpack(key), value);
    }
    hb.root()
}

/// The validators of `after` that differ from `before` (records are never deleted).
pub fn changed(before: &StakingState, after: &StakingState) -> Vec<Validator> {
    after
        .validators()
        .filter(|v| before.validator(&v.address) != Some(*v))
        .cloned()
        .collect()
}

/// The operator addresses, sorted (for RPC listings).
pub fn addresses(state: &StakingState) -> Vec<Address> {
    state.validators().map(|v| v.address).collect()
}
