//! The typed table list. Each table is a unit type naming an MDBX sub-database and its key and
//! value codecs; every table in [`TABLES`] is created when the database is opened.

use super::codec::{KeyCodec, ValueCodec};
use crate::block::{Body, CommitCertificate, Header};
use alloy_primitives::B256;

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
}
