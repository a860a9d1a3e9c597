//! [`MeshHandle`]: sending, blocking peers, stats and shutdown.

use super::*;
use crate::lock::LockExt;

/// Handle to a running mesh. Cloning is cheap; the mesh stops when [`MeshHandle::shutdown`]
/// is called or the last handle is dropped.
#[derive(Clone)]
pub struct MeshHandle {
    pub(super) inner: Arc<Inner>,
}

impl std::fmt::Debug for MeshHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeshHandle")
            .field("key", &hex::encode(self.inner.own_key))
            .field("local_addr", &self.inner.local_addr)
            .finish_non_exhaustive()
    }
}

impl MeshHandle {
    /// Queues `payload` for peer `to`. Never blocks: if the peer's queue is full the message
    /// is dropped and counted. Sending to self or to an unknown index is ignored (logged).
    pub fn send(&self, to: usize, payload: Vec<u8>) {
        if self.check_outgoing(&payload) {
            self.enqueue(to, Arc::new(payload));
        }
    }

    /// Queues `payload` for every known peer (same rules as [`MeshHandle::send`]).
    pub fn broadcast(&self, payload: Vec<u8>) {
        if self.check_outgoing(&payload) {
            let payload = Arc::new(payload);
            let to: Vec<usize> = self.inner.peers.locked().keys().copied().collect();
            for to in to {
                self.enqueue(to, payload.clone());
            }
        }
    }

    /// Counts what is queued for peers from now on (once; later calls are ignored).
    pub fn count_traffic(&self, traffic: Traffic) {
        let _ = self.inner.traffic.set(traffic);
    }

    /// Makes `peers` the known set: new peers are dialled and accepted from now on, a peer
    /// whose endpoint changed is redialled there, and peers left out are dropped (their
    /// connections closed, their queued messages discarded). An entry with this node's own
    /// key is skipped. Refused as a whole if an index or a key appears twice.
    pub fn set_peers(&self, peers: Vec<PeerInfo>) -> Result<(), NetError> {
        let checked = check_peers(&peers, &self.inner.own_key)?;
        self.apply_peers(checked)
    }

    pub(super) fn apply_peers(&self, peers: Vec<PeerInfo>) -> Result<(), NetError> {
        let inner = &self.inner;
        let mut slots = inner.peers.locked();
        let wanted: HashMap<usize, &PeerInfo> = peers.iter().map(|p| (p.index, p)).collect();
        let gone: Vec<usize> = slots
            .iter()
            .filter(|(i, s)| {
                wanted
                    .get(i)
                    .is_none_or(|p| p.transport_key != s.key || p.endpoint != s.endpoint)
            })
            .map(|(i, _)| *i)
            .collect();
        for i in gone {
            if let Some(slot) = slots.remove(&i) {
                if wanted.get(&i).is_none_or(|p| p.transport_key != slot.key) {
                    if let Some(c) = inner.blocked.incoming.locked().remove(&i) {
                        c.close(VarInt::from_u32(CLOSE_REPLACED), b"no longer a peer");
                    }
                }
                debug!(target: "harmony::net", peer = i, "peer dropped or moved");
            }
        }
        let mut added = 0;
        for p in &peers {
            if slots.contains_key(&p.index) {
                continue;
            }
            slots.insert(p.index, self.spawn_dialer(p)?);
            added += 1;
        }
        *inner.known.write().unwrap_or_else(|e| e.into_inner()) =
            peers.iter().map(|p| (p.transport_key, p.index)).collect();
        *inner.pins.write().unwrap_or_else(|e| e.into_inner()) =
            peers.iter().map(|p| p.transport_key).collect();
        if added > 0 {
            info!(target: "harmony::net", added, peers = slots.len(), "peer set updated");
        }
        Ok(())
    }

    fn spawn_dialer(&self, p: &PeerInfo) -> Result<PeerSlot, NetError> {
        let inner = &self.inner;
        let verifier = Arc::new(PinnedServerVerifier::new(
            p.transport_key,
            &format!("peer {}", p.index),
            inner.spec_hash,
        ));
        let client_config = quinn_client_config(inner.certified.clone(), verifier)?;
        let (queue_tx, queue_rx) = mpsc::channel(PEER_QUEUE_CAPACITY);
        let connected = Arc::new(AtomicBool::new(false));
        let dialer = Dialer {
            peer: p.index,
            addr: p.endpoint,
            client_config,
            server_name: inner.server_name.clone(),
            endpoint: inner.endpoint.clone(),
            counters: inner.counters.clone(),
            reports: inner.reports.clone(),
            connected: connected.clone(),
        };
        let task = tokio::spawn(dialer.run(queue_rx, inner.shutdown_rx.clone()));
        let mut tasks = inner.tasks.locked();
        tasks.retain(|t| !t.is_finished());
        tasks.push(task);
        Ok(PeerSlot {
            queue: queue_tx,
            queued_bytes: Arc::default(),
            key: p.transport_key,
            endpoint: p.endpoint,
            connected,
            dropping: AtomicBool::new(false),
        })
    }

    pub(super) fn check_outgoing(&self, payload: &[u8]) -> bool {
        let max = self.inner.max_message_bytes;
        if payload.len() > max {
            bump(&self.inner.counters.oversized_outgoing);
            warn!(
                target: "harmony::net",
                len = payload.len(),
                max,
                "refusing to send a message larger than max_message_bytes"
            );
            return false;
        }
        true
    }

    /// Refuses `peer` from now on: its incoming connections are closed, new ones refused at
    /// the door, and nothing more is sent to it, until [`MeshHandle::unblock`].
    pub fn block(&self, peer: usize) {
        if !self.inner.blocked.peers.locked().insert(peer) {
            return;
        }
        let conns = self.inner.blocked.incoming.locked().remove(&peer);
        if let Some(c) = conns {
            c.close(VarInt::from_u32(CLOSE_BLOCKED), b"blocked");
        }
        warn!(target: "harmony::net", peer, "peer blocked");
    }

    pub fn unblock(&self, peer: usize) {
        if self.inner.blocked.peers.locked().remove(&peer) {
            info!(target: "harmony::net", peer, "peer unblocked");
        }
    }

    pub fn blocked(&self) -> Vec<usize> {
        let mut v: Vec<usize> = self.inner.blocked.peers.locked().iter().copied().collect();
        v.sort_unstable();
        v
    }

    pub(super) fn enqueue(&self, to: usize, payload: Arc<Vec<u8>>) {
        if self.inner.blocked.contains(to) {
            return;
        }
        let peers = self.inner.peers.locked();
        let Some(slot) = peers.get(&to) else {
            warn!(target: "harmony::net", peer = to, "message to unknown peer index ignored");
            return;
        };
        let (kind, len) = (payload.first().copied().unwrap_or(0), payload.len() as u64);
        use mpsc::error::TrySendError;
        let budget = queue_budget(self.inner.max_message_bytes);
        // Over the byte budget is the same outcome as a full queue.
        let sent = Charge::take(&slot.queued_bytes, payload.len(), budget).map(|charge| {
            slot.queue.try_send(Queued {
                payload,
                _charge: charge,
            })
        });
        match sent {
            Some(Ok(())) => {
                if let Some(t) = self.inner.traffic.get() {
                    let kind = (t.kind)(kind);
                    t.messages.with_label_values(&[kind]).inc();
                    t.bytes.with_label_values(&[kind]).inc_by(len);
                }
                if slot.dropping.swap(false, Ordering::Relaxed) {
                    info!(target: "harmony::net", peer = to, "send queue has room again");
                }
            }
            None | Some(Err(TrySendError::Full(_))) => {
                bump(&self.inner.counters.dropped_queue_full);
                if !slot.dropping.swap(true, Ordering::Relaxed) {
                    warn!(
                        target: "harmony::net",
                        peer = to,
                        capacity = PEER_QUEUE_CAPACITY,
                        queued_bytes = slot.queued_bytes.load(Ordering::Relaxed),
                        budget,
                        connected = slot.connected.load(Ordering::Relaxed),
                        "send queue full: dropping messages to this peer until it drains"
                    );
                } else {
                    debug!(target: "harmony::net", peer = to, "send queue full: message dropped");
                }
            }
            Some(Err(TrySendError::Closed(_))) => {
                debug!(target: "harmony::net", peer = to, "mesh stopped: message dropped");
            }
        }
    }

    /// Peers we currently hold an established outgoing connection to, in index order.
    pub fn connected_peers(&self) -> Vec<usize> {
        self.inner
            .peers
            .locked()
            .iter()
            .filter(|(_, s)| s.connected.load(Ordering::Relaxed))
            .map(|(i, _)| *i)
            .collect()
    }

    /// The address the mesh is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local_addr
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> MeshStats {
        let c = &self.inner.counters;
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        MeshStats {
            messages_sent: l(&c.sent),
            messages_received: l(&c.received),
            dropped_invalid: l(&c.dropped_invalid),
            dropped_queue_full: l(&c.dropped_queue_full),
            handshake_refused: l(&c.handshake_refused),
            dropped_send_failed: l(&c.send_failed),
            dropped_oversized_outgoing: l(&c.oversized_outgoing),
            retries_sent: l(&c.retries),
            stalled_writes: l(&c.stalled),
        }
    }

    /// What each peer did at the transport level since the last call (invalid frames,
    /// connections, stalled writes), for scoring; peers with nothing to report are left out.
    pub fn take_reports(&self) -> Vec<(usize, PeerReport)> {
        let mut v: Vec<_> = std::mem::take(&mut *self.inner.reports.locked())
            .into_iter()
            .collect();
        v.sort_unstable_by_key(|(p, _)| *p);
        v
    }

    /// Stops dialling and accepting, closes every connection and waits (a bounded time) for
    /// the tasks to end and the close frames to be sent. Idempotent. Messages still queued
    /// are dropped.
    pub async fn shutdown(&self) {
        self.inner.shutdown_tx.send_replace(true);
        self.inner
            .endpoint
            .close(VarInt::from_u32(CLOSE_SHUTDOWN), b"shutdown");
        let tasks =
            std::mem::take(&mut *self.inner.tasks.lock().unwrap_or_else(|e| e.into_inner()));
        let deadline = tokio::time::Instant::now() + SHUTDOWN_GRACE;
        for t in tasks {
            if tokio::time::timeout_at(deadline, t).await.is_err() {
                debug!(target: "harmony::net", "mesh task did not stop in time");
            }
        }
        // Close frames go out at once; this only gives them a chance to be repeated if lost,
        // without holding shutdown for the whole draining period of half-open handshakes.
        let _ = tokio::time::timeout(CLOSE_LINGER, self.inner.endpoint.wait_idle()).await;
        info!(target: "harmony::net", local_addr = %self.inner.local_addr, "QUIC mesh stopped");
    }
}

/// Resolves when shutdown is requested (or the mesh is gone).
pub(super) async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}
