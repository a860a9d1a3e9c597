//! The staking state in MDBX: one record per validator (table [`super::Validators`]), and its
//! root: a Merkle-Patricia trie keyed by keccak256(operator address), each leaf the RLP of the
//! validator record (delegations included), which header version 2 commits to.
//!
//! The root is computed from the whole staking state, in memory, when a block changes it;
//! blocks that do not keep their parent's. At 1,000 validators that is a few milliseconds
//! (see `benches/README.md`), a fraction of an epoch's election.

use super::{DbError, Metadata, RwTx, Tx, Validators};
use crate::block::EMPTY_ROOT;
use crate::staking::{Issuance, StakingState, Validator};
use alloy_primitives::{keccak256, Address, B256};
use alloy_trie::{HashBuilder, Nibbles};
use libmdbx::TransactionKind;

/// The metadata key of the issuance record (RLP of [`Issuance`]).
pub const ISSUANCE_KEY: &str = "issuance";

/// The staking trie key of the issuance record: no operator address hashes to it.
fn issuance_leaf_key() -> B256 {
    keccak256(b"harmony-appliance/issuance")
}

/// Every stored validator, and the issuance record.
pub fn load<K: TransactionKind>(tx: &Tx<'_, K>) -> Result<StakingState, DbError> {
    let mut validators = Vec::new();
    tx.walk::<Validators>(&Address::ZERO, |_, v| {
        validators.push(v);
        Ok(true)
    })?;
    let mut state = StakingState::from_validators(validators);
    if let Some(issuance) = load_issuance(tx)? {
        state.set_issuance(issuance);
    }
    Ok(state)
}

/// The issuance record, if rewards were ever paid.
pub fn load_issuance<K: TransactionKind>(tx: &Tx<'_, K>) -> Result<Option<Issuance>, DbError> {
    let Some(bytes) = tx.get::<Metadata>(&ISSUANCE_KEY.to_string())? else {
        return Ok(None);
    };
    crate::block::decode_exact::<Issuance>(&bytes)
        .map(Some)
        .map_err(|e| DbError::Corrupt {
            table: "Metadata",
            key: format!("{ISSUANCE_KEY:?}"),
            reason: e.to_string(),
        })
}

/// Writes the validators that changed, and the issuance record when it changed.
pub fn write(
    tx: &RwTx<'_>,
    changed: &[Validator],
    issuance: Option<&Issuance>,
) -> Result<(), DbError> {
    for v in changed {
        tx.put::<Validators>(v.address, v)?;
    }
    if let Some(i) = issuance {
        tx.put::<Metadata>(ISSUANCE_KEY.to_string(), &alloy_rlp::encode(i))?;
    }
    Ok(())
}

/// The trie leaf of a validator record: its RLP, without the `rewards` fork's three trailing
/// fields while they are zero, so the roots of chains (and blocks) before rewards are the ones
/// they were before those fields existed.
pub fn leaf(v: &Validator) -> Vec<u8> {
    let full = alloy_rlp::encode(v);
    if v.lifetime != Default::default()
        || v.epoch_counters != Default::default()
        || !v.lifetime_reward.is_zero()
    {
        return full;
    }
    // Two empty counters (0xc2 0x80 0x80 each) and a zero reward (0x80) end the list.
    const ZERO_TAIL: usize = 7;
    let mut body = full.as_slice();
    let header = alloy_rlp::Header::decode(&mut body).expect("our own encoding");
    let payload = &body[..header.payload_length - ZERO_TAIL];
    let mut out = Vec::with_capacity(payload.len() + 9);
    alloy_rlp::Header {
        list: true,
        payload_length: payload.len(),
    }
    .encode(&mut out);
    out.extend_from_slice(payload);
    out
}

/// The staking root of `state`.
pub fn root(state: &StakingState) -> B256 {
    let mut leaves: Vec<(B256, Vec<u8>)> = state
        .validators()
        .map(|v| (keccak256(v.address), leaf(v)))
        .collect();
    // Chains without rewards keep the root they had: the record joins once it is not zero.
    let issuance = state.issuance();
    if issuance != Issuance::default() {
        leaves.push((issuance_leaf_key(), alloy_rlp::encode(issuance)));
    }
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
