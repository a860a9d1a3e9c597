//! The typed table list. Each table is a unit type naming an MDBX sub-database and its key and
//! value codecs; every table in [`TABLES`] is created when the database is opened.

use super::codec::{KeyCodec, ValueCodec};
use crate::block::{Body, CommitCertificate, Header};
use crate::types::{StoredAccount, StoredReceipts, TxLocation};
use alloy_primitives::{Address, Bytes, B256, U256};

/// A typed MDBX table.
pub trait Table: 'static {
    /// The MDBX sub-database name (never change it once released: that is a schema change).
    const NAME: &'static str;
    type Key: KeyCodec;
    type Value: ValueCodec;
}

/// One stored entry of table `T`: its key and value.
pub type Entry<T> = (<T as Table>::Key, <T as Table>::Value);

/// Declares tables: `Name: Key => Value`, each with its doc comment, and the [`TABLES`] list.
macro_rules! tables {
    ($($(#[$doc:meta])* $name:ident : $key:ty => $value:ty),* $(,)?) => {
        $(
            $(#[$doc])*
            #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
            pub struct $name;

            impl Table for $name {
                const NAME: &'static str = stringify!($name);
                type Key = $key;
                type Value = $value;
            }
        )*

        /// Names of every table, created at open.
        pub const TABLES: &[&str] = &[$(stringify!($name)),*];
    };
}

tables! {
    /// Block number → header (canonical chain only).
    Headers: u64 => Header,
    /// Block number → body.
    Bodies: u64 => Body,
    /// Block number → the commit certificate of that block (none for genesis).
    Certificates: u64 => CommitCertificate,
    /// Block number → block hash; its last entry is the tip.
    CanonicalHashes: u64 => B256,
    /// Block hash → block number.
    HeaderNumbers: B256 => u64,
    /// Store-wide settings such as `schema_version`, and node metadata (`get_meta`/`put_meta`).
    Metadata: String => Vec<u8>,
    /// Shard → the consensus safety record of the height in progress (view, lock, signed
    /// votes), as consensus encodes it (RLP); read and written through
    /// `ChainStore::consensus_safety` / `put_consensus_safety`, each write durable.
    ConsensusSafety: u64 => Vec<u8>,
    /// keccak(address) → account (nonce, balance, code hash, storage root, address). Keyed by
    /// the hashed address so a cursor walk visits accounts in state-trie order.
    Accounts: B256 => StoredAccount,
    /// (keccak(address), keccak(slot)) → non-zero slot value, in storage-trie order per account.
    Storage: (B256, B256) => U256,
    /// Code hash → contract bytecode (raw, as deployed; EIP-7702 delegations included).
    Bytecodes: B256 => Bytes,
    /// Block number → the receipts of its transactions, in block order.
    Receipts: u64 => StoredReceipts,
    /// Transaction hash → where it sits in the canonical chain.
    TxLookup: B256 => TxLocation,
    /// Nibble path → branch node of the account trie (every branch, for incremental roots).
    AccountTrie: alloy_trie::Nibbles => alloy_trie::BranchNodeCompact,
    /// (keccak(address), nibble path) → branch node of that account's storage trie.
    StorageTrie: (B256, alloy_trie::Nibbles) => alloy_trie::BranchNodeCompact,
    /// Operator address → validator with its delegations (the staking state, shard 0).
    Validators: Address => crate::staking::Validator,
}
