//! The chain database: MDBX behind a small typed-table layer.
//!
//! - [`tables`]: the [`Table`] trait and the table list ([`TABLES`]).
//! - [`codec`]: key and value codecs (`u64` keys big-endian so MDBX order is numeric order,
//!   chain types as strict RLP).
//! - [`Db`], [`RoTx`], [`RwTx`]: the environment and typed transactions; decoding failures of
//!   stored bytes are [`DbError::Corrupt`], never panics.
//! - Schema versioning: [`SCHEMA_VERSION`] in `Metadata["schema_version"]`, checked and
//!   migrated at open.
//! - [`ChainStore`]: the canonical chain as the node uses it.

pub mod codec;
pub mod root;
pub mod staking;
pub mod tables;
pub mod trie;

mod chain;
mod env;
mod error;

#[cfg(test)]
mod migration_tests;
#[cfg(test)]
mod tests;

pub use chain::{ChainStore, StateWrites};
pub use codec::{rlp_decode_value, CodecError, KeyCodec, ValueCodec};
pub use env::{
    Db, RoTx, RwTx, Tx, Usage, GROWTH_STEP, MAX_READERS, MAX_SIZE, MAX_TABLES, RO, RW,
    SCHEMA_VERSION, SCHEMA_VERSION_KEY,
};
pub use error::DbError;
pub use tables::{
    AccountTrie, Accounts, Bodies, Bytecodes, CanonicalHashes, Certificates, ConsensusSafety,
    Entry, HeaderNumbers, Headers, Metadata, Receipts, Storage, StorageTrie, Table, TxLookup,
    Validators, TABLES,
};
