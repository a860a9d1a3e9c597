//! Full validation of a block, shared by the consensus path and catch-up.

use consensus::Committee;
use state::db::ChainStore;
use state::exec::{ExecConfig, ExecutedBlock};
use state::{Block, Header, HEADER_VERSION};

/// Re-executes `block` on the stored tip (its parent) and checks every root and total the
/// header commits to. The result is kept by the caller, so finalizing writes it without
/// executing again. Senders in `known` (from the mempool) are not recovered again.
pub fn execute_block(
    store: &ChainStore,
    cfg: &ExecConfig,
    block: &Block,
    known: &std::collections::HashMap<state::B256, state::exec::SignedTx>,
) -> Result<ExecutedBlock, String> {
    let parent = crate::node::tip_header(store)?;
    if block.header.parent_hash != parent.hash() || block.number() != parent.number + 1 {
        return Err(format!(
            "block #{} does not extend the stored tip #{}",
            block.number(),
            parent.number
        ));
    }
    state::exec::verify_known(store, cfg, &parent, block, known).map_err(|e| e.to_string())
}

/// Checks that `block` extends `parent` under the committee's rules (catch-up path, where no
/// announce was seen): linkage, numbering, proposer, epoch and time order.
pub fn check_link(
    committee: &Committee,
    epoch_blocks: u64,
    shard: u32,
    parent: &Header,
    recent: &[alloy_primitives::Bytes],
    block: &Block,
) -> Result<(), String> {
    let h = &block.header;
    if h.version != HEADER_VERSION {
        return Err(format!("header version {}", h.version));
    }
    if h.number != parent.number + 1 || h.parent_hash != parent.hash() {
        return Err(format!(
            "block #{} does not extend our tip #{}",
            h.number, parent.number
        ));
    }
    if h.view <= parent.view {
        return Err(format!(
            "view {} does not advance past the parent's {}",
            h.view, parent.view
        ));
    }
    if h.number > 1 && h.last_commit_view < parent.view {
        return Err(format!(
            "last commit view {} is before the parent's view {}",
            h.last_commit_view, parent.view
        ));
    }
    if h.shard != shard || h.epoch != h.number / epoch_blocks {
        return Err("wrong shard or epoch".into());
    }
    let recent: Vec<state::Bitmap> = recent
        .iter()
        .filter_map(|b| state::Bitmap::from_bytes(b, committee.key_count()))
        .collect();
    let leader = committee.leader(h.number, h.view, parent.view + 1, &recent);
    if h.leader != committee.members[leader].address {
        return Err(format!(
            "leader {} is not the leader of view {}",
            h.leader, h.view
        ));
    }
    if h.timestamp_ms <= parent.timestamp_ms {
        return Err("timestamp not after the parent's".into());
    }
    Ok(())
}
