//! Key and value codecs: how typed keys and values become the bytes MDBX stores.
//!
//! Keys are encoded so that MDBX's byte order is the natural order (`u64` big-endian), values
//! of chain types are their RLP encoding, decoded strictly (no trailing bytes).

use crate::block::{decode_exact, Body, CommitCertificate, Header, HeaderError};
use alloy_primitives::{Address, Bytes, B256, U256};
use alloy_rlp::Decodable;

/// A table key. Decoding errors are reported as `DbError::Corrupt` by the transaction layer.
pub trait KeyCodec: Sized {
    /// The encoded form (a fixed array for fixed-size keys, so encoding does not allocate).
    type Encoded: AsRef<[u8]>;
    fn encode_key(&self) -> Self::Encoded;
    fn decode_key(bytes: &[u8]) -> Result<Self, CodecError>;
    /// Human-readable form, for error messages.
    fn display_key(&self) -> String;
}

/// A table value. Decoding errors are reported as `DbError::Corrupt` by the transaction layer.
pub trait ValueCodec: Sized {
    fn encode_value(&self) -> Vec<u8>;
    fn decode_value(bytes: &[u8]) -> Result<Self, CodecError>;
}

/// Why stored bytes do not decode as the table's key or value type.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("expected {expected} bytes, found {found}")]
    Length { expected: usize, found: usize },
    #[error("{0}")]
    Malformed(&'static str),
    #[error("key is not UTF-8: {0}")]
    Utf8(#[from] std::string::FromUtf8Error),
    #[error(transparent)]
    Rlp(#[from] HeaderError),
}

fn fixed<const N: usize>(bytes: &[u8]) -> Result<[u8; N], CodecError> {
    bytes.try_into().map_err(|_| CodecError::Length {
        expected: N,
        found: bytes.len(),
    })
}

/// Block numbers: 8 bytes big-endian, so MDBX's lexicographic order is numeric order.
impl KeyCodec for u64 {
    type Encoded = [u8; 8];
    fn encode_key(&self) -> [u8; 8] {
        self.to_be_bytes()
    }
    fn decode_key(bytes: &[u8]) -> Result<Self, CodecError> {
        fixed::<8>(bytes).map(u64::from_be_bytes)
    }
    fn display_key(&self) -> String {
        self.to_string()
    }
}

/// Hashes: their 32 bytes.
impl KeyCodec for B256 {
    type Encoded = [u8; 32];
    fn encode_key(&self) -> [u8; 32] {
        self.0
    }
    fn decode_key(bytes: &[u8]) -> Result<Self, CodecError> {
        fixed::<32>(bytes).map(B256::from)
    }
    fn display_key(&self) -> String {
        self.to_string()
    }
}

/// Addresses: their 20 bytes.
impl KeyCodec for Address {
    type Encoded = [u8; 20];
    fn encode_key(&self) -> [u8; 20] {
        self.0 .0
    }
    fn decode_key(bytes: &[u8]) -> Result<Self, CodecError> {
        fixed::<20>(bytes).map(Address::from)
    }
    fn display_key(&self) -> String {
        self.to_string()
    }
}

/// Composite keys (account hash, slot hash): 64 bytes, so one account's slots are contiguous.
impl KeyCodec for (B256, B256) {
    type Encoded = [u8; 64];
    fn encode_key(&self) -> [u8; 64] {
        let mut out = [0u8; 64];
        out[..32].copy_from_slice(self.0.as_slice());
        out[32..].copy_from_slice(self.1.as_slice());
        out
    }
    fn decode_key(bytes: &[u8]) -> Result<Self, CodecError> {
        let b = fixed::<64>(bytes)?;
        Ok((B256::from_slice(&b[..32]), B256::from_slice(&b[32..])))
    }
    fn display_key(&self) -> String {
        format!("{}/{}", self.0, self.1)
    }
}

/// Trie paths: one byte per nibble, so a path sorts before every path it prefixes.
impl KeyCodec for alloy_trie::Nibbles {
    type Encoded = Vec<u8>;
    fn encode_key(&self) -> Vec<u8> {
        self.to_vec()
    }
    fn decode_key(bytes: &[u8]) -> Result<Self, CodecError> {
        if bytes.len() > 64 || bytes.iter().any(|b| *b > 0x0f) {
            return Err(CodecError::Malformed("not a nibble path"));
        }
        Ok(alloy_trie::Nibbles::from_nibbles_unchecked(bytes))
    }
    fn display_key(&self) -> String {
        format!("{self:?}")
    }
}

/// Storage-trie paths: the hashed address, then one byte per nibble.
impl KeyCodec for (B256, alloy_trie::Nibbles) {
    type Encoded = Vec<u8>;
    fn encode_key(&self) -> Vec<u8> {
        let mut out = self.0.to_vec();
        out.extend(self.1.encode_key());
        out
    }
    fn decode_key(bytes: &[u8]) -> Result<Self, CodecError> {
        if bytes.len() < 32 {
            return Err(CodecError::Malformed("shorter than a hashed address"));
        }
        Ok((
            B256::from_slice(&bytes[..32]),
            alloy_trie::Nibbles::decode_key(&bytes[32..])?,
        ))
    }
    fn display_key(&self) -> String {
        format!("{}/{:?}", self.0, self.1)
    }
}

/// Branch nodes: three 16-bit masks, a root-hash flag, the root hash if any, child hashes.
impl ValueCodec for alloy_trie::BranchNodeCompact {
    fn encode_value(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(7 + 32 * (self.hashes.len() + 1));
        out.extend_from_slice(&self.state_mask.get().to_be_bytes());
        out.extend_from_slice(&self.tree_mask.get().to_be_bytes());
        out.extend_from_slice(&self.hash_mask.get().to_be_bytes());
        match self.root_hash {
            Some(h) => {
                out.push(1);
                out.extend_from_slice(h.as_slice());
            }
            None => out.push(0),
        }
        for h in self.hashes.iter() {
            out.extend_from_slice(h.as_slice());
        }
        out
    }
    fn decode_value(bytes: &[u8]) -> Result<Self, CodecError> {
        let mask = |i: usize| -> Result<u16, CodecError> {
            Ok(u16::from_be_bytes(fixed::<2>(
                bytes
                    .get(i..i + 2)
                    .ok_or(CodecError::Malformed("truncated masks"))?,
            )?))
        };
        let (state, tree, hash) = (mask(0)?, mask(2)?, mask(4)?);
        let (root_hash, rest) = match bytes.get(6) {
            Some(1) => (
                Some(B256::from_slice(
                    bytes
                        .get(7..39)
                        .ok_or(CodecError::Malformed("truncated root hash"))?,
                )),
                &bytes[39..],
            ),
            Some(0) => (None, &bytes[7..]),
            _ => return Err(CodecError::Malformed("bad root-hash flag")),
        };
        if rest.len() % 32 != 0 || rest.len() / 32 != hash.count_ones() as usize {
            return Err(CodecError::Malformed(
                "child hashes do not match the hash mask",
            ));
        }
        if tree & !state != 0 || hash & !state != 0 {
            return Err(CodecError::Malformed(
                "tree or hash mask outside the state mask",
            ));
        }
        let hashes = rest.chunks(32).map(B256::from_slice).collect();
        Ok(alloy_trie::BranchNodeCompact::new(
            state, tree, hash, hashes, root_hash,
        ))
    }
}

/// Metadata names: their UTF-8 bytes.
impl KeyCodec for String {
    type Encoded = Vec<u8>;
    fn encode_key(&self) -> Vec<u8> {
        self.as_bytes().to_vec()
    }
    fn decode_key(bytes: &[u8]) -> Result<Self, CodecError> {
        Ok(String::from_utf8(bytes.to_vec())?)
    }
    fn display_key(&self) -> String {
        format!("{self:?}")
    }
}

/// `u64` values: 8 bytes big-endian.
impl ValueCodec for u64 {
    fn encode_value(&self) -> Vec<u8> {
        self.to_be_bytes().to_vec()
    }
    fn decode_value(bytes: &[u8]) -> Result<Self, CodecError> {
        fixed::<8>(bytes).map(u64::from_be_bytes)
    }
}

/// Hash values: their 32 bytes.
impl ValueCodec for B256 {
    fn encode_value(&self) -> Vec<u8> {
        self.0.to_vec()
    }
    fn decode_value(bytes: &[u8]) -> Result<Self, CodecError> {
        fixed::<32>(bytes).map(B256::from)
    }
}

/// Opaque bytes, stored as they are.
impl ValueCodec for Vec<u8> {
    fn encode_value(&self) -> Vec<u8> {
        self.clone()
    }
    fn decode_value(bytes: &[u8]) -> Result<Self, CodecError> {
        Ok(bytes.to_vec())
    }
}

/// Decodes exactly one RLP item (no trailing bytes); the helper for RLP-encoded values.
pub fn rlp_decode_value<T: Decodable>(bytes: &[u8]) -> Result<T, CodecError> {
    Ok(decode_exact::<T>(bytes)?)
}

/// Headers: RLP, refusing header versions this node does not know.
impl ValueCodec for Header {
    fn encode_value(&self) -> Vec<u8> {
        alloy_rlp::encode(self)
    }
    fn decode_value(bytes: &[u8]) -> Result<Self, CodecError> {
        Ok(Header::decode_exact(bytes)?)
    }
}

/// Implements [`ValueCodec`] as strict RLP for types with alloy-rlp codecs.
macro_rules! rlp_value {
    ($($ty:ty),* $(,)?) => {$(
        impl ValueCodec for $ty {
            fn encode_value(&self) -> Vec<u8> {
                alloy_rlp::encode(self)
            }
            fn decode_value(bytes: &[u8]) -> Result<Self, CodecError> {
                rlp_decode_value(bytes)
            }
        }
    )*};
}

rlp_value!(
    Body,
    CommitCertificate,
    crate::types::StoredAccount,
    crate::types::StoredReceipts,
    crate::types::TxLocation,
    crate::staking::Validator
);

/// Storage values: 32 bytes big-endian.
impl ValueCodec for U256 {
    fn encode_value(&self) -> Vec<u8> {
        self.to_be_bytes::<32>().to_vec()
    }
    fn decode_value(bytes: &[u8]) -> Result<Self, CodecError> {
        fixed::<32>(bytes).map(U256::from_be_bytes)
    }
}

/// Bytecode: the raw bytes.
impl ValueCodec for Bytes {
    fn encode_value(&self) -> Vec<u8> {
        self.to_vec()
    }
    fn decode_value(bytes: &[u8]) -> Result<Self, CodecError> {
        Ok(Bytes::copy_from_slice(bytes))
    }
}
