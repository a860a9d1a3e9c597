//! Staking transactions: the five directives of Harmony (`staking/types/messages.go`) and their
//! signed envelope.
//!
//! Wire form, as Harmony: RLP `[directive, message, nonce, gas_price, gas_limit, v, r, s]`,
//! signed (EIP-155 style) over keccak256 of RLP `[directive, message, nonce, gas_price,
//! gas_limit, chain_id, 0, 0]`, with `v = chain_id · 2 + 35 + parity`. The message is the
//! directive's struct as an RLP list; optional fields of EditValidator are lists of zero or one
//! item. CreateValidator and EditValidator carry our additions last: the transport key and
//! the endpoint.

use super::dec::Dec;
use super::types::{BlsKey, BlsSig, CommissionRates, Description, ValidatorStatus};
use alloy_primitives::{keccak256, Address, Bytes, Signature, B256, U256};
use alloy_rlp::{Decodable, Encodable, Header, RlpDecodable, RlpEncodable};

/// Largest encoded staking transaction accepted (106 keys with proofs fit in ~16 KiB).
pub const MAX_STAKING_TX_BYTES: usize = 32 * 1024;

/// Harmony's directive byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Directive {
    CreateValidator = 0,
    EditValidator = 1,
    Delegate = 2,
    Undelegate = 3,
    CollectRewards = 4,
}

impl Directive {
    pub fn name(self) -> &'static str {
        match self {
            Self::CreateValidator => "CreateValidator",
            Self::EditValidator => "EditValidator",
            Self::Delegate => "Delegate",
            Self::Undelegate => "Undelegate",
            Self::CollectRewards => "CollectRewards",
        }
    }
}

/// An optional field: an RLP list of zero or one item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opt<T>(pub Option<T>);

impl<T> Default for Opt<T> {
    fn default() -> Self {
        Opt(None)
    }
}

impl<T: Encodable> Encodable for Opt<T> {
    fn encode(&self, out: &mut dyn alloy_rlp::BufMut) {
        let payload = self.0.as_ref().map_or(0, |v| v.length());
        Header {
            list: true,
            payload_length: payload,
        }
        .encode(out);
        if let Some(v) = &self.0 {
            v.encode(out);
        }
    }
    fn length(&self) -> usize {
        let payload = self.0.as_ref().map_or(0, |v| v.length());
        payload + alloy_rlp::length_of_length(payload)
    }
}

impl<T: Decodable> Decodable for Opt<T> {
    fn decode(buf: &mut &[u8]) -> alloy_rlp::Result<Self> {
        let mut body = Header::decode_bytes(buf, true)?;
        let payload_length = body.len();
        if payload_length == 0 {
            return Ok(Opt(None));
        }
        let v = T::decode(&mut body)?;
        if !body.is_empty() {
            return Err(alloy_rlp::Error::ListLengthMismatch {
                expected: payload_length,
                got: payload_length - body.len(),
            });
        }
        Ok(Opt(Some(v)))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, RlpEncodable, RlpDecodable)]
pub struct CreateValidator {
    pub validator_address: Address,
    pub description: Description,
    pub commission_rates: CommissionRates,
    pub min_self_delegation: U256,
    pub max_total_delegation: U256,
    pub slot_pub_keys: Vec<BlsKey>,
    /// One proof of possession per key, in the same order.
    pub slot_key_sigs: Vec<BlsSig>,
    /// The self-delegation, taken from the operator's balance.
    pub amount: U256,
    pub transport_key: B256,
    pub endpoint: String,
}

/// Changes to a validator; absent fields stay as they are. Description fields left empty are
/// kept too (Harmony's rule).
#[derive(Debug, Clone, Default, PartialEq, Eq, RlpEncodable, RlpDecodable)]
pub struct EditValidator {
    pub validator_address: Address,
    pub description: Description,
    pub commission_rate: Opt<Dec>,
    pub min_self_delegation: Opt<U256>,
    pub max_total_delegation: Opt<U256>,
    pub slot_key_to_remove: Opt<BlsKey>,
    pub slot_key_to_add: Opt<BlsKey>,
    pub slot_key_to_add_sig: Opt<BlsSig>,
    pub status: Opt<ValidatorStatus>,
    pub transport_key: Opt<B256>,
    pub endpoint: Opt<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, RlpEncodable, RlpDecodable)]
pub struct Delegate {
    pub delegator_address: Address,
    pub validator_address: Address,
    pub amount: U256,
}

#[derive(Debug, Clone, PartialEq, Eq, RlpEncodable, RlpDecodable)]
pub struct Undelegate {
    pub delegator_address: Address,
    pub validator_address: Address,
    pub amount: U256,
}

#[derive(Debug, Clone, PartialEq, Eq, RlpEncodable, RlpDecodable)]
pub struct CollectRewards {
    pub delegator_address: Address,
}

/// One staking message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StakeMsg {
    CreateValidator(CreateValidator),
    EditValidator(EditValidator),
    Delegate(Delegate),
    Undelegate(Undelegate),
    CollectRewards(CollectRewards),
}

impl StakeMsg {
    pub fn directive(&self) -> Directive {
        match self {
            Self::CreateValidator(_) => Directive::CreateValidator,
            Self::EditValidator(_) => Directive::EditValidator,
            Self::Delegate(_) => Directive::Delegate,
            Self::Undelegate(_) => Directive::Undelegate,
            Self::CollectRewards(_) => Directive::CollectRewards,
        }
    }

    /// The address that must sign the message (the operator, or the delegator).
    pub fn signer(&self) -> Address {
        match self {
            Self::CreateValidator(m) => m.validator_address,
            Self::EditValidator(m) => m.validator_address,
            Self::Delegate(m) => m.delegator_address,
            Self::Undelegate(m) => m.delegator_address,
            Self::CollectRewards(m) => m.delegator_address,
        }
    }

    /// The directive's message, as it is RLP-encoded in the envelope.
    fn body(&self) -> &dyn Encodable {
        match self {
            Self::CreateValidator(m) => m,
            Self::EditValidator(m) => m,
            Self::Delegate(m) => m,
            Self::Undelegate(m) => m,
            Self::CollectRewards(m) => m,
        }
    }

    fn decode_body(directive: u8, buf: &mut &[u8]) -> alloy_rlp::Result<Self> {
        Ok(match directive {
            0 => Self::CreateValidator(Decodable::decode(buf)?),
            1 => Self::EditValidator(Decodable::decode(buf)?),
            2 => Self::Delegate(Decodable::decode(buf)?),
            3 => Self::Undelegate(Decodable::decode(buf)?),
            4 => Self::CollectRewards(Decodable::decode(buf)?),
            _ => return Err(alloy_rlp::Error::Custom("unknown staking directive")),
        })
    }
}

/// The unsigned fields of a staking transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StakingTx {
    pub msg: StakeMsg,
    pub nonce: u64,
    pub gas_price: u128,
    pub gas_limit: u64,
}

/// Why a staking transaction does not decode or verify.
#[derive(Debug, thiserror::Error)]
pub enum StakingTxError {
    #[error("staking transaction of {0} bytes is over the {MAX_STAKING_TX_BYTES}-byte limit")]
    TooLarge(usize),
    #[error("malformed staking transaction: {0}")]
    Rlp(#[from] alloy_rlp::Error),
    #[error("staking transaction has {0} trailing bytes after its RLP list")]
    Trailing(usize),
    #[error("staking transaction is signed for chain {found}, this chain is {expected}")]
    ChainId { found: u64, expected: u64 },
    #[error("staking transaction signature is invalid: {0}")]
    Signature(String),
    #[error("{directive} must be signed by {expected}, but {found} signed it")]
    WrongSigner {
        directive: &'static str,
        expected: Address,
        found: Address,
    },
}

impl StakingTx {
    fn fields_length(&self, tail: usize) -> usize {
        (self.msg.directive() as u8).length()
            + self.msg.body().length()
            + self.nonce.length()
            + self.gas_price.length()
            + self.gas_limit.length()
            + tail
    }

    fn encode_fields(&self, out: &mut dyn alloy_rlp::BufMut) {
        (self.msg.directive() as u8).encode(out);
        self.msg.body().encode(out);
        self.nonce.encode(out);
        self.gas_price.encode(out);
        self.gas_limit.encode(out);
    }

    /// The hash the sender signs (EIP-155 style, with the chain id).
    pub fn signing_hash(&self, chain_id: u64) -> B256 {
        let tail = chain_id.length() + 2 * 0u8.length();
        let mut out = Vec::new();
        Header {
            list: true,
            payload_length: self.fields_length(tail),
        }
        .encode(&mut out);
        self.encode_fields(&mut out);
        chain_id.encode(&mut out);
        0u8.encode(&mut out);
        0u8.encode(&mut out);
        keccak256(out)
    }

    /// The signed encoding, given a signature over [`signing_hash`](Self::signing_hash).
    pub fn encode_signed(&self, chain_id: u64, sig: &Signature) -> Bytes {
        let v = chain_id * 2 + 35 + u64::from(sig.v());
        let (r, s) = (sig.r(), sig.s());
        let tail = v.length() + r.length() + s.length();
        let mut out = Vec::new();
        Header {
            list: true,
            payload_length: self.fields_length(tail),
        }
        .encode(&mut out);
        self.encode_fields(&mut out);
        v.encode(&mut out);
        r.encode(&mut out);
        s.encode(&mut out);
        out.into()
    }
}

/// A decoded staking transaction with its recovered, checked sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedStakingTx {
    pub tx: StakingTx,
    pub sender: Address,
    /// keccak256 of the signed encoding.
    pub hash: B256,
    pub raw: Bytes,
}

impl SignedStakingTx {
    /// Decodes `raw`, recovers the sender and checks that it is the message's signer.
    pub fn decode(raw: &[u8], chain_id: u64) -> Result<Self, StakingTxError> {
        if raw.len() > MAX_STAKING_TX_BYTES {
            return Err(StakingTxError::TooLarge(raw.len()));
        }
        let mut rest = raw;
        let mut buf = Header::decode_bytes(&mut rest, true)?;
        if !rest.is_empty() {
            return Err(StakingTxError::Trailing(rest.len()));
        }
        let directive = u8::decode(&mut buf)?;
        let msg = StakeMsg::decode_body(directive, &mut buf)?;
        let nonce = u64::decode(&mut buf)?;
        let gas_price = u128::decode(&mut buf)?;
        let gas_limit = u64::decode(&mut buf)?;
        let v = u64::decode(&mut buf)?;
        let r = U256::decode(&mut buf)?;
        let s = U256::decode(&mut buf)?;
        if !buf.is_empty() {
            return Err(StakingTxError::Trailing(buf.len()));
        }
        let found = v
            .checked_sub(35)
            .map(|x| x / 2)
            .ok_or_else(|| StakingTxError::Signature(format!("v = {v} is not EIP-155")))?;
        if found != chain_id {
            return Err(StakingTxError::ChainId {
                found,
                expected: chain_id,
            });
        }
        let parity = (v - 35) % 2 == 1;
        let tx = StakingTx {
            msg,
            nonce,
            gas_price,
            gas_limit,
        };
        let sig = Signature::new(r, s, parity);
        if sig.normalize_s().is_some() {
            return Err(StakingTxError::Signature(
                "s is in the upper half (EIP-2)".into(),
            ));
        }
        let sender = sig
            .recover_address_from_prehash(&tx.signing_hash(chain_id))
            .map_err(|e| StakingTxError::Signature(e.to_string()))?;
        let expected = tx.msg.signer();
        if sender != expected {
            return Err(StakingTxError::WrongSigner {
                directive: tx.msg.directive().name(),
                expected,
                found: sender,
            });
        }
        Ok(Self {
            tx,
            sender,
            hash: keccak256(raw),
            raw: Bytes::copy_from_slice(raw),
        })
    }
}
