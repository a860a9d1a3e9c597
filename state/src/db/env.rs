//! The MDBX environment, typed read-only / read-write transactions, and schema versioning.

use super::codec::{KeyCodec, ValueCodec};
use super::error::DbError;
use super::tables::{Entry, Metadata, Table, TABLES};
use libmdbx::{
    DatabaseOptions, Mode, NoWriteMap, ReadWriteOptions, SyncMode, TableFlags, TransactionKind,
    WriteFlags,
};
use std::borrow::Cow;
use std::path::{Path, PathBuf};

pub use libmdbx::{RO, RW};

/// Current schema version of the chain database. Bump it (and add a migration step from the
/// previous version to `MIGRATIONS`) whenever a table's name, key or value encoding changes.
pub const SCHEMA_VERSION: u32 = 5;
/// Metadata key holding the schema version (4 bytes, big-endian).
pub const SCHEMA_VERSION_KEY: &str = "schema_version";

/// Sub-database slots reserved at open: the tables above plus room for later ones (EVM state,
/// receipts, ...) without reopening with new options.
pub const MAX_TABLES: u64 = 64;
/// Upper bound of the data file. The file starts small and grows by [`GROWTH_STEP`]; only
/// address space is reserved up front.
pub const MAX_SIZE: u64 = 1 << 40;
/// Step by which the data file grows when it is full.
pub const GROWTH_STEP: u64 = 64 << 20;
/// Reader slots: concurrent read transactions (RPC, sync, consensus).
pub const MAX_READERS: u32 = 256;

/// One schema migration step: from version `from` to `from + 1`. It runs in its own write
/// transaction, committed together with the version bump, so a crash leaves the database at
/// either version, never in between.
#[derive(Clone, Copy)]
pub(crate) struct Migration {
    pub from: u32,
    pub run: MigrationFn,
}

pub(crate) type MigrationFn = for<'a> fn(&RwTx<'a>) -> Result<(), DbError>;

/// Migrations of the released schema, in order.
///
/// 4 → 5 appends the signing counts and the lifetime reward (zero) to every validator record
/// (the `rewards` fork's fields), so records written before it decode.
///
/// 3 → 4 moves the consensus safety record from `Metadata["consensus_safety"]` (raw bytes under
/// a string key) into its own table, [`super::ConsensusSafety`], under shard 0.
///
/// 2 → 3 has none on purpose: consensus v2 added `last_commit_view` to the header (ADR 0001's
/// amendment) before any network ran, so a version-2 chain cannot be read; the node refuses it
/// with the advice to wipe the data dir and start a new chain.
///
/// 1 → 2 adds the EVM tables (accounts, storage, bytecodes, receipts, transaction lookup), which
/// open creates. Version-1 chains carried no transactions and no genesis allocation, so empty
/// state tables are exactly their state: the step writes nothing.
pub(crate) const MIGRATIONS: &[Migration] = &[
    Migration {
        from: 1,
        run: |_| Ok(()),
    },
    Migration {
        from: 3,
        run: move_safety_record_to_its_table,
    },
    Migration {
        from: 4,
        run: append_validator_counters,
    },
];

fn append_validator_counters(tx: &RwTx<'_>) -> Result<(), DbError> {
    use alloy_rlp::Encodable;
    let mut records = Vec::new();
    tx.walk_raw::<super::Validators>(|k, v| records.push((k.to_vec(), v.to_vec())))?;
    let zero = crate::staking::Counters::default();
    for (key, value) in records {
        let corrupt = |reason: String| DbError::Corrupt {
            table: "Validators",
            key: format!("0x{}", hex::encode(&key)),
            reason,
        };
        let mut body = value.as_slice();
        let header = alloy_rlp::Header::decode(&mut body).map_err(|e| corrupt(e.to_string()))?;
        if !header.list || body.len() != header.payload_length {
            return Err(corrupt("not an RLP list".into()));
        }
        let mut payload = body.to_vec();
        zero.encode(&mut payload);
        zero.encode(&mut payload);
        alloy_primitives::U256::ZERO.encode(&mut payload);
        let mut out = Vec::with_capacity(payload.len() + 4);
        alloy_rlp::Header {
            list: true,
            payload_length: payload.len(),
        }
        .encode(&mut out);
        out.extend_from_slice(&payload);
        let address = alloy_primitives::Address::try_from(key.as_slice())
            .map_err(|_| corrupt("the key is not a 20-byte address".into()))?;
        tx.put_raw::<super::Validators>(&address, &out)?;
    }
    Ok(())
}

/// The metadata key schema version 3 kept the consensus safety record under.
pub(crate) const LEGACY_SAFETY_KEY: &str = "consensus_safety";

fn move_safety_record_to_its_table(tx: &RwTx<'_>) -> Result<(), DbError> {
    let key = LEGACY_SAFETY_KEY.to_string();
    if let Some(record) = tx.get::<Metadata>(&key)? {
        tx.put::<super::ConsensusSafety>(0, &record)?;
        tx.delete::<Metadata>(&key)?;
    }
    Ok(())
}

/// Disk use of the environment: its file, and its pages (used up to the last page, and those
/// on the free list that later writes reuse before the file grows).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    pub file_bytes: u64,
    pub page_size: u64,
    pub used_pages: u64,
    pub free_pages: u64,
}

/// The chain database: one MDBX environment with the tables of [`TABLES`].
pub struct Db {
    env: libmdbx::Database<NoWriteMap>,
    path: PathBuf,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db").field("path", &self.path).finish()
    }
}

/// A read-only snapshot of the database.
pub type RoTx<'db> = Tx<'db, RO>;
/// The (single) write transaction; nothing is visible to others until [`Tx::commit`].
pub type RwTx<'db> = Tx<'db, RW>;

/// A typed transaction over [`Db`]. Dropping a write transaction without committing aborts it.
pub struct Tx<'db, K: TransactionKind> {
    inner: libmdbx::Transaction<'db, K, NoWriteMap>,
    path: &'db Path,
}

impl<K: TransactionKind> std::fmt::Debug for Tx<'_, K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tx")
            .field("kind", &self.inner)
            .field("path", &self.path)
            .finish()
    }
}

fn options() -> DatabaseOptions {
    DatabaseOptions {
        permissions: Some(0o640),
        max_readers: Some(MAX_READERS),
        max_tables: Some(MAX_TABLES),
        // No other process may open the environment while we hold it.
        exclusive: true,
        mode: Mode::ReadWrite(ReadWriteOptions {
            // Every commit is fsynced (data, then meta page) before it returns.
            sync_mode: SyncMode::Durable,
            min_size: None,
            max_size: Some(isize::try_from(MAX_SIZE).unwrap_or(isize::MAX)),
            growth_step: Some(isize::try_from(GROWTH_STEP).unwrap_or(isize::MAX)),
            shrink_threshold: None,
        }),
        ..Default::default()
    }
}

impl Db {
    /// Opens (creating if needed) the database in directory `path` and brings its schema to
    /// [`SCHEMA_VERSION`].
    pub fn open(path: &Path) -> Result<Self, DbError> {
        Self::open_with_migrations(path, SCHEMA_VERSION, MIGRATIONS)
    }

    /// [`Db::open`] with an explicit target version and migration list (tests use it to
    /// exercise the migration mechanism).
    pub(crate) fn open_with_migrations(
        path: &Path,
        target: u32,
        migrations: &[Migration],
    ) -> Result<Self, DbError> {
        let db = Self::open_env(path)?;
        // Refuse a newer schema before writing anything, even an empty table.
        if let Some(found) = db.schema_version()? {
            if found > target {
                return Err(DbError::SchemaTooNew {
                    path: db.path.clone(),
                    found,
                    supported: target,
                });
            }
        }
        db.create_tables()?;
        db.check_schema(target, migrations)?;
        Ok(db)
    }

    /// Opens the environment and creates the tables, without looking at the schema version
    /// (tests use it to craft databases).
    #[cfg(test)]
    pub(crate) fn open_raw(path: &Path) -> Result<Self, DbError> {
        let db = Self::open_env(path)?;
        db.create_tables()?;
        Ok(db)
    }

    fn open_env(path: &Path) -> Result<Self, DbError> {
        let path = path.to_path_buf();
        std::fs::create_dir_all(&path).map_err(|source| DbError::CreateDir {
            path: path.clone(),
            source,
        })?;
        let env = libmdbx::Database::<NoWriteMap>::open_with_options(&path, options()).map_err(
            |source| match source {
                // MDBX_EXCLUSIVE: the environment is held by another process or handle. MDBX
                // reports the lock conflict as MDBX_BUSY or as the errno of the refused file
                // lock (EAGAIN/EWOULDBLOCK).
                source if held_elsewhere(&source) => DbError::InUse { path: path.clone() },
                source => DbError::Open {
                    path: path.clone(),
                    source,
                },
            },
        )?;
        Ok(Db { env, path })
    }

    fn create_tables(&self) -> Result<(), DbError> {
        let tx = self.tx_mut()?;
        for name in TABLES {
            tx.inner
                .create_table(Some(name), TableFlags::default())
                .map_err(tx.err(|| format!("creating table {name}")))?;
        }
        tx.commit()
    }

    fn check_schema(&self, target: u32, migrations: &[Migration]) -> Result<(), DbError> {
        let tx = self.tx_mut()?;
        let found = match read_schema_version(&tx)? {
            Some(v) => v,
            None => {
                // A fresh database: every table is empty. Data without a version is damage,
                // not something to stamp with the current version.
                for name in TABLES {
                    if tx.entries_by_name(name)? != 0 {
                        return Err(DbError::Corrupt {
                            table: Metadata::NAME,
                            key: format!("{SCHEMA_VERSION_KEY:?}"),
                            reason: format!(
                                "the schema version is missing although table {name} holds data"
                            ),
                        });
                    }
                }
                write_schema_version(&tx, target)?;
                tx.commit()?;
                return Ok(());
            }
        };
        drop(tx);
        if found > target {
            return Err(DbError::SchemaTooNew {
                path: self.path.clone(),
                found,
                supported: target,
            });
        }
        for from in found..target {
            let to = from + 1;
            let step = migrations
                .iter()
                .find(|m| m.from == from)
                .ok_or(DbError::NoMigration {
                    path: self.path.clone(),
                    from,
                    to,
                })?;
            let failed = |source| DbError::MigrationFailed {
                path: self.path.clone(),
                from,
                to,
                source: Box::new(source),
            };
            let tx = self.tx_mut().map_err(failed)?;
            (step.run)(&tx).map_err(failed)?;
            write_schema_version(&tx, to).map_err(failed)?;
            tx.commit().map_err(failed)?;
        }
        Ok(())
    }

    /// The MDBX environment (tests inspect its geometry).
    #[cfg(test)]
    pub(crate) fn env(&self) -> &libmdbx::Database<NoWriteMap> {
        &self.env
    }

    /// How much of the disk the database uses (for metrics and `doctor`).
    pub fn usage(&self) -> Result<Usage, DbError> {
        let failed = |source| DbError::Mdbx {
            path: self.path.clone(),
            op: "reading the environment's usage".into(),
            source,
        };
        let info = self.env.info().map_err(failed)?;
        let stat = self.env.stat().map_err(failed)?;
        let free_pages = self.env.freelist().map_err(failed)? as u64;
        let file_bytes = std::fs::metadata(self.path.join("mdbx.dat"))
            .map(|m| m.len())
            .unwrap_or(0);
        Ok(Usage {
            file_bytes,
            page_size: u64::from(stat.page_size()),
            used_pages: info.last_pgno() as u64 + 1,
            free_pages,
        })
    }

    /// The directory holding the database.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Begins a read-only transaction (a consistent snapshot; many may run at once).
    pub fn tx(&self) -> Result<RoTx<'_>, DbError> {
        let inner = self.env.begin_ro_txn().map_err(|source| DbError::Mdbx {
            path: self.path.clone(),
            op: "beginning a read transaction".into(),
            source,
        })?;
        Ok(Tx {
            inner,
            path: &self.path,
        })
    }

    /// Begins the write transaction; blocks while another one is open.
    pub fn tx_mut(&self) -> Result<RwTx<'_>, DbError> {
        let inner = self.env.begin_rw_txn().map_err(|source| DbError::Mdbx {
            path: self.path.clone(),
            op: "beginning a write transaction".into(),
            source,
        })?;
        Ok(Tx {
            inner,
            path: &self.path,
        })
    }

    /// The stored schema version (`None` only before the first open completed).
    pub fn schema_version(&self) -> Result<Option<u32>, DbError> {
        let tx = self.tx()?;
        match tx.inner.open_table(Some(Metadata::NAME)) {
            Err(libmdbx::Error::NotFound) => return Ok(None),
            Err(source) => return Err(tx.err(|| "opening table Metadata".to_string())(source)),
            Ok(_) => {}
        }
        read_schema_version(&tx)
    }
}

/// Whether an open failed because another process (or handle) holds the environment.
fn held_elsewhere(e: &libmdbx::Error) -> bool {
    match e {
        libmdbx::Error::Busy => true,
        libmdbx::Error::Other(code) => {
            std::io::Error::from_raw_os_error(*code).kind() == std::io::ErrorKind::WouldBlock
        }
        _ => false,
    }
}

fn read_schema_version<K: TransactionKind>(tx: &Tx<'_, K>) -> Result<Option<u32>, DbError> {
    let Some(bytes) = tx.get::<Metadata>(&SCHEMA_VERSION_KEY.to_string())? else {
        return Ok(None);
    };
    let bytes: [u8; 4] = bytes.as_slice().try_into().map_err(|_| DbError::Corrupt {
        table: Metadata::NAME,
        key: format!("{SCHEMA_VERSION_KEY:?}"),
        reason: format!("expected 4 bytes (big-endian u32), found {}", bytes.len()),
    })?;
    Ok(Some(u32::from_be_bytes(bytes)))
}

pub(crate) fn write_schema_version(tx: &RwTx<'_>, version: u32) -> Result<(), DbError> {
    tx.put::<Metadata>(
        SCHEMA_VERSION_KEY.to_string(),
        &version.to_be_bytes().to_vec(),
    )
}

/// Decodes one stored entry of `T`; undecodable bytes are [`DbError::Corrupt`].
fn decode_entry<T: Table>(k: &[u8], v: &[u8]) -> Result<Entry<T>, DbError> {
    let key = T::Key::decode_key(k).map_err(|reason| DbError::Corrupt {
        table: T::NAME,
        key: format!("0x{}", hex::encode(k)),
        reason: format!("undecodable key: {reason}"),
    })?;
    let value = T::Value::decode_value(v).map_err(|reason| DbError::Corrupt {
        table: T::NAME,
        key: key.display_key(),
        reason: reason.to_string(),
    })?;
    Ok((key, value))
}

impl<'db, K: TransactionKind> Tx<'db, K> {
    /// Maps an MDBX error to [`DbError::Mdbx`], naming the operation.
    fn err<'a>(
        &'a self,
        op: impl FnOnce() -> String + 'a,
    ) -> impl FnOnce(libmdbx::Error) -> DbError + 'a {
        move |source| DbError::Mdbx {
            path: self.path.to_path_buf(),
            op: op(),
            source,
        }
    }

    fn table_by_name(&self, name: &'static str) -> Result<libmdbx::Table<'_>, DbError> {
        self.inner
            .open_table(Some(name))
            .map_err(self.err(|| format!("opening table {name}")))
    }

    fn entries_by_name(&self, name: &'static str) -> Result<usize, DbError> {
        let table = self.table_by_name(name)?;
        let stat = self
            .inner
            .table_stat(&table)
            .map_err(self.err(|| format!("reading statistics of table {name}")))?;
        Ok(stat.entries())
    }

    /// Number of entries in table `T`.
    pub fn entries<T: Table>(&self) -> Result<usize, DbError> {
        self.entries_by_name(T::NAME)
    }

    /// The raw stored bytes under `key` (no decoding).
    #[cfg(test)]
    pub(crate) fn get_raw<T: Table>(&self, key: &T::Key) -> Result<Option<Vec<u8>>, DbError> {
        let table = self.table_by_name(T::NAME)?;
        let value = self
            .inner
            .get::<Cow<'_, [u8]>>(&table, key.encode_key())
            .map_err(self.err(|| format!("reading {} key {}", T::NAME, key.display_key())))?;
        Ok(value.map(Cow::into_owned))
    }

    /// Visits every entry of `T` as stored (no decoding): for migrations that rewrite what
    /// the current codecs cannot read.
    pub(crate) fn walk_raw<T: Table>(
        &self,
        mut visit: impl FnMut(&[u8], &[u8]),
    ) -> Result<(), DbError> {
        let table = self.table_by_name(T::NAME)?;
        let mut cursor = self
            .inner
            .cursor(&table)
            .map_err(self.err(|| format!("opening a cursor on {}", T::NAME)))?;
        let mut entry = cursor
            .first::<Cow<'_, [u8]>, Cow<'_, [u8]>>()
            .map_err(self.err(|| format!("walking {}", T::NAME)))?;
        while let Some((k, v)) = entry {
            visit(&k, &v);
            entry = cursor
                .next::<Cow<'_, [u8]>, Cow<'_, [u8]>>()
                .map_err(self.err(|| format!("walking {}", T::NAME)))?;
        }
        Ok(())
    }

    /// The value stored under `key` in `T`, or `None`.
    pub fn get<T: Table>(&self, key: &T::Key) -> Result<Option<T::Value>, DbError> {
        let table = self.table_by_name(T::NAME)?;
        let value = self
            .inner
            .get::<Cow<'_, [u8]>>(&table, key.encode_key())
            .map_err(self.err(|| format!("reading {} key {}", T::NAME, key.display_key())))?;
        match value {
            None => Ok(None),
            Some(bytes) => {
                T::Value::decode_value(&bytes)
                    .map(Some)
                    .map_err(|reason| DbError::Corrupt {
                        table: T::NAME,
                        key: key.display_key(),
                        reason: reason.to_string(),
                    })
            }
        }
    }

    /// The entry with the greatest key in `T` (for `u64` keys: the highest number), or `None`
    /// when the table is empty.
    pub fn last<T: Table>(&self) -> Result<Option<Entry<T>>, DbError> {
        let table = self.table_by_name(T::NAME)?;
        let mut cursor = self
            .inner
            .cursor(&table)
            .map_err(self.err(|| format!("opening a cursor on {}", T::NAME)))?;
        let entry = cursor
            .last::<Cow<'_, [u8]>, Cow<'_, [u8]>>()
            .map_err(self.err(|| format!("reading the last entry of {}", T::NAME)))?;
        let Some((k, v)) = entry else {
            return Ok(None);
        };
        decode_entry::<T>(&k, &v).map(Some)
    }
}

impl<K: TransactionKind> Tx<'_, K> {
    /// Visits the entries of `T` with keys `>= from`, in key order, until `visit` returns
    /// `false` or the table ends. A write transaction sees its own uncommitted writes.
    pub fn walk<T: Table>(
        &self,
        from: &T::Key,
        mut visit: impl FnMut(T::Key, T::Value) -> Result<bool, DbError>,
    ) -> Result<(), DbError> {
        let table = self.table_by_name(T::NAME)?;
        let mut cursor = self
            .inner
            .cursor(&table)
            .map_err(self.err(|| format!("opening a cursor on {}", T::NAME)))?;
        let start = from.encode_key();
        let mut entry = cursor
            .set_range::<Cow<'_, [u8]>, Cow<'_, [u8]>>(start.as_ref())
            .map_err(self.err(|| format!("seeking in {}", T::NAME)))?;
        while let Some((k, v)) = entry {
            let (key, value) = decode_entry::<T>(&k, &v)?;
            if !visit(key, value)? {
                break;
            }
            entry = cursor
                .next::<Cow<'_, [u8]>, Cow<'_, [u8]>>()
                .map_err(self.err(|| format!("walking {}", T::NAME)))?;
        }
        Ok(())
    }
}

impl Tx<'_, RW> {
    /// Stores `value` under `key` in `T`, replacing any previous value.
    pub fn put<T: Table>(&self, key: T::Key, value: &T::Value) -> Result<(), DbError> {
        self.put_raw::<T>(&key, &value.encode_value())
    }

    /// Stores raw bytes (no encoding): for migrations and tests that need to write what the
    /// codecs would not.
    pub(crate) fn put_raw<T: Table>(&self, key: &T::Key, bytes: &[u8]) -> Result<(), DbError> {
        let table = self.table_by_name(T::NAME)?;
        self.inner
            .put(&table, key.encode_key(), bytes, WriteFlags::UPSERT)
            .map_err(self.err(|| format!("writing {} key {}", T::NAME, key.display_key())))
    }

    /// Deletes `key` from `T`; returns whether it was present.
    pub fn delete<T: Table>(&self, key: &T::Key) -> Result<bool, DbError> {
        let table = self.table_by_name(T::NAME)?;
        self.inner
            .del(&table, key.encode_key(), None)
            .map_err(self.err(|| format!("deleting {} key {}", T::NAME, key.display_key())))
    }

    /// Commits durably: when this returns `Ok`, the writes survive a crash or power loss.
    pub fn commit(self) -> Result<(), DbError> {
        let path = self.path;
        self.inner
            .commit()
            .map(drop)
            .map_err(|source| DbError::Mdbx {
                path: path.to_path_buf(),
                op: "committing a write transaction".into(),
                source,
            })
    }
}
