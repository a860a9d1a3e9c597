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
            .field("self_index", &self.inner.self_index)
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

    /// Queues `payload` for every other committee member (same rules as [`MeshHandle::send`]).
    pub fn broadcast(&self, payload: Vec<u8>) {
        if self.check_outgoing(&payload) {
            let payload = Arc::new(payload);
            for &to in self.inner.peers.keys() {
                self.enqueue(to, payload.clone());
            }
        }
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
        if to == self.inner.self_index {
            debug!(target: "harmony::net", "message to self ignored");
            return;
        }
        let Some(slot) = self.inner.peers.get(&to) else {
            warn!(target: "harmony::net", peer = to, "message to unknown peer index ignored");
            return;
        };
        match slot.queue.try_send(payload) {
            Ok(()) => {
                if slot.dropping.swap(false, Ordering::Relaxed) {
                    info!(target: "harmony::net", peer = to, "send queue has room again");
                }
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                bump(&self.inner.counters.dropped_queue_full);
                if !slot.dropping.swap(true, Ordering::Relaxed) {
                    warn!(
                        target: "harmony::net",
                        peer = to,
                        capacity = PEER_QUEUE_CAPACITY,
                        connected = slot.connected.load(Ordering::Relaxed),
                        "send queue full: dropping messages to this peer until it drains"
                    );
                } else {
                    debug!(target: "harmony::net", peer = to, "send queue full: message dropped");
                }
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                debug!(target: "harmony::net", peer = to, "mesh stopped: message dropped");
            }
        }
    }

    /// Peers we currently hold an established outgoing connection to, in index order.
    pub fn connected_peers(&self) -> Vec<usize> {
        self.inner
            .peers
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
        }
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
