//! [`ChainStore`]: the canonical chain (headers, bodies, commit certificates) as the node uses it.

use super::env::{Db, RwTx, SCHEMA_VERSION_KEY};
use super::error::DbError;
use super::tables::{
    Bodies, CanonicalHashes, Certificates, HeaderNumbers, Headers, Metadata, Table,
};
use crate::block::{Block, CommitCertificate, Header, HEADER_VERSION};
use alloy_primitives::B256;
use std::path::Path;

/// The node's chain database. `Send + Sync`; share it behind an `Arc`. Reads run on consistent
/// snapshots and never block; writes are serialised, one write transaction per block.
#[derive(Debug)]
pub struct ChainStore {
    db: Db,
}

const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<ChainStore>();
};

impl ChainStore {
    /// Opens (creating the directory and database if missing) the chain database in `path`.
    /// Fails with [`DbError::InUse`] if another process holds it, and with
    /// [`DbError::SchemaTooNew`] if a newer node version wrote it.
    pub fn open(path: &Path) -> Result<Self, DbError> {
        Ok(Self {
            db: Db::open(path)?,
        })
    }

    /// The typed table layer underneath, for readers and writers of other tables.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// The database directory.
    pub fn path(&self) -> &Path {
        self.db.path()
    }

    /// Stores `genesis` as block 0 if the database is empty. If a genesis is stored already,
    /// it must be this one: otherwise [`DbError::GenesisMismatch`] (the data dir belongs to
    /// another network).
    pub fn init_genesis(&self, genesis: &Block) -> Result<(), DbError> {
        self.init_genesis_inner(genesis, None)
    }

    /// [`init_genesis`](Self::init_genesis) that also writes the genesis allocation (the
    /// chain spec's `alloc`), in the same transaction as block 0.
    /// The genesis state root must be block 0's.
    pub fn init_genesis_with_state(
        &self,
        genesis: &Block,
        alloc: &crate::exec::StateChanges,
    ) -> Result<(), DbError> {
        self.init_genesis_inner(genesis, Some(alloc))
    }

    fn init_genesis_inner(
        &self,
        genesis: &Block,
        alloc: Option<&crate::exec::StateChanges>,
    ) -> Result<(), DbError> {
        let expected = genesis.hash();
        if genesis.number() != 0 {
            return Err(DbError::InvalidBlock {
                number: genesis.number(),
                reason: "a genesis block must have number 0; check the chain spec".into(),
            });
        }
        let tx = self.db.tx_mut()?;
        match tx.get::<CanonicalHashes>(&0)? {
            Some(stored) if stored == expected => Ok(()),
            Some(stored) => Err(DbError::GenesisMismatch {
                path: self.path().to_path_buf(),
                stored,
                expected,
            }),
            None => {
                insert_in(&tx, genesis, expected, None)?;
                let Some(alloc) = alloc else {
                    return tx.commit();
                };
                let root = crate::exec::root::apply_changes(&tx, alloc)?;
                if root != genesis.header.state_root {
                    return Err(DbError::InvalidBlock {
                        number: 0,
                        reason: format!(
                            "the genesis allocation hashes to {root}, block 0 says {}",
                            genesis.header.state_root
                        ),
                    });
                }
                tx.commit()
            }
        }
    }

    /// The highest canonical block: its number and hash, or `None` before genesis.
    pub fn tip(&self) -> Result<Option<(u64, B256)>, DbError> {
        self.db.tx()?.last::<CanonicalHashes>()
    }

    /// Appends `block` to the canonical chain, in one write transaction (header, body,
    /// canonical hash, hash → number, certificate). The block must extend the tip (number
    /// tip + 1 and parent hash = tip hash; number 0 on an empty database), and `cert` must
    /// commit this block; it may be `None` only for genesis. On any refusal nothing is written.
    pub fn insert_block(
        &self,
        block: &Block,
        cert: Option<&CommitCertificate>,
    ) -> Result<(), DbError> {
        let hash = block.hash();
        let tx = self.db.tx_mut()?;
        insert_in(&tx, block, hash, cert)?;
        tx.commit()
    }

    /// Checks and writes `block` inside a caller's write transaction (which also writes the
    /// block's state), so block and state commit together or not at all.
    pub(crate) fn insert_in_tx(
        &self,
        tx: &RwTx<'_>,
        block: &Block,
        cert: Option<&CommitCertificate>,
    ) -> Result<(), DbError> {
        insert_in(tx, block, block.hash(), cert)
    }

    /// Replaces the stored commit certificate of an existing block (same number and hash),
    /// e.g. when more signatures arrived after it was committed.
    pub fn upgrade_certificate(&self, cert: &CommitCertificate) -> Result<(), DbError> {
        let tx = self.db.tx_mut()?;
        let Some(hash) = tx.get::<CanonicalHashes>(&cert.number)? else {
            return Err(DbError::UnknownBlock {
                number: cert.number,
                tip: tx.last::<CanonicalHashes>()?,
            });
        };
        let header = tx
            .get::<Headers>(&cert.number)?
            .ok_or_else(|| missing(Headers::NAME, cert.number))?;
        check_cert(&header, hash, cert)?;
        tx.put::<Certificates>(cert.number, cert)?;
        tx.commit()
    }

    /// The header of the highest canonical block, or `None` before genesis.
    pub fn tip_header(&self) -> Result<Option<Header>, DbError> {
        let tx = self.db.tx()?;
        match tx.last::<CanonicalHashes>()? {
            Some((n, _)) => Ok(Some(
                tx.get::<Headers>(&n)?
                    .ok_or_else(|| missing(Headers::NAME, n))?,
            )),
            None => Ok(None),
        }
    }

    /// The canonical header at height `n`.
    pub fn header(&self, n: u64) -> Result<Option<Header>, DbError> {
        self.db.tx()?.get::<Headers>(&n)
    }

    /// The canonical block at height `n` (header and body, read from one snapshot).
    pub fn block(&self, n: u64) -> Result<Option<Block>, DbError> {
        let tx = self.db.tx()?;
        let Some(header) = tx.get::<Headers>(&n)? else {
            return Ok(None);
        };
        let body = tx
            .get::<Bodies>(&n)?
            .ok_or_else(|| missing(Bodies::NAME, n))?;
        Ok(Some(Block { header, body }))
    }

    /// The commit certificate of block `n` (`None` for genesis and unknown blocks).
    pub fn certificate(&self, n: u64) -> Result<Option<CommitCertificate>, DbError> {
        self.db.tx()?.get::<Certificates>(&n)
    }

    /// The canonical hash at height `n`.
    pub fn canonical_hash(&self, n: u64) -> Result<Option<B256>, DbError> {
        self.db.tx()?.get::<CanonicalHashes>(&n)
    }

    /// The height of the canonical block with this hash.
    pub fn number_of(&self, hash: &B256) -> Result<Option<u64>, DbError> {
        self.db.tx()?.get::<HeaderNumbers>(hash)
    }

    /// A node metadata value.
    pub fn get_meta(&self, key: &str) -> Result<Option<Vec<u8>>, DbError> {
        self.db.tx()?.get::<Metadata>(&key.to_string())
    }

    /// Stores a node metadata value (durably, in its own transaction). Keys the store manages
    /// itself (`schema_version`) are refused.
    pub fn put_meta(&self, key: &str, value: &[u8]) -> Result<(), DbError> {
        if key == SCHEMA_VERSION_KEY {
            return Err(DbError::ReservedMetadataKey {
                key: key.to_string(),
            });
        }
        let tx = self.db.tx_mut()?;
        tx.put::<Metadata>(key.to_string(), &value.to_vec())?;
        tx.commit()
    }
}

fn missing(table: &'static str, n: u64) -> DbError {
    DbError::Corrupt {
        table,
        key: n.to_string(),
        reason: format!("missing, although block {n} is in the canonical chain"),
    }
}

/// A certificate commits a block when it names its number and hash, at the header's view or a
/// later one (a re-proposed block is committed in the view that re-proposed it).
fn check_cert(header: &Header, hash: B256, cert: &CommitCertificate) -> Result<(), DbError> {
    if cert.number != header.number || cert.hash != hash || cert.view < header.view {
        return Err(DbError::CertificateMismatch {
            number: header.number,
            hash,
            view: header.view,
            cert_number: cert.number,
            cert_hash: cert.hash,
            cert_view: cert.view,
        });
    }
    Ok(())
}

/// Checks and writes one block inside `tx`; on error the caller drops (aborts) `tx`.
fn insert_in(
    tx: &RwTx<'_>,
    block: &Block,
    hash: B256,
    cert: Option<&CommitCertificate>,
) -> Result<(), DbError> {
    let header = &block.header;
    let number = header.number;
    if header.version != HEADER_VERSION {
        return Err(DbError::InvalidBlock {
            number,
            reason: format!(
                "header version {} is not the version this node stores ({HEADER_VERSION})",
                header.version
            ),
        });
    }
    let tip = tx.last::<CanonicalHashes>()?;
    let extends = match tip {
        None => number == 0,
        Some((n, h)) => n.checked_add(1) == Some(number) && header.parent_hash == h,
    };
    if !extends {
        return Err(DbError::NotNext {
            number,
            parent_hash: header.parent_hash,
            tip,
        });
    }
    match cert {
        Some(cert) => check_cert(header, hash, cert)?,
        None if number != 0 => return Err(DbError::MissingCertificate { number }),
        None => {}
    }
    tx.put::<Headers>(number, header)?;
    tx.put::<Bodies>(number, &block.body)?;
    tx.put::<CanonicalHashes>(number, &hash)?;
    tx.put::<HeaderNumbers>(hash, &number)?;
    if let Some(cert) = cert {
        tx.put::<Certificates>(number, cert)?;
    }
    Ok(())
}
