//! What the event loop, RPC and the network share about the chain: the tip, transaction
//! submission, the shared pool, finalized-block events and the status board.

use crate::lock::LockExt;
use consensus::Tip;
use serde::Serialize;
use state::db::ChainStore;
use state::exec::{SignedTx, StateReader};
use state::mempool::Mempool;
use state::Header;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

/// What RPC and the status line read about consensus.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct NodeStatus {
    pub block_number: u64,
    #[serde(rename = "viewID")]
    pub view_id: u64,
    pub leader: usize,
    pub is_leader: bool,
    pub last_finality_ms: Option<f64>,
    pub connected_peers: Vec<usize>,
    /// The last block stored (the round in progress is `block_number`).
    pub finalized: u64,
    pub epoch: u64,
    /// The highest height a peer claimed (catch-up target).
    pub peer_height: u64,
    /// The tip when this node last fell behind its peers (`eth_syncing`'s `startingBlock`);
    /// none while it is in sync.
    pub sync_started: Option<u64>,
    /// Transactions waiting in the pool.
    pub mempool: usize,
    pub in_committee: bool,
    pub committee_members: usize,
    /// This node's keys: blocks whose carried certificate holds or lacks each one's
    /// signature, since the node started (as the metrics count them).
    pub keys: Vec<KeySigning>,
}

/// A node is behind when its peers claim more than this many blocks above its tip (a block or
/// two in flight is the normal state of a chain with one-block finality).
const BEHIND_BLOCKS: u64 = 2;

impl NodeStatus {
    /// Whether the peers claim more than [`BEHIND_BLOCKS`] above this node's tip.
    pub fn is_behind(&self) -> bool {
        self.peer_height.saturating_sub(self.finalized) > BEHIND_BLOCKS
    }

    /// Records the peers' highest claim, and where catch-up started (the tip when the node
    /// fell behind by [`NodeStatus::is_behind`]).
    pub fn note_peer_height(&mut self, peer_height: u64) {
        self.peer_height = peer_height;
        self.sync_started = self
            .is_behind()
            .then(|| self.sync_started.unwrap_or(self.finalized));
    }
}

/// One of this node's BLS keys and how it signed, for `hmy_consensusStatus` and `status`.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct KeySigning {
    pub key: String,
    pub signed: u64,
    pub missed: u64,
}

#[derive(Default)]
pub struct StatusBoard {
    pub status: Mutex<NodeStatus>,
    /// (block number, announce → committed in µs) as seen by this node.
    pub latencies: Mutex<VecDeque<(u64, u64)>>,
}

/// A finalized block as subscribers see it (WebSocket `newHeads` and `logs`).
#[derive(Debug, Clone)]
pub struct FinalizedBlock {
    pub header: Header,
    pub receipts: Vec<state::exec::StoredReceipt>,
}

/// Where finalized blocks are announced to RPC subscribers.
pub type BlockEvents = tokio::sync::broadcast::Sender<Arc<FinalizedBlock>>;

/// The transaction pool shared by the event loop (proposals, pruning) and RPC (submission).
pub type SharedPool = Arc<Mutex<Mempool>>;

/// Staking transactions waiting for a block, shared the same way.
pub type SharedStakingPool = Arc<Mutex<state::mempool::staking::StakingPool>>;

/// Checks a raw staking transaction against the latest state (rules included when its nonce
/// is the sender's next) and pools it for this node's next block as leader. Returns its hash.
pub fn submit_staking(
    store: &ChainStore,
    cfg: &state::exec::ExecConfig,
    pool: &SharedStakingPool,
    raw: &[u8],
) -> Result<state::B256, String> {
    let tx =
        state::staking::SignedStakingTx::decode(raw, cfg.chain_id).map_err(|e| e.to_string())?;
    let hash = tx.hash;
    let tip = tip_header(store)?;
    let epoch = (tip.number + 1) / cfg.epoch_blocks.max(1);
    let base_fee = state::exec::next_base_fee_after(&tip);
    let staking = store.staking_state().map_err(|e| e.to_string())?;
    let ro = store.db().tx().map_err(|e| e.to_string())?;
    pool.locked()
        .insert(tx, cfg, epoch, base_fee, &StateReader::new(&ro), &staking)
        .map_err(|e| e.to_string())?;
    Ok(hash)
}

/// The stored tip's header.
pub fn tip_header(store: &ChainStore) -> Result<Header, String> {
    store
        .tip_header()
        .map_err(|e| e.to_string())?
        .ok_or_else(|| "no genesis in the store".into())
}

/// Checks a raw transaction against the stored state and adds it to the pool (RPC submission).
pub fn submit_transaction(
    store: &ChainStore,
    pool: &SharedPool,
    tx: SignedTx,
) -> Result<state::mempool::Inserted, String> {
    submit_batch(store, pool, vec![tx])?
        .pop()
        .expect("one result per transaction")
}

/// [`submit_transaction`] for a relayed batch: one read transaction and one pool lock for all;
/// one result per transaction, in order.
pub fn submit_batch(
    store: &ChainStore,
    pool: &SharedPool,
    txs: Vec<SignedTx>,
) -> Result<Vec<Result<state::mempool::Inserted, String>>, String> {
    let ro = store.db().tx().map_err(|e| e.to_string())?;
    let base_fee = state::exec::next_base_fee_after(&tip_header(store)?);
    let state = StateReader::new(&ro);
    let mut pool = pool.locked();
    Ok(txs
        .into_iter()
        .map(|tx| pool.insert(tx, &state, base_fee).map_err(|e| e.to_string()))
        .collect())
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Reads the finalized tip from the store.
pub fn load_tip(store: &ChainStore) -> eyre::Result<Tip> {
    let (number, hash) = store
        .tip()?
        .ok_or_else(|| eyre::eyre!("the database holds no genesis block"))?;
    let header = store
        .header(number)?
        .ok_or_else(|| eyre::eyre!("header #{number} missing from the database"))?;
    let cert = if number == 0 {
        None
    } else {
        store.certificate(number)?
    };
    Ok(Tip {
        number,
        hash,
        view: header.view,
        timestamp_ms: header.timestamp_ms,
        cert,
        last_commit_bitmap: header.last_commit_bitmap,
    })
}

/// `last_commit_bitmap`s of the (up to) 4 headers ending at `number`, oldest first: what
/// leader selection reads to skip offline keys.
pub fn recent_bitmaps(
    store: &ChainStore,
    number: u64,
) -> eyre::Result<Vec<alloy_primitives::Bytes>> {
    let mut out = Vec::new();
    for n in number.saturating_sub(3)..=number {
        if let Some(h) = store.header(n)? {
            out.push(h.last_commit_bitmap);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `eth_syncing`'s start: set when the node falls behind, kept while it catches up,
    /// cleared once in sync, and set afresh the next time.
    #[test]
    fn catch_up_start_is_kept_while_behind_and_cleared_in_sync() {
        let mut s = NodeStatus {
            finalized: 10,
            ..Default::default()
        };
        s.note_peer_height(12);
        assert_eq!(s.sync_started, None, "two blocks in flight is in sync");
        s.note_peer_height(100);
        assert_eq!(s.sync_started, Some(10));
        s.finalized = 50;
        s.note_peer_height(120);
        assert_eq!(
            s.sync_started,
            Some(10),
            "the start stays while catching up"
        );
        assert!(s.is_behind());
        s.finalized = 119;
        s.note_peer_height(120);
        assert_eq!(s.sync_started, None);
        assert!(!s.is_behind());
        s.note_peer_height(200);
        assert_eq!(s.sync_started, Some(119));
    }
}
