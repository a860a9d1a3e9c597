//! `harmony-appliance run`: one validator node.
// libc: thread priorities (setpriority) and resource limits.
#![allow(unsafe_code)]

use super::Cli;
use crate::chain::StatusBoard;
use crate::config::{resolve, NodeConfig};
use crate::lock::LockExt;
use crate::metrics::Metrics;
use crate::net::{Mesh, MeshConfig, TransportIdentity};
use crate::node::{self, NodeContext};
use crate::rpc::{self, RpcContext};
use clap::Args;
use consensus::{fbft::member_keys, Committee};
use eyre::{bail, eyre, WrapErr};
use hsm::Signer;
use state::db::ChainStore;
use state::ChainSpec;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Verification backend: reference, cpu, cuda or auto (overrides `accel.backend`). `cuda`
    /// refuses to start, with the reason, where this binary or machine has no CUDA; `auto`
    /// takes CUDA when it can run and otherwise the CPU, logging why.
    #[arg(long)]
    pub accel: Option<String>,
    /// Start an empty double-sign guard history for keys that have none. Only for keys that
    /// have never signed anywhere; a key moved from another machine brings its history
    /// (`keys import-guard`).
    #[arg(long)]
    pub allow_new_guard_history: bool,
}

pub fn run(cli: &Cli, args: &RunArgs) -> eyre::Result<()> {
    disable_core_dumps();
    let data_dir = cli.data_dir.clone().unwrap_or_else(|| PathBuf::from("."));
    let mut cfg = NodeConfig::load(super::config_path(cli, &data_dir).as_deref())?;
    if let Some(f) = &cli.log_format {
        cfg.log.format = f.clone();
    }
    if let Some(a) = &args.accel {
        cfg.accel.backend = a.clone();
    }
    cfg.check().map_err(|e| eyre!("config: {e}"))?;
    crate::logging::init(&cfg.log.format, &cfg.log.filter);

    let threads = if cfg.accel.threads == 0 {
        num_cpus()
    } else {
        cfg.accel.threads
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        // At least two workers: the consensus loop executes blocks synchronously, and RPC,
        // metrics and QUIC must stay responsive meanwhile.
        .worker_threads(threads.clamp(2, 4))
        .enable_all()
        .build()?;
    runtime.block_on(run_async(
        data_dir,
        cfg,
        threads,
        args.allow_new_guard_history,
    ))
}

fn num_cpus() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// A validator's secrets must not end up in a core file.
fn disable_core_dumps() {
    let zero = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: setrlimit reads a valid, initialized struct; failure only leaves the limit as is.
    unsafe {
        libc::setrlimit(libc::RLIMIT_CORE, &zero);
    }
}

async fn run_async(
    data_dir: PathBuf,
    cfg: NodeConfig,
    threads: usize,
    allow_new_guard_history: bool,
) -> eyre::Result<()> {
    let spec_path = resolve(&data_dir, &cfg.chain_spec);
    let spec = ChainSpec::load(&spec_path)?;
    let spec_hash = spec.hash();
    let committee = Arc::new(Committee::from_spec(&spec)?);

    // A validator's keys never sit in a plain file (ARCHITECTURE: keystore or HSM).
    if cfg.keys.backend == "local" {
        bail!(
            "config field `keys.backend`: `local` keeps the BLS key in a plain file and is for \
             development tools only; `run` refuses it. Import the key into an EIP-2335 keystore \
             (`harmony-appliance keys import`) and set `keys.backend = \"keystore\"`, or use \
             `yubihsm`"
        );
    }
    // Signer first: with an HSM backend it also holds the transport key.
    let node_signer = super::keys::node_signer(&data_dir, &cfg.keys, allow_new_guard_history)
        .wrap_err_with(|| format!("signer backend `{}`", cfg.keys.backend))?;
    let tk_path = resolve(&data_dir, &cfg.keys.transport_key_file);
    let identity = match node_signer.transport {
        Some(id) => id,
        None => TransportIdentity::from_pkcs8_file(&tk_path)
            .wrap_err_with(|| format!("transport key {}", tk_path.display()))?,
    };
    // A node whose transport key is a spec validator's must hold that validator's keys (a
    // mismatch is a misconfigured data dir). Any other node runs: it observes until its keys
    // are elected (registered with `staking create-validator`).
    let signer = node_signer.signer;
    for (on, name) in [
        (cfg.consensus.double_sign_for_tests, "double_sign_for_tests"),
        (cfg.consensus.forge_vrf_for_tests, "forge_vrf_for_tests"),
    ] {
        if on && spec.chain_id != super::localnet::LOCALNET_CHAIN_ID {
            bail!(
                "consensus.{name} makes this node misbehave on purpose, to be caught; it is \
                 refused outside localnet (chain id {}, not {})",
                super::localnet::LOCALNET_CHAIN_ID,
                spec.chain_id
            );
        }
    }
    let double_signer = if cfg.consensus.double_sign_for_tests {
        tracing::warn!(target: "signer", "TEST MODE: this node signs a conflicting commit after every commit, outside the guard");
        Some(super::keys::unguarded_keystore_signer(
            &data_dir, &cfg.keys,
        )?)
    } else {
        None
    };
    let guard_stats = signer.stats();
    let genesis_member = committee.member_by_transport_key(&identity.public_key());
    if let Some(me) = genesis_member {
        if signer.public_keys() != member_keys(&committee, me).as_slice() {
            bail!(
                "the BLS keys of backend `{}` are not the keys of validator {} in the chain spec \
                 (same keys, same order); `harmony-appliance keys list` shows them",
                cfg.keys.backend,
                me
            );
        }
    }

    let store = Arc::new(ChainStore::open(&data_dir.join("db"))?);
    store.init_genesis_with_state(&spec.genesis(), &spec.genesis_state())?;
    let exec = state::exec::ExecConfig::from_spec(&spec);
    let tx_pool: crate::chain::SharedPool = Arc::new(std::sync::Mutex::new(
        state::mempool::Mempool::new(Default::default()),
    ));
    let staking_pool: crate::chain::SharedStakingPool = Default::default();
    let (events, _) = tokio::sync::broadcast::channel(256);

    let pool = Arc::new(
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("accel-{i}"))
            .build()?,
    );
    let selection: accel::Selection = cfg.accel.backend.parse().map_err(|e: String| eyre!(e))?;
    let (backend, why) = selection
        .resolve()
        .map_err(|e| eyre!("config field `accel.backend` (or --accel): {e}"))?;
    if let Some(why) = why {
        tracing::info!(target: "accel", backend = backend.name(), "{why}");
    }
    let engine = accel::Engine::new(backend, pool)
        .map_err(|e| eyre!("accel backend `{}`: {e}", backend.name()))?;

    let listen = match (cfg.network.listen, genesis_member) {
        (Some(l), _) => l,
        (None, Some(me)) => spec.validators[me].endpoint,
        (None, None) => bail!(
            "config field `network.listen`: this node is not a validator of the chain spec, so \
             it has no endpoint there; set `network.listen` (e.g. \"0.0.0.0:9000\") and \
             register that address with `staking create-validator --endpoint` or as an \
             observer in the other nodes' `network.observers`"
        ),
    };
    let directory = crate::directory::PeerDirectory::new(&spec, &cfg.network.observer_keys());
    let peers = directory.peer_infos();
    let directory: crate::directory::SharedDirectory = Arc::new(std::sync::Mutex::new(directory));
    let (mesh, inbound) = Mesh::start(MeshConfig {
        listen,
        identity,
        peers,
        spec_hash: spec_hash.0,
        max_message_bytes: cfg.network.max_message_bytes,
    })?;

    let metrics = Metrics::new();
    metrics.set_backend(engine.backend().name());
    mesh.count_traffic(crate::net::Traffic {
        messages: metrics.sent_messages.clone(),
        bytes: metrics.sent_bytes.clone(),
        kind: consensus::message::kind_name,
    });
    if cfg.metrics.enabled {
        let addr = crate::metrics::serve(cfg.metrics.listen, metrics.clone())
            .await
            .wrap_err_with(|| format!("metrics listener {}", cfg.metrics.listen))?;
        tracing::info!(target: "node", %addr, "metrics on /metrics");
    }
    // Peers the operator blocked in config stay refused until `hmy_unblockPeer`.
    let operator_blocks = crate::peers::OperatorBlocks::default();
    for (i, key) in cfg.network.blocked_peers.iter().enumerate() {
        let key = state::spec::parse_hex::<32>(key)
            .map_err(|e| eyre!("config field `network.blocked_peers[{i}]`: {e}"))?;
        let peer = directory.locked().index_of(&key).ok_or_else(|| {
            eyre!(
                "config field `network.blocked_peers[{i}]`: no validator of the chain spec and \
                 no observer has transport key {}",
                hex::encode(key)
            )
        })?;
        operator_blocks.locked().insert(peer);
        metrics.peer_bans.with_label_values(&["operator"]).inc();
        mesh.block(peer);
    }
    let board = Arc::new(StatusBoard::default());
    // RPC on its own runtime, at a lower priority: no request can hold a consensus or QUIC
    // thread, and a flood of submissions yields the CPU to consensus and execution.
    let rpc_runtime = rpc_runtime(&cfg.rpc)?;
    let _rpc = if cfg.rpc.enabled {
        let rpc_cfg = cfg.rpc.clone();
        let context = RpcContext {
            chain_id: spec.chain_id,
            store: store.clone(),
            board: board.clone(),
            peers: Some(rpc::PeerAdmin {
                mesh: mesh.clone(),
                directory: directory.clone(),
                operator: operator_blocks.clone(),
                metrics: metrics.clone(),
            }),
            exec: exec.clone(),
            pool: tx_pool.clone(),
            staking_pool: staking_pool.clone(),
            genesis_validators: spec.validators.iter().map(|v| v.address).collect(),
            relay: cfg
                .network
                .relay_transactions
                .then(|| crate::relay::TxRelay::spawn(mesh.clone(), metrics.relay_dropped.clone())),
            events: events.clone(),
            limits: cfg.rpc.clone(),
            heavy: Arc::new(tokio::sync::Semaphore::new(
                cfg.rpc.max_concurrent_heavy as usize,
            )),
            subscribed_filters: Arc::new(tokio::sync::Semaphore::new(
                rpc::subscribe::MAX_SUBSCRIBED_FILTER_ENTRIES,
            )),
            filters: Default::default(),
            metrics: metrics.clone(),
        };
        let (addr, handle) = rpc_runtime
            .spawn(async move { rpc::serve(&rpc_cfg, context).await })
            .await
            .wrap_err("RPC runtime")?
            .wrap_err_with(|| format!("RPC listener {}", cfg.rpc.listen))?;
        tracing::info!(target: "node", %addr, threads = cfg.rpc.threads, nice = cfg.rpc.nice, "JSON-RPC on http and ws");
        Some(handle)
    } else {
        None
    };

    tracing::info!(
        target: "node",
        genesis_validator = ?genesis_member,
        chain_id = spec.chain_id,
        spec = %spec_hash,
        quic = %mesh.local_addr(),
        accel = ?backend,
        "harmony-appliance started"
    );
    let notifier = Arc::new(crate::systemd::Notifier::from_env());
    if let Some(w) = notifier.watchdog() {
        let tick = Duration::from_millis(cfg.network.status_interval_ms);
        if w < tick * 2 {
            return Err(eyre!(
                "systemd's WatchdogSec ({w:?}) is shorter than two status ticks \
                 (network.status_interval_ms = {} ms): the loop could not pet it in time. Raise \
                 WatchdogSec in the unit or lower the interval",
                tick.as_millis()
            ));
        }
    }
    let ctx = NodeContext {
        committees: Arc::new(crate::committees::CommitteeBook::new(&spec, committee)),
        directory,
        spec,
        max_future_ms: cfg.consensus.max_future_ms,
        view_timeout_ms: cfg.consensus.view_timeout_ms,
        status_interval: Duration::from_millis(cfg.network.status_interval_ms),
        store,
        signer,
        engine,
        metrics,
        board,
        flood_limit: cfg.network.flood_limit,
        operator_blocks,
        guard_stats: Some(guard_stats),
        exec,
        pool: tx_pool,
        staking_pool,
        events,
        announce_headers_only: cfg.consensus.announce_headers_only,
        double_signer,
        forge_vrf: cfg.consensus.forge_vrf_for_tests,
        notifier: notifier.clone(),
    };
    notifier.notify("READY=1\nSTATUS=consensus loop starting");
    let result = node::run(ctx, mesh.clone(), inbound, shutdown_signal()).await;
    notifier.notify("STOPPING=1");
    drop(_rpc);
    // A runtime may not be dropped from async code; its threads end on their own.
    rpc_runtime.shutdown_background();
    result?;
    mesh.shutdown().await;
    tracing::info!(target: "node", "stopped cleanly");
    Ok(())
}

/// The runtime RPC requests run on: `rpc.threads` workers named `rpc`, each made `rpc.nice`
/// nicer than the rest of the process (Linux schedules niceness per thread).
fn rpc_runtime(cfg: &crate::config::RpcConfig) -> eyre::Result<tokio::runtime::Runtime> {
    let nice = cfg.nice;
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cfg.threads)
        .thread_name("rpc")
        .enable_all()
        .on_thread_start(move || lower_thread_priority(nice))
        .build()
        .wrap_err("starting the RPC runtime")
}

/// Adds `nice` to the calling thread's niceness; a failure only costs the preference.
fn lower_thread_priority(nice: i32) {
    if nice == 0 {
        return;
    }
    // SAFETY: plain system calls on the calling thread's id; no memory is shared.
    let rc = unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        let now = libc::getpriority(libc::PRIO_PROCESS, tid);
        libc::setpriority(libc::PRIO_PROCESS, tid, now + nice)
    };
    if rc != 0 {
        tracing::debug!(target: "node", nice, "could not lower the RPC thread's priority");
    }
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
