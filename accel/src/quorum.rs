//! Quorum verification of votes as they arrive from the network.
//!
//! A vote on the wire is the signer's index in the committee (u32, big-endian) followed by its
//! signature, 192 bytes uncompressed (the fast form: decoding needs no square root) or 96
//! compressed. Every vote is decoded with its curve check; subgroup membership is checked on
//! every aggregate that is accepted (and on each single vote isolated by bisection), not on
//! each vote: see docs/adr/0004-quorum-verification.md for why that is sound.

use crate::bls::{BlsError, PublicKey, Signature, SIGNATURE_UNCOMPRESSED_BYTES};
use crate::engine::Engine;
use crate::job::Candidate;
pub use crate::job::QuorumPolicy;

/// Bytes of a vote with an uncompressed signature.
pub const WIRE_VOTE_BYTES: usize = 4 + SIGNATURE_UNCOMPRESSED_BYTES;

/// A vote as received: the signer's committee index and the signature bytes (96 or 192).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WireVote<'a> {
    pub signer: u32,
    pub signature: &'a [u8],
}

impl<'a> WireVote<'a> {
    /// Splits a received frame: 4-byte big-endian signer index, then the signature.
    pub fn parse(frame: &'a [u8]) -> Result<Self, BlsError> {
        if frame.len() < 4 {
            return Err(BlsError::Length {
                expected: WIRE_VOTE_BYTES,
                got: frame.len(),
            });
        }
        let (idx, sig) = frame.split_at(4);
        Ok(Self {
            signer: u32::from_be_bytes(idx.try_into().expect("4 bytes")),
            signature: sig,
        })
    }
}

/// Encodes a vote in the fast (uncompressed) wire form.
pub fn encode_vote(signer: u32, sig: &Signature) -> [u8; WIRE_VOTE_BYTES] {
    let mut out = [0u8; WIRE_VOTE_BYTES];
    out[..4].copy_from_slice(&signer.to_be_bytes());
    out[4..].copy_from_slice(&sig.to_uncompressed());
    out
}

/// What became of one vote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VoteStatus {
    /// Counted: part of an accepted aggregate.
    Valid,
    /// Decoded, but the signature does not verify (or is outside the subgroup).
    Invalid,
    /// The signature bytes are not a point on the curve (or have the wrong length).
    Malformed(BlsError),
    /// The signer index is not in the committee.
    UnknownSigner,
    /// An earlier vote in the same call had the same signer; only the first is considered.
    Duplicate,
}

/// The result of [`Engine::verify_quorum`].
#[derive(Debug, Clone)]
pub struct QuorumOutcome {
    /// One status per input vote, in input order.
    pub status: Vec<VoteStatus>,
    /// The aggregate signature of the valid votes (in G2), if any vote was valid.
    pub aggregate: Option<Signature>,
    /// Committee indices of the valid votes, in input order.
    pub signers: Vec<u32>,
}

impl QuorumOutcome {
    pub fn valid(&self) -> Vec<bool> {
        self.status
            .iter()
            .map(|s| *s == VoteStatus::Valid)
            .collect()
    }
}

impl Engine {
    /// Verifies votes on one payload `msg` by members of `committee` (validated, cached keys).
    ///
    /// `reference` decodes and verifies each vote on its own (the naive path); `cpu` decodes
    /// in parallel, checks all votes as one aggregate with one pairing, and on failure finds
    /// the bad ones by bisection. Duplicate and unknown signers are sorted out here, the same
    /// for every backend.
    pub fn verify_quorum(
        &self,
        msg: &[u8],
        committee: &[PublicKey],
        votes: &[WireVote<'_>],
        policy: QuorumPolicy,
    ) -> QuorumOutcome {
        let mut status = vec![VoteStatus::Invalid; votes.len()];
        let mut seen = vec![false; committee.len()];
        let mut wanted = Vec::with_capacity(votes.len());
        for (i, v) in votes.iter().enumerate() {
            match seen.get_mut(v.signer as usize) {
                None => status[i] = VoteStatus::UnknownSigner,
                Some(true) => status[i] = VoteStatus::Duplicate,
                Some(s) => {
                    *s = true;
                    wanted.push(i);
                }
            }
        }
        let decode = |i: usize| -> Result<Candidate, (usize, BlsError)> {
            let v = &votes[i];
            Signature::decode(v.signature)
                .map(|sig| Candidate {
                    input: i,
                    pk: committee[v.signer as usize],
                    sig,
                })
                .map_err(|e| (i, e))
        };
        let decoded = self.backend.decode_votes(&wanted, &decode);
        let mut cands = Vec::with_capacity(decoded.len());
        for d in decoded {
            match d {
                Ok(c) => cands.push(c),
                Err((i, e)) => status[i] = VoteStatus::Malformed(e),
            }
        }
        let (ok, aggregate) = self.backend.check_candidates(msg, &cands, policy);

        for (c, o) in cands.iter().zip(&ok) {
            if *o {
                status[c.input] = VoteStatus::Valid;
            }
        }
        let signers = (0..votes.len())
            .filter(|&i| status[i] == VoteStatus::Valid)
            .map(|i| votes[i].signer)
            .collect();
        QuorumOutcome {
            status,
            aggregate,
            signers,
        }
    }
}
