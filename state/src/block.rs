//! Header, block and commit certificate, with their RLP encodings (frozen at version 1).

use alloy_primitives::{keccak256, Address, Bloom, Bytes, B256};
use alloy_rlp::{Decodable, RlpDecodable, RlpEncodable};

/// Header format version. A node refuses headers of a version it does not know.
pub const HEADER_VERSION: u8 = 1;
/// Block gas limit (Harmony HET-87).
pub const GAS_LIMIT: u64 = 30_000_000;
/// Root of an empty Merkle-Patricia trie: keccak256(rlp("")).
pub const EMPTY_ROOT: B256 =
    alloy_primitives::b256!("56e81f171bcc55a6ff8345e692c0f86e5b48e01b996cadc001622fb5e363b421");

/// Block header. Every field later features need is present from version 1 on, so the hash
/// of a block never depends on which features a node has.
#[derive(Debug, Clone, PartialEq, Eq, RlpEncodable, RlpDecodable)]
pub struct Header {
    pub version: u8,
    pub parent_hash: B256,
    pub number: u64,
    pub epoch: u64,
    pub shard: u32,
    /// View in which this block was proposed. The next height's first view is `view + 1`.
    pub view: u64,
    /// Milliseconds since the Unix epoch (revm sees seconds).
    pub timestamp_ms: u64,
    /// Operator address of the proposing validator.
    pub leader: Address,
    pub state_root: B256,
    pub transactions_root: B256,
    pub receipts_root: B256,
    pub logs_bloom: Bloom,
    pub gas_limit: u64,
    pub gas_used: u64,
    pub base_fee: u64,
    pub extra_data: Bytes,
    /// VRF output and proof (empty until randomness is enabled).
    pub vrf: Bytes,
    /// VDF output and proof (empty until randomness is enabled).
    pub vdf: Bytes,
    /// View of the parent's commit certificate: the view its commit votes signed, which is at
    /// or after the parent header's view when the parent was re-proposed (0 in block 1).
    pub last_commit_view: u64,
    /// Aggregate commit signature of the parent block (empty in block 1).
    pub last_commit_signature: Bytes,
    /// Signer bitmap of that aggregate.
    pub last_commit_bitmap: Bytes,
}

/// Why header bytes were refused.
#[derive(Debug, thiserror::Error)]
pub enum HeaderError {
    #[error("undecodable RLP: {0}")]
    Rlp(#[from] alloy_rlp::Error),
    #[error(
        "header version {0} is newer than this node knows ({HEADER_VERSION}); upgrade the node"
    )]
    Version(u8),
    #[error("{0} trailing bytes after the RLP item")]
    Trailing(usize),
}

impl Header {
    /// keccak256 of the RLP encoding.
    pub fn hash(&self) -> B256 {
        keccak256(alloy_rlp::encode(self))
    }

    pub fn encode_to_vec(&self) -> Vec<u8> {
        alloy_rlp::encode(self)
    }

    /// Decodes exactly one header, refusing trailing bytes and unknown versions.
    pub fn decode_exact(bytes: &[u8]) -> Result<Self, HeaderError> {
        let h: Header = decode_exact(bytes)?;
        if h.version != HEADER_VERSION {
            return Err(HeaderError::Version(h.version));
        }
        Ok(h)
    }
}

/// Decodes one RLP item and refuses trailing bytes.
pub fn decode_exact<T: Decodable>(mut bytes: &[u8]) -> Result<T, HeaderError> {
    let v = T::decode(&mut bytes)?;
    if !bytes.is_empty() {
        return Err(HeaderError::Trailing(bytes.len()));
    }
    Ok(v)
}

/// Block body: raw signed transactions (decoded by the executor).
#[derive(Debug, Clone, Default, PartialEq, Eq, RlpEncodable, RlpDecodable)]
pub struct Body {
    pub transactions: Vec<Bytes>,
}

/// A block as proposed and stored.
#[derive(Debug, Clone, PartialEq, Eq, RlpEncodable, RlpDecodable)]
pub struct Block {
    pub header: Header,
    pub body: Body,
}

impl Block {
    pub fn hash(&self) -> B256 {
        self.header.hash()
    }

    pub fn number(&self) -> u64 {
        self.header.number
    }

    /// Merkle-Patricia root of the body's transactions (their EIP-2718 encodings, keyed by
    /// index), as in Ethereum.
    pub fn compute_transactions_root(&self) -> B256 {
        transactions_root(&self.body.transactions)
    }
}

/// Merkle-Patricia root over EIP-2718-encoded transactions keyed by their RLP index.
pub fn transactions_root(raws: &[Bytes]) -> B256 {
    alloy_trie::root::ordered_trie_root_with_encoder(raws, |raw, buf| {
        alloy_rlp::BufMut::put_slice(buf, raw)
    })
}

/// What a leader fills in to build a block; the roots are computed here.
#[derive(Debug, Clone)]
pub struct BlockTemplate {
    pub number: u64,
    pub view: u64,
    pub epoch: u64,
    pub shard: u32,
    pub parent_hash: B256,
    pub timestamp_ms: u64,
    pub leader: Address,
    pub last_commit: Option<CommitCertificate>,
    pub transactions: Vec<Bytes>,
}

impl BlockTemplate {
    /// Assembles the block with empty execution results (roots of nothing, base fee at its
    /// floor); [`crate::exec::build`] executes transactions and fills them in.
    pub fn build(self) -> Block {
        let (last_commit_view, last_commit_signature, last_commit_bitmap) = match self.last_commit {
            Some(c) => (c.view, c.signature, c.bitmap),
            None => (0, Bytes::new(), Bytes::new()),
        };
        let mut block = Block {
            header: Header {
                version: HEADER_VERSION,
                parent_hash: self.parent_hash,
                number: self.number,
                epoch: self.epoch,
                shard: self.shard,
                view: self.view,
                timestamp_ms: self.timestamp_ms,
                leader: self.leader,
                state_root: EMPTY_ROOT,
                transactions_root: EMPTY_ROOT,
                receipts_root: EMPTY_ROOT,
                logs_bloom: Bloom::ZERO,
                gas_limit: GAS_LIMIT,
                gas_used: 0,
                base_fee: crate::fees::MIN_BASE_FEE,
                extra_data: Bytes::new(),
                vrf: Bytes::new(),
                vdf: Bytes::new(),
                last_commit_view,
                last_commit_signature,
                last_commit_bitmap,
            },
            body: Body {
                transactions: self.transactions,
            },
        };
        block.header.transactions_root = block.compute_transactions_root();
        block
    }
}

/// Proof that a block is final: more than 2/3 of voting power signed its commit payload.
#[derive(Debug, Clone, PartialEq, Eq, RlpEncodable, RlpDecodable)]
pub struct CommitCertificate {
    pub number: u64,
    /// The view in which the commit votes were signed: the header's view, or a later one when
    /// the block was re-proposed after a view change (ADR 0010).
    pub view: u64,
    pub hash: B256,
    /// Aggregate BLS signature (96 bytes, compressed).
    pub signature: Bytes,
    /// Signer bitmap over committee keys.
    pub bitmap: Bytes,
}

/// The base fee of the block after `parent`.
pub fn next_base_fee_after(parent: &Header) -> u64 {
    crate::fees::next_base_fee(parent.gas_used, parent.gas_limit, parent.base_fee)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample_header() -> Header {
        Header {
            version: HEADER_VERSION,
            parent_hash: B256::repeat_byte(1),
            number: 7,
            epoch: 0,
            shard: 0,
            view: 9,
            timestamp_ms: 1_700_000_000_123,
            leader: Address::repeat_byte(2),
            state_root: EMPTY_ROOT,
            transactions_root: EMPTY_ROOT,
            receipts_root: EMPTY_ROOT,
            logs_bloom: Bloom::ZERO,
            gas_limit: GAS_LIMIT,
            gas_used: 0,
            base_fee: 1_000_000_000,
            extra_data: Bytes::from_static(b"x"),
            vrf: Bytes::new(),
            vdf: Bytes::new(),
            last_commit_view: 8,
            last_commit_signature: Bytes::from(vec![3u8; 96]),
            last_commit_bitmap: Bytes::from(vec![0x0f]),
        }
    }

    #[test]
    fn empty_root_constant() {
        assert_eq!(EMPTY_ROOT, keccak256([0x80u8]));
    }

    #[test]
    fn header_roundtrip_and_hash_covers_every_field() {
        let h = sample_header();
        let bytes = h.encode_to_vec();
        assert_eq!(Header::decode_exact(&bytes).unwrap(), h);
        let mut h2 = h.clone();
        h2.view += 1;
        assert_ne!(h2.hash(), h.hash());
        let mut h3 = h.clone();
        h3.last_commit_bitmap = Bytes::from(vec![0x0e]);
        assert_ne!(h3.hash(), h.hash());
        let mut h4 = h.clone();
        h4.last_commit_view += 1;
        assert_ne!(h4.hash(), h.hash());
    }

    #[test]
    fn header_refuses_garbage_trailing_and_new_versions() {
        let h = sample_header();
        let mut bytes = h.encode_to_vec();
        bytes.push(0);
        assert!(matches!(
            Header::decode_exact(&bytes),
            Err(HeaderError::Trailing(1))
        ));
        assert!(Header::decode_exact(&[0xc1]).is_err());
        assert!(Header::decode_exact(&[]).is_err());
        let mut newer = h.clone();
        newer.version = 2;
        let err = Header::decode_exact(&newer.encode_to_vec()).unwrap_err();
        assert!(err.to_string().contains("upgrade the node"));
    }

    #[test]
    fn block_and_certificate_roundtrip() {
        let b = Block {
            header: sample_header(),
            body: Body {
                transactions: vec![Bytes::from_static(b"tx")],
            },
        };
        assert_eq!(decode_exact::<Block>(&alloy_rlp::encode(&b)).unwrap(), b);
        assert_ne!(b.compute_transactions_root(), EMPTY_ROOT);
        let c = CommitCertificate {
            number: 1,
            view: 2,
            hash: B256::repeat_byte(9),
            signature: Bytes::from(vec![1; 96]),
            bitmap: Bytes::from(vec![7]),
        };
        assert_eq!(
            decode_exact::<CommitCertificate>(&alloy_rlp::encode(&c)).unwrap(),
            c
        );
    }
}
