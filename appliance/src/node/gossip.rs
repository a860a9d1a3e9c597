//! Transactions relayed between peers, and answers to requests for them.

use super::*;
use crate::lock::LockExt;

/// Most hashes one `GetTransactions` may name (a full block of plain transfers is 1,428).
const MAX_TX_REQUEST: usize = 2048;
/// Bytes of transactions in one answer to `GetTransactions`.
const MAX_TX_RESPONSE_BYTES: usize = 4 << 20;
/// Staking transactions in one relayed message (RPC relays each on its own).
const MAX_STAKING_RELAY: usize = 16;

/// Bytes of relayed transactions waiting for the gossip worker; past this, batches are dropped
/// and counted (their transactions still reach a leader through its own RPC or other peers).
const GOSSIP_QUEUE_BYTES: usize = 16 << 20;

/// What the gossip worker sends to the loop about one relayed batch.
pub(super) struct GossipChecked {
    peer: usize,
    undecodable: usize,
    /// The pool's size afterwards.
    pooled: usize,
}

/// Where relayed batches go to be checked and pooled, with the bytes waiting there.
pub(super) struct GossipQueue {
    batches: std::sync::mpsc::Sender<(usize, Vec<state::Bytes>)>,
    waiting: Arc<std::sync::atomic::AtomicUsize>,
}

impl GossipQueue {
    /// Queues a peer's batch unless the queue holds [`GOSSIP_QUEUE_BYTES`] already.
    fn push(&self, peer: usize, raws: Vec<state::Bytes>) -> bool {
        use std::sync::atomic::Ordering::Relaxed;
        let size: usize = raws.iter().map(|r| r.len()).sum();
        if self.waiting.fetch_add(size, Relaxed) + size > GOSSIP_QUEUE_BYTES {
            self.waiting.fetch_sub(size, Relaxed);
            return false;
        }
        self.batches.send((peer, raws)).is_ok()
    }
}

/// Starts the thread that recovers and pools relayed transactions in arrival order (a sender's
/// nonces stay in sequence). It takes every batch waiting at once, so under load one pool lock
/// serves many batches; it stops when the queue is dropped.
///
/// Senders are recovered on this thread, not on the engine's pool: that pool runs what a round
/// waits for (block validation, vote verification), which would otherwise queue behind a
/// backlog of relayed transactions (thousands after a stall, a quarter of a second and more).
/// One thread recovers over 30,000 a second. Copies of transactions the pool knows (pooled, or
/// in a recent block: a relay often reaches the leader first) are not recovered at all.
pub(super) fn spawn_gossip_worker(
    store: Arc<ChainStore>,
    pool: SharedPool,
    chain_id: u64,
    recovery_seconds: prometheus::Histogram,
    done: mpsc::UnboundedSender<GossipChecked>,
) -> std::io::Result<GossipQueue> {
    use std::sync::atomic::Ordering::Relaxed;
    let (batches, rx) = std::sync::mpsc::channel::<(usize, Vec<state::Bytes>)>();
    let waiting = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let queued = waiting.clone();
    std::thread::Builder::new()
        .name("gossip".into())
        .spawn(move || {
            while let Ok(first) = rx.recv() {
                let mut taken = vec![first];
                taken.extend(rx.try_iter());
                let (mut peers, mut raws) = (Vec::new(), Vec::new());
                for (peer, batch) in taken {
                    queued.fetch_sub(batch.iter().map(|r| r.len()).sum(), Relaxed);
                    peers.extend(std::iter::repeat_n(peer, batch.len()));
                    raws.extend(batch);
                }
                let mut senders = peers.clone();
                // Copies of pooled or recently included transactions are dropped unrecovered.
                // Hashed before the lock: RPC submissions wait on it.
                let hashes: Vec<B256> = raws.iter().map(state::keccak256).collect();
                let (raws, peers): (Vec<_>, Vec<_>) = {
                    let pool = pool.locked();
                    raws.into_iter()
                        .zip(peers)
                        .zip(&hashes)
                        .filter(|(_, hash)| !pool.knows(hash))
                        .map(|(pair, _)| pair)
                        .unzip()
                };
                let mut undecodable: HashMap<usize, usize> = HashMap::new();
                let mut decoded = Vec::with_capacity(raws.len());
                let started = Instant::now();
                let recovered: Vec<_> = raws
                    .iter()
                    .map(|raw| SignedTx::decode(raw, chain_id))
                    .collect();
                recovery_seconds.observe(started.elapsed().as_secs_f64());
                for (r, peer) in recovered.into_iter().zip(&peers) {
                    match r {
                        Ok(tx) => decoded.push(tx),
                        Err(_) => *undecodable.entry(*peer).or_default() += 1,
                    }
                }
                match submit_batch(&store, &pool, decoded) {
                    Ok(results) => {
                        for e in results.into_iter().filter_map(Result::err) {
                            tracing::trace!(target: "mempool", error = %e, "relayed transaction refused");
                        }
                    }
                    Err(e) => tracing::warn!(target: "mempool", error = %e, "could not read state to pool relayed transactions"),
                }
                let pooled = pool.locked().len();
                senders.sort_unstable();
                senders.dedup();
                for peer in senders {
                    let _ = done.send(GossipChecked {
                        peer,
                        undecodable: undecodable.get(&peer).copied().unwrap_or(0),
                        pooled,
                    });
                }
            }
        })?;
    Ok(GossipQueue { batches, waiting })
}

impl Driver {
    /// Transactions relayed by a peer: handed to the gossip worker, which recovers them in
    /// parallel and pools them. A peer that sends undecodable transactions is scored down;
    /// state-dependent refusals (nonce too low after a block, say) are ordinary races and are
    /// not.
    pub(super) fn on_transactions(&mut self, peer: usize, batch: consensus::TxBatch) {
        // A relay batch never names one transaction twice; a batch that does is built to make
        // this node decode and recover the same bytes over and over. Dropped whole, unread.
        let mut distinct = HashSet::with_capacity(batch.transactions.len());
        if !batch
            .transactions
            .iter()
            .all(|raw| distinct.insert(&raw[..]))
        {
            return self.fault(
                peer,
                FaultKind::Protocol,
                &format!(
                    "relayed batch of {} transactions names one more than once",
                    batch.transactions.len()
                ),
            );
        }
        drop(distinct);
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
        // Sender recovery and pooling run on the gossip worker, in arrival order (a sender's
        // nonces stay in sequence), never on this loop.
        let n = batch.transactions.len() as u64;
        if !self.gossip.push(peer, batch.transactions) {
            self.ctx.metrics.gossip_dropped.inc_by(n);
        }
    }

    /// Staking transactions a peer received over RPC: each is checked against the latest
    /// state (rules included) and pooled for this node's next block as leader. They are
    /// few, so this runs on the loop; a peer sending more than a handful at once is faulted.
    pub(super) fn on_staking_transactions(&mut self, peer: usize, batch: consensus::TxBatch) {
        if batch.transactions.len() > MAX_STAKING_RELAY {
            return self.fault(
                peer,
                FaultKind::Protocol,
                &format!(
                    "{} staking transactions in one message (at most {MAX_STAKING_RELAY})",
                    batch.transactions.len()
                ),
            );
        }
        for raw in &batch.transactions {
            if let Err(reason) = crate::chain::submit_staking(
                &self.ctx.store,
                &self.ctx.exec,
                &self.ctx.staking_pool,
                raw,
            ) {
                // Refusals are expected (a race with the block that included it, a nonce
                // already used); only an undecodable one is the peer's fault.
                if state::staking::SignedStakingTx::decode(raw, self.ctx.exec.chain_id).is_err() {
                    return self.fault(peer, FaultKind::Malformed, &reason);
                }
                tracing::debug!(target: "mempool", peer, %reason, "relayed staking transaction not pooled");
            }
        }
    }

    /// The gossip worker checked a peer's batch.
    pub(super) fn on_gossip_checked(&mut self, checked: GossipChecked) {
        self.ctx.metrics.mempool_size.set(checked.pooled as i64);
        if checked.undecodable > 0 {
            self.fault(
                checked.peer,
                FaultKind::Malformed,
                &format!("{} undecodable relayed transactions", checked.undecodable),
            );
        }
    }

    /// Answers a request for transactions by hash: from the pool, or from a block executed
    /// here but not yet final (the leader's own proposal). Bounded in hashes and bytes, so a
    /// request cannot make this node build an arbitrarily large answer.
    pub(super) fn on_get_transactions(&mut self, peer: usize, r: consensus::TxRequest) {
        if self
            .peers
            .request(peer, crate::peers::Request::Transactions)
        {
            return self.fault(
                peer,
                FaultKind::Protocol,
                &format!(
                    "more than {} transaction requests in one status interval",
                    crate::peers::Request::Transactions.limit()
                ),
            );
        }
        if r.hashes.len() > MAX_TX_REQUEST {
            return self.fault(
                peer,
                FaultKind::Protocol,
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
        let pool = self.ctx.pool.locked();
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
}
