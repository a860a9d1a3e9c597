//! Header, block and commit certificate, with their RLP encodings: version 1 frozen, version 2
//! adding the staking fields through the fork schedule (ADR 0001).

use alloy_primitives::{keccak256, Address, Bloom, Bytes, B256};
use alloy_rlp::{Decodable, RlpDecodable, RlpEncodable};

/// Header format version of networks without the `header_v2` fork.
pub const HEADER_VERSION: u8 = 1;
/// The newest header version this node knows. It refuses headers of a version above it.
pub const MAX_HEADER_VERSION: u8 = 2;
/// Block gas limit (Harmony HET-87).
pub const GAS_LIMIT: u64 = 30_000_000;
/// Root of an empty Merkle-Patricia trie: keccak256(rlp("")).
pub const EMPTY_ROOT: B256 =
    alloy_primitives::b256!("56e81f171bcc55a6ff8345e692c0f86e5b48e01b996cadc001622fb5e363b421");

/// Block header. Version 1 has the 21 fields below `v2`; version 2 appends the fields of
/// [`HeaderV2`] to the same RLP list. `version` and `v2` agree (`v2` is `Some` exactly in
/// version 2), which decoding enforces. The hash is keccak256 of the RLP encoding.
#[derive(Debug, Clone, PartialEq, Eq)]
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
    /// The fields version 2 adds (the `header_v2` fork).
    pub v2: Option<HeaderV2>,
}

/// Header fields of version 2, for staking (issue 12) and its economics.
#[derive(Debug, Clone, Default, PartialEq, Eq, RlpEncodable, RlpDecodable)]
pub struct HeaderV2 {
    /// Merkle-Patricia root of the body's staking transactions, keyed by index.
    pub staking_transactions_root: B256,
    /// Root of the staking state (validators and delegations) after this block.
    pub staking_root: B256,
    /// At an epoch's last block: the committee elected for the next epoch (RLP); empty in
    /// every other block.
    pub committee: Bytes,
    /// Slashing records included in this block (RLP; empty until slashing exists).
    pub slashes: Bytes,
}

/// Applies `$m!(field)` to the 21 version-1 header fields, in wire order.
macro_rules! v1_fields {
    ($h:expr, $m:ident) => {{
        $m!($h.version);
        $m!($h.parent_hash);
        $m!($h.number);
        $m!($h.epoch);
        $m!($h.shard);
        $m!($h.view);
        $m!($h.timestamp_ms);
        $m!($h.leader);
        $m!($h.state_root);
        $m!($h.transactions_root);
        $m!($h.receipts_root);
        $m!($h.logs_bloom);
        $m!($h.gas_limit);
        $m!($h.gas_used);
        $m!($h.base_fee);
        $m!($h.extra_data);
        $m!($h.vrf);
        $m!($h.vdf);
        $m!($h.last_commit_view);
        $m!($h.last_commit_signature);
        $m!($h.last_commit_bitmap);
    }};
}

impl Header {
    fn payload_length(&self) -> usize {
        let mut n = 0;
        macro_rules! len {
            ($f:expr) => {
                n += alloy_rlp::Encodable::length(&$f)
            };
        }
        v1_fields!(self, len);
        if let Some(v2) = &self.v2 {
            len!(v2.staking_transactions_root);
            len!(v2.staking_root);
            len!(v2.committee);
            len!(v2.slashes);
        }
        n
    }
}

impl alloy_rlp::Encodable for Header {
    fn encode(&self, out: &mut dyn alloy_rlp::BufMut) {
        alloy_rlp::Header {
            list: true,
            payload_length: self.payload_length(),
        }
        .encode(out);
        macro_rules! enc {
            ($f:expr) => {
                $f.encode(out)
            };
        }
        v1_fields!(self, enc);
        if let Some(v2) = &self.v2 {
            enc!(v2.staking_transactions_root);
            enc!(v2.staking_root);
            enc!(v2.committee);
            enc!(v2.slashes);
        }
    }

    fn length(&self) -> usize {
        let p = self.payload_length();
        p + alloy_rlp::length_of_length(p)
    }
}

impl Decodable for Header {
    fn decode(buf: &mut &[u8]) -> alloy_rlp::Result<Self> {
        let mut body = alloy_rlp::Header::decode_bytes(buf, true)?;
        let payload_length = body.len();
        let b = &mut body;
        let version = u8::decode(b)?;
        let mut header = Header {
            version,
            parent_hash: Decodable::decode(b)?,
            number: Decodable::decode(b)?,
            epoch: Decodable::decode(b)?,
            shard: Decodable::decode(b)?,
            view: Decodable::decode(b)?,
            timestamp_ms: Decodable::decode(b)?,
            leader: Decodable::decode(b)?,
            state_root: Decodable::decode(b)?,
            transactions_root: Decodable::decode(b)?,
            receipts_root: Decodable::decode(b)?,
            logs_bloom: Decodable::decode(b)?,
            gas_limit: Decodable::decode(b)?,
            gas_used: Decodable::decode(b)?,
            base_fee: Decodable::decode(b)?,
            extra_data: Decodable::decode(b)?,
            vrf: Decodable::decode(b)?,
            vdf: Decodable::decode(b)?,
            last_commit_view: Decodable::decode(b)?,
            last_commit_signature: Decodable::decode(b)?,
            last_commit_bitmap: Decodable::decode(b)?,
            v2: None,
        };
        if version >= 2 {
            header.v2 = Some(HeaderV2 {
                staking_transactions_root: Decodable::decode(b)?,
                staking_root: Decodable::decode(b)?,
                committee: Decodable::decode(b)?,
                slashes: Decodable::decode(b)?,
            });
        }
        if !body.is_empty() {
            return Err(alloy_rlp::Error::ListLengthMismatch {
                expected: payload_length,
                got: payload_length - body.len(),
            });
        }
        Ok(header)
    }
}

/// Why header bytes were refused.
#[derive(Debug, thiserror::Error)]
pub enum HeaderError {
    #[error("undecodable RLP: {0}")]
    Rlp(#[from] alloy_rlp::Error),
    #[error(
        "header version {0} is not one this node knows (1 to {MAX_HEADER_VERSION}); upgrade the node"
    )]
    Version(u8),
    #[error("{0} trailing bytes after the RLP item")]
    Trailing(usize),
}

/// Length of a header's VRF field under the `vrf` fork: β (32) ‖ π (96).
pub const VRF_BYTES: usize = 128;

impl Header {
    /// keccak256 of the RLP encoding.
    pub fn hash(&self) -> B256 {
        keccak256(alloy_rlp::encode(self))
    }

    /// β of the header's VRF (the block's randomness, PREVRANDAO), when it carries one.
    pub fn vrf_output(&self) -> Option<B256> {
        (self.vrf.len() == VRF_BYTES).then(|| B256::from_slice(&self.vrf[..32]))
    }

    /// The epoch VDF's output, when this header carries the proof: sha256 of `y`, the first
    /// half of `y ‖ π` (checked when the block was executed).
    pub fn vdf_output(&self) -> Option<B256> {
        (!self.vdf.is_empty()).then(|| vdf_output_of(&self.vdf))
    }

    pub fn encode_to_vec(&self) -> Vec<u8> {
        alloy_rlp::encode(self)
    }

    /// Decodes exactly one header, refusing trailing bytes and unknown versions.
    pub fn decode_exact(bytes: &[u8]) -> Result<Self, HeaderError> {
        let h: Header = decode_exact(bytes)?;
        if h.version == 0 || h.version > MAX_HEADER_VERSION {
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

/// Block body: raw signed transactions (decoded by the executor) and, from header version 2,
/// raw signed staking transactions. The RLP list has one item when there are no staking
/// transactions (so version-1 bodies are unchanged), two otherwise.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Body {
    pub transactions: Vec<Bytes>,
    pub staking_transactions: Vec<Bytes>,
}

impl alloy_rlp::Encodable for Body {
    fn encode(&self, out: &mut dyn alloy_rlp::BufMut) {
        alloy_rlp::Header {
            list: true,
            payload_length: self.payload_length(),
        }
        .encode(out);
        self.transactions.encode(out);
        if !self.staking_transactions.is_empty() {
            self.staking_transactions.encode(out);
        }
    }

    fn length(&self) -> usize {
        let p = self.payload_length();
        p + alloy_rlp::length_of_length(p)
    }
}

impl Body {
    fn payload_length(&self) -> usize {
        use alloy_rlp::Encodable;
        self.transactions.length()
            + if self.staking_transactions.is_empty() {
                0
            } else {
                self.staking_transactions.length()
            }
    }
}

impl Decodable for Body {
    fn decode(buf: &mut &[u8]) -> alloy_rlp::Result<Self> {
        let mut body = alloy_rlp::Header::decode_bytes(buf, true)?;
        let payload_length = body.len();
        let transactions = Decodable::decode(&mut body)?;
        let staking_transactions: Vec<Bytes> = if body.is_empty() {
            Vec::new()
        } else {
            let s: Vec<Bytes> = Decodable::decode(&mut body)?;
            if s.is_empty() {
                // Canonical form: no staking transactions means no second list.
                return Err(alloy_rlp::Error::Custom("empty staking transaction list"));
            }
            s
        };
        if !body.is_empty() {
            return Err(alloy_rlp::Error::ListLengthMismatch {
                expected: payload_length,
                got: payload_length - body.len(),
            });
        }
        Ok(Body {
            transactions,
            staking_transactions,
        })
    }
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
    /// The leader's VRF (β ‖ π) under the `vrf` fork; empty before it.
    pub vrf: Bytes,
}

impl BlockTemplate {
    /// [`build_version`](Self::build_version) at version 1.
    pub fn build(self) -> Block {
        self.build_version(HEADER_VERSION)
    }

    /// Assembles the block with header `version` and empty execution results (roots of
    /// nothing, base fee at its floor); [`crate::exec::build`] executes transactions and fills
    /// them in.
    pub fn build_version(self, version: u8) -> Block {
        let (last_commit_view, last_commit_signature, last_commit_bitmap) = match self.last_commit {
            Some(c) => (c.view, c.signature, c.bitmap),
            None => (0, Bytes::new(), Bytes::new()),
        };
        let mut block = Block {
            header: Header {
                version,
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
                vrf: self.vrf,
                vdf: Bytes::new(),
                last_commit_view,
                last_commit_signature,
                last_commit_bitmap,
                v2: (version >= 2).then(|| HeaderV2 {
                    staking_transactions_root: EMPTY_ROOT,
                    staking_root: EMPTY_ROOT,
                    committee: Bytes::new(),
                    slashes: Bytes::new(),
                }),
            },
            body: Body {
                transactions: self.transactions,
                staking_transactions: Vec::new(),
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

/// sha256 of the first half of a `vdf` field (`y ‖ π`): the VDF output.
pub fn vdf_output_of(field: &[u8]) -> B256 {
    use sha2::Digest;
    B256::from(<[u8; 32]>::from(sha2::Sha256::digest(
        &field[..field.len() / 2],
    )))
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
            v2: None,
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
        newer.version = 3;
        newer.v2 = Some(HeaderV2::default());
        let err = Header::decode_exact(&newer.encode_to_vec()).unwrap_err();
        assert!(err.to_string().contains("upgrade the node"));
    }

    #[test]
    fn version_2_appends_its_fields_and_the_hash_covers_them() {
        let mut h = sample_header();
        let v1_bytes = h.encode_to_vec();
        h.version = 2;
        h.v2 = Some(HeaderV2 {
            staking_transactions_root: B256::repeat_byte(4),
            staking_root: B256::repeat_byte(5),
            committee: Bytes::from_static(b"committee"),
            slashes: Bytes::new(),
        });
        let bytes = h.encode_to_vec();
        assert_eq!(Header::decode_exact(&bytes).unwrap(), h);
        assert!(bytes.len() > v1_bytes.len() + 32 + 32 + 9);
        let mut other = h.clone();
        other.v2.as_mut().unwrap().staking_root = B256::repeat_byte(6);
        assert_ne!(other.hash(), h.hash());
        // Version 2 without its fields, or version 1 with them, does not decode.
        let mut short = sample_header();
        short.version = 2;
        assert!(Header::decode_exact(&short.encode_to_vec()).is_err());
        let mut long = h.clone();
        long.version = 1;
        assert!(Header::decode_exact(&long.encode_to_vec()).is_err());
    }

    #[test]
    fn bodies_carry_staking_transactions_in_a_second_list() {
        let v1 = Body {
            transactions: vec![Bytes::from_static(b"tx")],
            staking_transactions: Vec::new(),
        };
        let v1_bytes = alloy_rlp::encode(&v1);
        #[derive(RlpEncodable)]
        struct OneList {
            transactions: Vec<Bytes>,
        }
        let one = OneList {
            transactions: v1.transactions.clone(),
        };
        assert_eq!(
            v1_bytes,
            alloy_rlp::encode(&one),
            "version-1 bodies are unchanged"
        );
        let v2 = Body {
            transactions: vec![],
            staking_transactions: vec![Bytes::from_static(b"stake")],
        };
        assert_eq!(decode_exact::<Body>(&alloy_rlp::encode(&v2)).unwrap(), v2);
        #[derive(RlpEncodable)]
        struct TwoLists {
            transactions: Vec<Bytes>,
            staking: Vec<Bytes>,
        }
        let empty_second = TwoLists {
            transactions: vec![],
            staking: vec![],
        };
        assert!(decode_exact::<Body>(&alloy_rlp::encode(&empty_second)).is_err());
    }

    #[test]
    fn block_and_certificate_roundtrip() {
        let b = Block {
            header: sample_header(),
            body: Body {
                transactions: vec![Bytes::from_static(b"tx")],
                staking_transactions: Vec::new(),
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
