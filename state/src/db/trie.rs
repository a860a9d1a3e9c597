//! Incremental account-trie root: only the paths to changed accounts are hashed again.
//!
//! Every branch node of the account trie is stored in `AccountTrie`, keyed by its nibble path,
//! as alloy-trie's `BranchNodeCompact` (child masks and child hashes). To compute a new root
//! after a block, [`incremental_root`] descends from the top branch: a child subtree with no
//! changed account is fed to the `HashBuilder` as its stored hash (or, when the hash is not
//! stored, by descending further); a subtree that changed is descended into when its branch
//! survives the change, and otherwise rebuilt from its leaves (the hashed-account table is in
//! trie order, so a subtree's leaves are one cursor range). Branch nodes the builder computes
//! replace the stored ones of the walked paths. Only branch children are fed by hash, and a
//! branch's hash does not depend on its position, so the builder also gets collapsed branches
//! right; as a guard, a changed branch that may collapse (fewer than two children left) is
//! rebuilt from its leaves rather than descended into.
//!
//! `root::state_root` (a walk over every account) stays the reference; tests compare both.

use super::{AccountTrie, Accounts, DbError, RwTx, Storage, StorageTrie};
use crate::types::StoredAccount;
use alloy_primitives::{B256, U256};
use alloy_trie::{BranchNodeCompact, HashBuilder, Nibbles, EMPTY_ROOT_HASH};
use std::collections::BTreeSet;

/// The hashed keys (keccak(address)) whose leaves changed in this block (written or deleted).
pub type ChangedKeys = BTreeSet<B256>;

/// Lowest and highest 32-byte keys under a nibble prefix.
fn key_range(prefix: &Nibbles) -> (B256, B256) {
    let mut lo = [0u8; 32];
    let mut hi = [0xffu8; 32];
    for i in 0..prefix.len() {
        let n = prefix.get_unchecked(i);
        let byte = i / 2;
        if i % 2 == 0 {
            lo[byte] = n << 4;
            hi[byte] = (n << 4) | 0x0f;
        } else {
            lo[byte] |= n;
            hi[byte] = (hi[byte] & 0xf0) | n;
        }
    }
    (B256::from(lo), B256::from(hi))
}

fn changed_under(changed: &ChangedKeys, prefix: &Nibbles) -> bool {
    let (lo, hi) = key_range(prefix);
    changed.range(lo..=hi).next().is_some()
}

fn all_changes_under(changed: &ChangedKeys, outer: &Nibbles, inner: &Nibbles) -> bool {
    let (lo, hi) = key_range(outer);
    changed
        .range(lo..=hi)
        .all(|k| Nibbles::unpack(k).starts_with(inner))
}

/// Where a trie's leaves and stored branch nodes live: the account trie, or one account's
/// storage trie.
trait Tables {
    /// The first stored branch under `prefix` (its top node), if any.
    fn stored_under(
        &self,
        prefix: &Nibbles,
    ) -> Result<Option<(Nibbles, BranchNodeCompact)>, DbError>;
    /// Visits the leaves under `prefix` in order (key, leaf value) until `f` returns false.
    fn leaves(
        &self,
        prefix: &Nibbles,
        f: &mut dyn FnMut(Nibbles, &[u8]) -> bool,
    ) -> Result<(), DbError>;
    /// Paths of every stored branch under `prefix`.
    fn nodes_under(&self, prefix: &Nibbles) -> Result<Vec<Nibbles>, DbError>;
    fn delete_node(&self, path: &Nibbles) -> Result<(), DbError>;
    fn put_node(&self, path: Nibbles, node: &BranchNodeCompact) -> Result<(), DbError>;
}

struct AccountTables<'a, 'db>(&'a RwTx<'db>);

impl Tables for AccountTables<'_, '_> {
    fn stored_under(
        &self,
        prefix: &Nibbles,
    ) -> Result<Option<(Nibbles, BranchNodeCompact)>, DbError> {
        let mut found = None;
        self.0.walk::<AccountTrie>(prefix, |path, node| {
            if path.starts_with(prefix) {
                found = Some((path, node));
            }
            Ok(false)
        })?;
        Ok(found)
    }

    fn leaves(
        &self,
        prefix: &Nibbles,
        f: &mut dyn FnMut(Nibbles, &[u8]) -> bool,
    ) -> Result<(), DbError> {
        let (lo, _) = key_range(prefix);
        let mut leaf = Vec::with_capacity(110);
        self.0.walk::<Accounts>(&lo, |k, acc: StoredAccount| {
            let key = Nibbles::unpack(k);
            if !key.starts_with(prefix) {
                return Ok(false);
            }
            leaf.clear();
            alloy_rlp::Encodable::encode(&acc.trie_account(), &mut leaf);
            Ok(f(key, &leaf))
        })
    }

    fn nodes_under(&self, prefix: &Nibbles) -> Result<Vec<Nibbles>, DbError> {
        let mut out = Vec::new();
        self.0.walk::<AccountTrie>(prefix, |path, _| {
            if !path.starts_with(prefix) {
                return Ok(false);
            }
            out.push(path);
            Ok(true)
        })?;
        Ok(out)
    }

    fn delete_node(&self, path: &Nibbles) -> Result<(), DbError> {
        self.0.delete::<AccountTrie>(path).map(drop)
    }

    fn put_node(&self, path: Nibbles, node: &BranchNodeCompact) -> Result<(), DbError> {
        self.0.put::<AccountTrie>(path, node)
    }
}

/// One account's storage trie: slots in `Storage`, branches in `StorageTrie`, both under the
/// hashed address.
struct StorageTables<'a, 'db> {
    tx: &'a RwTx<'db>,
    account: B256,
}

impl Tables for StorageTables<'_, '_> {
    fn stored_under(
        &self,
        prefix: &Nibbles,
    ) -> Result<Option<(Nibbles, BranchNodeCompact)>, DbError> {
        let mut found = None;
        self.tx
            .walk::<StorageTrie>(&(self.account, *prefix), |(a, path), node| {
                if a == self.account && path.starts_with(prefix) {
                    found = Some((path, node));
                }
                Ok(false)
            })?;
        Ok(found)
    }

    fn leaves(
        &self,
        prefix: &Nibbles,
        f: &mut dyn FnMut(Nibbles, &[u8]) -> bool,
    ) -> Result<(), DbError> {
        let (lo, _) = key_range(prefix);
        self.tx
            .walk::<Storage>(&(self.account, lo), |(a, slot), value: U256| {
                let key = Nibbles::unpack(slot);
                if a != self.account || !key.starts_with(prefix) {
                    return Ok(false);
                }
                Ok(f(key, &alloy_rlp::encode(value)))
            })
    }

    fn nodes_under(&self, prefix: &Nibbles) -> Result<Vec<Nibbles>, DbError> {
        let mut out = Vec::new();
        self.tx
            .walk::<StorageTrie>(&(self.account, *prefix), |(a, path), _| {
                if a != self.account || !path.starts_with(prefix) {
                    return Ok(false);
                }
                out.push(path);
                Ok(true)
            })?;
        Ok(out)
    }

    fn delete_node(&self, path: &Nibbles) -> Result<(), DbError> {
        self.tx
            .delete::<StorageTrie>(&(self.account, *path))
            .map(drop)
    }

    fn put_node(&self, path: Nibbles, node: &BranchNodeCompact) -> Result<(), DbError> {
        self.tx.put::<StorageTrie>((self.account, path), node)
    }
}

struct Walk<'a, T: Tables> {
    tables: &'a T,
    changed: &'a ChangedKeys,
    hb: HashBuilder,
    /// Stored nodes re-derived by the builder: deleted before its updates are written.
    walked: Vec<Nibbles>,
    /// Prefixes rebuilt from leaves: every stored node under them is deleted first.
    rebuilt: Vec<Nibbles>,
}

impl<T: Tables> Walk<'_, T> {
    fn has_leaf_under(&self, prefix: &Nibbles) -> Result<bool, DbError> {
        let mut any = false;
        self.tables.leaves(prefix, &mut |_, _| {
            any = true;
            false
        })?;
        Ok(any)
    }

    /// Feeds every leaf under `prefix`, in order.
    fn leaves(&mut self, prefix: &Nibbles) -> Result<(), DbError> {
        self.rebuilt.push(*prefix);
        let hb = &mut self.hb;
        self.tables.leaves(prefix, &mut |key, leaf| {
            hb.add_leaf(key, leaf);
            true
        })
    }

    /// Whether the branch at `path` keeps at least two children after the changes.
    fn survives(&self, path: &Nibbles, node: &BranchNodeCompact) -> Result<bool, DbError> {
        let mut children = 0;
        for n in 0..16u8 {
            let mut child = *path;
            child.push(n);
            let present = if changed_under(self.changed, &child) {
                self.has_leaf_under(&child)?
            } else {
                node.state_mask.is_bit_set(n)
            };
            children += present as usize;
            if children >= 2 {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Feeds the subtree of the stored branch at `path`, which survives the changes.
    fn branch(&mut self, path: Nibbles, node: BranchNodeCompact) -> Result<(), DbError> {
        self.walked.push(path);
        for n in 0..16u8 {
            let mut child = path;
            child.push(n);
            let changed = changed_under(self.changed, &child);
            let present = node.state_mask.is_bit_set(n);
            if !changed {
                if !present {
                    continue;
                }
                if node.hash_mask.is_bit_set(n) {
                    let hash = node.hash_for_nibble(n);
                    self.hb
                        .add_branch(child, hash, node.tree_mask.is_bit_set(n));
                    continue;
                }
            }
            if present && node.tree_mask.is_bit_set(n) {
                if let Some((q, qnode)) = self.tables.stored_under(&child)? {
                    if !changed
                        || (all_changes_under(self.changed, &child, &q)
                            && self.survives(&q, &qnode)?)
                    {
                        self.branch(q, qnode)?;
                        continue;
                    }
                }
            }
            self.leaves(&child)?;
        }
        Ok(())
    }
}

/// The account-trie writes of one root computation: kept with an executed block, so the
/// commit applies them instead of walking the trie again.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrieDiff {
    pub root: B256,
    /// Stored branches the walk re-derived (deleted, then rewritten if still present).
    walked: Vec<Nibbles>,
    /// Prefixes rebuilt from leaves: every stored branch under them is deleted.
    rebuilt: Vec<Nibbles>,
    /// Branch nodes the builder computed.
    updates: Vec<(Nibbles, BranchNodeCompact)>,
}

/// Computes the state root after `changed` leaves were written into `Accounts` (inside `tx`),
/// without writing the trie. Falls back to a full rebuild when nothing is stored yet or the
/// top of the trie changes shape.
pub fn compute(tx: &RwTx<'_>, changed: &ChangedKeys) -> Result<TrieDiff, DbError> {
    compute_in(&AccountTables(tx), changed)
}

fn compute_in(tables: &impl Tables, changed: &ChangedKeys) -> Result<TrieDiff, DbError> {
    let mut w = Walk {
        tables,
        changed,
        hb: HashBuilder::default()
            .with_updates(true)
            .with_all_branch_nodes(true),
        walked: Vec::new(),
        rebuilt: Vec::new(),
    };
    let top = tables.stored_under(&Nibbles::default())?;
    let incremental = match &top {
        Some((path, node)) => {
            all_changes_under(changed, &Nibbles::default(), path) && w.survives(path, node)?
        }
        None => false,
    };
    match top {
        Some((path, node)) if incremental => w.branch(path, node)?,
        _ => w.leaves(&Nibbles::default())?,
    }
    let root = w.hb.root();
    let (_, updates) = w.hb.split();
    Ok(TrieDiff {
        root: if root == EMPTY_ROOT_HASH {
            crate::block::EMPTY_ROOT
        } else {
            root
        },
        walked: w.walked,
        rebuilt: w.rebuilt,
        updates: updates.into_iter().collect(),
    })
}

/// Writes a [`TrieDiff`] computed on the same state: the walked branches and everything under
/// rebuilt prefixes are replaced; stored hashes of untouched subtrees stay.
pub fn apply(tx: &RwTx<'_>, diff: &TrieDiff) -> Result<(), DbError> {
    apply_in(&AccountTables(tx), diff)
}

fn apply_in(tables: &impl Tables, diff: &TrieDiff) -> Result<(), DbError> {
    for path in &diff.walked {
        tables.delete_node(path)?;
    }
    for prefix in &diff.rebuilt {
        for p in tables.nodes_under(prefix)? {
            tables.delete_node(&p)?;
        }
    }
    for (path, node) in &diff.updates {
        tables.put_node(*path, node)?;
    }
    Ok(())
}

/// The storage root of the account with hashed address `account` after `changed` slots
/// (hashed) were written into `Storage`, with its storage trie's branch nodes updated.
pub fn storage_root(tx: &RwTx<'_>, account: B256, changed: &ChangedKeys) -> Result<B256, DbError> {
    let tables = StorageTables { tx, account };
    let diff = compute_in(&tables, changed)?;
    apply_in(&tables, &diff)?;
    Ok(diff.root)
}

/// Deletes every stored branch of an account's storage trie (the account was wiped).
pub fn clear_storage_trie(tx: &RwTx<'_>, account: B256) -> Result<(), DbError> {
    let tables = StorageTables { tx, account };
    for p in tables.nodes_under(&Nibbles::default())? {
        tables.delete_node(&p)?;
    }
    Ok(())
}

/// [`compute`] and [`apply`]: the new root, with the trie's branch nodes updated in `tx`.
pub fn incremental_root(tx: &RwTx<'_>, changed: &ChangedKeys) -> Result<B256, DbError> {
    let diff = compute(tx, changed)?;
    apply(tx, &diff)?;
    Ok(diff.root)
}
