//! The net effect of executing transactions on the world state: what execution produces and
//! the database applies (genesis allocations are expressed the same way).

use alloy_primitives::{Address, B256, U256};
use std::collections::{BTreeMap, HashSet};

/// The net effect of executed transactions on the world state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StateChanges {
    /// Changed accounts: `None` when the account no longer exists (self-destructed or touched
    /// while empty, EIP-161).
    pub accounts: BTreeMap<Address, Option<AccountInfoLite>>,
    /// Changed storage slots per account (zero = deleted).
    pub storage: BTreeMap<Address, BTreeMap<U256, U256>>,
    /// Accounts whose storage was wiped before the slots above were written (created or
    /// self-destructed).
    pub wiped: HashSet<Address>,
    /// New bytecode by hash.
    pub codes: BTreeMap<B256, alloy_primitives::Bytes>,
}

/// Nonce, balance and code hash: what an account is apart from its storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountInfoLite {
    pub nonce: u64,
    pub balance: U256,
    pub code_hash: B256,
}
