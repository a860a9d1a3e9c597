//! Signed transactions: decoding (EIP-2718), sender recovery in parallel, and the revm view.

use alloy_consensus::transaction::SignerRecoverable;
use alloy_consensus::{Transaction, TxEnvelope};
use alloy_eips::eip2718::Decodable2718;
use alloy_primitives::{Address, Bytes, TxKind, B256, U256};
use rayon::prelude::*;
use revm::context::TxEnv;

/// Transactions larger than this are refused before decoding (Ethereum clients use 128 KiB).
pub const MAX_TX_BYTES: usize = 128 * 1024;

/// A decoded transaction with its recovered sender and hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedTx {
    pub envelope: TxEnvelope,
    pub sender: Address,
    pub hash: B256,
    /// The EIP-2718 encoding as received (what the block body carries).
    pub raw: Bytes,
}

/// Why a raw transaction was refused before execution. Messages follow what Ethereum
/// clients return, so wallets show familiar errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxError {
    #[error("oversized data: transaction of {0} bytes exceeds {MAX_TX_BYTES}")]
    Oversized(usize),
    #[error("rlp: failed to decode transaction: {0}")]
    Decode(String),
    #[error("transaction type not supported: blob (EIP-4844) transactions are not accepted on this chain")]
    Blob,
    #[error("invalid sender: {0}")]
    Signature(String),
    #[error("invalid chain id: transaction is for chain {got:?}, this chain is {want}")]
    ChainId { got: Option<u64>, want: u64 },
}

impl SignedTx {
    /// Decodes and recovers one transaction and checks that it belongs to `chain_id`
    /// (legacy transactions without EIP-155 replay protection are refused).
    pub fn decode(raw: &[u8], chain_id: u64) -> Result<Self, TxError> {
        if raw.len() > MAX_TX_BYTES {
            return Err(TxError::Oversized(raw.len()));
        }
        if raw.is_empty() {
            // alloy reads an empty input as a type-0 envelope and says "unexpected type flag".
            return Err(TxError::Decode(
                "empty transaction: no bytes to decode (expected an EIP-2718 envelope)".into(),
            ));
        }
        let mut buf = raw;
        let envelope =
            TxEnvelope::decode_2718(&mut buf).map_err(|e| TxError::Decode(e.to_string()))?;
        if !buf.is_empty() {
            return Err(TxError::Decode(format!(
                "{} trailing bytes after the transaction",
                buf.len()
            )));
        }
        if matches!(envelope, TxEnvelope::Eip4844(_)) {
            return Err(TxError::Blob);
        }
        if envelope.chain_id() != Some(chain_id) {
            return Err(TxError::ChainId {
                got: envelope.chain_id(),
                want: chain_id,
            });
        }
        let sender = envelope
            .recover_signer()
            .map_err(|e| TxError::Signature(e.to_string()))?;
        Ok(Self {
            hash: *envelope.tx_hash(),
            envelope,
            sender,
            raw: Bytes::copy_from_slice(raw),
        })
    }

    /// Decodes many transactions, recovering senders on all cores.
    pub fn decode_all(raws: &[Bytes], chain_id: u64) -> Vec<Result<Self, TxError>> {
        Self::decode_all_known(raws, chain_id, &Default::default())
    }

    /// [`decode_all`](Self::decode_all) that takes transactions already decoded (by the
    /// mempool, say) from `known`, keyed by hash, instead of recovering their senders again.
    pub fn decode_all_known(
        raws: &[Bytes],
        chain_id: u64,
        known: &std::collections::HashMap<B256, SignedTx>,
    ) -> Vec<Result<Self, TxError>> {
        raws.par_iter()
            .map(|r| {
                if !known.is_empty() {
                    if let Some(t) = known.get(&alloy_primitives::keccak256(r)) {
                        if t.raw == *r {
                            return Ok(t.clone());
                        }
                    }
                }
                Self::decode(r, chain_id)
            })
            .collect()
    }

    pub fn nonce(&self) -> u64 {
        self.envelope.nonce()
    }

    pub fn gas_limit(&self) -> u64 {
        self.envelope.gas_limit()
    }

    /// EIP-2718 type byte.
    pub fn tx_type(&self) -> u8 {
        self.envelope.tx_type() as u8
    }

    pub fn to(&self) -> Option<Address> {
        self.envelope.to()
    }

    pub fn value(&self) -> U256 {
        self.envelope.value()
    }

    /// The most this transaction can cost: gas limit × max fee + value, saturating at
    /// `U256::MAX` (a value near 2^256 must not wrap into a small cost that passes a balance
    /// check). The product cannot overflow: it is below 2^64 · 2^128.
    pub fn max_cost(&self) -> U256 {
        (U256::from(self.envelope.gas_limit()) * U256::from(self.envelope.max_fee_per_gas()))
            .saturating_add(self.envelope.value())
    }

    /// Tip per gas at `base_fee`, or `None` when the fee cap is below it.
    pub fn effective_tip(&self, base_fee: u64) -> Option<u128> {
        self.envelope.effective_tip_per_gas(base_fee)
    }

    /// The intrinsic gas (EIP-2028 calldata, EIP-2930 access list, creation, EIP-3860
    /// initcode, EIP-7702 authorizations, EIP-7623 floor): a transaction with less gas can
    /// never execute.
    pub fn intrinsic_gas(&self) -> u64 {
        let input = self.envelope.input();
        let zeros = input.iter().filter(|b| **b == 0).count() as u64;
        let nonzeros = input.len() as u64 - zeros;
        let tokens = zeros + nonzeros * 4;
        let mut gas = 21_000 + tokens * 4;
        if self.envelope.is_create() {
            gas += 32_000 + 2 * (input.len() as u64).div_ceil(32);
        }
        if let Some(list) = self.envelope.access_list() {
            for item in list.iter() {
                gas += 2_400 + 1_900 * item.storage_keys.len() as u64;
            }
        }
        if let Some(auths) = self.envelope.authorization_list() {
            gas += 25_000 * auths.len() as u64;
        }
        // EIP-7623: the floor is 10 gas per token on top of 21000.
        gas.max(21_000 + tokens * 10)
    }

    /// The revm transaction environment.
    pub fn tx_env(&self) -> TxEnv {
        let e = &self.envelope;
        let mut env = TxEnv {
            tx_type: self.tx_type(),
            caller: self.sender,
            gas_limit: e.gas_limit(),
            gas_price: e.max_fee_per_gas(),
            kind: e.kind(),
            value: e.value(),
            data: e.input().clone(),
            nonce: e.nonce(),
            chain_id: e.chain_id(),
            access_list: e.access_list().cloned().unwrap_or_default(),
            gas_priority_fee: e.max_priority_fee_per_gas(),
            ..Default::default()
        };
        if let Some(auths) = e.authorization_list() {
            env.set_signed_authorization(auths.to_vec());
        }
        env
    }
}

/// A call that is not a signed transaction (eth_call, eth_estimateGas).
#[derive(Debug, Clone, Default)]
pub struct CallRequest {
    pub from: Option<Address>,
    pub to: Option<Address>,
    pub gas: Option<u64>,
    pub gas_price: Option<u128>,
    pub value: Option<U256>,
    pub data: Bytes,
    pub nonce: Option<u64>,
}

impl CallRequest {
    pub(crate) fn tx_env(&self, gas: u64, chain_id: u64) -> TxEnv {
        TxEnv {
            tx_type: 0,
            caller: self.from.unwrap_or_default(),
            gas_limit: gas,
            gas_price: self.gas_price.unwrap_or(0),
            kind: match self.to {
                Some(a) => TxKind::Call(a),
                None => TxKind::Create,
            },
            value: self.value.unwrap_or_default(),
            data: self.data.clone(),
            nonce: self.nonce.unwrap_or(0),
            chain_id: Some(chain_id),
            ..Default::default()
        }
    }
}
