//! Full validation of a block, shared by the consensus path and catch-up.

use consensus::Committee;
use state::db::ChainStore;
use state::exec::{BlockError, ExecConfig, ExecutedBlock};
use state::{Block, Header};

/// Re-executes `block` on the stored tip (its parent) and checks every root and total the
/// header commits to. The result is kept by the caller, so finalizing writes it without
/// executing again. Senders in `known` (from the mempool) are not recovered again.
/// Runs on `engine`'s thread pool (sender recovery is parallel).
pub fn execute_block(
    engine: &accel::Engine,
    store: &ChainStore,
    cfg: &ExecConfig,
    block: &Block,
    known: &std::collections::HashMap<state::B256, state::exec::SignedTx>,
) -> Result<ExecutedBlock, BlockError> {
    engine.run(|| execute_on_tip(store, cfg, block, known))
}

fn execute_on_tip(
    store: &ChainStore,
    cfg: &ExecConfig,
    block: &Block,
    known: &std::collections::HashMap<state::B256, state::exec::SignedTx>,
) -> Result<ExecutedBlock, BlockError> {
    let parent = store.tip_header()?.ok_or(BlockError::NoGenesis)?;
    if block.header.parent_hash != parent.hash() || block.number() != parent.number + 1 {
        return Err(BlockError::NotOnTip {
            number: block.number(),
            tip: parent.number,
        });
    }
    state::exec::verify_known(store, cfg, &parent, block, known)
}

/// Verification a fetched block's VRF still needs: the payload and the leader key's vote.
pub type VrfJob = ([u8; hsm::PAYLOAD_BYTES], accel::Vote);

/// Checks that `block` extends `parent` under the rules of `committee` (the block's epoch's;
/// catch-up path, where no announce was seen) on the network of `spec`: the header rules of
/// `consensus::rules`, the proposer of its view and the form of its VRF (under the `vrf`
/// fork). Returns the VRF's signature check, to run off the loop (None before the fork).
pub fn check_link(
    committee: &Committee,
    spec: &state::ChainSpec,
    parent: &Header,
    recent: &[alloy_primitives::Bytes],
    block: &Block,
) -> Result<Option<VrfJob>, String> {
    let (h, shard, epoch_blocks) = (&block.header, spec.shard, spec.epoch_blocks);
    consensus::rules::check_child(&consensus::Parent::from(parent), block, shard, epoch_blocks)
        .map_err(|e| e.to_string())?;
    let recent = consensus::rules::leader_history(parent.number, epoch_blocks, recent, committee);
    consensus::rules::check_leader(committee, h, parent.view + 1, &recent)
        .map_err(|e| e.to_string())?;
    let vrf_required = state::forks::active(&spec.forks, state::forks::VRF, h.epoch);
    let Some(proof) =
        consensus::rules::check_vrf_form(h, vrf_required).map_err(|e| e.to_string())?
    else {
        return Ok(None);
    };
    let public_key = consensus::rules::vrf_key(committee, h, parent.view + 1, &recent);
    let req = consensus::rules::vrf_request(spec.chain_id, shard, h.number, h.view, h.parent_hash);
    Ok(Some((
        hsm::payload(&req),
        accel::Vote {
            public_key,
            signature: proof,
        },
    )))
}
