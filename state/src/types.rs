//! What the executor stores: accounts, receipts and transaction locations (RLP in MDBX).

use alloy_primitives::{Address, Bloom, Log, B256, U256};
use alloy_rlp::{RlpDecodable, RlpEncodable};
use alloy_trie::TrieAccount;

/// keccak256 of empty code.
pub const EMPTY_CODE_HASH: B256 =
    alloy_primitives::b256!("c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470");

/// An account as stored under its hashed address. The address is kept so RPC and debugging
/// can name it; the storage root is cached so only accounts whose storage changed recompute it.
#[derive(Debug, Clone, PartialEq, Eq, RlpEncodable, RlpDecodable)]
pub struct StoredAccount {
    pub address: Address,
    pub nonce: u64,
    pub balance: U256,
    pub code_hash: B256,
    pub storage_root: B256,
}

impl StoredAccount {
    /// The state-trie leaf of this account.
    pub fn trie_account(&self) -> TrieAccount {
        TrieAccount {
            nonce: self.nonce,
            balance: self.balance,
            storage_root: self.storage_root,
            code_hash: self.code_hash,
        }
    }
}

/// The receipt of one transaction, with the fields RPC derives from it.
#[derive(Debug, Clone, PartialEq, Eq, RlpEncodable, RlpDecodable)]
pub struct StoredReceipt {
    pub tx_hash: B256,
    /// EIP-2718 type: 0 legacy, 1 EIP-2930, 2 EIP-1559, 4 EIP-7702.
    pub tx_type: u8,
    pub success: bool,
    pub cumulative_gas_used: u64,
    pub gas_used: u64,
    pub effective_gas_price: u128,
    pub from: Address,
    /// Recipient (zero for a contract creation: see `create`).
    pub to: Address,
    /// Whether this transaction created a contract.
    pub create: bool,
    /// The contract address a creation used (sender and nonce), also when it failed; zero
    /// for calls.
    pub contract_address: Address,
    pub logs_bloom: Bloom,
    pub logs: Vec<Log>,
}

impl StoredReceipt {
    /// The consensus receipt (what the receipts root commits to).
    pub fn consensus_envelope(&self) -> alloy_consensus::ReceiptEnvelope {
        use alloy_consensus::{Eip658Value, Receipt, ReceiptEnvelope, ReceiptWithBloom};
        let inner = ReceiptWithBloom {
            receipt: Receipt {
                status: Eip658Value::Eip658(self.success),
                cumulative_gas_used: self.cumulative_gas_used,
                logs: self.logs.clone(),
            },
            logs_bloom: self.logs_bloom,
        };
        match self.tx_type {
            1 => ReceiptEnvelope::Eip2930(inner),
            2 => ReceiptEnvelope::Eip1559(inner),
            4 => ReceiptEnvelope::Eip7702(inner),
            _ => ReceiptEnvelope::Legacy(inner),
        }
    }
}

/// The receipts of one block.
#[derive(Debug, Clone, Default, PartialEq, Eq, RlpEncodable, RlpDecodable)]
pub struct StoredReceipts {
    pub receipts: Vec<StoredReceipt>,
}

/// Where a transaction is in the canonical chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, RlpEncodable, RlpDecodable)]
pub struct TxLocation {
    pub block: u64,
    pub index: u32,
}

/// Root of the receipts trie.
pub fn receipts_root(receipts: &[StoredReceipt]) -> B256 {
    let envelopes: Vec<_> = receipts.iter().map(|r| r.consensus_envelope()).collect();
    alloy_consensus::proofs::calculate_receipt_root(&envelopes)
}

/// The block bloom: the union of the receipts' blooms.
pub fn block_bloom(receipts: &[StoredReceipt]) -> Bloom {
    let mut bloom = Bloom::ZERO;
    for r in receipts {
        bloom.accrue_bloom(&r.logs_bloom);
    }
    bloom
}

/// Storage-trie leaf value of a slot.
pub fn storage_leaf(value: &U256) -> Vec<u8> {
    alloy_rlp::encode(value)
}
