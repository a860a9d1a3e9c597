//! What a node must remember across a crash to stay safe at the height in progress: its view,
//! its lock (highest prepared block it validated) and every vote it signed. The caller makes
//! it durable (fsync) when asked by [`crate::Effect::PersistSafety`], before any later effect.

use crate::message::PreparedProof;
use alloy_primitives::B256;
use alloy_rlp::{RlpDecodable, RlpEncodable};

#[derive(Debug, Clone, PartialEq, Eq, RlpEncodable, RlpDecodable)]
pub struct SignedVote {
    /// `hsm::MsgKind` discriminant.
    pub kind: u8,
    pub view: u64,
    pub hash: B256,
}

#[derive(Debug, Clone, PartialEq, Eq, RlpEncodable, RlpDecodable)]
pub struct SafetyRecord {
    pub number: u64,
    pub view: u64,
    /// True while the node waits for a NewView of `view` (it signed a view change for it);
    /// false once the view started (by the first proposal or an adopted NewView).
    pub waiting_new_view: bool,
    /// Zero or one locked block with its prepare certificate.
    pub locked: Vec<PreparedProof>,
    pub votes: Vec<SignedVote>,
}

impl SafetyRecord {
    pub fn encode_to_vec(&self) -> Vec<u8> {
        alloy_rlp::encode(self)
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, state::HeaderError> {
        state::decode_exact(bytes)
    }
}
