//! The node's event loop: the only place that turns consensus effects into QUIC messages,
//! signer calls, verification jobs, disk writes and timers, in order.

use crate::metrics::Metrics;
use crate::net::{Inbound, MeshHandle};
use crate::peers::{OperatorBlocks, PeerBook};
use crate::validate::{check_link, execute_block};
use accel::Engine;
use alloy_primitives::B256;
use consensus::{
    Committee, Config, Effect, Fbft, Input, Message, SafetyRecord, Status, SyncRequest,
    SyncResponse, Timer, Tip,
};
use hsm::Signer;
use serde::Serialize;
use state::db::ChainStore;
use state::exec::{ExecConfig, ExecutedBlock, SignedTx, StateReader};
use state::mempool::Mempool;
use state::{BlockTemplate, ChainSpec, Header};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Most blocks sent in one sync response.
const SYNC_BATCH: u64 = 64;
/// A sync request unanswered for this long may be retried (possibly to another peer).
const SYNC_TIMEOUT: Duration = Duration::from_secs(2);
/// Finality samples kept for `hmy_finalityStats`.
const LATENCY_RING: usize = 4096;

/// What RPC and the status line read about consensus.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeStatus {
    pub block_number: u64,
    #[serde(rename = "viewID")]
    pub view_id: u64,
    pub leader: usize,
    pub is_leader: bool,
    pub last_finality_ms: Option<f64>,
    pub connected_peers: Vec<usize>,
}

#[derive(Default)]
pub struct StatusBoard {
    pub status: Mutex<NodeStatus>,
    /// (block number, announce → committed in µs) as seen by this node.
    pub latencies: Mutex<VecDeque<(u64, u64)>>,
}

/// A finalized block as subscribers see it (WebSocket `newHeads` and `logs`).
#[derive(Debug, Clone)]
pub struct FinalizedBlock {
    pub header: Header,
    pub receipts: Vec<state::exec::StoredReceipt>,
}

/// Where finalized blocks are announced to RPC subscribers.
pub type BlockEvents = tokio::sync::broadcast::Sender<Arc<FinalizedBlock>>;

/// The transaction pool shared by the event loop (proposals, pruning) and RPC (submission).
pub type SharedPool = Arc<Mutex<Mempool>>;

/// The stored tip's header.
pub fn tip_header(store: &ChainStore) -> Result<Header, String> {
    store
        .tip_header()
        .map_err(|e| e.to_string())?
        .ok_or_else(|| "no genesis in the store".into())
}

/// Checks a raw transaction against the stored state and adds it to the pool. Shared by RPC
/// submission and gossip.
pub fn submit_transaction(
    store: &ChainStore,
    pool: &SharedPool,
    tx: SignedTx,
) -> Result<state::mempool::Inserted, String> {
    let ro = store.db().tx().map_err(|e| e.to_string())?;
    let base_fee = state::exec::next_base_fee_after(&tip_header(store)?);
    pool.lock()
        .expect("lock")
        .insert(tx, &StateReader::new(&ro), base_fee)
        .map_err(|e| e.to_string())
}

/// Everything the loop needs, assembled by `run`.
pub struct NodeContext {
    pub spec: ChainSpec,
    pub committee: Arc<Committee>,
    pub me: usize,
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
    pub events: BlockEvents,
    /// Announce own proposals as header plus transaction hashes (HET-86).
    pub announce_headers_only: bool,
}

/// A compact announce from the round's leader, waiting for the transactions asked of it.
struct PendingAnnounce {
    from: usize,
    compact: consensus::CompactAnnounce,
    received: Instant,
    /// Hashes asked for and not yet received.
    missing: std::collections::HashSet<B256>,
    fetched: HashMap<B256, state::Bytes>,
}

/// Most hashes one `GetTransactions` may name (a full block of plain transfers is 1,428).
const MAX_TX_REQUEST: usize = 2048;
/// Bytes of transactions in one answer to `GetTransactions`.
const MAX_TX_RESPONSE_BYTES: usize = 4 << 20;

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Reads the finalized tip from the store.
pub fn load_tip(store: &ChainStore) -> eyre::Result<Tip> {
    let (number, hash) = store
        .tip()?
        .ok_or_else(|| eyre::eyre!("the database holds no genesis block"))?;
    let header = store
        .header(number)?
        .ok_or_else(|| eyre::eyre!("header #{number} missing from the database"))?;
    let cert = if number == 0 {
        None
    } else {
        store.certificate(number)?
    };
    Ok(Tip {
        number,
        hash,
        view: header.view,
        timestamp_ms: header.timestamp_ms,
        cert,
        last_commit_bitmap: header.last_commit_bitmap,
    })
}

/// Raises a Prometheus counter to `value` (the guard keeps its own monotonic counters).
fn sync_counter(c: &prometheus::IntCounter, value: u64) {
    let now = c.get();
    if value > now {
        c.inc_by(value - now);
    }
}

/// Metadata key of the consensus safety record (view, lock and votes of the height in progress).
const SAFETY_KEY: &str = "consensus_safety";

/// `last_commit_bitmap`s of the (up to) 4 headers ending at `number`, oldest first: what
/// leader selection reads to skip offline keys.
pub fn recent_bitmaps(
    store: &ChainStore,
    number: u64,
) -> eyre::Result<Vec<alloy_primitives::Bytes>> {
    let mut out = Vec::new();
    for n in number.saturating_sub(3)..=number {
        if let Some(h) = store.header(n)? {
            out.push(h.last_commit_bitmap);
        }
    }
    Ok(out)
}

fn load_safety(store: &ChainStore) -> eyre::Result<Option<SafetyRecord>> {
    match store.get_meta(SAFETY_KEY)? {
        None => Ok(None),
        Some(bytes) => SafetyRecord::decode(&bytes).map(Some).map_err(|e| {
            eyre::eyre!(
                "the consensus safety record in the database is corrupt ({e}); refusing to \
                 start, since it guards against double-signing. Restore the data directory \
                 from a backup"
            )
        }),
    }
}

struct Driver {
    ctx: NodeContext,
    mesh: MeshHandle,
    fbft: Fbft,
    timers: mpsc::UnboundedSender<Timer>,
    started: HashMap<B256, Instant>,
    sync_in_flight: Option<Instant>,
    peers: PeerBook,
    /// Blocks executed (built or validated) but not yet final, by hash.
    executed: HashMap<B256, ExecutedBlock>,
    /// A compact announce whose missing transactions were asked of its sender.
    pending_announce: Option<PendingAnnounce>,
    /// Blocks being re-executed off the loop (ADR 0002: prepare goes out on receipt, commit
    /// after execution); results come back through `validations`.
    validating: HashSet<B256>,
    validations: mpsc::UnboundedSender<Validation>,
    /// Blocks this node builds as leader, executed off the loop like validations.
    builds: mpsc::UnboundedSender<Built>,
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
    result: Result<ExecutedBlock, String>,
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
        me: ctx.me,
    };
    tracing::info!(target: "node", number = tip.number, hash = %tip.hash, "starting from tip");
    let recent = recent_bitmaps(&ctx.store, tip.number)?;
    let safety = load_safety(&ctx.store)?;
    let fbft = Fbft::new(cfg, ctx.committee.clone(), tip, recent, safety);
    let (timer_tx, mut timer_rx) = mpsc::unbounded_channel();
    let (validation_tx, mut validation_rx) = mpsc::unbounded_channel();
    let (build_tx, mut build_rx) = mpsc::unbounded_channel();
    let mut status_tick = tokio::time::interval(ctx.status_interval);
    let mut d = Driver {
        ctx,
        mesh,
        fbft,
        timers: timer_tx,
        started: HashMap::new(),
        sync_in_flight: None,
        peers: PeerBook::default(),
        executed: HashMap::new(),
        pending_announce: None,
        validating: HashSet::new(),
        validations: validation_tx,
        builds: build_tx,
    };
    d.feed(Input::Start);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            Some(inb) = inbound.recv() => d.on_inbound(inb),
            Some(t) = timer_rx.recv() => d.feed(Input::Timeout(t)),
            Some(v) = validation_rx.recv() => d.on_validation(v),
            Some(b) = build_rx.recv() => d.on_built(b),
            _ = status_tick.tick() => d.on_status_tick(),
        }
    }
    tracing::info!(target: "node", "consensus loop stopped");
    Ok(())
}

impl Driver {
    fn on_inbound(&mut self, inb: Inbound) {
        if self.peers.is_banned(inb.from)
            || self
                .ctx
                .operator_blocks
                .lock()
                .expect("lock")
                .contains(&inb.from)
        {
            return; // in flight when the peer was blocked
        }
        if self.peers.received(inb.from, self.ctx.flood_limit) {
            self.fault(
                inb.from,
                "flooding: more messages than network.flood_limit per interval",
            );
        }
        let msg = match Message::decode(&inb.payload) {
            Ok(m) => m,
            Err(e) => {
                self.ctx.metrics.messages_invalid.inc();
                self.fault(inb.from, &format!("undecodable message: {e}"));
                return;
            }
        };
        self.ctx
            .metrics
            .messages_received
            .with_label_values(&[msg.name()])
            .inc();
        match msg {
            Message::Status(s) => self.on_peer_status(inb.from, s),
            Message::SyncRequest(r) => self.on_sync_request(inb.from, r),
            Message::SyncResponse(r) => self.on_sync_response(inb.from, r),
            Message::Transactions(b) => self.on_transactions(inb.from, b),
            Message::GetTransactions(r) => self.on_get_transactions(inb.from, r),
            Message::CompactAnnounce(c) => self.on_compact_announce(inb.from, *c),
            Message::Announce(ref a) => {
                self.started
                    .entry(a.block.hash())
                    .or_insert_with(Instant::now);
                self.feed(Input::Message {
                    from: inb.from,
                    msg,
                });
            }
            msg => self.feed(Input::Message {
                from: inb.from,
                msg,
            }),
        }
    }

    fn fault(&mut self, peer: usize, reason: &str) {
        tracing::warn!(target: "net", peer, %reason, "rejected message from peer");
        self.ctx
            .metrics
            .peer_faults
            .with_label_values(&[&peer.to_string()])
            .inc();
        if self.peers.fault(peer, Instant::now()) {
            tracing::warn!(target: "net", peer, ban_secs = crate::peers::BAN_TIME.as_secs(), "peer scored too low; disconnecting");
            self.ctx
                .metrics
                .peer_bans
                .with_label_values(&["score"])
                .inc();
            self.mesh.block(peer);
        }
    }

    /// Steps consensus with `input` and executes every effect in order; completions of
    /// effects (signatures, verifications, persistence) are fed back before anything later.
    fn feed(&mut self, input: Input) {
        let mut queue = VecDeque::from([input]);
        while let Some(input) = queue.pop_front() {
            let effects = self.fbft.step(now_ms(), input);
            for e in effects {
                if let Some(next) = self.execute(e) {
                    queue.push_back(next);
                }
            }
        }
        self.publish_status();
    }

    fn execute(&mut self, effect: Effect) -> Option<Input> {
        match effect {
            Effect::Broadcast(Message::Announce(a))
                if self.ctx.announce_headers_only && !a.block.body.transactions.is_empty() =>
            {
                let compact = consensus::CompactAnnounce::of(&a.block);
                self.mesh
                    .broadcast(Message::CompactAnnounce(Box::new(compact)).encode());
            }
            Effect::Broadcast(m) => self.mesh.broadcast(m.encode()),
            Effect::Send(to, m) => self.mesh.send(to, m.encode()),
            Effect::Sign(req) => match self.ctx.signer.sign(&req) {
                Ok(signatures) => return Some(Input::Signed { req, signatures }),
                Err(e) => {
                    tracing::error!(target: "signer", ?req, error = %e, "signing failed; not voting")
                }
            },
            Effect::Verify(job) => return Some(consensus::run_verify_job(&self.ctx.engine, &job)),
            Effect::VerifyQuorum(job) => {
                let start = Instant::now();
                let result = consensus::run_quorum_job(&self.ctx.engine, &self.ctx.committee, &job);
                let kind = if job.payload[..16] == hsm::MsgKind::Prepare.tag() {
                    "prepare"
                } else {
                    "commit"
                };
                self.ctx
                    .metrics
                    .vote_verification_seconds
                    .with_label_values(&[kind])
                    .observe(start.elapsed().as_secs_f64());
                return Some(result);
            }
            Effect::Validate(block) => {
                let hash = block.hash();
                if self.executed.contains_key(&hash) {
                    return Some(Input::Validated {
                        hash,
                        result: Ok(()),
                    });
                }
                if self.validating.insert(hash) {
                    // Off the loop: QUIC, timers, votes and RPC go on while it executes.
                    let (store, exec) = (self.ctx.store.clone(), self.ctx.exec);
                    let known = self.pooled(&block);
                    let done = self.validations.clone();
                    tokio::task::spawn_blocking(move || {
                        let result = execute_block(&store, &exec, &block, &known);
                        let number = block.number();
                        let _ = done.send(Validation {
                            number,
                            hash,
                            result,
                        });
                    });
                }
            }
            Effect::BuildBlock {
                number,
                view,
                epoch,
                parent,
                min_timestamp_ms,
                last_commit,
            } => {
                let template = BlockTemplate {
                    number,
                    view,
                    epoch,
                    shard: self.ctx.spec.shard,
                    parent_hash: parent,
                    timestamp_ms: now_ms().max(min_timestamp_ms),
                    leader: self.ctx.committee.members[self.ctx.me].address,
                    last_commit,
                    transactions: vec![],
                };
                if let Err(e) = self.build_block(template) {
                    tracing::error!(target: "consensus", number, view, error = %e, "could not build a block; the view will time out");
                }
            }
            Effect::Schedule(timer, delay) => {
                let tx = self.timers.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    let _ = tx.send(timer);
                });
            }
            Effect::PersistSafety(record) => {
                // Durable (MDBX commit with full sync) before the signature it protects.
                if let Err(e) = self.ctx.store.put_meta(SAFETY_KEY, &record.encode_to_vec()) {
                    tracing::error!(target: "storage", error = %e, "could not persist the safety record; stopping to stay safe");
                    std::process::exit(70);
                }
            }
            Effect::ViewChanged { number, view } => {
                self.ctx.metrics.view_changes.inc();
                tracing::warn!(target: "consensus", number, view, leader = self.fbft.round().2, "view change");
            }
            Effect::Finalize { block, cert } => {
                let hash = block.hash();
                if self.ctx.store.canonical_hash(block.number()).ok().flatten() == Some(hash) {
                    return None; // already stored by catch-up
                }
                if let Err(e) = self.commit(&block, &cert) {
                    // The round stays open; catch-up will bring the block if we lost it.
                    tracing::error!(target: "storage", number = block.number(), error = %e, "could not store finalized block");
                    return None;
                }
                if let Some(start) = self.started.remove(&hash) {
                    let elapsed = start.elapsed();
                    self.ctx
                        .metrics
                        .finality_seconds
                        .observe(elapsed.as_secs_f64());
                    let mut ring = self.ctx.board.latencies.lock().expect("lock");
                    if ring.len() == LATENCY_RING {
                        ring.pop_front();
                    }
                    ring.push_back((block.number(), elapsed.as_micros() as u64));
                    self.ctx.board.status.lock().expect("lock").last_finality_ms =
                        Some(elapsed.as_secs_f64() * 1000.0);
                }
                self.started
                    .retain(|_, t| t.elapsed() < Duration::from_secs(60));
                self.ctx.metrics.blocks_finalized.inc();
                tracing::info!(target: "consensus", number = block.number(), %hash, view = block.header.view, "finalized");
                return Some(Input::Persisted(Tip::of(&block, Some(cert))));
            }
            Effect::Behind { peer, number } => self.request_sync(peer, number),
            Effect::PeerFault { peer, reason } => self.fault(peer, &reason),
        }
        None
    }

    /// A block's re-execution finished: keep the result for finalizing, tell consensus.
    fn on_validation(&mut self, v: Validation) {
        self.validating.remove(&v.hash);
        if v.number <= self.fbft.tip().number {
            return; // its height was finalized meanwhile
        }
        let result = match v.result {
            Ok(executed) => {
                self.executed.insert(v.hash, executed);
                Ok(())
            }
            Err(e) => {
                tracing::warn!(target: "consensus", number = v.number, hash = %v.hash, error = %e, "announced block does not re-execute");
                Err(e)
            }
        };
        self.feed(Input::Validated {
            hash: v.hash,
            result,
        });
    }

    fn publish_status(&self) {
        let (number, view, leader) = self.fbft.round();
        let m = &self.ctx.metrics;
        m.chain_height.set(self.fbft.tip().number as i64);
        m.consensus_view.set(view as i64);
        m.consensus_is_leader.set((leader == self.ctx.me) as i64);
        let mut s = self.ctx.board.status.lock().expect("lock");
        s.block_number = number - 1;
        s.view_id = view;
        s.leader = leader;
        s.is_leader = leader == self.ctx.me;
    }

    fn on_status_tick(&mut self) {
        // A leader that never answers a fetch: give up after two block times; the view
        // timer handles the round.
        let patience = Duration::from_millis(2 * self.ctx.spec.block_time_ms.max(1000));
        if self
            .pending_announce
            .as_ref()
            .is_some_and(|p| p.received.elapsed() > patience)
        {
            let p = self.pending_announce.take().expect("present");
            tracing::warn!(target: "consensus", from = p.from, number = p.compact.header.number, missing = p.missing.len(), "the leader did not supply its block's transactions");
            self.ctx
                .metrics
                .compact_announces
                .with_label_values(&["incomplete"])
                .inc();
        }
        let tip = self.fbft.tip();
        self.mesh.broadcast(
            Message::Status(Status {
                number: tip.number,
                hash: tip.hash,
            })
            .encode(),
        );
        for peer in self.peers.tick(Instant::now()) {
            if !self
                .ctx
                .operator_blocks
                .lock()
                .expect("lock")
                .contains(&peer)
            {
                tracing::info!(target: "net", peer, "ban expired; accepting the peer again");
                self.mesh.unblock(peer);
            }
        }
        self.ctx
            .metrics
            .blocked_peers
            .set(self.mesh.blocked().len() as i64);
        if let Some(g) = &self.ctx.guard_stats {
            use std::sync::atomic::Ordering::Relaxed;
            let m = &self.ctx.metrics;
            let refusals = &m.guard_refusals;
            sync_counter(
                &refusals.with_label_values(&["conflict"]),
                g.conflicts.load(Relaxed),
            );
            sync_counter(
                &refusals.with_label_values(&["below_watermark"]),
                g.below_watermark.load(Relaxed),
            );
            sync_counter(&m.guard_records, g.records.load(Relaxed));
        }
        let peers = self.mesh.connected_peers();
        self.ctx.metrics.connected_peers.set(peers.len() as i64);
        self.ctx.board.status.lock().expect("lock").connected_peers = peers;
    }

    fn on_peer_status(&mut self, peer: usize, s: Status) {
        if s.number > self.fbft.tip().number {
            self.request_sync(peer, s.number);
        }
    }

    fn request_sync(&mut self, peer: usize, target: u64) {
        let tip = self.fbft.tip().number;
        if target <= tip
            || self
                .sync_in_flight
                .is_some_and(|t| t.elapsed() < SYNC_TIMEOUT)
        {
            return;
        }
        self.sync_in_flight = Some(Instant::now());
        let count = (target - tip).min(SYNC_BATCH);
        tracing::info!(target: "sync", peer, from = tip + 1, count, "behind; fetching blocks");
        self.mesh.send(
            peer,
            Message::SyncRequest(SyncRequest {
                from: tip + 1,
                count,
            })
            .encode(),
        );
    }

    fn on_sync_request(&mut self, peer: usize, r: SyncRequest) {
        let mut blocks = Vec::new();
        let mut certificates = Vec::new();
        let mut size = 0usize;
        for n in r.from..r.from.saturating_add(r.count.min(SYNC_BATCH)) {
            let (Ok(Some(b)), Ok(Some(c))) =
                (self.ctx.store.block(n), self.ctx.store.certificate(n))
            else {
                break;
            };
            size += alloy_rlp::Encodable::length(&b);
            if size > 1 << 20 && !blocks.is_empty() {
                break;
            }
            blocks.push(b);
            certificates.push(c);
        }
        self.mesh.send(
            peer,
            Message::SyncResponse(SyncResponse {
                blocks,
                certificates,
            })
            .encode(),
        );
    }

    /// Verifies and stores fetched blocks in order: the commit certificates of the whole
    /// response as one batch, then per block linkage and proposer, the certificate's block,
    /// and full validation, before anything is written.
    fn on_sync_response(&mut self, peer: usize, r: SyncResponse) {
        self.sync_in_flight = None;
        let full = r.blocks.len() as u64 == SYNC_BATCH;
        if r.blocks.len() != r.certificates.len() {
            return self.fault(
                peer,
                "sync response with unequal block and certificate counts",
            );
        }
        if let Err(reason) = consensus::verify_commit_certificates(
            &self.ctx.engine,
            &self.ctx.committee,
            self.ctx.spec.chain_id,
            self.ctx.spec.shard,
            &r.certificates,
        ) {
            return self.fault(peer, &format!("sync response: {reason}"));
        }
        let mut stored = 0;
        for (block, cert) in r.blocks.into_iter().zip(r.certificates) {
            let tip = self.fbft.tip().clone();
            if block.number() <= tip.number {
                continue;
            }
            let parent = match self.ctx.store.header(tip.number) {
                Ok(Some(h)) => h,
                _ => return,
            };
            let recent = recent_bitmaps(&self.ctx.store, tip.number).unwrap_or_default();
            let checked = check_link(
                &self.ctx.committee,
                self.ctx.spec.epoch_blocks,
                self.ctx.spec.shard,
                &parent,
                &recent,
                &block,
            )
            .and_then(|_| {
                // Its signature verified with the batch above.
                if cert.number != block.number()
                    || cert.hash != block.hash()
                    || cert.view < block.header.view
                {
                    return Err("certificate is for another block".into());
                }
                Ok(())
            });
            if let Err(reason) = checked {
                return self.fault(peer, &format!("sync block #{}: {reason}", block.number()));
            }
            // Re-executed only once its certificate checks out (execution costs more).
            match execute_block(&self.ctx.store, &self.ctx.exec, &block, &HashMap::new()) {
                Ok(executed) => {
                    self.executed.insert(block.hash(), executed);
                }
                Err(reason) => {
                    return self.fault(peer, &format!("sync block #{}: {reason}", block.number()))
                }
            }
            if let Err(e) = self.commit(&block, &cert) {
                tracing::error!(target: "storage", error = %e, "could not store synced block");
                return;
            }
            stored += 1;
            self.ctx.metrics.sync_blocks.inc();
            self.feed(Input::Persisted(Tip::of(&block, Some(cert))));
        }
        if stored > 0 {
            tracing::info!(target: "sync", peer, stored, tip = self.fbft.tip().number, "caught up blocks");
        }
        if full {
            let tip = self.fbft.tip().number;
            self.request_sync(peer, tip + SYNC_BATCH);
        }
    }

    /// The block's transactions this node's pool already decoded (senders recovered).
    fn pooled(&self, block: &state::Block) -> HashMap<B256, SignedTx> {
        let pool = self.ctx.pool.lock().expect("lock");
        block
            .body
            .transactions
            .iter()
            .filter_map(|raw| {
                let h = state::keccak256(raw);
                pool.get(&h).map(|t| (h, t.clone()))
            })
            .collect()
    }

    /// The leader's block: the pool's best transactions, executed on the tip.
    /// Picks the block's transactions from the pool here, then executes them on a blocking
    /// thread; the block comes back through `on_built` as the proposal.
    fn build_block(&mut self, template: BlockTemplate) -> Result<(), String> {
        let store = self.ctx.store.clone();
        let parent = tip_header(&store)?;
        let base_fee = state::exec::next_base_fee_after(&parent);
        let candidates = {
            let ro = store.db().tx().map_err(|e| e.to_string())?;
            let pool = self.ctx.pool.lock().expect("lock");
            pool.best(&StateReader::new(&ro), base_fee, state::GAS_LIMIT)
        };
        let exec = self.ctx.exec;
        let done = self.builds.clone();
        let (number, view) = (template.number, template.view);
        tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            let result = state::exec::build(&store, &exec, &parent, template, candidates)
                .map_err(|e| e.to_string());
            let _ = done.send(Built {
                number,
                view,
                started,
                result,
            });
        });
        Ok(())
    }

    /// A block built off the loop: prune what the pool could not include, keep the
    /// execution for finalizing, and propose it (consensus ignores it if the view moved on).
    fn on_built(&mut self, built: Built) {
        let (block, executed) = match built.result {
            Ok(x) => x,
            Err(e) => {
                tracing::error!(target: "consensus", number = built.number, view = built.view, error = %e, "could not build a block; the view will time out");
                return;
            }
        };
        if !executed.execution.rejected.is_empty() {
            let mut pool = self.ctx.pool.lock().expect("lock");
            for (hash, reason) in &executed.execution.rejected {
                tracing::debug!(target: "mempool", %hash, %reason, "left out of the block");
                if !matches!(reason, state::exec::TxRejection::BlockGas { .. }) {
                    pool.remove_included(&[*hash]);
                }
            }
        }
        tracing::debug!(target: "consensus", number = block.number(), txs = block.body.transactions.len(), gas = block.header.gas_used, ms = built.started.elapsed().as_millis() as u64, "built block");
        self.executed.insert(block.hash(), executed);
        self.started.insert(block.hash(), Instant::now());
        self.feed(Input::Proposal(block));
    }

    /// Writes a final block with its state (executing it now if it was never validated
    /// here), then prunes the pool and tells subscribers.
    fn commit(
        &mut self,
        block: &state::Block,
        cert: &state::CommitCertificate,
    ) -> Result<(), String> {
        let hash = block.hash();
        let executed = match self.executed.remove(&hash) {
            Some(e) => e,
            None => execute_block(&self.ctx.store, &self.ctx.exec, block, &self.pooled(block))?,
        };
        self.ctx
            .store
            .commit_executed(block, Some(cert), &executed)
            .map_err(|e| e.to_string())?;
        // Every other executed block was a competitor at this height: stale now.
        self.executed.clear();
        {
            let hashes: Vec<B256> = executed.execution.txs.iter().map(|t| t.hash).collect();
            let mut pool = self.ctx.pool.lock().expect("lock");
            pool.remove_included(&hashes);
            if let Ok(ro) = self.ctx.store.db().tx() {
                pool.prune(&StateReader::new(&ro));
            }
            self.ctx.metrics.mempool_size.set(pool.len() as i64);
        }
        self.ctx
            .metrics
            .transactions_finalized
            .inc_by(executed.execution.txs.len() as u64);
        let _ = self.ctx.events.send(Arc::new(FinalizedBlock {
            header: block.header.clone(),
            receipts: executed.execution.receipts,
        }));
        Ok(())
    }

    /// Transactions relayed by a peer: recovered in parallel, then pooled. A peer that sends
    /// undecodable transactions is scored down; state-dependent refusals (nonce too low after
    /// a block, say) are ordinary races and are not.
    fn on_transactions(&mut self, peer: usize, batch: consensus::TxBatch) {
        if let Some(p) = self.pending_announce.as_mut().filter(|p| p.from == peer) {
            // Relayed transactions from the leader may arrive before its answer: every batch
            // from it fills what is missing, whatever the pool later thinks of each one (the
            // block's validity is for execution to judge).
            for raw in &batch.transactions {
                let h = state::keccak256(raw);
                if p.missing.remove(&h) {
                    p.fetched.insert(h, raw.clone());
                }
            }
            if p.missing.is_empty() {
                let p = self.pending_announce.take().expect("present");
                self.complete_announce(p.from, p.compact, p.received, &p.fetched);
            }
        }
        let decoded = SignedTx::decode_all(&batch.transactions, self.ctx.exec.chain_id);
        let mut bad = 0;
        for r in decoded {
            match r {
                Ok(tx) => {
                    if let Err(e) = submit_transaction(&self.ctx.store, &self.ctx.pool, tx) {
                        tracing::trace!(target: "mempool", peer, error = %e, "relayed transaction refused");
                    }
                }
                Err(_) => bad += 1,
            }
        }
        self.ctx
            .metrics
            .mempool_size
            .set(self.ctx.pool.lock().expect("lock").len() as i64);
        if bad > 0 {
            self.fault(peer, &format!("{bad} undecodable relayed transactions"));
        }
    }

    /// Answers a request for transactions by hash: from the pool, or from a block executed
    /// here but not yet final (the leader's own proposal). Bounded in hashes and bytes, so a
    /// request cannot make this node build an arbitrarily large answer.
    fn on_get_transactions(&mut self, peer: usize, r: consensus::TxRequest) {
        if r.hashes.len() > MAX_TX_REQUEST {
            return self.fault(
                peer,
                &format!("transaction request for {} hashes", r.hashes.len()),
            );
        }
        let proposed: HashMap<B256, &state::Bytes> = self
            .executed
            .values()
            .flat_map(|e| e.execution.txs.iter())
            .map(|t| (t.hash, &t.raw))
            .collect();
        let mut seen = std::collections::HashSet::new();
        let mut size = 0usize;
        let mut transactions = Vec::new();
        let pool = self.ctx.pool.lock().expect("lock");
        for h in r.hashes.iter().filter(|h| seen.insert(**h)) {
            let raw = pool
                .get(h)
                .map(|t| t.raw.clone())
                .or_else(|| proposed.get(h).map(|r| (*r).clone()));
            if let Some(raw) = raw {
                size += raw.len();
                if size > MAX_TX_RESPONSE_BYTES {
                    break;
                }
                transactions.push(raw);
            }
        }
        drop(pool);
        self.mesh.send(
            peer,
            Message::Transactions(consensus::TxBatch { transactions }).encode(),
        );
    }

    /// A proposal announced as header plus hashes (HET-86): the body comes from the pool;
    /// for the current leader's proposal, what is missing is asked of it once, and the
    /// announce waits (at most one view timeout) for the answer.
    fn on_compact_announce(&mut self, from: usize, compact: consensus::CompactAnnounce) {
        if compact.tx_hashes.len() as u64 * 21_000 > compact.header.gas_limit {
            return self.fault(
                from,
                "compact announce lists more transactions than fit its gas limit",
            );
        }
        let assembled = {
            let pool = self.ctx.pool.lock().expect("lock");
            compact.assemble(|h| pool.get(h).map(|t| t.raw.clone()))
        };
        let (number, view, leader) = self.fbft.round();
        let current =
            from == leader && compact.header.number == number && compact.header.view == view;
        if current {
            self.started
                .entry(compact.header.hash())
                .or_insert_with(Instant::now);
        }
        match assembled {
            Ok(_) => self.complete_announce(from, compact, Instant::now(), &HashMap::new()),
            // Only the expected proposal is worth a round trip; anything else is a stale or
            // bogus announce, and must not displace the one being fetched.
            Err(_) if !current => {
                tracing::debug!(target: "consensus", from, number = compact.header.number, "incomplete compact announce not from the current leader; ignored");
            }
            Err(missing) => {
                tracing::debug!(target: "consensus", number, missing = missing.len(), "fetching transactions of a compact announce");
                self.mesh.send(
                    from,
                    Message::GetTransactions(consensus::TxRequest {
                        hashes: missing.clone(),
                    })
                    .encode(),
                );
                self.pending_announce = Some(PendingAnnounce {
                    from,
                    compact,
                    received: Instant::now(),
                    missing: missing.into_iter().collect(),
                    fetched: HashMap::new(),
                });
            }
        }
    }

    /// Rebuilds a compact announce's block from the pool and `fetched` and hands it to
    /// consensus.
    fn complete_announce(
        &mut self,
        from: usize,
        compact: consensus::CompactAnnounce,
        received: Instant,
        fetched: &HashMap<B256, state::Bytes>,
    ) {
        let assembled = {
            let pool = self.ctx.pool.lock().expect("lock");
            compact.assemble(|h| {
                fetched
                    .get(h)
                    .cloned()
                    .or_else(|| pool.get(h).map(|t| t.raw.clone()))
            })
        };
        let Ok(block) = assembled else {
            // A transaction left the pool meanwhile (a block was final): the view moves on.
            self.ctx
                .metrics
                .compact_announces
                .with_label_values(&["incomplete"])
                .inc();
            return;
        };
        if block.compute_transactions_root() != block.header.transactions_root {
            return self.fault(
                from,
                "compact announce: transactions do not match the header's root",
            );
        }
        let outcome = if fetched.is_empty() {
            "complete"
        } else {
            "fetched"
        };
        self.ctx
            .metrics
            .compact_announces
            .with_label_values(&[outcome])
            .inc();
        tracing::debug!(target: "consensus", number = block.number(), txs = block.body.transactions.len(), fetched = fetched.len(), ms = received.elapsed().as_millis() as u64, "compact announce assembled");
        self.feed(Input::Message {
            from,
            msg: Message::Announce(Box::new(consensus::Announce { block })),
        });
    }
}
