//! The node's event loop: the only place that turns consensus effects into QUIC messages,
//! signer calls, verification jobs, disk writes and timers, in order.

use crate::chain::{
    load_tip, now_ms, recent_bitmaps, submit_batch, tip_header, BlockEvents, FinalizedBlock,
    SharedPool, StatusBoard,
};
use crate::lock::LockExt;
use crate::metrics::Metrics;
use crate::net::{Inbound, MeshHandle};
use crate::peers::{OperatorBlocks, PeerBook};
use crate::validate::{check_link, execute_block};
use accel::Engine;
use alloy_primitives::B256;
use consensus::{
    Config, Effect, FaultKind, Fbft, Input, Message, SafetyRecord, Status, SyncRequest,
    SyncResponse, Timer, Tip,
};
use hsm::Signer;
use state::db::ChainStore;
use state::exec::{ExecConfig, ExecutedBlock, SignedTx, StateReader};
use state::{BlockTemplate, ChainSpec};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

mod announce;
mod effects;
mod evidence;
mod gossip;
mod observe;
mod status;
mod sync;
mod sync_peers;
mod vdf;

/// Everything the loop needs, assembled by `run`.
pub struct NodeContext {
    pub spec: ChainSpec,
    /// The committee of each epoch (spec, then elections).
    pub committees: Arc<crate::committees::CommitteeBook>,
    /// Every peer by transport key, with the index the mesh uses (shared with RPC).
    pub directory: crate::directory::SharedDirectory,
    pub max_future_ms: u64,
    /// 0 = the default (one block time, at least one second).
    pub view_timeout_ms: u64,
    pub status_interval: Duration,
    pub store: Arc<ChainStore>,
    pub signer: Arc<dyn Signer>,
    pub engine: Engine,
    pub metrics: Metrics,
    pub board: Arc<StatusBoard>,
    /// Messages one peer may send per status interval.
    pub flood_limit: u32,
    /// Peers the operator blocked (config or RPC); never unbanned by time.
    pub operator_blocks: OperatorBlocks,
    /// Counters of the double-sign guard in front of the signer, exported as metrics.
    pub guard_stats: Option<Arc<hsm::GuardStats>>,
    pub exec: ExecConfig,
    pub pool: SharedPool,
    pub staking_pool: crate::chain::SharedStakingPool,
    pub events: BlockEvents,
    /// Announce own proposals as header plus transaction hashes (HET-86).
    pub announce_headers_only: bool,
    /// The test-only double-signing mode: the node's keys outside the guard.
    pub double_signer: Option<Arc<dyn Signer>>,
    /// The test-only forged-VRF mode (`consensus.forge_vrf_for_tests`).
    pub forge_vrf: bool,
    /// systemd's notify socket and watchdog (petted from the status tick).
    pub notifier: Arc<crate::systemd::Notifier>,
}

/// This node's clock minus a proposal's timestamp, in seconds (either sign).
fn skew_s(timestamp_ms: u64) -> f64 {
    (now_ms() as f64 - timestamp_ms as f64) / 1000.0
}

/// This node's shard: the key of its consensus safety record.
const SHARD: u64 = 0;

fn load_safety(store: &ChainStore) -> eyre::Result<Option<SafetyRecord>> {
    store.consensus_safety(SHARD).map_err(|e| {
        eyre::eyre!(
            "the consensus safety record could not be read ({e}); refusing to start, since it \
             guards against double-signing. Restore the data directory from a backup"
        )
    })
}

struct Driver {
    ctx: NodeContext,
    mesh: MeshHandle,
    fbft: Fbft,
    timers: mpsc::UnboundedSender<Timer>,
    started: HashMap<B256, Instant>,
    /// Whom catch-up asks (claimed heights, silent peers, the request in flight).
    sync_peers: sync_peers::SyncPeers,
    peers: PeerBook,
    /// Blocks executed (built or validated) but not yet final, by hash.
    executed: HashMap<B256, ExecutedBlock>,
    /// A compact announce whose missing transactions were asked of its sender.
    pending_announce: Option<announce::PendingAnnounce>,
    /// Batches the GPU failed and the CPU answered, as last reported (warned on increase).
    device_fallbacks: u64,
    /// Blocks being re-executed off the loop (ADR 0002: prepare goes out on receipt, commit
    /// after execution); results come back through `validations`.
    validating: HashSet<B256>,
    validations: mpsc::UnboundedSender<Validation>,
    /// Blocks this node builds as leader, executed off the loop like validations.
    builds: mpsc::UnboundedSender<Built>,
    /// A fetched batch of blocks being verified and applied (one at a time).
    sync_batch: Option<sync::SyncBatch>,
    syncs: mpsc::UnboundedSender<sync::SyncStep>,
    /// Set when the node must stop (the safety record could not be written): no effect runs
    /// after it, and the loop returns it as its error.
    fatal: Option<eyre::Report>,
    /// Relayed transactions go to the gossip worker through this queue.
    gossip: gossip::GossipQueue,
    /// Results of signature verification jobs run off the loop.
    verified: mpsc::UnboundedSender<Input>,
    /// The staking record holding this node's BLS keys, once one does (for its metrics).
    my_validator: Option<alloy_primitives::Address>,
    /// Double-sign evidence pooled for the blocks this node leads.
    evidence: evidence::EvidencePool,
    evidence_checked: mpsc::UnboundedSender<evidence::EvidenceChecked>,
    /// The epoch VDF proofs this node computed (for the blocks it leads).
    vdfs: Arc<vdf::EpochVdfs>,
    /// Bookkeeping for the operator's metrics (signing, leader slots, phases, samples).
    observed: observe::Observed,
}

/// A block this node built (executed on a blocking thread), for (number, view).
struct Built {
    number: u64,
    view: u64,
    started: Instant,
    result: Result<(state::Block, ExecutedBlock), String>,
}

/// A block re-executed on a blocking thread, coming back to the consensus loop.
struct Validation {
    number: u64,
    hash: B256,
    result: Result<ExecutedBlock, state::exec::BlockError>,
}

/// Runs consensus until `shutdown` resolves.
pub async fn run(
    ctx: NodeContext,
    mesh: MeshHandle,
    mut inbound: mpsc::Receiver<Inbound>,
    shutdown: impl std::future::Future<Output = ()>,
) -> eyre::Result<()> {
    let tip = load_tip(&ctx.store)?;
    let cfg = Config {
        chain_id: ctx.spec.chain_id,
        shard: ctx.spec.shard,
        epoch_blocks: ctx.spec.epoch_blocks,
        block_time_ms: ctx.spec.block_time_ms,
        max_future_ms: ctx.max_future_ms,
        view_timeout_ms: if ctx.view_timeout_ms == 0 {
            Config::default_view_timeout_ms(ctx.spec.block_time_ms)
        } else {
            ctx.view_timeout_ms
        },
        keys: ctx.signer.public_keys().to_vec(),
        vrf_from: ctx.spec.forks.get(state::forks::VRF).copied(),
    };
    tracing::info!(target: "node", number = tip.number, hash = %tip.hash, "starting from tip");
    let recent = recent_bitmaps(&ctx.store, tip.number)?;
    let safety = load_safety(&ctx.store)?;
    let committees = ctx.committees.around(&ctx.store, tip.number)?;
    let fbft = Fbft::new(cfg, committees, tip, recent, safety);
    if fbft.me_index().is_none() {
        tracing::info!(
            target: "node",
            "this node's keys are not in the current committee: following the chain as an \
             observer until they are elected"
        );
    }
    let (timer_tx, mut timer_rx) = mpsc::unbounded_channel();
    let (validation_tx, mut validation_rx) = mpsc::unbounded_channel();
    let (build_tx, mut build_rx) = mpsc::unbounded_channel();
    let (verified_tx, mut verified_rx) = mpsc::unbounded_channel();
    let (sync_tx, mut sync_rx) = mpsc::unbounded_channel();
    let (gossip_tx, mut gossip_rx) = mpsc::unbounded_channel();
    let (evidence_tx, mut evidence_rx) = mpsc::unbounded_channel();
    let gossip = gossip::spawn_gossip_worker(
        ctx.store.clone(),
        ctx.pool.clone(),
        ctx.exec.chain_id,
        ctx.metrics.sender_recovery_seconds.clone(),
        gossip_tx,
    )?;
    let mut status_tick = tokio::time::interval(ctx.status_interval);
    let observed = observe::Observed::for_keys(ctx.signer.public_keys());
    let mut d = Driver {
        ctx,
        mesh,
        fbft,
        timers: timer_tx,
        started: HashMap::new(),
        sync_peers: Default::default(),
        peers: PeerBook::default(),
        executed: HashMap::new(),
        pending_announce: None,
        device_fallbacks: 0,
        validating: HashSet::new(),
        validations: validation_tx,
        builds: build_tx,
        verified: verified_tx,
        sync_batch: None,
        fatal: None,
        gossip,
        syncs: sync_tx,
        my_validator: None,
        evidence: Default::default(),
        evidence_checked: evidence_tx,
        vdfs: Default::default(),
        observed,
    };
    d.refresh_peers();
    d.publish_validator();
    d.feed(Input::Start);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            Some(inb) = inbound.recv() => d.on_inbound(inb),
            Some(t) = timer_rx.recv() => d.feed(Input::Timeout(t)),
            Some(v) = validation_rx.recv() => d.on_validation(v),
            Some(b) = build_rx.recv() => d.on_built(b),
            Some(v) = verified_rx.recv() => d.feed(v),
            Some(s) = sync_rx.recv() => d.on_sync_step(s),
            Some(g) = gossip_rx.recv() => d.on_gossip_checked(g),
            Some(e) = evidence_rx.recv() => d.on_evidence_checked(e),
            _ = status_tick.tick() => d.on_status_tick(),
        }
        if let Some(e) = d.fatal.take() {
            tracing::error!(target: "node", error = %e, "consensus loop stopped");
            return Err(e);
        }
    }
    tracing::info!(target: "node", "consensus loop stopped");
    Ok(())
}

impl Driver {
    fn on_inbound(&mut self, inb: Inbound) {
        if self.peers.is_banned(inb.from) || self.ctx.operator_blocks.locked().contains(&inb.from) {
            return; // in flight when the peer was blocked
        }
        if self.peers.received(inb.from, self.ctx.flood_limit) {
            self.fault(
                inb.from,
                FaultKind::Protocol,
                "flooding: more messages than network.flood_limit per interval",
            );
        }
        let msg = match Message::decode(&inb.payload) {
            Ok(m) => m,
            Err(e) => {
                self.ctx.metrics.messages_invalid.inc();
                self.fault(
                    inb.from,
                    FaultKind::Malformed,
                    &format!("undecodable message: {e}"),
                );
                return;
            }
        };
        let m = &self.ctx.metrics;
        m.messages_received.with_label_values(&[msg.name()]).inc();
        m.received_bytes
            .with_label_values(&[msg.name()])
            .inc_by(inb.payload.len() as u64);
        match &msg {
            Message::Prepare(v) | Message::Commit(v) if v.number <= self.fbft.tip().number => {
                m.late_votes.inc()
            }
            Message::Announce(a) => m.clock_skew.set(skew_s(a.block.header.timestamp_ms)),
            Message::CompactAnnounce(c) => m.clock_skew.set(skew_s(c.header.timestamp_ms)),
            _ => {}
        }
        match msg {
            Message::Status(s) => self.on_peer_status(inb.from, s),
            Message::SyncRequest(r) => self.on_sync_request(inb.from, r),
            Message::SyncResponse(r) => self.on_sync_response(inb.from, r),
            Message::Transactions(b) => self.on_transactions(inb.from, b),
            Message::StakingTransactions(b) => self.on_staking_transactions(inb.from, b),
            Message::GetTransactions(r) => self.on_get_transactions(inb.from, r),
            Message::CompactAnnounce(c) => self.on_compact_announce(inb.from, *c),
            Message::Evidence(e) => self.check_evidence(Some(inb.from), *e),
            Message::Announce(ref a) => {
                self.started
                    .entry(a.block.hash())
                    .or_insert_with(Instant::now);
                self.feed_message(inb.from, msg);
            }
            msg => self.feed_message(inb.from, msg),
        }
    }

    /// A consensus message from peer `from` (mesh index), named by its key for consensus.
    fn feed_message(&mut self, from: usize, msg: Message) {
        let key = self.ctx.directory.locked().key_of(from);
        if let Some(key) = key {
            self.feed(Input::Message { from: key, msg });
        }
    }

    /// The mesh index of a peer consensus names by key.
    fn peer_index(&self, key: &consensus::PeerId) -> Option<usize> {
        self.ctx.directory.locked().index_of(key)
    }

    /// The committees around tip `number`. A failure means a stored header is unreadable or
    /// an elected committee does not decode: the node stops rather than guess.
    fn committees_around(&mut self, number: u64) -> Option<consensus::Committees> {
        match self.ctx.committees.around(&self.ctx.store, number) {
            Ok(c) => {
                if !std::sync::Arc::ptr_eq(&c.next, self.fbft.committee()) {
                    self.ctx.metrics.committee_handoffs.inc();
                }
                Some(c)
            }
            Err(e) => {
                self.fatal = Some(e.wrap_err(format!("committees around block {number}")));
                None
            }
        }
    }

    /// After a block is stored: staking transactions may have registered or moved
    /// validators, and a new epoch may bring new members; learn them.
    fn after_persisted(&mut self, block: &state::Block) {
        let next_epoch = (block.number() + 1).is_multiple_of(self.ctx.spec.epoch_blocks);
        if !block.body.staking_transactions.is_empty() || next_epoch {
            self.refresh_peers();
        }
        self.prune_applied_evidence(block);
        self.maybe_start_vdf(block.number());
        self.publish_validator();
    }

    /// Learns validators registered (or moved) on chain and hands the mesh the new set.
    fn refresh_peers(&mut self) {
        let staking = match self.ctx.store.staking_state() {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(target: "net", error = %e, "could not read the staking records to refresh peers");
                return;
            }
        };
        self.find_my_validator(&staking);
        let changed = {
            let mut d = self.ctx.directory.locked();
            let changed = d.register_validators(&staking);
            self.ctx.metrics.known_peers.set(d.len() as i64);
            changed.then(|| d.peer_infos())
        };
        if let Some(peers) = changed {
            if let Err(e) = self.mesh.set_peers(peers) {
                tracing::warn!(target: "net", error = %e, "could not update the peer set");
            }
        }
    }

    fn fault(&mut self, peer: usize, kind: FaultKind, reason: &str) {
        self.fault_times(peer, kind, 1, reason)
    }

    /// `times` faults of one kind and reason, logged once.
    fn fault_times(&mut self, peer: usize, kind: FaultKind, times: u32, reason: &str) {
        tracing::warn!(target: "net", peer, %kind, times, %reason, "rejected message from peer");
        self.ctx
            .metrics
            .peer_faults
            .with_label_values(&[&peer.to_string()])
            .inc_by(u64::from(times));
        if self.peers.faults(peer, kind, times, Instant::now()) {
            tracing::warn!(target: "net", peer, ban_secs = crate::peers::BAN_TIME.as_secs(), "peer scored too low; disconnecting");
            self.ctx
                .metrics
                .peer_bans
                .with_label_values(&["score"])
                .inc();
            self.mesh.block(peer);
        }
    }

    /// Steps consensus with `input` and executes every effect in order. Completions that are
    /// immediate (signatures, persisted blocks) are fed back before anything later; those that
    /// take time (verification, execution, building) come back through the select loop.
    fn feed(&mut self, input: Input) {
        let mut queue = VecDeque::from([input]);
        while let Some(input) = queue.pop_front() {
            if self.fatal.is_some() {
                return;
            }
            let effects = self.fbft.step(now_ms(), input);
            for e in effects {
                if self.fatal.is_some() {
                    return;
                }
                if let Some(next) = self.execute(e) {
                    queue.push_back(next);
                }
            }
        }
        self.publish_status();
    }
}
