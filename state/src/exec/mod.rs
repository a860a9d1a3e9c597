//! Ethereum execution on the chain store: revm over MDBX state, receipts, roots.
//!
//! - [`tx`]: decoding and sender recovery ([`SignedTx`]).
//! - [`state_db`]: revm's view of MDBX ([`StateReader`]) and the overlay of pending changes.
//! - [`execute`]: running transactions (leader and validator modes), `eth_call`, fees.
//! - [`root`]: applying changes to MDBX and computing the state root.
//! - [`types`]: stored accounts, receipts and transaction locations.
//!
//! The leader [`build`]s a block from candidate transactions, every validator [`verify`]s it
//! by re-executing, and on finality [`ChainStore::commit_executed`] writes block and state in
//! one MDBX transaction, so the chain and its state never disagree after a crash.

pub mod epoch_vdf;
pub mod execute;
pub mod precompile;
pub mod staking;
pub mod state_db;

pub use execute::{
    call, describe_invalid, execute, BlockInputs, CallOutcome, ExecConfig, Execution, TxRejection,
    SPEC,
};
pub use staking::Refused;
pub use state_db::{PendingState, StateReader};
// Lower-layer items execution is spoken of with, re-exported so callers name one place.
pub use crate::block::next_base_fee_after;
pub use crate::changes::{AccountInfoLite, StateChanges};
pub use crate::db::trie;
pub use crate::fees::{next_base_fee, MIN_BASE_FEE};
pub use crate::tx::{CallRequest, SignedTx, TxError, MAX_TX_BYTES};
pub use crate::types::{
    block_bloom, receipts_root, StoredAccount, StoredReceipt, StoredReceipts, TxLocation,
    EMPTY_CODE_HASH,
};

use crate::block::{Block, BlockTemplate, Header, GAS_LIMIT};
use crate::db::{ChainStore, DbError, StateWrites};
use crate::spec::ChainSpec;
use alloy_primitives::{Bytes, B256};

/// The fork-schedule name that turns on paying priority fees to the leader.
pub const FORK_PRIORITY_FEE_TO_LEADER: &str = crate::forks::PRIORITY_FEE_TO_LEADER;

impl ExecConfig {
    pub fn from_spec(spec: &ChainSpec) -> Self {
        Self {
            chain_id: spec.chain_id,
            shard: spec.shard,
            priority_fee_to_leader_from: spec.forks.get(FORK_PRIORITY_FEE_TO_LEADER).copied(),
            header_v2_from: spec.forks.get(crate::forks::HEADER_V2).copied(),
            staking_from: spec.forks.get(crate::forks::STAKING).copied(),
            epoch_blocks: spec.epoch_blocks,
            staking: spec.staking,
            rewards_from: spec.forks.get(crate::forks::REWARDS).copied(),
            fee_split_from: spec.forks.get(crate::forks::FEE_SPLIT).copied(),
            hip30_from: spec.forks.get(crate::forks::HIP30).copied(),
            genesis_timestamp_ms: spec.genesis_timestamp_ms,
            vdf_from: spec.forks.get(crate::forks::VDF).copied(),
            vdf: spec.vdf,
            economics: std::sync::Arc::new(spec.economics.clone()),
            // A validated spec has only well-formed keys; the internal seats are its keys.
            internal_keys: spec
                .validators
                .iter()
                .flat_map(|v| &v.bls_keys)
                .filter_map(|k| crate::spec::parse_hex::<48>(&k.public_key).ok())
                .map(crate::staking::BlsKey::from)
                .collect(),
        }
    }
}

/// Roots and totals a header commits to, from an execution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub state_root: B256,
    pub receipts_root: B256,
    pub transactions_root: B256,
    pub logs_bloom: alloy_primitives::Bloom,
    pub gas_used: u64,
    /// Root of the staking transactions (empty root without any).
    pub staking_transactions_root: B256,
    /// Staking state root after the block.
    pub staking_root: B256,
    /// The next committee (RLP) at an epoch's last block under staking; empty otherwise.
    pub committee: Bytes,
    /// The double-sign evidence applied (RLP list); empty without any.
    pub slashes: Bytes,
}

/// An executed block: what it changes and the roots it must carry.
#[derive(Debug, Clone)]
pub struct ExecutedBlock {
    pub execution: Execution,
    pub staking: staking::StakingExecution,
    pub outcome: Outcome,
    /// The account-trie writes that give `outcome.state_root`, for the commit.
    pub trie: trie::TrieDiff,
    /// Time spent computing the account trie's new root (the node's metrics).
    pub root_time: std::time::Duration,
}

impl ExecutedBlock {
    /// What [`ChainStore::commit_executed`] writes besides the block itself.
    pub fn writes(&self) -> StateWrites<'_> {
        StateWrites {
            changes: &self.execution.changes,
            trie: &self.trie,
            receipts: &self.execution.receipts,
            tx_hashes: self
                .execution
                .txs
                .iter()
                .map(|t| t.hash)
                .chain(self.staking.txs.iter().map(|t| t.hash))
                .collect(),
            validators: &self.staking.changed,
            issuance: self.staking.issuance.as_ref(),
        }
    }
}

/// Why a block does not re-execute to what its header says.
#[derive(Debug, thiserror::Error)]
pub enum BlockError {
    #[error("transaction {index} ({hash}) cannot be included: {reason}")]
    Tx {
        index: usize,
        hash: B256,
        reason: String,
    },
    #[error("{field} mismatch: header has {header}, re-execution gives {computed}")]
    Mismatch {
        field: &'static str,
        header: String,
        computed: String,
    },
    #[error("the store holds no genesis block; start the node once to initialize the data dir")]
    NoGenesis,
    #[error("staking transaction {index} ({hash}) cannot be included: {reason}")]
    Staking {
        index: usize,
        hash: B256,
        reason: String,
    },
    #[error("slash record {index} cannot be applied: {reason}")]
    Slash { index: usize, reason: String },
    #[error("VDF: {0}")]
    Vdf(String),
    #[error("the store failed while executing: {0}")]
    Store(String),
    #[error("block #{number} does not extend the stored tip #{tip}")]
    NotOnTip { number: u64, tip: u64 },
    #[error(transparent)]
    Db(#[from] DbError),
}

/// The execution inputs of a block with `header`.
pub fn inputs_of(header: &Header) -> BlockInputs {
    BlockInputs {
        number: header.number,
        epoch: header.epoch,
        timestamp_ms: header.timestamp_ms,
        base_fee: header.base_fee,
        gas_limit: header.gas_limit,
        leader: header.leader,
        // The leader's VRF output under the `vrf` fork; the parent hash before it.
        prevrandao: header.vrf_output().unwrap_or(header.parent_hash),
        parent_staking_root: crate::block::EMPTY_ROOT,
        last_commit_bitmap: header.last_commit_bitmap.clone(),
        vdf: header.vdf.clone(),
    }
}

/// The execution inputs of `header`, on `parent` (whose staking root it continues).
fn inputs_on(header: &Header, parent: &Header) -> BlockInputs {
    let mut inputs = inputs_of(header);
    inputs.parent_staking_root = parent
        .v2
        .as_ref()
        .map_or(crate::block::EMPTY_ROOT, |v| v.staking_root);
    inputs
}

/// What the staking precompile works on at `epoch` (None before the staking fork): the
/// staking state in `tx`, read if a call comes.
pub fn staking_calls<'a, K: libmdbx::TransactionKind>(
    cfg: &ExecConfig,
    epoch: u64,
    tx: &'a crate::db::Tx<'_, K>,
) -> Option<precompile::StakingCalls<'a>> {
    cfg.staking_active(epoch).then(|| {
        precompile::StakingCalls::new(cfg.staking_params(epoch), epoch, move || {
            crate::db::staking::load(tx).map_err(|e| e.to_string())
        })
    })
}

/// Executes `txs`, then (under the `staking` fork) `staking_txs`, on the store's current
/// state and computes the roots (without writing).
pub fn run(
    store: &ChainStore,
    cfg: &ExecConfig,
    inputs: &BlockInputs,
    txs: Vec<SignedTx>,
    staking_txs: Vec<crate::staking::SignedStakingTx>,
    slashes: Vec<crate::staking::DoubleSign>,
    strict: bool,
) -> Result<ExecutedBlock, BlockError> {
    let ro = store.db().tx()?;
    epoch_vdf::check_field(&ro, cfg, inputs.number, &inputs.vdf).map_err(BlockError::Vdf)?;
    let reader = StateReader::new(&ro);
    let calls = staking_calls(cfg, inputs.epoch, &ro);
    let mut execution = execute(StateReader::new(&ro), cfg, inputs, txs, strict, calls).map_err(
        |(index, hash, r)| BlockError::Tx {
            index,
            hash,
            reason: r.to_string(),
        },
    )?;
    let staking = if cfg.staking_active(inputs.epoch) {
        staking::apply(
            &reader,
            &ro,
            cfg,
            inputs,
            &mut execution.changes,
            execution.gas_used,
            staking_txs,
            slashes,
            execution.staking_state.take(),
            strict,
        )
        .map_err(|r| match r {
            staking::Refused::Tx {
                index,
                hash,
                reason,
            } => BlockError::Staking {
                index,
                hash,
                reason,
            },
            staking::Refused::Slash { index, reason } => BlockError::Slash { index, reason },
            staking::Refused::Db(reason) => BlockError::Store(reason),
        })?
    } else if !slashes.is_empty() {
        return Err(BlockError::Slash {
            index: 0,
            reason: format!("staking is not active in epoch {}", inputs.epoch),
        });
    } else if let Some(t) = staking_txs.first() {
        return Err(BlockError::Staking {
            index: 0,
            hash: t.hash,
            reason: format!("staking is not active in epoch {}", inputs.epoch),
        });
    } else {
        staking::StakingExecution {
            root: inputs.parent_staking_root,
            ..Default::default()
        }
    };
    if cfg.fee_split_active(inputs.epoch) {
        let gas = execution.gas_used + staking.gas_used;
        staking::pay_fee_collectors(&reader, &mut execution.changes, cfg, inputs, gas);
    }
    drop(ro);
    let root_started = std::time::Instant::now();
    let trie = store.trie_diff_after(&execution.changes)?;
    let root_time = root_started.elapsed();
    let state_root = trie.root;
    let raws: Vec<Bytes> = execution.txs.iter().map(|t| t.raw.clone()).collect();
    let staking_raws: Vec<Bytes> = staking.txs.iter().map(|t| t.raw.clone()).collect();
    // Staking receipts follow the EVM ones in the block's receipts (and its root).
    execution.receipts.extend(staking.receipts.iter().cloned());
    let outcome = Outcome {
        state_root,
        receipts_root: receipts_root(&execution.receipts),
        transactions_root: crate::block::transactions_root(&raws),
        logs_bloom: block_bloom(&execution.receipts),
        gas_used: execution.gas_used + staking.gas_used,
        staking_transactions_root: crate::block::transactions_root(&staking_raws),
        staking_root: staking.root,
        committee: staking.committee.clone(),
        slashes: if staking.slashes.is_empty() {
            Bytes::new()
        } else {
            alloy_rlp::encode(&staking.slashes).into()
        },
    };
    Ok(ExecutedBlock {
        execution,
        staking,
        outcome,
        trie,
        root_time,
    })
}

/// The leader's path: executes candidates (in the order given, leaving out those that cannot
/// be included) on top of the tip `parent`, and assembles the block.
pub fn build(
    store: &ChainStore,
    cfg: &ExecConfig,
    parent: &Header,
    template: BlockTemplate,
    candidates: Vec<SignedTx>,
) -> Result<(Block, ExecutedBlock), BlockError> {
    build_with_staking(store, cfg, parent, template, candidates, Vec::new())
}

/// [`build`] with staking transaction candidates (left out when they cannot be included).
pub fn build_with_staking(
    store: &ChainStore,
    cfg: &ExecConfig,
    parent: &Header,
    template: BlockTemplate,
    candidates: Vec<SignedTx>,
    staking_candidates: Vec<crate::staking::SignedStakingTx>,
) -> Result<(Block, ExecutedBlock), BlockError> {
    build_full(
        store,
        cfg,
        parent,
        template,
        candidates,
        BlockExtras {
            staking: staking_candidates,
            ..Default::default()
        },
    )
}

/// What a block carries besides its EVM transactions.
#[derive(Debug, Clone, Default)]
pub struct BlockExtras {
    /// Staking transaction candidates (left out when they cannot be included).
    pub staking: Vec<crate::staking::SignedStakingTx>,
    /// Double-sign evidence to include (left out when it cannot be applied: see
    /// `ExecutedBlock::staking.rejected_slashes`).
    pub evidence: Vec<crate::staking::DoubleSign>,
    /// The epoch's VDF proof, on an epoch's last block under the `vdf` fork.
    pub vdf: Bytes,
}

/// [`build`] with everything else a block may carry.
pub fn build_full(
    store: &ChainStore,
    cfg: &ExecConfig,
    parent: &Header,
    template: BlockTemplate,
    candidates: Vec<SignedTx>,
    extras: BlockExtras,
) -> Result<(Block, ExecutedBlock), BlockError> {
    let BlockExtras {
        staking: staking_candidates,
        evidence,
        vdf,
    } = extras;
    let version = cfg.header_version(template.epoch);
    let mut block = template.build_version(version);
    block.header.base_fee = next_base_fee_after(parent);
    block.header.vdf = vdf;
    let inputs = inputs_on(&block.header, parent);
    let evidence = if cfg.staking_active(inputs.epoch) {
        evidence
    } else {
        Vec::new()
    };
    let executed = run(
        store,
        cfg,
        &inputs,
        candidates,
        staking_candidates,
        evidence,
        false,
    )?;
    let o = &executed.outcome;
    let h = &mut block.header;
    h.state_root = o.state_root;
    h.receipts_root = o.receipts_root;
    h.transactions_root = o.transactions_root;
    h.logs_bloom = o.logs_bloom;
    h.gas_used = o.gas_used;
    if let Some(v2) = h.v2.as_mut() {
        v2.staking_transactions_root = o.staking_transactions_root;
        v2.staking_root = o.staking_root;
        v2.committee = o.committee.clone();
        v2.slashes = o.slashes.clone();
    }
    block.body.transactions = executed
        .execution
        .txs
        .iter()
        .map(|t| t.raw.clone())
        .collect();
    block.body.staking_transactions = executed.staking.txs.iter().map(|t| t.raw.clone()).collect();
    Ok((block, executed))
}

/// The validator's path: re-executes `block` on the tip `parent` and checks every root.
pub fn verify(
    store: &ChainStore,
    cfg: &ExecConfig,
    parent: &Header,
    block: &Block,
) -> Result<ExecutedBlock, BlockError> {
    verify_known(store, cfg, parent, block, &Default::default())
}

/// [`verify`] reusing senders already recovered (the validator's mempool holds most of a
/// block's transactions), keyed by transaction hash.
pub fn verify_known(
    store: &ChainStore,
    cfg: &ExecConfig,
    parent: &Header,
    block: &Block,
    known: &std::collections::HashMap<B256, SignedTx>,
) -> Result<ExecutedBlock, BlockError> {
    let h = &block.header;
    check("header version", h.version, cfg.header_version(h.epoch))?;
    let mut staking_txs = Vec::with_capacity(block.body.staking_transactions.len());
    for (index, raw) in block.body.staking_transactions.iter().enumerate() {
        staking_txs.push(
            crate::staking::SignedStakingTx::decode(raw, cfg.chain_id).map_err(|e| {
                BlockError::Staking {
                    index,
                    hash: alloy_primitives::keccak256(raw),
                    reason: e.to_string(),
                }
            })?,
        );
    }
    let want_base = next_base_fee_after(parent);
    check("base fee", h.base_fee, want_base)?;
    check("gas limit", h.gas_limit, GAS_LIMIT)?;
    let mut txs = Vec::with_capacity(block.body.transactions.len());
    for (index, r) in SignedTx::decode_all_known(&block.body.transactions, cfg.chain_id, known)
        .into_iter()
        .enumerate()
    {
        txs.push(r.map_err(|e| BlockError::Tx {
            index,
            hash: alloy_primitives::keccak256(&block.body.transactions[index]),
            reason: e.to_string(),
        })?);
    }
    let slashes: Vec<crate::staking::DoubleSign> = match &h.v2 {
        Some(v2) if !v2.slashes.is_empty() => {
            crate::block::decode_exact(&v2.slashes).map_err(|e| BlockError::Slash {
                index: 0,
                reason: format!("the header's slashes do not decode: {e}"),
            })?
        }
        _ => Vec::new(),
    };
    let executed = run(
        store,
        cfg,
        &inputs_on(h, parent),
        txs,
        staking_txs,
        slashes,
        true,
    )?;
    let o = &executed.outcome;
    match &h.v2 {
        Some(v2) => {
            check(
                "staking transactions root",
                v2.staking_transactions_root,
                o.staking_transactions_root,
            )?;
            check("staking root", v2.staking_root, o.staking_root)?;
            check("committee", hex_of(&v2.committee), hex_of(&o.committee))?;
            check("slashes", hex_of(&v2.slashes), hex_of(&o.slashes))?;
        }
        // Version 1 has no staking fields: staking needs header_v2 (checked at spec load).
        None if !executed.staking.txs.is_empty() => {
            return Err(BlockError::Staking {
                index: 0,
                hash: executed.staking.txs[0].hash,
                reason: "a version-1 header cannot carry staking transactions".into(),
            })
        }
        None => {}
    }
    check(
        "transactions root",
        h.transactions_root,
        o.transactions_root,
    )?;
    check("receipts root", h.receipts_root, o.receipts_root)?;
    check("gas used", h.gas_used, o.gas_used)?;
    check("logs bloom", h.logs_bloom, o.logs_bloom)?;
    check("state root", h.state_root, o.state_root)?;
    Ok(executed)
}

fn hex_of(b: &Bytes) -> String {
    if b.is_empty() {
        String::new()
    } else {
        format!("0x{}", hex::encode(b))
    }
}

fn check<T: PartialEq + std::fmt::Display>(
    field: &'static str,
    header: T,
    computed: T,
) -> Result<(), BlockError> {
    if header == computed {
        Ok(())
    } else {
        Err(BlockError::Mismatch {
            field,
            header: header.to_string(),
            computed: computed.to_string(),
        })
    }
}
