//! What verification jobs carry: shared by the engine, the quorum path and every backend.

use crate::bls::{PublicKey, Signature};

/// One vote on a known message: the (possibly aggregated) key of its signers and its signature.
#[derive(Debug, Clone)]
pub struct Vote {
    pub public_key: PublicKey,
    pub signature: Signature,
}

/// One (public key, message, signature) triple of a batch.
#[derive(Debug, Clone, Copy)]
pub struct BatchItem<'a> {
    pub public_key: &'a PublicKey,
    pub message: &'a [u8],
    pub signature: &'a Signature,
}

/// Which per-vote checks run before aggregation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QuorumPolicy {
    /// Check subgroup membership of every vote (costly; not needed for soundness, see the
    /// ADR). Off by default.
    pub subgroup_check_each: bool,
}

/// A vote whose signature decoded, with its signer's key.
pub(crate) struct Candidate {
    pub(crate) input: usize,
    pub(crate) pk: PublicKey,
    pub(crate) sig: Signature,
}
