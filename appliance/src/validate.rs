//! Full validation of a block, shared by the consensus path and catch-up.
//!
//! Until the EVM executor lands, this node builds and accepts only blocks without
//! transactions, whose roots are therefore the empty-trie root and whose gas used is zero.

use consensus::Committee;
use state::{Block, Header, EMPTY_ROOT, GAS_LIMIT, HEADER_VERSION};

/// Re-executes (for now: re-derives) everything the header commits to.
pub fn validate_block(block: &Block) -> Result<(), String> {
    let h = &block.header;
    if h.transactions_root != block.compute_transactions_root() {
        return Err("transactions root does not match the body".into());
    }
    if !block.body.transactions.is_empty() {
        return Err(
            "block carries transactions, which this node version cannot execute yet".into(),
        );
    }
    if h.state_root != EMPTY_ROOT || h.receipts_root != EMPTY_ROOT {
        return Err("state or receipts root differs from the re-executed (empty) state".into());
    }
    if h.gas_used != 0 || h.gas_limit != GAS_LIMIT {
        return Err(format!(
            "gas used {} / limit {} do not match execution",
            h.gas_used, h.gas_limit
        ));
    }
    Ok(())
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
