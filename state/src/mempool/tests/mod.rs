//! Mempool tests: fixtures here; admission rules, ordering and eviction, queued
//! transactions, and a model-checked random walk in the modules below.

use super::*;
use alloy_consensus::{SignableTransaction, Signed, TxEip1559, TxEnvelope, TxLegacy};
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{Bytes, Signature, TxKind};
use alloy_signer::SignerSync;
use alloy_signer_local::PrivateKeySigner;
use proptest::prelude::*;
use std::collections::HashSet;

const CHAIN: u64 = 7;
const GWEI: u128 = 1_000_000_000;
const BASE: u64 = 1_000_000_000;

fn key(i: u8) -> PrivateKeySigner {
    PrivateKeySigner::from_bytes(&B256::repeat_byte(i + 1)).unwrap()
}

fn sign<T>(k: &PrivateKeySigner, tx: T) -> SignedTx
where
    T: SignableTransaction<Signature>,
    Signed<T>: Into<TxEnvelope>,
{
    let sig = k.sign_hash_sync(&tx.signature_hash()).unwrap();
    let env: TxEnvelope = tx.into_signed(sig).into();
    let raw = env.encoded_2718();
    let tx = SignedTx::decode(&raw, CHAIN).unwrap();
    assert_eq!(tx.sender, k.address());
    tx
}

/// An EIP-1559 transfer with `max_fee` and `tip` in gwei.
fn dyn_tx(k: &PrivateKeySigner, nonce: u64, max_fee: u128, tip: u128) -> SignedTx {
    dyn_tx_full(k, nonce, 21_000, max_fee * GWEI, tip * GWEI, U256::ZERO)
}

fn dyn_tx_full(
    k: &PrivateKeySigner,
    nonce: u64,
    gas: u64,
    max_fee: u128,
    tip: u128,
    value: U256,
) -> SignedTx {
    sign(
        k,
        TxEip1559 {
            chain_id: CHAIN,
            nonce,
            gas_limit: gas,
            max_fee_per_gas: max_fee,
            max_priority_fee_per_gas: tip,
            to: TxKind::Call(Address::repeat_byte(0xee)),
            value,
            ..Default::default()
        },
    )
}

/// A legacy (EIP-155) transfer with `gas_price` in wei.
fn legacy_tx(k: &PrivateKeySigner, nonce: u64, gas: u64, gas_price: u128) -> SignedTx {
    sign(
        k,
        TxLegacy {
            chain_id: Some(CHAIN),
            nonce,
            gas_price,
            gas_limit: gas,
            to: TxKind::Call(Address::repeat_byte(0xee)),
            value: U256::ZERO,
            input: Bytes::new(),
        },
    )
}

/// Accounts for tests: unknown ones have nonce 0 and a large balance.
#[derive(Default)]
struct Accounts(HashMap<Address, (u64, U256)>);

impl Accounts {
    fn set(&mut self, k: &PrivateKeySigner, nonce: u64, balance: U256) {
        self.0.insert(k.address(), (nonce, balance));
    }
    fn set_nonce(&mut self, k: &PrivateKeySigner, nonce: u64) {
        self.set(k, nonce, U256::from(10u128.pow(24)));
    }
}

impl AccountSource for Accounts {
    fn nonce_and_balance(&self, a: Address) -> (u64, U256) {
        self.0
            .get(&a)
            .copied()
            .unwrap_or((0, U256::from(10u128.pow(24))))
    }
}

fn pool() -> Mempool {
    Mempool::new(MempoolConfig::default())
}

fn err(p: &mut Mempool, tx: SignedTx, s: &Accounts) -> String {
    p.insert(tx, s, BASE).unwrap_err().to_string()
}

/// (sender index in `keys`, nonce) of each transaction.
fn order(txs: &[SignedTx], keys: &[&PrivateKeySigner]) -> Vec<(usize, u64)> {
    txs.iter()
        .map(|t| {
            let i = keys.iter().position(|k| k.address() == t.sender).unwrap();
            (i, t.nonce())
        })
        .collect()
}

mod admission;
mod model;
mod ordering;
mod queued;
