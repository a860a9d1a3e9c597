//! JSON-RPC over HTTP and WebSocket on one port (jsonrpsee): the Ethereum methods wallets and
//! dapps use, `hmy_` node state, and operator peer control.
//!
//! - [`eth`]: chain and state reads, calls, gas, fees, submission.
//! - [`logs`]: log filters; [`filters`]: polling filters (`eth_newFilter`, ...);
//!   [`subscribe`]: `eth_subscribe` (newHeads, logs).
//! - [`json`]: the Ethereum JSON shapes.
//! - `staking`: the `hmy_` staking methods (Harmony's shapes).
//!
//! Every costly request is bounded (request size, batch length, connections, call gas and wall
//! time on a blocking thread, log range and count), so a public port cannot stall consensus.

mod eth;
pub mod filters;
pub mod json;
mod logs;
pub mod observe;
pub mod origin;
mod params;
mod staking;
pub mod subscribe;

use crate::chain::{BlockEvents, SharedPool, StatusBoard};
use crate::config::RpcConfig;
use crate::lock::LockExt;
use jsonrpsee::server::middleware::http::HostFilterLayer;
use jsonrpsee::server::{BatchRequestConfig, Server, ServerConfig, ServerHandle};
use jsonrpsee::types::{ErrorObject, ErrorObjectOwned, Params};
use jsonrpsee::RpcModule;
use serde_json::{json, Value};
use state::db::ChainStore;
use state::exec::ExecConfig;
use std::net::SocketAddr;
use std::sync::Arc;

pub struct RpcContext {
    pub chain_id: u64,
    pub store: Arc<ChainStore>,
    pub board: Arc<StatusBoard>,
    pub peers: Option<PeerAdmin>,
    pub exec: ExecConfig,
    pub pool: SharedPool,
    pub staking_pool: crate::chain::SharedStakingPool,
    /// Operator addresses of the chain spec's committee (the committee before any election).
    pub genesis_validators: Vec<alloy_primitives::Address>,
    /// Relays submitted transactions to the committee (none in tests without a mesh).
    pub relay: Option<crate::relay::TxRelay>,
    pub events: BlockEvents,
    pub limits: RpcConfig,
    /// Permits for costly requests (`rpc.max_concurrent_heavy`).
    pub heavy: Arc<tokio::sync::Semaphore>,
    /// Addresses and topics held by live `logs` subscriptions, all connections together
    /// ([`subscribe::MAX_SUBSCRIBED_FILTER_ENTRIES`]).
    pub subscribed_filters: Arc<tokio::sync::Semaphore>,
    /// Polling filters installed by clients (`eth_newFilter`, `eth_newBlockFilter`).
    pub filters: filters::Filters,
    pub metrics: crate::metrics::Metrics,
}

impl RpcContext {
    /// A permit for one costly request, or "limit exceeded" (-32005) when all are taken: a
    /// busy node refuses rather than queues, so RPC load cannot pile up behind consensus.
    pub(crate) fn heavy_permit(
        &self,
    ) -> Result<tokio::sync::OwnedSemaphorePermit, ErrorObjectOwned> {
        self.heavy.clone().try_acquire_owned().map_err(|_| {
            self.metrics.rpc_refused.with_label_values(&["busy"]).inc();
            ErrorObject::owned(
                LIMIT_EXCEEDED,
                format!(
                    "limit exceeded: {} costly requests are already running (rpc.max_concurrent_heavy); retry shortly",
                    self.limits.max_concurrent_heavy
                ),
                None::<()>,
            )
        })
    }
}

/// What the operator's peer methods act on.
pub struct PeerAdmin {
    pub mesh: crate::net::MeshHandle,
    /// Every known peer by transport key, with its index.
    pub directory: crate::directory::SharedDirectory,
    pub operator: crate::peers::OperatorBlocks,
    pub metrics: crate::metrics::Metrics,
}

impl PeerAdmin {
    /// A peer named by its index or hex transport key.
    fn resolve(&self, p: &Params) -> Result<usize, ErrorObjectOwned> {
        let (who,): (Value,) = p
            .parse()
            .map_err(|e| invalid(format!("expected [peer index or hex transport key]: {e}")))?;
        let directory = self.directory.locked();
        let idx = match &who {
            Value::Number(n) => n.as_u64().map(|n| n as usize),
            Value::String(s) => state::spec::parse_hex::<32>(s)
                .ok()
                .and_then(|k| directory.index_of(&k)),
            _ => None,
        };
        idx.filter(|i| *i < directory.len())
            .ok_or_else(|| invalid(format!("{who} names no known peer")))
    }
}

const INVALID_PARAMS: i32 = -32602;
const INTERNAL: i32 = -32603;
/// Geth's code for refused transactions and failed server-side checks.
const SERVER_ERROR: i32 = -32000;
/// EIP-1474 "limit exceeded".
const LIMIT_EXCEEDED: i32 = -32005;

type RpcResult<T> = Result<T, jsonrpsee::types::ErrorObjectOwned>;

fn invalid(msg: impl Into<String>) -> ErrorObjectOwned {
    ErrorObject::owned(INVALID_PARAMS, msg.into(), None::<()>)
}

fn internal(e: impl std::fmt::Display) -> ErrorObjectOwned {
    ErrorObject::owned(INTERNAL, format!("internal error: {e}"), None::<()>)
}

fn server_error(msg: impl Into<String>) -> ErrorObjectOwned {
    ErrorObject::owned(SERVER_ERROR, msg.into(), None::<()>)
}

pub fn module(ctx: RpcContext) -> RpcModule<RpcContext> {
    let admin = ctx.limits.admin_methods;
    let mut m = RpcModule::new(ctx);
    m.register_method("web3_clientVersion", |_, _, _| {
        format!("harmony-appliance/v{}", env!("CARGO_PKG_VERSION"))
    })
    .expect("unique name");
    m.register_method("net_version", |_, c, _| c.chain_id.to_string())
        .expect("unique name");
    m.register_method("net_listening", |_, _, _| true)
        .expect("unique name");
    m.register_method("net_peerCount", |_, c, _| {
        json::hex_u64(c.board.status.locked().connected_peers.len() as u64)
    })
    .expect("unique name");
    eth::register(&mut m);
    filters::register(&mut m);
    staking::register(&mut m);
    subscribe::register(&mut m);
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
        serde_json::to_value(&*c.board.status.locked()).expect("serializes")
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
        let ring = c.board.latencies.locked();
        ring.iter()
            .map(|(n, us)| json!([n, us]))
            .collect::<Vec<_>>()
    })
    .expect("unique name");
    if admin {
        m.register_method("hmy_blockPeer", |p, c, _| {
            let admin = c
                .peers
                .as_ref()
                .ok_or_else(|| internal("peer control unavailable"))?;
            let peer = admin.resolve(&p)?;
            if admin.operator.locked().insert(peer) {
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
            admin.operator.locked().remove(&peer);
            admin.mesh.unblock(peer);
            Ok::<_, ErrorObjectOwned>(admin.mesh.blocked())
        })
        .expect("unique name");
    }
    m
}

/// Entry points for `cargo fuzz` (`fuzz/fuzz_targets/rpc_params.rs`): every parser that turns
/// request JSON into typed parameters before any chain read. Not an API.
#[doc(hidden)]
pub mod fuzzing {
    use serde_json::Value;

    /// Runs each parameter parser on `v` (they must refuse, never panic).
    pub fn parse_all(v: &Value) {
        let _ = super::params::call_request(v);
        let _ = super::logs::Filter::parse_criteria(v);
        let _ = super::params::parse_hash(v, "hash");
        let _ = super::params::parse_address(v, "address");
        let _ = super::params::quantity_u64(v, "quantity");
        let _ = super::params::quantity_u256(v, "quantity");
        let _ = super::params::is_tip_tag(v.as_str().unwrap_or_default());
    }
}

/// Messages waiting for one WebSocket client; past this its subscriptions wait (and skip
/// blocks) instead of the node buffering for a client that does not read. jsonrpsee's default
/// is 1,024, which is 100 MiB across 100 stalled connections.
pub const WS_MESSAGE_BUFFER: u32 = 64;

/// Subscription ids as Ethereum clients issue them: 0x-prefixed random hex.
#[derive(Debug)]
struct HexIdProvider;

impl jsonrpsee::core::traits::IdProvider for HexIdProvider {
    fn next_id(&self) -> jsonrpsee::types::SubscriptionId<'static> {
        let n: u128 = rand::random();
        jsonrpsee::types::SubscriptionId::Str(format!("0x{n:032x}").into())
    }
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
        .max_subscriptions_per_connection(cfg.max_subscriptions_per_connection)
        .set_message_buffer_capacity(WS_MESSAGE_BUFFER)
        .set_batch_request_config(BatchRequestConfig::Limit(cfg.max_batch_len))
        .set_id_provider(HexIdProvider)
        .build();
    let hosts = if cfg.allowed_hosts.is_empty() {
        origin::default_hosts(cfg.listen)
    } else {
        cfg.allowed_hosts.clone()
    };
    let host_filter = if hosts.iter().any(|h| h == "*") {
        HostFilterLayer::disable()
    } else {
        HostFilterLayer::new(hosts).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("config field `rpc.allowed_hosts`: {e}"),
            )
        })?
    };
    let http = tower::ServiceBuilder::new()
        .layer(observe::RefusalCountLayer {
            counter: ctx.metrics.rpc_refused.clone(),
        })
        .layer(host_filter)
        .layer(origin::OriginFilterLayer::new(&cfg.allowed_origins));
    let (requests, seconds) = (
        ctx.metrics.rpc_requests.clone(),
        ctx.metrics.rpc_seconds.clone(),
    );
    let module = module(ctx);
    let counters = Arc::new(observe::RpcCounters {
        methods: module.method_names().collect(),
        requests,
        seconds,
    });
    let rpc = jsonrpsee::server::middleware::rpc::RpcServiceBuilder::new()
        .layer_fn(move |service| observe::RpcMetrics::new(service, counters.clone()));
    let server = Server::builder()
        .set_config(server_cfg)
        .set_http_middleware(http)
        .set_rpc_middleware(rpc)
        .build(cfg.listen)
        .await?;
    let addr = server.local_addr()?;
    Ok((addr, server.start(module)))
}
