//! The `eth_` methods: chain reads, state reads at the latest block, calls, gas and fees,
//! transaction submission.

use super::json::{self, hex_u128, hex_u64, Mined};
use super::params::{
    arg, block_param, call_params, located, params_vec, parse_address, parse_hash, quantity_u256,
    quantity_u64, require_latest, tip,
};
use super::{internal, invalid, server_error, RpcContext, RpcResult};
use crate::lock::LockExt;
use alloy_primitives::{Address, Bytes, B256, U256};
use jsonrpsee::types::{ErrorObject, ErrorObjectOwned, Params};
use jsonrpsee::RpcModule;
use serde_json::{json, Value};
use state::exec::{self, CallOutcome, CallRequest, SignedTx, StateReader, TxError, MIN_BASE_FEE};
use state::Header;
use std::sync::Arc;
use std::time::Duration;

/// JSON-RPC code for a reverted call (as geth): the revert data is in `data`.
const EXECUTION_REVERTED: i32 = 3;
/// The tip wallets are told to pay (`eth_maxPriorityFeePerGas`).
const SUGGESTED_TIP: u64 = 1_000_000_000;

use exec::next_base_fee_after as next_base_fee;

/// Runs `req` on the latest state on a blocking thread, bounded by the configured gas cap and
/// wall time, so RPC never holds up consensus.
async fn run_call(ctx: &Arc<RpcContext>, req: CallRequest, gas: u64) -> RpcResult<CallOutcome> {
    // Held by the blocking job itself: a call that outlives its timeout still counts.
    let permit = ctx.heavy_permit()?;
    let c = ctx.clone();
    let job = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let (_, h) = tip(&c)?;
        let mut inputs = exec::inputs_of(&h);
        inputs.number = h.number + 1;
        inputs.base_fee = next_base_fee(&h);
        let ro = c.store.db().tx().map_err(internal)?;
        let staking = exec::staking_calls(&c.exec, inputs.epoch, &ro);
        exec::call(StateReader::new(&ro), &c.exec, &inputs, &req, gas, staking)
            .map_err(server_error)
    });
    match tokio::time::timeout(Duration::from_millis(ctx.limits.call_timeout_ms), job).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => Err(internal(e)),
        Err(_) => Err(server_error(format!(
            "execution timeout: the call ran longer than rpc.call_timeout_ms ({} ms)",
            ctx.limits.call_timeout_ms
        ))),
    }
}

/// The error of a reverted call: code 3, the revert data, and the decoded reason if any.
fn reverted(output: &Bytes) -> ErrorObjectOwned {
    let reason = alloy_sol_reason(output);
    let msg = match reason {
        Some(r) => format!("execution reverted: {r}"),
        None => "execution reverted".to_string(),
    };
    ErrorObject::owned(EXECUTION_REVERTED, msg, Some(output.to_string()))
}

/// Decodes `Error(string)` revert data (selector 0x08c379a0).
fn alloy_sol_reason(out: &[u8]) -> Option<String> {
    let body = out.strip_prefix(&[0x08, 0xc3, 0x79, 0xa0][..])?;
    // Offsets and lengths come from contract output: checked, never trusted.
    let offset: usize = U256::from_be_slice(body.get(..32)?).try_into().ok()?;
    let start = offset.checked_add(32)?;
    let len: usize = U256::from_be_slice(body.get(offset..start)?)
        .try_into()
        .ok()?;
    let bytes = body.get(start..start.checked_add(len)?)?;
    String::from_utf8(bytes.to_vec()).ok()
}

fn call_result(outcome: CallOutcome) -> RpcResult<(Bytes, u64)> {
    match outcome {
        CallOutcome::Success { output, gas_used } => Ok((output, gas_used)),
        CallOutcome::Revert { output, .. } => Err(reverted(&output)),
        CallOutcome::Halt { reason, .. } => {
            Err(server_error(format!("execution halted: {reason}")))
        }
    }
}

/// A mined transaction with where it is, its receipt, and the index of its first log in the
/// block.
type MinedTx = (SignedTx, Mined, state::exec::StoredReceipt, u64);

/// Looks up a mined transaction: the decoded transaction, its position and its receipt.
fn mined_tx(ctx: &RpcContext, hash: &B256) -> RpcResult<Option<MinedTx>> {
    let Some((block, receipts, i)) = located(ctx, hash)? else {
        return Ok(None);
    };
    tx_at(ctx, &block, &receipts, i)
}

/// Transaction `i` of `block`; `None` past its Ethereum transactions (the staking ones that
/// follow them in the receipts are served by `hmy_getStakingTransactionReceipt`).
fn tx_at(
    ctx: &RpcContext,
    block: &state::Block,
    receipts: &[state::exec::StoredReceipt],
    i: usize,
) -> RpcResult<Option<MinedTx>> {
    if i >= block.body.transactions.len() {
        return Ok(None);
    }
    let (Some(raw), Some(r)) = (block.body.transactions.get(i), receipts.get(i)) else {
        return Err(internal("indexed transaction missing from its block"));
    };
    let tx = json::decode_stored(raw, ctx.chain_id)
        .ok_or_else(|| internal("stored transaction undecodable"))?;
    let first_log: u64 = receipts[..i].iter().map(|r| r.logs.len() as u64).sum();
    let mined = Mined {
        block_hash: block.hash(),
        number: block.number(),
        index: i as u64,
        base_fee: block.header.base_fee,
    };
    Ok(Some((tx, mined, r.clone(), first_log)))
}

/// Block `n` and its receipts, if stored.
fn block_and_receipts(
    ctx: &RpcContext,
    n: u64,
) -> RpcResult<Option<(state::Block, Vec<state::exec::StoredReceipt>)>> {
    let Some(block) = ctx.store.block(n).map_err(internal)? else {
        return Ok(None);
    };
    let receipts = ctx
        .store
        .receipts(n)
        .map_err(internal)?
        .unwrap_or_default()
        .receipts;
    Ok(Some((block, receipts)))
}

/// A block named by number, tag or hash (`eth_getBlockReceipts` takes either); `None` for a
/// hash this node does not have.
fn block_by_number_or_hash(ctx: &RpcContext, v: &Value) -> RpcResult<Option<u64>> {
    match v.as_str() {
        Some(h) if h.len() == 66 => ctx
            .store
            .number_of(&parse_hash(v, "block")?)
            .map_err(|e| internal(format!("block {h}: {e}"))),
        _ => block_param(ctx, Some(v)).map(Some),
    }
}

/// How many Ethereum transactions block `n` holds (`None`: no such block).
fn tx_count(ctx: &RpcContext, n: u64) -> RpcResult<Option<String>> {
    Ok(ctx
        .store
        .block(n)
        .map_err(internal)?
        .map(|b| hex_u64(b.body.transactions.len() as u64)))
}

/// `eth_getTransactionByBlock{Number,Hash}AndIndex` once the block is resolved.
fn tx_by_index(ctx: &RpcContext, n: Option<u64>, index: &Value) -> RpcResult<Value> {
    let i = quantity_u64(index, "transactionIndex")?;
    let Some((block, receipts)) = n.map(|n| block_and_receipts(ctx, n)).transpose()?.flatten()
    else {
        return Ok(Value::Null);
    };
    let Ok(i) = usize::try_from(i) else {
        return Ok(Value::Null);
    };
    Ok(tx_at(ctx, &block, &receipts, i)?
        .map(|(tx, mined, _, _)| json::transaction(&tx, Some(mined)))
        .unwrap_or(Value::Null))
}

/// Registers the reads of a block's transactions by position, its receipts, and the uncle
/// methods (this chain has no uncles: counts are zero, lookups null).
fn register_block_reads(m: &mut RpcModule<RpcContext>) {
    m.register_method("eth_getBlockTransactionCountByHash", |p, c, _| {
        let shape = "[blockHash]";
        let v = params_vec(&p, shape)?;
        let hash = parse_hash(arg(&v, 0, shape)?, "blockHash")?;
        let n = c.store.number_of(&hash).map_err(internal)?;
        n.map_or(Ok(None), |n| tx_count(c, n))
    })
    .expect("unique name");
    m.register_method("eth_getTransactionByBlockNumberAndIndex", |p, c, _| {
        let shape = "[block, transactionIndex]";
        let v = params_vec(&p, shape)?;
        let n = block_param(c, Some(arg(&v, 0, shape)?))?;
        tx_by_index(c, Some(n), arg(&v, 1, shape)?)
    })
    .expect("unique name");
    m.register_method("eth_getTransactionByBlockHashAndIndex", |p, c, _| {
        let shape = "[blockHash, transactionIndex]";
        let v = params_vec(&p, shape)?;
        let hash = parse_hash(arg(&v, 0, shape)?, "blockHash")?;
        let n = c.store.number_of(&hash).map_err(internal)?;
        tx_by_index(c, n, arg(&v, 1, shape)?)
    })
    .expect("unique name");
    m.register_method("eth_getBlockReceipts", |p, c, _| {
        let shape = "[block or blockHash]";
        let v = params_vec(&p, shape)?;
        let Some(n) = block_by_number_or_hash(c, arg(&v, 0, shape)?)? else {
            return Ok::<_, ErrorObjectOwned>(Value::Null);
        };
        let _permit = c.heavy_permit()?;
        let Some((block, receipts)) = block_and_receipts(c, n)? else {
            return Ok(Value::Null);
        };
        let mut out = Vec::with_capacity(block.body.transactions.len());
        for i in 0..block.body.transactions.len() {
            if let Some((_, mined, r, first)) = tx_at(c, &block, &receipts, i)? {
                out.push(json::receipt(&r, mined, first));
            }
        }
        Ok(Value::Array(out))
    })
    .expect("unique name");
    for name in [
        "eth_getUncleCountByBlockNumber",
        "eth_getUncleCountByBlockHash",
    ] {
        m.register_method(name, |_, _, _| hex_u64(0))
            .expect("unique name");
    }
    for name in [
        "eth_getUncleByBlockNumberAndIndex",
        "eth_getUncleByBlockHashAndIndex",
    ] {
        m.register_method(name, |_, _, _| Value::Null)
            .expect("unique name");
    }
}

/// The block object of block `n`, with hashes or full transactions.
pub(crate) fn block_json(ctx: &RpcContext, n: u64, full: bool) -> RpcResult<Value> {
    let Some(block) = ctx.store.block(n).map_err(internal)? else {
        return Ok(Value::Null);
    };
    let hash = block.hash();
    let txs = block
        .body
        .transactions
        .iter()
        .enumerate()
        .map(|(i, raw)| {
            if full {
                match json::decode_stored(raw, ctx.chain_id) {
                    Some(tx) => json::transaction(
                        &tx,
                        Some(Mined {
                            block_hash: hash,
                            number: n,
                            index: i as u64,
                            base_fee: block.header.base_fee,
                        }),
                    ),
                    None => Value::Null,
                }
            } else {
                json!(alloy_primitives::keccak256(raw))
            }
        })
        .collect();
    Ok(json::block(
        &block.header,
        txs,
        alloy_rlp::Encodable::length(&block),
    ))
}

/// Registers the `eth_` methods.
pub fn register(m: &mut RpcModule<RpcContext>) {
    register_block_reads(m);
    m.register_method("eth_chainId", |_, c, _| hex_u64(c.chain_id))
        .expect("unique name");
    m.register_method("eth_blockNumber", |_, c, _| {
        Ok::<_, ErrorObjectOwned>(hex_u64(tip(c)?.0))
    })
    .expect("unique name");
    // Behind its peers (catching up), the node says so as geth does; in sync, false.
    m.register_method("eth_syncing", |_, c, _| {
        let s = c.board.status.locked();
        match s.sync_started {
            Some(start) if s.is_behind() => json!({
                "startingBlock": hex_u64(start),
                "currentBlock": hex_u64(s.finalized),
                "highestBlock": hex_u64(s.peer_height),
            }),
            _ => json!(false),
        }
    })
    .expect("unique name");
    m.register_method("eth_accounts", |_, _, _| Vec::<Address>::new())
        .expect("unique name");
    m.register_method("eth_getBlockByNumber", |p, c, _| {
        let shape = "[block, fullTransactions]";
        let v = params_vec(&p, shape)?;
        let n = block_param(c, Some(arg(&v, 0, shape)?))?;
        let full = v.get(1).and_then(Value::as_bool).unwrap_or(false);
        let _permit = full.then(|| c.heavy_permit()).transpose()?;
        block_json(c, n, full)
    })
    .expect("unique name");
    m.register_method("eth_getBlockByHash", |p, c, _| {
        let shape = "[blockHash, fullTransactions]";
        let v = params_vec(&p, shape)?;
        let hash: B256 = parse_hash(arg(&v, 0, shape)?, "blockHash")?;
        let full = v.get(1).and_then(Value::as_bool).unwrap_or(false);
        let _permit = full.then(|| c.heavy_permit()).transpose()?;
        match c.store.number_of(&hash).map_err(internal)? {
            Some(n) => block_json(c, n, full),
            None => Ok(Value::Null),
        }
    })
    .expect("unique name");
    m.register_method("eth_getBlockTransactionCountByNumber", |p, c, _| {
        let shape = "[block]";
        let v = params_vec(&p, shape)?;
        tx_count(c, block_param(c, Some(arg(&v, 0, shape)?))?)
    })
    .expect("unique name");
    m.register_method("eth_getBalance", |p, c, _| {
        let shape = "[address, block]";
        let v = params_vec(&p, shape)?;
        let a = parse_address(arg(&v, 0, shape)?, "address")?;
        require_latest(c, v.get(1))?;
        let ro = c.store.db().tx().map_err(internal)?;
        let acc = StateReader::new(&ro).account(a).map_err(internal)?;
        Ok::<_, ErrorObjectOwned>(json!(acc.map(|a| a.balance).unwrap_or_default()))
    })
    .expect("unique name");
    m.register_method("eth_getTransactionCount", |p, c, _| {
        let shape = "[address, block]";
        let v = params_vec(&p, shape)?;
        let a = parse_address(arg(&v, 0, shape)?, "address")?;
        let pending = v.get(1).and_then(Value::as_str) == Some("pending");
        if !pending {
            require_latest(c, v.get(1))?;
        }
        let ro = c.store.db().tx().map_err(internal)?;
        let nonce = StateReader::new(&ro)
            .account(a)
            .map_err(internal)?
            .map(|a| a.nonce)
            .unwrap_or(0);
        let nonce = if pending {
            c.pool.locked().next_nonce(a, nonce)
        } else {
            nonce
        };
        Ok::<_, ErrorObjectOwned>(hex_u64(nonce))
    })
    .expect("unique name");
    m.register_method("eth_getCode", |p, c, _| {
        let shape = "[address, block]";
        let v = params_vec(&p, shape)?;
        let a = parse_address(arg(&v, 0, shape)?, "address")?;
        require_latest(c, v.get(1))?;
        let ro = c.store.db().tx().map_err(internal)?;
        let reader = StateReader::new(&ro);
        let code = match reader.account(a).map_err(internal)? {
            Some(acc) if acc.code_hash != state::exec::EMPTY_CODE_HASH => ro
                .get::<state::db::Bytecodes>(&acc.code_hash)
                .map_err(internal)?
                .unwrap_or_default(),
            _ => Bytes::new(),
        };
        Ok::<_, ErrorObjectOwned>(code)
    })
    .expect("unique name");
    m.register_method("eth_getStorageAt", |p, c, _| {
        let shape = "[address, slot, block]";
        let v = params_vec(&p, shape)?;
        let a = parse_address(arg(&v, 0, shape)?, "address")?;
        let slot = quantity_u256(arg(&v, 1, shape)?, "slot")?;
        require_latest(c, v.get(2))?;
        let ro = c.store.db().tx().map_err(internal)?;
        let value = StateReader::new(&ro)
            .storage_at(a, slot)
            .map_err(internal)?;
        Ok::<_, ErrorObjectOwned>(B256::from(value.to_be_bytes::<32>()))
    })
    .expect("unique name");
    m.register_async_method("eth_call", |p, c, _| async move {
        let (req, gas) = call_params(&c, &p)?;
        let (out, _) = call_result(run_call(&c, req, gas).await?)?;
        Ok::<_, ErrorObjectOwned>(out)
    })
    .expect("unique name");
    m.register_async_method("eth_estimateGas", |p, c, _| async move {
        let (req, cap) = call_params(&c, &p)?;
        estimate_gas(&c, req, cap).await.map(hex_u64)
    })
    .expect("unique name");
    m.register_method("eth_gasPrice", |_, c, _| {
        let (_, h) = tip(c)?;
        Ok::<_, ErrorObjectOwned>(hex_u64(next_base_fee(&h) + SUGGESTED_TIP))
    })
    .expect("unique name");
    m.register_method("eth_maxPriorityFeePerGas", |_, _, _| hex_u64(SUGGESTED_TIP))
        .expect("unique name");
    m.register_blocking_method("eth_feeHistory", |p, c, _| {
        let _permit = c.heavy_permit()?;
        fee_history(&c, &p)
    })
    .expect("unique name");
    m.register_method("eth_sendRawTransaction", |p, c, _| {
        let shape = "[signedTransactionData]";
        let v = params_vec(&p, shape)?;
        let raw: Bytes = arg(&v, 0, shape)?
            .as_str()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| invalid("signedTransactionData: expected 0x-prefixed hex bytes"))?;
        let tx = SignedTx::decode(&raw, c.chain_id).map_err(|e| match e {
            TxError::Decode(_) | TxError::Oversized(_) => invalid(e.to_string()),
            other => server_error(other.to_string()),
        })?;
        let hash = tx.hash;
        crate::chain::submit_transaction(&c.store, &c.pool, tx).map_err(server_error)?;
        if let Some(relay) = &c.relay {
            relay.push(raw);
        }
        Ok::<_, ErrorObjectOwned>(hash)
    })
    .expect("unique name");
    m.register_method("eth_getTransactionByHash", |p, c, _| {
        let shape = "[transactionHash]";
        let v = params_vec(&p, shape)?;
        let hash: B256 = parse_hash(arg(&v, 0, shape)?, "transactionHash")?;
        if let Some((tx, mined, _, _)) = mined_tx(c, &hash)? {
            return Ok::<_, ErrorObjectOwned>(json::transaction(&tx, Some(mined)));
        }
        let pooled = c.pool.locked().get(&hash).cloned();
        Ok(pooled
            .map(|tx| json::transaction(&tx, None))
            .unwrap_or(Value::Null))
    })
    .expect("unique name");
    m.register_method("eth_getTransactionReceipt", |p, c, _| {
        let shape = "[transactionHash]";
        let v = params_vec(&p, shape)?;
        let hash: B256 = parse_hash(arg(&v, 0, shape)?, "transactionHash")?;
        Ok::<_, ErrorObjectOwned>(
            mined_tx(c, &hash)?
                .map(|(_, mined, r, first)| json::receipt(&r, mined, first))
                .unwrap_or(Value::Null),
        )
    })
    .expect("unique name");
    m.register_blocking_method("eth_getLogs", |p, c, _| {
        let shape = "[filter]";
        let v = params_vec(&p, shape)?;
        let filter = super::logs::Filter::parse(&c, arg(&v, 0, shape)?)?;
        let _permit = c.heavy_permit()?;
        filter.collect(&c)
    })
    .expect("unique name");
}

/// Smallest gas limit with which `req` succeeds: one run at the cap, then a binary search
/// that starts from the gas the first run used.
async fn estimate_gas(c: &Arc<RpcContext>, req: CallRequest, cap: u64) -> RpcResult<u64> {
    // With a fee given, the sender must afford gas × fee: search no higher than it can pay
    // (as geth does), or a modest balance fails at the cap.
    let cap = match (req.gas_price.filter(|p| *p > 0), req.from) {
        (Some(price), Some(from)) => {
            let ro = c.store.db().tx().map_err(internal)?;
            let balance = StateReader::new(&ro)
                .account(from)
                .map_err(internal)?
                .map(|a| a.balance)
                .unwrap_or_default();
            let spendable = balance.saturating_sub(req.value.unwrap_or_default());
            let affordable = spendable / U256::from(price);
            cap.min(affordable.saturating_to::<u64>())
        }
        _ => cap,
    };
    let (_, used) = call_result(run_call(c, req.clone(), cap).await?)?;
    let ok = |o: &CallOutcome| matches!(o, CallOutcome::Success { .. });
    // Refunds and the 63/64 rule mean the limit needed can exceed the gas used.
    let optimistic = ((used + 2_300) * 64 / 63).min(cap);
    if ok(&run_call(c, req.clone(), optimistic).await?) {
        let mut lo = used.saturating_sub(1);
        let mut hi = optimistic;
        while lo + 1 < hi {
            let mid = lo + (hi - lo) / 2;
            if ok(&run_call(c, req.clone(), mid).await?) {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        return Ok(hi);
    }
    let (mut lo, mut hi) = (optimistic, cap);
    while lo + 1 < hi {
        let mid = lo + (hi - lo) / 2;
        if ok(&run_call(c, req.clone(), mid).await?) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    Ok(hi)
}

/// `eth_feeHistory(blockCount, newestBlock, rewardPercentiles)`.
fn fee_history(c: &RpcContext, p: &Params) -> RpcResult<Value> {
    let shape = "[blockCount, newestBlock, rewardPercentiles]";
    let v = params_vec(p, shape)?;
    let count = match arg(&v, 0, shape)? {
        Value::Number(n) => n.as_u64().unwrap_or(0),
        other => quantity_u64(other, "blockCount")?,
    }
    .min(1024);
    let newest = block_param(c, Some(arg(&v, 1, shape)?))?;
    let percentiles: Vec<f64> = match v.get(2) {
        None | Some(Value::Null) => vec![],
        Some(x) => serde_json::from_value(x.clone())
            .map_err(|_| invalid("rewardPercentiles: expected an array of numbers"))?,
    };
    if percentiles.windows(2).any(|w| w[0] > w[1])
        || percentiles.iter().any(|p| !(0.0..=100.0).contains(p))
    {
        return Err(invalid(
            "rewardPercentiles must be increasing values between 0 and 100",
        ));
    }
    // A newest block past the head would wrap `newest + 1` (u64::MAX) into a whole-chain
    // scan: refuse it before any work, as geth does.
    let (head, _) = tip(c)?;
    if newest > head {
        return Err(invalid(format!(
            "newestBlock {newest} is past the chain head {head}"
        )));
    }
    let count = count.min(newest + 1);
    let oldest = newest + 1 - count;
    let mut base_fees = Vec::new();
    let mut ratios = Vec::new();
    let mut rewards = Vec::new();
    let mut last: Option<Header> = None;
    for n in oldest..=newest {
        let block = c
            .store
            .block(n)
            .map_err(internal)?
            .ok_or_else(|| server_error(format!("block #{n} not found")))?;
        let h = &block.header;
        base_fees.push(hex_u64(h.base_fee));
        ratios.push(h.gas_used as f64 / h.gas_limit as f64);
        if !percentiles.is_empty() {
            let receipts = c.store.receipts(n).map_err(internal)?.unwrap_or_default();
            let mut tips: Vec<(u128, u64)> = receipts
                .receipts
                .iter()
                .map(|r| {
                    (
                        r.effective_gas_price.saturating_sub(h.base_fee as u128),
                        r.gas_used,
                    )
                })
                .collect();
            tips.sort();
            rewards.push(
                percentiles
                    .iter()
                    .map(|p| hex_u128(percentile(&tips, *p, h.gas_used)))
                    .collect::<Vec<_>>(),
            );
        }
        last = Some(block.header);
    }
    if let Some(h) = &last {
        base_fees.push(hex_u64(next_base_fee(h)));
    } else {
        base_fees.push(hex_u64(MIN_BASE_FEE));
    }
    let mut out = json!({
        "oldestBlock": hex_u64(oldest),
        "baseFeePerGas": base_fees,
        "gasUsedRatio": ratios,
    });
    if !percentiles.is_empty() {
        out["reward"] = json!(rewards);
    }
    Ok(out)
}

/// Gas-weighted percentile of sorted (tip, gas) pairs; zero for an empty block.
fn percentile(tips: &[(u128, u64)], p: f64, gas_used: u64) -> u128 {
    let threshold = (gas_used as f64 * p / 100.0) as u64;
    let mut sum = 0u64;
    for (tip, gas) in tips {
        sum += gas;
        if sum >= threshold {
            return *tip;
        }
    }
    tips.last().map(|t| t.0).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_string(offset: U256, len: U256, text: &[u8]) -> Vec<u8> {
        let mut out = vec![0x08, 0xc3, 0x79, 0xa0];
        out.extend_from_slice(&offset.to_be_bytes::<32>());
        out.extend_from_slice(&len.to_be_bytes::<32>());
        out.extend_from_slice(text);
        out
    }

    #[test]
    fn revert_reasons_decode_and_hostile_offsets_do_not_overflow() {
        let ok = error_string(U256::from(32), U256::from(5), b"hello");
        assert_eq!(alloy_sol_reason(&ok).as_deref(), Some("hello"));
        for (offset, len) in [
            (U256::from(usize::MAX), U256::from(1)),
            (U256::from(usize::MAX - 31), U256::from(1)),
            (U256::from(32), U256::from(usize::MAX)),
            (U256::from(32), U256::from(usize::MAX - 40)),
            (U256::MAX, U256::from(1)),
        ] {
            assert_eq!(alloy_sol_reason(&error_string(offset, len, b"hello")), None);
        }
    }
}
