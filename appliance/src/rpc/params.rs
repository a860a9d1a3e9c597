//! Parameter parsing shared by the RPC namespaces: block tags and numbers, hashes, addresses,
//! quantities, positional arguments and call objects. Every failure is an `invalid params`
//! error that names the parameter and the expected shape.

use super::{internal, invalid, server_error, RpcContext, RpcResult};
use alloy_primitives::{Address, Bytes, B256, U256};
use jsonrpsee::types::Params;
use serde_json::Value;
use state::exec::CallRequest;
use state::Header;

/// Tags that mean the tip (blocks are final when stored, and this node keeps no pending block).
pub(super) fn is_tip_tag(tag: &str) -> bool {
    matches!(tag, "latest" | "finalized" | "safe" | "pending")
}

/// A block parameter resolved against the chain.
pub(super) fn block_number(ctx: &RpcContext, tag: &str) -> RpcResult<u64> {
    let tip = tip(ctx)?.0;
    match tag {
        t if is_tip_tag(t) => Ok(tip),
        "earliest" => Ok(0),
        hex => {
            let digits = hex.strip_prefix("0x").ok_or_else(|| {
                invalid(format!("block `{hex}`: expected a tag (latest, finalized, safe, earliest, pending) or a 0x-prefixed hex number"))
            })?;
            u64::from_str_radix(digits, 16)
                .map_err(|_| invalid(format!("block `{hex}` is not a hex number")))
        }
    }
}

/// A block parameter as a string or an EIP-1898 object; `None` means latest.
pub(super) fn block_param(ctx: &RpcContext, v: Option<&Value>) -> RpcResult<u64> {
    match v {
        None | Some(Value::Null) => block_number(ctx, "latest"),
        Some(Value::String(s)) => block_number(ctx, s),
        Some(Value::Object(o)) => {
            if let Some(Value::String(h)) = o.get("blockHash") {
                let hash: B256 = h
                    .parse()
                    .map_err(|_| invalid(format!("blockHash `{h}` is not a 32-byte hex hash")))?;
                ctx.store
                    .number_of(&hash)
                    .map_err(internal)?
                    .ok_or_else(|| server_error(format!("block {hash} not found")))
            } else if let Some(Value::String(n)) = o.get("blockNumber") {
                block_number(ctx, n)
            } else {
                Err(invalid("block object needs blockHash or blockNumber"))
            }
        }
        Some(other) => Err(invalid(format!(
            "block parameter {other} must be a tag, hex number or object"
        ))),
    }
}

pub(super) fn tip(ctx: &RpcContext) -> RpcResult<(u64, Header)> {
    let h = crate::chain::tip_header(&ctx.store).map_err(internal)?;
    Ok((h.number, h))
}

/// State queries are served at the latest block only: this node keeps no history of state.
/// A tag that means the tip is accepted without resolving it (resolving it and then reading the
/// tip again raced with a block being stored, and refused `latest` under load).
pub(super) fn require_latest(ctx: &RpcContext, v: Option<&Value>) -> RpcResult<()> {
    let tag = match v {
        None | Some(Value::Null) => return Ok(()),
        Some(Value::String(tag)) => Some(tag),
        Some(Value::Object(o)) => match o.get("blockNumber") {
            Some(Value::String(tag)) => Some(tag),
            _ => None,
        },
        Some(_) => None,
    };
    if tag.is_some_and(|t| is_tip_tag(t)) {
        return Ok(());
    }
    let n = block_param(ctx, v)?;
    let latest = tip(ctx)?.0;
    if n != latest {
        return Err(server_error(format!(
            "state at block #{n} is not available: this node keeps the state of the latest block (#{latest}) only"
        )));
    }
    Ok(())
}

pub(super) fn parse_hash(v: &Value, what: &str) -> RpcResult<B256> {
    v.as_str()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| invalid(format!("{what}: expected a 32-byte 0x hash, got {v}")))
}

pub(super) fn parse_address(v: &Value, what: &str) -> RpcResult<Address> {
    v.as_str().and_then(|s| s.parse().ok()).ok_or_else(|| {
        invalid(format!(
            "{what}: expected a 0x-prefixed 20-byte address, got {v}"
        ))
    })
}

/// A 0x-prefixed hex quantity, parsed from its hex digits by `parse`.
pub(super) fn quantity<T, E>(
    v: &Value,
    what: &str,
    parse: impl Fn(&str) -> Result<T, E>,
) -> RpcResult<T> {
    v.as_str()
        .and_then(|s| s.strip_prefix("0x"))
        .and_then(|d| parse(d).ok())
        .ok_or_else(|| {
            invalid(format!(
                "{what}: expected a 0x-prefixed hex quantity, got {v}"
            ))
        })
}

pub(super) fn quantity_u64(v: &Value, what: &str) -> RpcResult<u64> {
    quantity(v, what, |d| u64::from_str_radix(d, 16))
}

pub(super) fn quantity_u256(v: &Value, what: &str) -> RpcResult<U256> {
    quantity(v, what, |d| U256::from_str_radix(d, 16))
}

pub(super) fn params_vec(p: &Params, shape: &str) -> RpcResult<Vec<Value>> {
    if p.is_object() {
        return Err(invalid(format!("expected positional parameters {shape}")));
    }
    let v: Option<Vec<Value>> = p
        .parse()
        .map_err(|e| invalid(format!("expected {shape}: {e}")))?;
    Ok(v.unwrap_or_default())
}

pub(super) fn arg<'a>(v: &'a [Value], i: usize, shape: &str) -> RpcResult<&'a Value> {
    v.get(i)
        .ok_or_else(|| invalid(format!("missing parameter {i}: expected {shape}")))
}

/// The call object of eth_call / eth_estimateGas.
pub(super) fn call_request(v: &Value) -> RpcResult<CallRequest> {
    let o = v
        .as_object()
        .ok_or_else(|| invalid("call: expected a transaction object"))?;
    let get = |k: &str| o.get(k).filter(|v| !v.is_null());
    let data = match get("input").or_else(|| get("data")) {
        Some(d) => d
            .as_str()
            .and_then(|s| s.parse::<Bytes>().ok())
            .ok_or_else(|| invalid("call: input/data must be 0x-prefixed hex bytes"))?,
        None => Bytes::new(),
    };
    let gas_price = match get("gasPrice").or_else(|| get("maxFeePerGas")) {
        Some(v) => Some(quantity_u256(v, "gasPrice")?.saturating_to::<u128>()),
        None => None,
    };
    Ok(CallRequest {
        from: get("from").map(|v| parse_address(v, "from")).transpose()?,
        to: get("to").map(|v| parse_address(v, "to")).transpose()?,
        gas: get("gas").map(|v| quantity_u64(v, "gas")).transpose()?,
        gas_price,
        value: get("value")
            .map(|v| quantity_u256(v, "value"))
            .transpose()?,
        data,
        nonce: get("nonce").map(|v| quantity_u64(v, "nonce")).transpose()?,
    })
}

/// The call object of `eth_call` / `eth_estimateGas` at the latest block, and its gas
/// (what it asks for, at most `rpc.call_gas_cap`).
pub(super) fn call_params(c: &RpcContext, p: &Params) -> RpcResult<(CallRequest, u64)> {
    let shape = "[call, block]";
    let v = params_vec(p, shape)?;
    let req = call_request(arg(&v, 0, shape)?)?;
    require_latest(c, v.get(1))?;
    let cap = c.limits.call_gas_cap;
    let gas = req.gas.unwrap_or(cap).min(cap);
    Ok((req, gas))
}

/// Where a mined transaction is: its block, the block's receipts and its index in them
/// (staking transactions come after the block's other transactions).
pub(super) fn located(
    ctx: &RpcContext,
    hash: &B256,
) -> RpcResult<Option<(state::Block, Vec<state::exec::StoredReceipt>, usize)>> {
    let Some(loc) = ctx.store.tx_location(hash).map_err(internal)? else {
        return Ok(None);
    };
    let block = ctx
        .store
        .block(loc.block)
        .map_err(internal)?
        .ok_or_else(|| internal("indexed block missing"))?;
    let receipts = ctx
        .store
        .receipts(loc.block)
        .map_err(internal)?
        .unwrap_or_default()
        .receipts;
    Ok(Some((block, receipts, loc.index as usize)))
}
