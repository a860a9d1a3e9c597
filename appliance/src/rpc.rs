//! JSON-RPC over HTTP (jsonrpsee): the `eth_` methods of this slice and `hmy_` node state.

use crate::config::RpcConfig;
use crate::node::StatusBoard;
use jsonrpsee::server::{Server, ServerConfig, ServerHandle};
use jsonrpsee::types::{ErrorObject, ErrorObjectOwned, Params};
use jsonrpsee::RpcModule;
use serde_json::{json, Value};
use state::db::ChainStore;
use state::Header;
use std::net::SocketAddr;
use std::sync::Arc;

pub struct RpcContext {
    pub chain_id: u64,
    pub store: Arc<ChainStore>,
    pub board: Arc<StatusBoard>,
    pub peers: Option<PeerAdmin>,
}

/// What the operator's peer methods act on.
pub struct PeerAdmin {
    pub mesh: crate::net::MeshHandle,
    /// Transport key of each committee member, by index.
    pub keys: Vec<[u8; 32]>,
    pub operator: crate::peers::OperatorBlocks,
    pub metrics: crate::metrics::Metrics,
}

impl PeerAdmin {
    /// A peer named by committee index or hex transport key.
    fn resolve(&self, p: &Params) -> Result<usize, ErrorObjectOwned> {
        let (who,): (Value,) = p
            .parse()
            .map_err(|e| invalid(format!("expected [peer index or hex transport key]: {e}")))?;
        let idx = match &who {
            Value::Number(n) => n.as_u64().map(|n| n as usize),
            Value::String(s) => state::spec::parse_hex::<32>(s)
                .ok()
                .and_then(|k| self.keys.iter().position(|x| *x == k)),
            _ => None,
        };
        idx.filter(|i| *i < self.keys.len())
            .ok_or_else(|| invalid(format!("{who} names no committee member")))
    }
}

const INVALID_PARAMS: i32 = -32602;
const INTERNAL: i32 = -32603;

fn invalid(msg: impl Into<String>) -> ErrorObjectOwned {
    ErrorObject::owned(INVALID_PARAMS, msg.into(), None::<()>)
}

fn internal(e: impl std::fmt::Display) -> ErrorObjectOwned {
    ErrorObject::owned(INTERNAL, format!("database error: {e}"), None::<()>)
}

fn hex_u64(v: u64) -> String {
    format!("0x{v:x}")
}

/// Resolves a block tag or hex number to a block number.
fn block_number(ctx: &RpcContext, tag: &str) -> Result<u64, ErrorObjectOwned> {
    let tip = ctx
        .store
        .tip()
        .map_err(internal)?
        .map(|(n, _)| n)
        .unwrap_or(0);
    match tag {
        "latest" | "finalized" | "safe" | "pending" => Ok(tip),
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

/// The Ethereum block object (no transactions yet), plus Harmony's view and epoch.
pub fn block_json(h: &Header, full: bool) -> Value {
    let _ = full; // no transactions to expand until the EVM lands
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
        "difficulty": "0x0",
        "nonce": "0x0000000000000000",
        "sha3Uncles": "0x1dcc4de8dec75d7aab85b567b6ccd41ad312451b948a7413f0a142fd40d49347",
        "uncles": [],
        "transactions": [],
        "viewID": hex_u64(h.view),
        "epoch": hex_u64(h.epoch),
    })
}

pub fn module(ctx: RpcContext) -> RpcModule<RpcContext> {
    let mut m = RpcModule::new(ctx);
    m.register_method("web3_clientVersion", |_, _, _| {
        format!("harmony-appliance/v{}", env!("CARGO_PKG_VERSION"))
    })
    .expect("unique name");
    m.register_method("net_version", |_, c, _| c.chain_id.to_string())
        .expect("unique name");
    m.register_method("eth_chainId", |_, c, _| hex_u64(c.chain_id))
        .expect("unique name");
    m.register_method("eth_blockNumber", |_, c, _| {
        let tip = c
            .store
            .tip()
            .map_err(internal)?
            .map(|(n, _)| n)
            .unwrap_or(0);
        Ok::<_, ErrorObjectOwned>(hex_u64(tip))
    })
    .expect("unique name");
    m.register_method("eth_getBlockByNumber", |p: Params, c, _| {
        let (tag, full): (String, Option<bool>) = p
            .parse()
            .map_err(|e| invalid(format!("expected [block, fullTransactions]: {e}")))?;
        let n = block_number(c, &tag)?;
        let h = c.store.header(n).map_err(internal)?;
        Ok::<_, ErrorObjectOwned>(
            h.map(|h| block_json(&h, full.unwrap_or(false)))
                .unwrap_or(Value::Null),
        )
    })
    .expect("unique name");
    m.register_method("hmy_latestHeader", |_, c, _| {
        let (n, hash) = c
            .store
            .tip()
            .map_err(internal)?
            .ok_or_else(|| internal("no genesis"))?;
        let h = c
            .store
            .header(n)
            .map_err(internal)?
            .ok_or_else(|| internal("tip header missing"))?;
        Ok::<_, ErrorObjectOwned>(json!({
            "blockNumber": n,
            "blockHash": hash,
            "viewID": h.view,
            "epoch": h.epoch,
            "shardID": h.shard,
            "leader": h.leader,
            "timestamp": h.timestamp_ms / 1000,
            "timestampMs": h.timestamp_ms,
        }))
    })
    .expect("unique name");
    m.register_method("hmy_consensusStatus", |_, c, _| {
        serde_json::to_value(&*c.board.status.lock().expect("lock")).expect("serializes")
    })
    .expect("unique name");
    m.register_method("hmy_blockPeer", |p, c, _| {
        let admin = c
            .peers
            .as_ref()
            .ok_or_else(|| internal("peer control unavailable"))?;
        let peer = admin.resolve(&p)?;
        if admin.operator.lock().expect("lock").insert(peer) {
            admin
                .metrics
                .peer_bans
                .with_label_values(&["operator"])
                .inc();
        }
        admin.mesh.block(peer);
        Ok::<_, ErrorObjectOwned>(admin.mesh.blocked())
    })
    .expect("unique name");
    m.register_method("hmy_unblockPeer", |p, c, _| {
        let admin = c
            .peers
            .as_ref()
            .ok_or_else(|| internal("peer control unavailable"))?;
        let peer = admin.resolve(&p)?;
        admin.operator.lock().expect("lock").remove(&peer);
        admin.mesh.unblock(peer);
        Ok::<_, ErrorObjectOwned>(admin.mesh.blocked())
    })
    .expect("unique name");
    m.register_method("hmy_blockedPeers", |_, c, _| {
        c.peers
            .as_ref()
            .map(|a| a.mesh.blocked())
            .unwrap_or_default()
    })
    .expect("unique name");
    m.register_method("hmy_finalityStats", |_, c, _| {
        let ring = c.board.latencies.lock().expect("lock");
        ring.iter()
            .map(|(n, us)| json!([n, us]))
            .collect::<Vec<_>>()
    })
    .expect("unique name");
    m
}

/// Starts the server; it runs until the handle is stopped or dropped.
pub async fn serve(
    cfg: &RpcConfig,
    ctx: RpcContext,
) -> std::io::Result<(SocketAddr, ServerHandle)> {
    let server_cfg = ServerConfig::builder()
        .max_request_body_size(cfg.max_request_bytes)
        .max_response_body_size(16 << 20)
        .max_connections(cfg.max_connections)
        .build();
    let server = Server::builder()
        .set_config(server_cfg)
        .build(cfg.listen)
        .await?;
    let addr = server.local_addr()?;
    Ok((addr, server.start(module(ctx))))
}
