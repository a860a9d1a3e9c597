//! [`ChainStore`]: the canonical chain (headers, bodies, commit certificates) as the node uses it.

use super::env::{Db, RwTx, SCHEMA_VERSION_KEY};
use super::error::DbError;
use super::root;
use super::tables::{
    Bodies, CanonicalHashes, Certificates, ConsensusSafety, HeaderNumbers, Headers, Metadata, Table,
};
use super::tables::{Receipts, TxLookup};
use super::trie::TrieDiff;
use crate::block::{Block, CommitCertificate, Header, MAX_HEADER_VERSION};
use crate::changes::StateChanges;
use crate::types::{StoredReceipt, StoredReceipts, TxLocation};
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
        alloc: &StateChanges,
    ) -> Result<(), DbError> {
        self.init_genesis_inner(genesis, Some(alloc))
    }

    fn init_genesis_inner(
        &self,
        genesis: &Block,
        alloc: Option<&StateChanges>,
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
                let root = super::root::apply_changes(&tx, alloc)?;
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

/// The consensus safety record: its own table, typed at this boundary (the record's type lives
/// in `consensus`, which this crate does not know; it is any RLP type).
impl ChainStore {
    /// The safety record of `shard`, if one was stored. Bytes that do not decode are
    /// [`DbError::Corrupt`]: the record guards against double-signing, so it is never guessed.
    pub fn consensus_safety<T: alloy_rlp::Decodable>(
        &self,
        shard: u64,
    ) -> Result<Option<T>, DbError> {
        let Some(bytes) = self.db.tx()?.get::<ConsensusSafety>(&shard)? else {
            return Ok(None);
        };
        crate::block::decode_exact(&bytes)
            .map(Some)
            .map_err(|e| DbError::Corrupt {
                table: ConsensusSafety::NAME,
                key: shard.to_string(),
                reason: e.to_string(),
            })
    }

    /// Stores `record` as the safety record of `shard`, durably (fsync) before returning.
    pub fn put_consensus_safety<T: alloy_rlp::Encodable>(
        &self,
        shard: u64,
        record: &T,
    ) -> Result<(), DbError> {
        let tx = self.db.tx_mut()?;
        tx.put::<ConsensusSafety>(shard, &alloy_rlp::encode(record))?;
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
    if header.version == 0 || header.version > MAX_HEADER_VERSION {
        return Err(DbError::InvalidBlock {
            number,
            reason: format!(
                "header version {} is not one this node stores (1 to {MAX_HEADER_VERSION})",
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

/// What executing a block writes besides the block itself (built by the executor, which knows
/// the changes; applied here, where the tables are).
#[derive(Debug, Clone)]
pub struct StateWrites<'a> {
    pub changes: &'a StateChanges,
    /// The account-trie writes computed with the changes (reused when the root matches).
    pub trie: &'a TrieDiff,
    pub receipts: &'a [StoredReceipt],
    /// Transaction hashes in block order (staking transactions after the others), for the
    /// lookup index.
    pub tx_hashes: Vec<B256>,
    /// Validator records the block changed.
    pub validators: &'a [crate::staking::Validator],
    /// The issuance record, when the block changed it.
    pub issuance: Option<&'a crate::staking::Issuance>,
}

/// State and receipts: the half of the store that execution fills.
impl ChainStore {
    /// The state root after applying `changes` to the current state: computed inside a write
    /// transaction that is then dropped, so nothing is written.
    pub fn state_root_after(&self, changes: &StateChanges) -> Result<B256, DbError> {
        Ok(self.trie_diff_after(changes)?.root)
    }

    /// The root after `changes` with the account-trie writes that give it (nothing written).
    pub fn trie_diff_after(&self, changes: &StateChanges) -> Result<TrieDiff, DbError> {
        let tx = self.db().tx_mut()?;
        root::apply_and_diff(&tx, changes)
        // `tx` drops here: aborted.
    }

    /// The root of the state as stored, recomputed from every account (the reference the
    /// incremental root is checked against).
    pub fn state_root(&self) -> Result<B256, DbError> {
        root::state_root(&self.db().tx()?)
    }

    /// Appends an executed block: header, body, certificate, state changes, receipts and the
    /// transaction index, all in one write transaction.
    pub fn commit_executed(
        &self,
        block: &Block,
        cert: Option<&CommitCertificate>,
        writes: StateWrites<'_>,
    ) -> Result<(), DbError> {
        let tx = self.db().tx_mut()?;
        self.insert_in_tx(&tx, block, cert)?;
        // The trie writes computed when the block was executed apply to this same state (the
        // block extends the tip, checked above), so the trie is not walked again.
        let root = if writes.trie.root == block.header.state_root {
            root::apply_with_diff(&tx, writes.changes, writes.trie)?;
            writes.trie.root
        } else {
            root::apply_changes(&tx, writes.changes)?
        };
        let number = block.number();
        if root != block.header.state_root {
            // Nothing is written: the state must never disagree with its block.
            return Err(DbError::InvalidBlock {
                number,
                reason: format!(
                    "state root after applying the block is {root}, the header says {}",
                    block.header.state_root
                ),
            });
        }
        tx.put::<Receipts>(
            number,
            &StoredReceipts {
                receipts: writes.receipts.to_vec(),
            },
        )?;
        for (index, hash) in writes.tx_hashes.iter().enumerate() {
            tx.put::<TxLookup>(
                *hash,
                &TxLocation {
                    block: number,
                    index: index as u32,
                },
            )?;
        }
        super::staking::write(&tx, writes.validators, writes.issuance)?;
        tx.commit()
    }

    /// The staking state as of the tip.
    pub fn staking_state(&self) -> Result<crate::staking::StakingState, DbError> {
        super::staking::load(&self.db.tx()?)
    }

    /// One validator's record as of the tip (one lookup, for per-block metrics).
    pub fn validator(
        &self,
        address: &alloy_primitives::Address,
    ) -> Result<Option<crate::staking::Validator>, DbError> {
        self.db.tx()?.get::<super::Validators>(address)
    }

    /// What block rewards have issued, as of the tip.
    pub fn issuance(&self) -> Result<crate::staking::Issuance, DbError> {
        Ok(super::staking::load_issuance(&self.db.tx()?)?.unwrap_or_default())
    }

    /// The receipts of block `n`.
    pub fn receipts(&self, n: u64) -> Result<Option<StoredReceipts>, DbError> {
        self.db().tx()?.get::<Receipts>(&n)
    }

    /// Where a transaction sits in the canonical chain.
    pub fn tx_location(&self, hash: &B256) -> Result<Option<TxLocation>, DbError> {
        self.db().tx()?.get::<TxLookup>(hash)
    }
}
