//! Consensus wire messages: one kind byte followed by the RLP of the payload.
//!
//! The transport adds its own version byte and length prefix; this layer refuses unknown kinds
//! and trailing bytes, so a message decodes to exactly one meaning.

use alloy_primitives::{Bytes, B256};
use alloy_rlp::{RlpDecodable, RlpEncodable};
use state::{decode_exact, Block, CommitCertificate};

/// A vote (prepare or commit) of one validator: the aggregate of its keys' signatures over the
/// payload of (number, view, hash), and the bitmap of those keys in the committee.
#[derive(Debug, Clone, PartialEq, Eq, RlpEncodable, RlpDecodable)]
pub struct Vote {
    pub number: u64,
    pub view: u64,
    pub hash: B256,
    /// Exactly the sender's keys.
    pub bitmap: Bytes,
    /// Aggregate signature of those keys: 192 bytes uncompressed as sent (the leader decodes
    /// it without a square root), 96 compressed accepted.
    pub signature: Bytes,
}

/// The leader's proposal.
#[derive(Debug, Clone, PartialEq, Eq, RlpEncodable, RlpDecodable)]
pub struct Announce {
    pub block: Block,
}

/// A proposal as header plus transaction hashes (Harmony HET-86): validators rebuild the body
/// from their pools and ask the leader only for what they lack.
#[derive(Debug, Clone, PartialEq, Eq, RlpEncodable, RlpDecodable)]
pub struct CompactAnnounce {
    pub header: state::Header,
    pub tx_hashes: Vec<B256>,
}

impl CompactAnnounce {
    pub fn of(block: &Block) -> Self {
        Self {
            header: block.header.clone(),
            tx_hashes: block
                .body
                .transactions
                .iter()
                .map(alloy_primitives::keccak256)
                .collect(),
        }
    }

    /// Most transactions a block can hold: the chain's gas limit over the cheapest transaction
    /// (a plain transfer). A bound from the chain's rules, not from the sender's header.
    pub const MAX_TRANSACTIONS: usize = (state::GAS_LIMIT / 21_000) as usize;

    /// Refuses a compact announce no valid block could match, before any pool lookup or fetch:
    /// more hashes than a block can hold, or one transaction listed twice.
    pub fn check_bounds(&self) -> Result<(), CompactAnnounceError> {
        let n = self.tx_hashes.len();
        if n > Self::MAX_TRANSACTIONS {
            return Err(CompactAnnounceError::TooMany(n));
        }
        let mut seen = std::collections::HashSet::with_capacity(n);
        if let Some(h) = self.tx_hashes.iter().find(|h| !seen.insert(**h)) {
            return Err(CompactAnnounceError::Duplicate(*h));
        }
        Ok(())
    }

    /// Rebuilds the block from transactions found by hash; `Err` lists the missing hashes.
    /// The caller checks the transactions root (FBFT's validation does too).
    pub fn assemble(
        &self,
        mut find: impl FnMut(&B256) -> Option<Bytes>,
    ) -> Result<Block, Vec<B256>> {
        let mut transactions = Vec::with_capacity(self.tx_hashes.len());
        let mut missing = Vec::new();
        for h in &self.tx_hashes {
            match find(h) {
                Some(raw) => transactions.push(raw),
                None => missing.push(*h),
            }
        }
        if !missing.is_empty() {
            return Err(missing);
        }
        Ok(Block {
            header: self.header.clone(),
            // Blocks with staking transactions are always announced in full (effects.rs).
            body: state::Body {
                transactions,
                staking_transactions: Vec::new(),
            },
        })
    }
}

/// Why a compact announce cannot describe a valid block.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompactAnnounceError {
    #[error(
        "compact announce lists {0} transactions; a block holds at most {max}",
        max = CompactAnnounce::MAX_TRANSACTIONS
    )]
    TooMany(usize),
    #[error("compact announce lists transaction {0} twice")]
    Duplicate(B256),
}

/// A node's finalized tip, broadcast periodically so that a node behind notices and catches up.
#[derive(Debug, Clone, PartialEq, Eq, RlpEncodable, RlpDecodable)]
pub struct Status {
    pub number: u64,
    pub hash: B256,
}

/// Ask a peer for finalized blocks starting at `from`.
#[derive(Debug, Clone, PartialEq, Eq, RlpEncodable, RlpDecodable)]
pub struct SyncRequest {
    pub from: u64,
    pub count: u64,
}

/// Finalized blocks with their commit certificates, in order.
#[derive(Debug, Clone, PartialEq, Eq, RlpEncodable, RlpDecodable)]
pub struct SyncResponse {
    pub blocks: Vec<Block>,
    pub certificates: Vec<CommitCertificate>,
}

/// A block with the prepare certificate that locked it.
#[derive(Debug, Clone, PartialEq, Eq, RlpEncodable, RlpDecodable)]
pub struct PreparedProof {
    pub block: Block,
    pub cert: CommitCertificate,
}

/// A validator's vote to leave the current view of height `number` for `view`. It signs the
/// view-change payload over (number, view, `prepared_hash`), zero when it holds no lock, and
/// carries its highest prepared block with the certificate (M1 in Harmony's terms).
#[derive(Debug, Clone, PartialEq, Eq, RlpEncodable, RlpDecodable)]
pub struct ViewChange {
    pub number: u64,
    pub view: u64,
    pub prepared_hash: B256,
    pub bitmap: Bytes,
    pub signature: Bytes,
    /// Zero or one proof; present exactly when `prepared_hash` is not zero.
    pub prepared: Vec<PreparedProof>,
}

/// View-change votes of validators that named the same prepared hash, aggregated.
#[derive(Debug, Clone, PartialEq, Eq, RlpEncodable, RlpDecodable)]
pub struct ViewChangeGroup {
    pub hash: B256,
    pub signature: Bytes,
    pub bitmap: Bytes,
    /// The highest prepare certificate for `hash` among the group (empty for the zero hash).
    pub prepared: Vec<CommitCertificate>,
}

/// The new leader's proof that more than 2/3 left the old view, with its proposal: the
/// prepared block of the highest view among the groups, or a fresh block if none.
#[derive(Debug, Clone, PartialEq, Eq, RlpEncodable, RlpDecodable)]
pub struct NewView {
    pub number: u64,
    pub view: u64,
    pub groups: Vec<ViewChangeGroup>,
    pub block: Block,
}

/// Signed transactions (EIP-2718 encodings) relayed to the committee, so a transaction sent to
/// any node reaches every leader's pool; also the answer to [`TxRequest`].
#[derive(Debug, Clone, Default, PartialEq, Eq, RlpEncodable, RlpDecodable)]
pub struct TxBatch {
    pub transactions: Vec<Bytes>,
}

/// Asks a peer for the transactions with these hashes (headers-only announces, HET-86).
#[derive(Debug, Clone, Default, PartialEq, Eq, RlpEncodable, RlpDecodable)]
pub struct TxRequest {
    pub hashes: Vec<B256>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Announce(Box<Announce>),
    Prepare(Vote),
    /// Prepared certificate (same shape as a commit certificate, over the prepare payload).
    Prepared(CommitCertificate),
    Commit(Vote),
    Committed(CommitCertificate),
    ViewChange(Box<ViewChange>),
    NewView(Box<NewView>),
    Status(Status),
    SyncRequest(SyncRequest),
    SyncResponse(SyncResponse),
    Transactions(TxBatch),
    GetTransactions(TxRequest),
    CompactAnnounce(Box<CompactAnnounce>),
    /// Staking transactions submitted to the sender (each node checks and pools them).
    StakingTransactions(TxBatch),
    /// Double-sign evidence: each node checks it, pools it for the next block it leads, and
    /// relays it once.
    Evidence(Box<state::staking::DoubleSign>),
}

#[derive(Debug, thiserror::Error)]
pub enum MessageError {
    #[error("empty message")]
    Empty,
    #[error("unknown message kind {0}")]
    UnknownKind(u8),
    #[error("malformed {kind} message: {reason}")]
    Malformed { kind: &'static str, reason: String },
}

impl Message {
    pub fn kind_byte(&self) -> u8 {
        match self {
            Message::Announce(_) => 1,
            Message::Prepare(_) => 2,
            Message::Prepared(_) => 3,
            Message::Commit(_) => 4,
            Message::Committed(_) => 5,
            Message::ViewChange(_) => 6,
            Message::NewView(_) => 7,
            Message::Status(_) => 16,
            Message::SyncRequest(_) => 17,
            Message::SyncResponse(_) => 18,
            Message::Transactions(_) => 19,
            Message::GetTransactions(_) => 20,
            Message::StakingTransactions(_) => 21,
            Message::Evidence(_) => 22,
            Message::CompactAnnounce(_) => 8,
        }
    }

    /// The (height, view) a consensus message is about; None for the other kinds (status,
    /// sync, transactions), which are the node's business.
    pub fn position(&self) -> Option<(u64, Option<u64>)> {
        Some(match self {
            Message::Announce(a) => (a.block.header.number, Some(a.block.header.view)),
            Message::Prepare(v) | Message::Commit(v) => (v.number, None),
            Message::Prepared(c) | Message::Committed(c) => (c.number, None),
            Message::ViewChange(v) => (v.number, Some(v.view)),
            Message::NewView(v) => (v.number, Some(v.view)),
            _ => return None,
        })
    }

    pub fn name(&self) -> &'static str {
        kind_name(self.kind_byte())
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![self.kind_byte()];
        match self {
            Message::Announce(m) => alloy_rlp::Encodable::encode(m.as_ref(), &mut out),
            Message::Prepare(v) | Message::Commit(v) => alloy_rlp::Encodable::encode(v, &mut out),
            Message::Prepared(c) | Message::Committed(c) => {
                alloy_rlp::Encodable::encode(c, &mut out)
            }
            Message::ViewChange(m) => alloy_rlp::Encodable::encode(m.as_ref(), &mut out),
            Message::NewView(m) => alloy_rlp::Encodable::encode(m.as_ref(), &mut out),
            Message::Status(m) => alloy_rlp::Encodable::encode(m, &mut out),
            Message::SyncRequest(m) => alloy_rlp::Encodable::encode(m, &mut out),
            Message::SyncResponse(m) => alloy_rlp::Encodable::encode(m, &mut out),
            Message::Transactions(m) => alloy_rlp::Encodable::encode(m, &mut out),
            Message::GetTransactions(m) => alloy_rlp::Encodable::encode(m, &mut out),
            Message::StakingTransactions(m) => alloy_rlp::Encodable::encode(m, &mut out),
            Message::Evidence(m) => alloy_rlp::Encodable::encode(m.as_ref(), &mut out),
            Message::CompactAnnounce(m) => alloy_rlp::Encodable::encode(m.as_ref(), &mut out),
        }
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, MessageError> {
        let (&kind, body) = bytes.split_first().ok_or(MessageError::Empty)?;
        let name = kind_name(kind);
        let bad = |e: state::HeaderError| MessageError::Malformed {
            kind: name,
            reason: e.to_string(),
        };
        Ok(match kind {
            1 => Message::Announce(Box::new(decode_exact(body).map_err(bad)?)),
            2 => Message::Prepare(decode_exact(body).map_err(bad)?),
            3 => Message::Prepared(decode_exact(body).map_err(bad)?),
            4 => Message::Commit(decode_exact(body).map_err(bad)?),
            5 => Message::Committed(decode_exact(body).map_err(bad)?),
            6 => Message::ViewChange(Box::new(decode_exact(body).map_err(bad)?)),
            7 => Message::NewView(Box::new(decode_exact(body).map_err(bad)?)),
            16 => Message::Status(decode_exact(body).map_err(bad)?),
            17 => Message::SyncRequest(decode_exact(body).map_err(bad)?),
            18 => Message::SyncResponse(decode_exact(body).map_err(bad)?),
            19 => Message::Transactions(decode_exact(body).map_err(bad)?),
            20 => Message::GetTransactions(decode_exact(body).map_err(bad)?),
            21 => Message::StakingTransactions(decode_exact(body).map_err(bad)?),
            22 => Message::Evidence(Box::new(decode_exact(body).map_err(bad)?)),
            8 => Message::CompactAnnounce(Box::new(decode_exact(body).map_err(bad)?)),
            other => return Err(MessageError::UnknownKind(other)),
        })
    }
}

/// The name of a message kind byte (the first byte of every encoded message), for logs and
/// metric labels; `unknown` for a byte no message uses.
pub fn kind_name(kind: u8) -> &'static str {
    match kind {
        1 => "announce",
        2 => "prepare",
        3 => "prepared",
        4 => "commit",
        5 => "committed",
        6 => "view-change",
        7 => "new-view",
        8 => "compact-announce",
        16 => "status",
        17 => "sync-request",
        18 => "sync-response",
        19 => "transactions",
        20 => "get-transactions",
        21 => "staking-transactions",
        22 => "evidence",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Block 1 of a test chain holding `transactions`.
    fn block_of(transactions: Vec<Bytes>) -> Block {
        state::BlockTemplate {
            number: 1,
            view: 1,
            epoch: 0,
            shard: 0,
            parent_hash: B256::repeat_byte(1),
            timestamp_ms: 5,
            leader: Default::default(),
            last_commit: None,
            transactions,
            vrf: Default::default(),
        }
        .build()
    }

    #[test]
    fn compact_announce_bounds_come_from_the_chain_not_the_header() {
        let mut header = block_of(vec![]).header;
        // A sender's own gas limit must not widen the bound.
        header.gas_limit = u64::MAX;
        let hashes = |n: usize| -> Vec<B256> {
            (0..n as u64)
                .map(|i| B256::left_padding_from(&i.to_be_bytes()))
                .collect()
        };
        let full = CompactAnnounce {
            header: header.clone(),
            tx_hashes: hashes(CompactAnnounce::MAX_TRANSACTIONS),
        };
        assert_eq!(full.check_bounds(), Ok(()));
        let over = CompactAnnounce {
            header: header.clone(),
            tx_hashes: hashes(CompactAnnounce::MAX_TRANSACTIONS + 1),
        };
        assert_eq!(
            over.check_bounds(),
            Err(CompactAnnounceError::TooMany(1429))
        );
        let mut twice = hashes(3);
        twice.push(twice[1]);
        let dup = CompactAnnounce {
            header,
            tx_hashes: twice.clone(),
        };
        assert_eq!(
            dup.check_bounds(),
            Err(CompactAnnounceError::Duplicate(twice[1]))
        );
    }

    #[test]
    fn compact_announce_roundtrips_and_assembles_from_what_is_found() {
        let txs: Vec<Bytes> = (0u8..3).map(|i| Bytes::from(vec![2, i, 0xc0])).collect();
        let block = block_of(txs.clone());
        let compact = CompactAnnounce::of(&block);
        let m = Message::CompactAnnounce(Box::new(compact.clone()));
        assert_eq!(Message::decode(&m.encode()).unwrap(), m);
        let by_hash = |skip: Option<usize>| {
            let txs = txs.clone();
            move |h: &B256| {
                txs.iter()
                    .enumerate()
                    .find(|(i, t)| Some(*i) != skip && alloy_primitives::keccak256(t) == *h)
                    .map(|(_, t)| t.clone())
            }
        };
        assert_eq!(compact.assemble(by_hash(None)).unwrap(), block);
        let missing = compact.assemble(by_hash(Some(1))).unwrap_err();
        assert_eq!(missing, vec![alloy_primitives::keccak256(&txs[1])]);
    }

    #[test]
    fn roundtrip_and_refusals() {
        let v = Vote {
            number: 3,
            view: 4,
            hash: B256::repeat_byte(5),
            bitmap: Bytes::from(vec![1]),
            signature: Bytes::from(vec![2; 96]),
        };
        for m in [
            Message::Prepare(v.clone()),
            Message::Commit(v),
            Message::Status(Status {
                number: 9,
                hash: B256::ZERO,
            }),
            Message::SyncRequest(SyncRequest { from: 1, count: 64 }),
            Message::SyncResponse(SyncResponse {
                blocks: vec![],
                certificates: vec![],
            }),
            Message::Transactions(TxBatch {
                transactions: vec![Bytes::from(vec![2, 0xc0])],
            }),
            Message::GetTransactions(TxRequest {
                hashes: vec![B256::repeat_byte(7)],
            }),
            Message::StakingTransactions(TxBatch {
                transactions: vec![Bytes::from(vec![0xc1, 0x80])],
            }),
            Message::Evidence(Box::new(state::staking::DoubleSign {
                number: 3,
                view: 2,
                keys: vec![state::staking::BlsKey::repeat_byte(4)],
                first: state::staking::SignedVote {
                    hash: B256::repeat_byte(1),
                    signature: Bytes::from(vec![1; 96]),
                },
                second: state::staking::SignedVote {
                    hash: B256::repeat_byte(2),
                    signature: Bytes::from(vec![2; 96]),
                },
                reporter: Default::default(),
            })),
        ] {
            let bytes = m.encode();
            assert_eq!(Message::decode(&bytes).unwrap(), m);
            let mut extra = bytes.clone();
            extra.push(0);
            assert!(matches!(
                Message::decode(&extra),
                Err(MessageError::Malformed { .. })
            ));
            assert!(Message::decode(&bytes[..bytes.len() - 1]).is_err());
        }
        assert!(matches!(Message::decode(&[]), Err(MessageError::Empty)));
        assert!(matches!(
            Message::decode(&[99, 0xc0]),
            Err(MessageError::UnknownKind(99))
        ));
    }

    #[test]
    fn decode_never_panics_on_noise() {
        let mut x: u64 = 0x9e3779b97f4a7c15;
        for len in 0..2000usize {
            let bytes: Vec<u8> = (0..len % 300)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            for kind in [1u8, 2, 3, 5, 18] {
                let mut m = vec![kind];
                m.extend_from_slice(&bytes);
                let _ = Message::decode(&m);
            }
        }
    }
}
