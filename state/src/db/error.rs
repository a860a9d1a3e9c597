//! The chain store's error type. Every message says what went wrong, where, and what the
//! operator can do about it.

use alloy_primitives::B256;
use std::path::PathBuf;

/// Why a chain-store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The data directory could not be created.
    #[error(
        "cannot create the chain database directory {path}: {source}; check that the parent \
         directory exists and is writable by this user, or choose another --data-dir"
    )]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },

    /// Another process (or another `ChainStore` in this process) holds the database.
    #[error(
        "data dir {path} is in use by another harmony-appliance process; stop that process \
         first, or give this one another --data-dir"
    )]
    InUse { path: PathBuf },

    /// MDBX refused to open the environment.
    #[error("cannot open the chain database at {path}: {source}; {}", open_hint(.source))]
    Open {
        path: PathBuf,
        source: libmdbx::Error,
    },

    /// An MDBX operation failed after opening.
    #[error("chain database {path}: {op} failed: {source}; {}", op_hint(.source))]
    Mdbx {
        path: PathBuf,
        op: String,
        source: libmdbx::Error,
    },

    /// A stored key or value could not be decoded.
    #[error(
        "chain database is corrupt: table {table}, key {key}: {reason}; restore the data dir \
         from a backup, or wipe it with --reset and resync"
    )]
    Corrupt {
        table: &'static str,
        key: String,
        reason: String,
    },

    /// The database was written by a newer node with a schema this binary does not know.
    #[error(
        "the chain database at {path} has schema version {found}, but this binary supports up \
         to version {supported}: it was written by a newer harmony-appliance version; upgrade \
         the binary (or restore a backup of the data dir made by this version)"
    )]
    SchemaTooNew {
        path: PathBuf,
        found: u32,
        supported: u32,
    },

    /// The database has an old schema and no migration covers one of the steps.
    #[error(
        "the chain database at {path} has schema version {from}, and this binary has no \
         migration from it to version {to}; run the harmony-appliance release that wrote it \
         and upgrade step by step, or wipe the data dir with --reset and resync"
    )]
    NoMigration { path: PathBuf, from: u32, to: u32 },

    /// A migration step failed; the database stays at schema version `from`.
    #[error(
        "migrating the chain database at {path} from schema version {from} to {to} failed \
         (the database is left at version {from}): {source}"
    )]
    MigrationFailed {
        path: PathBuf,
        from: u32,
        to: u32,
        source: Box<DbError>,
    },

    /// The stored genesis differs from the chain spec's.
    #[error(
        "the data dir {path} holds a chain whose genesis hash is {stored}, but this chain spec's \
         genesis hash is {expected}: the data dir belongs to another network; pass --reset to \
         wipe it, or use another --data-dir"
    )]
    GenesisMismatch {
        path: PathBuf,
        stored: B256,
        expected: B256,
    },

    /// The block does not extend the stored tip.
    #[error("{}", not_next_message(.number, .parent_hash, .tip))]
    NotNext {
        number: u64,
        parent_hash: B256,
        tip: Option<(u64, B256)>,
    },

    /// The certificate is not for this block.
    #[error(
        "commit certificate for block {cert_number} (hash {cert_hash}, view {cert_view}) does \
         not match block {number} (hash {hash}, proposed in view {view}, so committed in that view \
         or a later one); it was not stored: pass the \
         certificate that commits this block"
    )]
    CertificateMismatch {
        number: u64,
        hash: B256,
        view: u64,
        cert_number: u64,
        cert_hash: B256,
        cert_view: u64,
    },

    /// A non-genesis block was inserted without its commit certificate.
    #[error(
        "block {number} was given without a commit certificate; only block 0 (genesis) may be \
         stored without one: pass the certificate that commits it"
    )]
    MissingCertificate { number: u64 },

    /// A certificate was given for a block that is not stored.
    #[error(
        "cannot store a commit certificate for block {number}: no such block is stored (tip: \
         {}); insert the block first", tip_text(.tip)
    )]
    UnknownBlock {
        number: u64,
        tip: Option<(u64, B256)>,
    },

    /// The block cannot be stored as it is.
    #[error("block {number} cannot be stored: {reason}")]
    InvalidBlock { number: u64, reason: String },

    /// A metadata key the store manages itself was written through `put_meta`.
    #[error("metadata key {key:?} is managed by the chain store itself and cannot be written; use another key")]
    ReservedMetadataKey { key: String },
}

fn tip_text(tip: &Option<(u64, B256)>) -> String {
    match tip {
        Some((n, h)) => format!("block {n}, hash {h}"),
        None => "empty database".to_string(),
    }
}

fn not_next_message(number: &u64, parent_hash: &B256, tip: &Option<(u64, B256)>) -> String {
    match tip {
        Some((n, h)) => format!(
            "block {number} (parent hash {parent_hash}) does not extend the stored chain tip, \
             block {n} (hash {h}): only block {} with parent hash {h} can be stored next; nothing \
             was written: fetch and store the missing blocks first, or drop this block if it is \
             on another fork",
            n.saturating_add(1)
        ),
        None => format!(
            "block {number} cannot be stored in an empty chain database: block 0 (genesis) must \
             come first; nothing was written: initialise the genesis block first"
        ),
    }
}

fn open_hint(e: &libmdbx::Error) -> &'static str {
    match e {
        libmdbx::Error::PermissionDenied | libmdbx::Error::Access => {
            "check that the data dir and its files are readable and writable by this user"
        }
        libmdbx::Error::ReadOnlyFilesystem => "the data dir must be on a writable filesystem",
        libmdbx::Error::RemoteFilesystem => {
            "the data dir must be on a local filesystem, not a network share"
        }
        libmdbx::Error::Invalid
        | libmdbx::Error::VersionMismatch
        | libmdbx::Error::Incompatible => {
            "the files in the data dir are not a chain database of this node; point --data-dir \
             at the right directory, or wipe it with --reset"
        }
        libmdbx::Error::Corrupted
        | libmdbx::Error::PageNotFound
        | libmdbx::Error::WannaRecovery => {
            "the database files are damaged; restore the data dir from a backup, or wipe it with \
             --reset and resync"
        }
        _ => {
            "check the data dir's permissions and free disk space; if it persists, restore it \
              from a backup or wipe it with --reset and resync"
        }
    }
}

fn op_hint(e: &libmdbx::Error) -> &'static str {
    match e {
        libmdbx::Error::MapFull | libmdbx::Error::UnableExtendMapsize => {
            "the database reached its size limit or the disk is full; free disk space (the \
             database may grow to 1 TiB)"
        }
        libmdbx::Error::Io | libmdbx::Error::IoError(_) => {
            "the disk reported an I/O error; check the disk and free space, then restart the node"
        }
        libmdbx::Error::Corrupted | libmdbx::Error::PageNotFound | libmdbx::Error::Panic => {
            "the database files are damaged; restore the data dir from a backup, or wipe it with \
             --reset and resync"
        }
        _ => {
            "check free disk space and restart the node; if it persists, restore the data dir \
              from a backup or wipe it with --reset and resync"
        }
    }
}
