//! Writing state changes into MDBX and computing the Merkle-Patricia state root.
//!
//! Each account record caches its storage root; accounts whose storage changed get a new one
//! from their storage trie, and the account trie then gets its new root — both incrementally
//! (see [`super::trie`]: only the paths to changed slots and accounts are rehashed).
//! [`state_root`] and [`storage_root`] recompute from every leaf: the references tests check
//! the incremental roots against.

use super::{Accounts, Bytecodes, DbError, RwTx, Storage, Tx};
use crate::block::EMPTY_ROOT;
use crate::changes::StateChanges;
use crate::types::{storage_leaf, StoredAccount, EMPTY_CODE_HASH};
use alloy_primitives::{keccak256, B256, U256};
use alloy_trie::{HashBuilder, Nibbles};
use libmdbx::TransactionKind;

/// Applies `changes` inside `tx` (the caller commits or drops it), refreshes the storage roots
/// of the accounts whose storage changed, and returns the new state root (computed
/// incrementally, see [`super::trie`], with the account trie's branch nodes updated in `tx`).
pub fn apply_changes(tx: &RwTx<'_>, changes: &StateChanges) -> Result<B256, DbError> {
    let diff = apply_and_diff(tx, changes)?;
    super::trie::apply(tx, &diff)?;
    Ok(diff.root)
}

/// Writes `changes` into `tx` and computes the trie diff, without writing the trie.
pub fn apply_and_diff(
    tx: &RwTx<'_>,
    changes: &StateChanges,
) -> Result<super::trie::TrieDiff, DbError> {
    write_changes(tx, changes)?;
    let changed: super::trie::ChangedKeys = changes
        .accounts
        .keys()
        .chain(changes.storage.keys())
        .map(keccak256)
        .collect();
    super::trie::compute(tx, &changed)
}

/// Writes `changes` into `tx` and the trie diff computed for them on the same state.
pub fn apply_with_diff(
    tx: &RwTx<'_>,
    changes: &StateChanges,
    diff: &super::trie::TrieDiff,
) -> Result<(), DbError> {
    write_changes(tx, changes)?;
    super::trie::apply(tx, diff)
}

fn write_changes(tx: &RwTx<'_>, changes: &StateChanges) -> Result<(), DbError> {
    for (hash, code) in &changes.codes {
        tx.put::<Bytecodes>(*hash, code)?;
    }
    for (address, slots) in &changes.storage {
        let hashed = keccak256(address);
        if changes.wiped.contains(address) {
            clear_storage(tx, hashed)?;
        }
        for (slot, value) in slots {
            let key = (hashed, keccak256(slot.to_be_bytes::<32>()));
            if value.is_zero() {
                tx.delete::<Storage>(&key)?;
            } else {
                tx.put::<Storage>(key, value)?;
            }
        }
    }
    for (address, info) in &changes.accounts {
        let hashed = keccak256(address);
        match info {
            None => {
                tx.delete::<Accounts>(&hashed)?;
                clear_storage(tx, hashed)?;
            }
            Some(info) => {
                let storage_root = if changes.storage.contains_key(address) {
                    incremental_storage_root(tx, changes, address)?
                } else {
                    tx.get::<Accounts>(&hashed)?
                        .map(|a| a.storage_root)
                        .unwrap_or(EMPTY_ROOT)
                };
                let code_hash = if info.code_hash == B256::ZERO {
                    EMPTY_CODE_HASH
                } else {
                    info.code_hash
                };
                tx.put::<Accounts>(
                    hashed,
                    &StoredAccount {
                        address: *address,
                        nonce: info.nonce,
                        balance: info.balance,
                        code_hash,
                        storage_root,
                    },
                )?;
            }
        }
    }
    // Storage-only changes of an account whose info did not change (rare: revm reports the
    // account as touched whenever a slot changes) still need the cached root refreshed.
    for address in changes.storage.keys() {
        if changes.accounts.contains_key(address) {
            continue;
        }
        let hashed = keccak256(address);
        if let Some(mut acc) = tx.get::<Accounts>(&hashed)? {
            acc.storage_root = incremental_storage_root(tx, changes, address)?;
            tx.put::<Accounts>(hashed, &acc)?;
        }
    }
    Ok(())
}

/// The storage root of `address` after its changed slots were written (incremental, like the
/// account trie: only the paths to changed slots are rehashed).
fn incremental_storage_root(
    tx: &RwTx<'_>,
    changes: &StateChanges,
    address: &alloy_primitives::Address,
) -> Result<B256, DbError> {
    let changed: super::trie::ChangedKeys = changes
        .storage
        .get(address)
        .into_iter()
        .flat_map(|slots| slots.keys())
        .map(|slot| keccak256(slot.to_be_bytes::<32>()))
        .collect();
    super::trie::storage_root(tx, keccak256(address), &changed)
}

/// Deletes an account's slots and its storage trie's branch nodes.
fn clear_storage(tx: &RwTx<'_>, hashed: B256) -> Result<(), DbError> {
    super::trie::clear_storage_trie(tx, hashed)?;
    let mut keys = Vec::new();
    tx.walk::<Storage>(&(hashed, B256::ZERO), |(a, s), _| {
        if a != hashed {
            return Ok(false);
        }
        keys.push((a, s));
        Ok(true)
    })?;
    for k in keys {
        tx.delete::<Storage>(&k)?;
    }
    Ok(())
}

/// The storage root of the account with hashed address `hashed`, from all of its stored slots
/// (the reference for the incremental storage roots).
pub fn storage_root<K: TransactionKind>(tx: &Tx<'_, K>, hashed: B256) -> Result<B256, DbError> {
    let mut hb = HashBuilder::default();
    let mut any = false;
    tx.walk::<Storage>(&(hashed, B256::ZERO), |(a, slot), value: U256| {
        if a != hashed {
            return Ok(false);
        }
        any = true;
        hb.add_leaf(Nibbles::unpack(slot), &storage_leaf(&value));
        Ok(true)
    })?;
    Ok(if any { hb.root() } else { EMPTY_ROOT })
}

/// The state root over every stored account, in one ordered walk.
pub fn state_root<K: TransactionKind>(tx: &Tx<'_, K>) -> Result<B256, DbError> {
    let mut hb = HashBuilder::default();
    let mut any = false;
    let mut leaf = Vec::with_capacity(110);
    tx.walk::<Accounts>(&B256::ZERO, |hashed, acc| {
        any = true;
        leaf.clear();
        alloy_rlp::Encodable::encode(&acc.trie_account(), &mut leaf);
        hb.add_leaf(Nibbles::unpack(hashed), &leaf);
        Ok(true)
    })?;
    Ok(if any { hb.root() } else { EMPTY_ROOT })
}
