//! Incoming connections: the accept loop, the handshake checks and reading one frame per
//! stream.

use super::*;
use crate::lock::LockExt;

pub(super) struct Acceptor {
    /// Known peers by transport key (grows as the caller adds peers).
    pub(super) known: KnownPeers,
    /// Peers refused at the door (operator block or bad score); shared with the handle.
    pub(super) blocked: Arc<Blocklist>,
    pub(super) counters: Arc<Counters>,
    pub(super) reports: Reports,
    pub(super) inbound: mpsc::Sender<Inbound>,
    pub(super) max_message_bytes: usize,
}

pub(super) async fn accept_loop(
    endpoint: quinn::Endpoint,
    acceptor: Arc<Acceptor>,
    mut shutdown: watch::Receiver<bool>,
) {
    // Handshakes seen in the current one-second window.
    let (mut window, mut seen) = (Instant::now(), 0u32);
    loop {
        let incoming = tokio::select! {
            biased;
            _ = stopped(&mut shutdown) => return,
            i = endpoint.accept() => match i {
                Some(i) => i,
                None => return,
            },
        };
        if window.elapsed() >= Duration::from_secs(1) {
            (window, seen) = (Instant::now(), 0);
        }
        seen = seen.saturating_add(1);
        if seen > RETRY_ABOVE_PER_SECOND && !incoming.remote_address_validated() {
            // The client retries with a token that proves its address; only then is the
            // handshake done (spoofed sources never come back).
            if incoming.may_retry() {
                bump(&acceptor.counters.retries);
                let _ = incoming.retry();
                continue;
            }
        }
        tokio::spawn(handle_incoming(
            incoming,
            acceptor.clone(),
            shutdown.clone(),
        ));
    }
}

pub(super) async fn handle_incoming(
    incoming: quinn::Incoming,
    acceptor: Arc<Acceptor>,
    mut shutdown: watch::Receiver<bool>,
) {
    let remote = incoming.remote_address();
    // The ClientHello is processed by `accept` (ALPN is decided there), the rest of the
    // handshake, client certificate included, by awaiting `Connecting`.
    let handshake = match incoming.accept() {
        Ok(connecting) => connecting.await,
        Err(e) => Err(e),
    };
    let conn = match handshake {
        Ok(c) => c,
        Err(e) if is_tls_refusal(&e) => {
            bump(&acceptor.counters.handshake_refused);
            warn!(target: "harmony::net", %remote, error = %e, "incoming handshake refused");
            return;
        }
        Err(e) => {
            debug!(target: "harmony::net", %remote, error = %e, "incoming handshake failed");
            return;
        }
    };
    let from = match peer_key(&conn).and_then(|k| {
        let known = acceptor.known.read().unwrap_or_else(|e| e.into_inner());
        known.get(&k).copied()
    }) {
        Some(from) if alpn_ok(&conn) => from,
        _ => {
            bump(&acceptor.counters.handshake_refused);
            warn!(
                target: "harmony::net",
                %remote,
                "incoming connection without ALPN harmony-fbft/1 or pinned key",
            );
            conn.close(VarInt::from_u32(CLOSE_PROTOCOL), b"protocol");
            return;
        }
    };
    if acceptor.blocked.contains(from) {
        bump(&acceptor.counters.handshake_refused);
        warn!(target: "harmony::net", peer = from, %remote, "refused connection from a blocked peer");
        conn.close(VarInt::from_u32(CLOSE_BLOCKED), b"blocked");
        return;
    }
    report(&acceptor.reports, from, |r| r.connections += 1);
    let older = acceptor
        .blocked
        .incoming
        .locked()
        .insert(from, conn.clone());
    if let Some(old) = older {
        old.close(VarInt::from_u32(CLOSE_REPLACED), b"replaced");
    }
    info!(target: "harmony::net", peer = from, %remote, "accepted connection from peer");
    // Forget this connection when it ends, unless a newer one took its place.
    let forget = |acceptor: &Acceptor| {
        let mut live = acceptor.blocked.incoming.locked();
        if live.get(&from).map(|c| c.stable_id()) == Some(conn.stable_id()) {
            live.remove(&from);
        }
    };
    let budget = Arc::new(Semaphore::new(read_budget(acceptor.max_message_bytes)));
    loop {
        let recv = tokio::select! {
            biased;
            _ = stopped(&mut shutdown) => {
                conn.close(VarInt::from_u32(CLOSE_SHUTDOWN), b"shutdown");
                forget(&acceptor);
                return;
            }
            r = conn.accept_uni() => match r {
                Ok(s) => s,
                Err(e) => {
                    info!(
                        target: "harmony::net",
                        peer = from,
                        %remote,
                        reason = %e,
                        "connection from peer closed",
                    );
                    forget(&acceptor);
                    return;
                }
            },
        };
        tokio::spawn(read_one(recv, from, acceptor.clone(), budget.clone()));
    }
}

pub(super) async fn read_one(
    mut recv: quinn::RecvStream,
    from: usize,
    acceptor: Arc<Acceptor>,
    budget: Arc<Semaphore>,
) {
    let result = frame::read_frame(
        &mut recv,
        acceptor.max_message_bytes,
        Some(&budget),
        FRAME_READ_TIMEOUT,
    )
    .await;
    match result {
        Ok((version, payload, _permit)) => {
            bump(&acceptor.counters.received);
            let msg = Inbound {
                from,
                version,
                payload,
            };
            if acceptor.inbound.send(msg).await.is_err() {
                debug!(
                    target: "harmony::net",
                    peer = from,
                    "inbound receiver dropped: message discarded",
                );
            }
        }
        Err(ReadFrameError::Stream(e)) => {
            debug!(target: "harmony::net", peer = from, error = %e, "incoming stream failed");
        }
        Err(e) => {
            bump(&acceptor.counters.dropped_invalid);
            report(&acceptor.reports, from, |r| r.invalid_frames += 1);
            warn!(
                target: "harmony::net",
                peer = from,
                reason = %e,
                "dropping invalid frame from peer",
            );
            let _ = recv.stop(VarInt::from_u32(STOP_INVALID_FRAME));
        }
    }
}
