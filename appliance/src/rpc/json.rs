//! The Ethereum JSON shapes of blocks, transactions, receipts and logs.

use alloy_consensus::transaction::SignerRecoverable;
use alloy_consensus::{Transaction, TxEnvelope};
use alloy_primitives::{Log, B256, U256};
use serde_json::{json, Map, Value};
use state::exec::{SignedTx, StoredReceipt};
use state::Header;

pub fn hex_u64(v: u64) -> String {
    format!("0x{v:x}")
}

pub fn hex_u128(v: u128) -> String {
    format!("0x{v:x}")
}

/// keccak256(rlp([])): blocks here have no uncles.
const EMPTY_UNCLES: &str = "0x1dcc4de8dec75d7aab85b567b6ccd41ad312451b948a7413f0a142fd40d49347";

/// The block object; `txs` are hashes or full objects, as the caller chose.
pub fn block(h: &Header, txs: Vec<Value>, size: usize) -> Value {
    json!({
        "number": hex_u64(h.number),
        "hash": h.hash(),
        "parentHash": h.parent_hash,
        "timestamp": hex_u64(h.timestamp_ms / 1000),
        "timestampMs": hex_u64(h.timestamp_ms),
        "miner": h.leader,
        "stateRoot": h.state_root,
        "transactionsRoot": h.transactions_root,
        "receiptsRoot": h.receipts_root,
        "logsBloom": h.logs_bloom,
        "gasLimit": hex_u64(h.gas_limit),
        "gasUsed": hex_u64(h.gas_used),
        "baseFeePerGas": hex_u64(h.base_fee),
        "extraData": h.extra_data,
        // PREVRANDAO: β of the leader's VRF (the parent hash before the `vrf` fork).
        "mixHash": h.vrf_output().unwrap_or(h.parent_hash),
        "vrf": h.vrf,
        // The epoch VDF's y ‖ π on each epoch's last block under the `vdf` fork; else empty.
        "vdf": h.vdf,
        "difficulty": "0x0",
        "totalDifficulty": "0x0",
        "nonce": "0x0000000000000000",
        "sha3Uncles": EMPTY_UNCLES,
        "uncles": [],
        "size": hex_u64(size as u64),
        "transactions": txs,
        "viewID": hex_u64(h.view),
        "epoch": hex_u64(h.epoch),
    })
}

/// Where a mined transaction sits: block hash, number, index and base fee.
#[derive(Debug, Clone, Copy)]
pub struct Mined {
    pub block_hash: B256,
    pub number: u64,
    pub index: u64,
    pub base_fee: u64,
}

/// The transaction object (`eth_getTransactionByHash`, full blocks). Pending transactions have
/// null block fields.
pub fn transaction(tx: &SignedTx, mined: Option<Mined>) -> Value {
    let e = &tx.envelope;
    let sig = e.signature();
    let mut o = Map::new();
    o.insert("hash".into(), json!(tx.hash));
    o.insert("type".into(), json!(hex_u64(tx.tx_type() as u64)));
    o.insert("from".into(), json!(tx.sender));
    o.insert("to".into(), json!(e.to()));
    o.insert("nonce".into(), json!(hex_u64(e.nonce())));
    o.insert("gas".into(), json!(hex_u64(e.gas_limit())));
    o.insert("value".into(), json!(e.value()));
    o.insert("input".into(), json!(e.input()));
    o.insert("chainId".into(), json!(e.chain_id().map(hex_u64)));
    o.insert("r".into(), json!(U256::from(sig.r())));
    o.insert("s".into(), json!(U256::from(sig.s())));
    let parity = sig.v() as u64;
    match e {
        TxEnvelope::Legacy(_) => {
            let v = match e.chain_id() {
                Some(id) => 35 + 2 * id + parity,
                None => 27 + parity,
            };
            o.insert("v".into(), json!(hex_u64(v)));
            o.insert("gasPrice".into(), json!(hex_u128(e.max_fee_per_gas())));
        }
        _ => {
            o.insert("v".into(), json!(hex_u64(parity)));
            o.insert("yParity".into(), json!(hex_u64(parity)));
            let price = match mined {
                Some(m) => e.effective_gas_price(Some(m.base_fee)),
                None => e.max_fee_per_gas(),
            };
            o.insert("gasPrice".into(), json!(hex_u128(price)));
            if e.is_dynamic_fee() {
                o.insert("maxFeePerGas".into(), json!(hex_u128(e.max_fee_per_gas())));
                o.insert(
                    "maxPriorityFeePerGas".into(),
                    json!(e.max_priority_fee_per_gas().map(hex_u128)),
                );
            }
            o.insert("accessList".into(), json!(e.access_list()));
            if let Some(auths) = e.authorization_list() {
                o.insert("authorizationList".into(), authorizations(auths));
            }
        }
    }
    o.insert("blockHash".into(), json!(mined.map(|m| m.block_hash)));
    o.insert(
        "blockNumber".into(),
        json!(mined.map(|m| hex_u64(m.number))),
    );
    o.insert(
        "transactionIndex".into(),
        json!(mined.map(|m| hex_u64(m.index))),
    );
    Value::Object(o)
}

fn authorizations(auths: &[alloy_eips::eip7702::SignedAuthorization]) -> Value {
    Value::Array(
        auths
            .iter()
            .map(|a| {
                json!({
                    "chainId": a.chain_id,
                    "address": a.address,
                    "nonce": hex_u64(a.nonce),
                    "yParity": hex_u64(a.y_parity() as u64),
                    "r": a.r(),
                    "s": a.s(),
                })
            })
            .collect(),
    )
}

/// A log with its position. `log_index` counts across the block.
pub fn log(l: &Log, mined: Mined, tx_hash: B256, log_index: u64) -> Value {
    json!({
        "address": l.address,
        "topics": l.data.topics(),
        "data": l.data.data,
        "blockHash": mined.block_hash,
        "blockNumber": hex_u64(mined.number),
        "transactionHash": tx_hash,
        "transactionIndex": hex_u64(mined.index),
        "logIndex": hex_u64(log_index),
        "removed": false,
    })
}

/// The receipt object. `first_log_index` is the block-wide index of its first log.
pub fn receipt(r: &StoredReceipt, mined: Mined, first_log_index: u64) -> Value {
    let logs: Vec<Value> = r
        .logs
        .iter()
        .enumerate()
        .map(|(i, l)| log(l, mined, r.tx_hash, first_log_index + i as u64))
        .collect();
    json!({
        "transactionHash": r.tx_hash,
        "transactionIndex": hex_u64(mined.index),
        "blockHash": mined.block_hash,
        "blockNumber": hex_u64(mined.number),
        "from": r.from,
        "to": if r.create { Value::Null } else { json!(r.to) },
        "contractAddress": if r.create { json!(r.contract_address) } else { Value::Null },
        "cumulativeGasUsed": hex_u64(r.cumulative_gas_used),
        "gasUsed": hex_u64(r.gas_used),
        "effectiveGasPrice": hex_u128(r.effective_gas_price),
        "logs": logs,
        "logsBloom": r.logs_bloom,
        "type": hex_u64(r.tx_type as u64),
        "status": if r.success { "0x1" } else { "0x0" },
    })
}

/// Recovers the sender of a stored transaction (already checked when it was executed).
pub fn decode_stored(raw: &[u8], chain_id: u64) -> Option<SignedTx> {
    SignedTx::decode(raw, chain_id).ok().or_else(|| {
        // A stored transaction always decoded once; keep RPC total even if chain id rules
        // change later.
        use alloy_eips::eip2718::Decodable2718;
        let envelope = TxEnvelope::decode_2718(&mut &raw[..]).ok()?;
        let sender = envelope.recover_signer().ok()?;
        Some(SignedTx {
            hash: *envelope.tx_hash(),
            envelope,
            sender,
            raw: alloy_primitives::Bytes::copy_from_slice(raw),
        })
    })
}
