//! Outgoing connections: one dialler per peer drains its send queue and redials with backoff.

use super::*;

pub(super) struct Dialer {
    pub(super) peer: usize,
    pub(super) addr: SocketAddr,
    pub(super) client_config: quinn::ClientConfig,
    pub(super) server_name: String,
    pub(super) endpoint: quinn::Endpoint,
    pub(super) counters: Arc<Counters>,
    pub(super) reports: Reports,
    pub(super) connected: Arc<AtomicBool>,
}

/// A message being sent (still charged to the queue's byte budget), and whether it already
/// failed once.
pub(super) struct Outgoing {
    pub(super) queued: Queued,
    pub(super) retried: bool,
}

pub(super) enum DialFailure {
    Connect(quinn::ConnectError),
    Handshake(ConnectionError),
    Alpn,
    Identity,
}

pub(super) enum PumpEnd {
    Shutdown,
    Lost(ConnectionError),
    /// The peer left a write without progress for [`WRITE_STALL_TIMEOUT`].
    Stalled,
}

pub(super) enum WriteFailure {
    /// The connection is gone.
    Connection(ConnectionError),
    /// No progress for [`WRITE_STALL_TIMEOUT`].
    Stalled,
    /// The peer refused this stream; the connection may be fine.
    Stream(String),
}

impl Dialer {
    pub(super) async fn run(
        self,
        mut queue: mpsc::Receiver<Queued>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut backoff = RECONNECT_BACKOFF_MIN;
        let mut pending: Option<Outgoing> = None;
        loop {
            let attempt = tokio::select! {
                biased;
                _ = stopped(&mut shutdown) => return,
                r = self.connect() => r,
            };
            match attempt {
                Ok(conn) => {
                    let since = Instant::now();
                    self.connected.store(true, Ordering::Relaxed);
                    info!(
                        target: "harmony::net",
                        peer = self.peer,
                        addr = %self.addr,
                        "connected to peer",
                    );
                    let end = self
                        .pump(&conn, &mut queue, &mut shutdown, &mut pending)
                        .await;
                    self.connected.store(false, Ordering::Relaxed);
                    match end {
                        PumpEnd::Shutdown => {
                            conn.close(VarInt::from_u32(CLOSE_SHUTDOWN), b"shutdown");
                            return;
                        }
                        PumpEnd::Stalled => {
                            bump(&self.counters.stalled);
                            report(&self.reports, self.peer, |r| r.stalled += 1);
                            conn.close(VarInt::from_u32(CLOSE_STALLED), b"stalled");
                            warn!(
                                target: "harmony::net",
                                peer = self.peer,
                                addr = %self.addr,
                                stall_secs = WRITE_STALL_TIMEOUT.as_secs(),
                                "peer reads nothing: connection closed; redialling",
                            );
                        }
                        PumpEnd::Lost(e) if is_tls_refusal(&e) => {
                            bump(&self.counters.handshake_refused);
                            warn!(
                                target: "harmony::net",
                                peer = self.peer,
                                addr = %self.addr,
                                error = %e,
                                "peer refused our handshake",
                            );
                        }
                        PumpEnd::Lost(ConnectionError::ApplicationClosed(c))
                            if c.error_code == VarInt::from_u32(CLOSE_SHUTDOWN) =>
                        {
                            info!(
                                target: "harmony::net",
                                peer = self.peer,
                                addr = %self.addr,
                                "peer is shutting down; redialling",
                            );
                        }
                        PumpEnd::Lost(e) => {
                            warn!(
                                target: "harmony::net",
                                peer = self.peer,
                                addr = %self.addr,
                                error = %e,
                                "connection to peer lost; redialling",
                            );
                        }
                    }
                    if since.elapsed() >= RECONNECT_BACKOFF_MAX {
                        backoff = RECONNECT_BACKOFF_MIN;
                    }
                }
                Err(DialFailure::Handshake(e)) if is_tls_refusal(&e) => {
                    bump(&self.counters.handshake_refused);
                    warn!(
                        target: "harmony::net",
                        peer = self.peer,
                        addr = %self.addr,
                        error = %e,
                        "handshake with peer refused",
                    );
                }
                Err(DialFailure::Handshake(e)) => {
                    debug!(
                        target: "harmony::net",
                        peer = self.peer,
                        addr = %self.addr,
                        error = %e,
                        "peer unreachable",
                    );
                }
                Err(DialFailure::Connect(e)) => {
                    warn!(
                        target: "harmony::net",
                        peer = self.peer,
                        addr = %self.addr,
                        error = %e,
                        "cannot dial peer",
                    );
                }
                Err(DialFailure::Alpn) => {
                    bump(&self.counters.handshake_refused);
                    warn!(
                        target: "harmony::net",
                        peer = self.peer,
                        addr = %self.addr,
                        "peer did not negotiate ALPN harmony-fbft/1",
                    );
                }
                Err(DialFailure::Identity) => {
                    bump(&self.counters.handshake_refused);
                    warn!(
                        target: "harmony::net",
                        peer = self.peer,
                        addr = %self.addr,
                        "peer presented no usable certificate",
                    );
                }
            }
            let jitter = rand::thread_rng().gen_range(Duration::ZERO..=backoff / 4);
            tokio::select! {
                biased;
                _ = stopped(&mut shutdown) => return,
                _ = tokio::time::sleep(backoff + jitter) => {}
            }
            if queue.is_closed() {
                return; // no longer a peer (or moved: a new dialler took over)
            }
            backoff = (backoff * 2).min(RECONNECT_BACKOFF_MAX);
        }
    }

    pub(super) async fn connect(&self) -> Result<quinn::Connection, DialFailure> {
        let connecting = self
            .endpoint
            .connect_with(self.client_config.clone(), self.addr, &self.server_name)
            .map_err(DialFailure::Connect)?;
        let conn = connecting.await.map_err(DialFailure::Handshake)?;
        let fail = |f: DialFailure| {
            conn.close(VarInt::from_u32(CLOSE_PROTOCOL), b"protocol");
            Err(f)
        };
        if !alpn_ok(&conn) {
            return fail(DialFailure::Alpn);
        }
        // The verifier pinned the key already; this only guards against a misconfigured stack.
        if peer_key(&conn).is_none() {
            return fail(DialFailure::Identity);
        }
        Ok(conn)
    }

    /// Sends queued messages on `conn` until it breaks or the mesh stops.
    pub(super) async fn pump(
        &self,
        conn: &quinn::Connection,
        queue: &mut mpsc::Receiver<Queued>,
        shutdown: &mut watch::Receiver<bool>,
        pending: &mut Option<Outgoing>,
    ) -> PumpEnd {
        loop {
            let msg = match pending.take() {
                Some(m) => m,
                None => tokio::select! {
                    biased;
                    _ = stopped(shutdown) => return PumpEnd::Shutdown,
                    e = conn.closed() => return PumpEnd::Lost(e),
                    m = queue.recv() => match m {
                        Some(queued) => Outgoing { queued, retried: false },
                        None => return PumpEnd::Shutdown,
                    },
                },
            };
            match write_message(conn, &msg.queued.payload).await {
                Ok(()) => bump(&self.counters.sent),
                // The message is dropped: a peer that reads nothing gets no second try.
                Err(WriteFailure::Stalled) => return PumpEnd::Stalled,
                Err(WriteFailure::Stream(e)) => {
                    bump(&self.counters.send_failed);
                    warn!(
                        target: "harmony::net",
                        peer = self.peer,
                        error = %e,
                        "message to peer lost",
                    );
                }
                Err(WriteFailure::Connection(e)) => {
                    if msg.retried {
                        bump(&self.counters.send_failed);
                        warn!(
                            target: "harmony::net",
                            peer = self.peer,
                            error = %e,
                            "message to peer lost: sending failed twice",
                        );
                    } else {
                        *pending = Some(Outgoing {
                            retried: true,
                            ..msg
                        });
                    }
                    return PumpEnd::Lost(e);
                }
            }
        }
    }
}

/// Bytes written per step; each step must finish within [`WRITE_STALL_TIMEOUT`].
const WRITE_CHUNK: usize = 64 * 1024;

/// Writes one framed message on a new stream. Every step (the stream, each chunk) must make
/// progress within [`WRITE_STALL_TIMEOUT`]: a peer that grants no stream or no credit would
/// otherwise hold this dialler, and its queue, for ever.
pub(super) async fn write_message(
    conn: &quinn::Connection,
    payload: &[u8],
) -> Result<(), WriteFailure> {
    async fn step<T>(
        f: impl std::future::Future<Output = Result<T, WriteFailure>>,
    ) -> Result<T, WriteFailure> {
        tokio::time::timeout(WRITE_STALL_TIMEOUT, f)
            .await
            .unwrap_or(Err(WriteFailure::Stalled))
    }
    let mut stream =
        step(async { conn.open_uni().await.map_err(WriteFailure::Connection) }).await?;
    let map = |e: quinn::WriteError| match e {
        quinn::WriteError::ConnectionLost(c) => WriteFailure::Connection(c),
        other => WriteFailure::Stream(other.to_string()),
    };
    let header = frame::encode_header(WIRE_VERSION, payload.len());
    for chunk in std::iter::once(&header[..]).chain(payload.chunks(WRITE_CHUNK)) {
        step(async { stream.write_all(chunk).await.map_err(map) }).await?;
    }
    stream
        .finish()
        .map_err(|e| WriteFailure::Stream(e.to_string()))?;
    Ok(())
}
