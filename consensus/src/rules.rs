//! The header rules of a block relative to its parent, in one place: the live path (announce,
//! NewView), catch-up and the appliance's validation all call these. What only execution can
//! tell (state, receipts and transactions roots against the body's effects, gas used, base
//! fee) is `state::exec::verify_known`'s.

use crate::committee::{Committee, RECENT_BITMAPS};
use alloy_primitives::{Address, B256};
use state::{Bitmap, Block, Header, GAS_LIMIT, MAX_HEADER_VERSION};

/// Why a proposed or fetched block's header is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProposalError {
    #[error(
        "header version {0} is not one this node knows (1 to {MAX_HEADER_VERSION}), or its \
         fields are not that version's"
    )]
    Version(u8),
    #[error("block #{number} (parent {parent_hash}) does not extend our tip #{tip} ({tip_hash})")]
    NotChild {
        number: u64,
        parent_hash: B256,
        tip: u64,
        tip_hash: B256,
    },
    #[error("view {view} does not advance past the parent's {parent_view}")]
    ViewNotAfterParent { view: u64, parent_view: u64 },
    #[error("expected view {expected}, got {got}")]
    WrongView { expected: u64, got: u64 },
    #[error("shard {got} is not ours ({want})")]
    Shard { got: u32, want: u32 },
    #[error("epoch {epoch} is wrong for block {number}")]
    Epoch { epoch: u64, number: u64 },
    #[error("timestamp not after the parent's")]
    TimestampNotAfterParent,
    #[error("timestamp {ahead_ms} ms in the future")]
    TimestampInFuture { ahead_ms: u64 },
    #[error("gas limit {limit} / used {used}")]
    Gas { limit: u64, used: u64 },
    #[error("transactions root does not match the body")]
    TransactionsRoot,
    #[error("block 1 carries a parent commit certificate")]
    CommitOfGenesis,
    #[error("last commit view {last_commit_view} is before the parent's view {parent_view}")]
    LastCommitView {
        last_commit_view: u64,
        parent_view: u64,
    },
    #[error("leader field {got} is not the leader of view {view} ({want})")]
    Leader {
        got: Address,
        want: Address,
        view: u64,
    },
    #[error("VRF field: {0}")]
    Vrf(String),
}

/// What the rules need of the parent: from a stored header or from consensus's tip.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parent {
    pub number: u64,
    pub hash: B256,
    pub view: u64,
    pub timestamp_ms: u64,
}

impl From<&Header> for Parent {
    fn from(h: &Header) -> Self {
        Parent {
            number: h.number,
            hash: h.hash(),
            view: h.view,
            timestamp_ms: h.timestamp_ms,
        }
    }
}

impl From<&crate::Tip> for Parent {
    fn from(t: &crate::Tip) -> Self {
        Parent {
            number: t.number,
            hash: t.hash,
            view: t.view,
            timestamp_ms: t.timestamp_ms,
        }
    }
}

/// Rules that hold for any child of `parent`, fresh or re-proposed, live or fetched: version,
/// linkage, view order, shard, epoch, time order, gas limit, transactions root, and the
/// parent-certificate fields.
pub fn check_child(
    parent: &Parent,
    block: &Block,
    shard: u32,
    epoch_blocks: u64,
) -> Result<(), ProposalError> {
    let h = &block.header;
    // The exact version for the block's epoch is checked by re-execution (the fork
    // schedule is execution configuration); here only versions this node can read pass.
    if h.version == 0 || h.version > MAX_HEADER_VERSION || (h.version >= 2) != h.v2.is_some() {
        return Err(ProposalError::Version(h.version));
    }
    if h.number != parent.number + 1 || h.parent_hash != parent.hash {
        return Err(ProposalError::NotChild {
            number: h.number,
            parent_hash: h.parent_hash,
            tip: parent.number,
            tip_hash: parent.hash,
        });
    }
    if h.view <= parent.view {
        return Err(ProposalError::ViewNotAfterParent {
            view: h.view,
            parent_view: parent.view,
        });
    }
    if h.shard != shard {
        return Err(ProposalError::Shard {
            got: h.shard,
            want: shard,
        });
    }
    if h.epoch != h.number / epoch_blocks {
        return Err(ProposalError::Epoch {
            epoch: h.epoch,
            number: h.number,
        });
    }
    if h.timestamp_ms <= parent.timestamp_ms {
        return Err(ProposalError::TimestampNotAfterParent);
    }
    if h.gas_limit != GAS_LIMIT || h.gas_used > h.gas_limit {
        return Err(ProposalError::Gas {
            limit: h.gas_limit,
            used: h.gas_used,
        });
    }
    if h.transactions_root != block.compute_transactions_root() {
        return Err(ProposalError::TransactionsRoot);
    }
    if parent.number == 0 {
        if h.last_commit_view != 0
            || !h.last_commit_signature.is_empty()
            || !h.last_commit_bitmap.is_empty()
        {
            return Err(ProposalError::CommitOfGenesis);
        }
    } else if h.last_commit_view < parent.view {
        return Err(ProposalError::LastCommitView {
            last_commit_view: h.last_commit_view,
            parent_view: parent.view,
        });
    }
    Ok(())
}

/// The header names the leader of its view: `first_view` is the first view of the height
/// (parent's view + 1), `recent` the commit bitmaps the rotation skips absent keys by.
pub fn check_leader(
    committee: &Committee,
    header: &Header,
    first_view: u64,
    recent: &[Bitmap],
) -> Result<(), ProposalError> {
    let want =
        committee.members[committee.leader(header.number, header.view, first_view, recent)].address;
    if header.leader != want {
        return Err(ProposalError::Leader {
            got: header.leader,
            want,
            view: header.view,
        });
    }
    Ok(())
}

/// A header timestamp may run at most `max_future_ms` ahead of this node's clock.
pub fn check_not_future(
    header: &Header,
    now_ms: u64,
    max_future_ms: u64,
) -> Result<(), ProposalError> {
    if header.timestamp_ms > now_ms + max_future_ms {
        return Err(ProposalError::TimestampInFuture {
            ahead_ms: header.timestamp_ms - now_ms,
        });
    }
    Ok(())
}

/// The commit bitmaps that count for leader selection in the round after `tip`: `recent` are
/// the `last_commit_bitmap`s of the last stored headers (oldest first, the tip's last); each
/// certifies the block before its header, and only those of blocks in the round's epoch
/// were signed by the round's committee. At most the newest [`RECENT_BITMAPS`], decoded for
/// `committee`.
pub fn leader_history(
    tip: u64,
    epoch_blocks: u64,
    recent: &[alloy_primitives::Bytes],
    committee: &Committee,
) -> Vec<state::Bitmap> {
    let epoch = (tip + 1) / epoch_blocks;
    let len = recent.len() as u64;
    let mut out: Vec<state::Bitmap> = recent
        .iter()
        .enumerate()
        .filter(|(i, _)| {
            (tip + 1 + *i as u64)
                .checked_sub(len + 1)
                .is_some_and(|certified| certified / epoch_blocks == epoch)
        })
        .filter_map(|(_, b)| state::Bitmap::from_bytes(b, committee.key_count()))
        .collect();
    let excess = out.len().saturating_sub(RECENT_BITMAPS);
    out.drain(..excess);
    out
}

/// The request a leader signs for its block's VRF at (`number`, `view`) on `parent`: its own
/// message kind, so the guard records it and no vote can pass for it.
pub fn vrf_request(
    chain_id: u64,
    shard: u32,
    number: u64,
    view: u64,
    parent: B256,
) -> hsm::SignRequest {
    hsm::SignRequest {
        kind: hsm::MsgKind::Vrf,
        chain_id,
        shard,
        number,
        view,
        hash: parent.0,
    }
}

/// The header's VRF field from the leader's proof π: β ‖ π with β = sha256(π) (Harmony's
/// shape, 128 bytes).
pub fn vrf_field(proof: &accel::Signature) -> alloy_primitives::Bytes {
    use sha2::Digest;
    let pi = proof.to_bytes();
    let beta = sha2::Sha256::digest(pi);
    let mut out = Vec::with_capacity(state::VRF_BYTES);
    out.extend_from_slice(&beta);
    out.extend_from_slice(&pi);
    out.into()
}

/// The form of a header's VRF field: empty before the `vrf` fork (`required` false); under it,
/// 128 bytes, β = sha256(π), π a valid compressed signature. Returns π, whose signature the
/// caller verifies under the leader's key ([`vrf_request`]).
pub fn check_vrf_form(
    h: &Header,
    required: bool,
) -> Result<Option<accel::Signature>, ProposalError> {
    use sha2::Digest;
    if !required {
        return if h.vrf.is_empty() {
            Ok(None)
        } else {
            Err(ProposalError::Vrf("present before the vrf fork".into()))
        };
    }
    if h.vrf.len() != state::VRF_BYTES {
        return Err(ProposalError::Vrf(format!(
            "{} bytes, expected {} (β ‖ π)",
            h.vrf.len(),
            state::VRF_BYTES
        )));
    }
    let (beta, pi) = h.vrf.split_at(32);
    if sha2::Sha256::digest(pi)[..] != *beta {
        return Err(ProposalError::Vrf("β is not sha256(π)".into()));
    }
    accel::Signature::from_bytes(pi)
        .map(Some)
        .map_err(|e| ProposalError::Vrf(format!("π is not a signature: {e}")))
}

/// The public key a header's VRF must verify under: the key of the leader of its view.
pub fn vrf_key(
    committee: &Committee,
    h: &Header,
    first_view: u64,
    recent: &[Bitmap],
) -> accel::PublicKey {
    committee.keys[committee.leader_key(h.number, h.view, first_view, recent)].public_key
}
