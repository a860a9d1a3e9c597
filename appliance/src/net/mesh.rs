//! The validator mesh: every node dials every other committee member and accepts their dials.
//!
//! * An **outgoing** connection (we dialled, we are the TLS client) is used only to send. One
//!   task per peer owns it, drains that peer's bounded send queue, and redials with backoff
//!   (200 ms doubling to 5 s, with jitter) whenever the peer is down or the connection drops,
//!   until shutdown.
//! * An **incoming** connection (they dialled, we are the TLS server) is used only to receive.
//!   Each unidirectional stream on it carries one [`frame`]; the sender is the
//!   committee member whose pinned key authenticated the TLS handshake. Peers cannot open
//!   streams on our outgoing connections, nor bidirectional streams anywhere.
//!
//! Because the two directions never share a connection, no de-duplication between
//! simultaneous dials is needed. Messages from one peer may arrive out of order (one stream
//! each); consumers must not rely on ordering.
//!
//! Liveness: keep-alive every [`KEEP_ALIVE_INTERVAL`] and an idle timeout of [`IDLE_TIMEOUT`],
//! so a dead peer is noticed within a few seconds.
//!
//! Failure handling: a message for a peer whose queue is full is dropped and counted
//! (`dropped_queue_full`, a `warn` when a queue starts dropping, `debug` after). An invalid
//! frame from a peer (wrong version, oversized, truncated, trailing data, not finished within
//! [`FRAME_READ_TIMEOUT`]) is dropped with a `warn` naming the peer and the reason and counted
//! (`dropped_invalid`); the mesh keeps running. A message whose write fails because the
//! connection broke is retried once on the next connection.
//!
//! Memory: per incoming connection, frames being read (or waiting for room in the inbound
//! channel) hold at most `2 * max_message_bytes` payload bytes ([`read_budget`]); the inbound
//! channel holds at most [`INBOUND_CHANNEL_CAPACITY`] messages and each send queue
//! [`PEER_QUEUE_CAPACITY`]. When the consumer of the inbound channel is slow, readers wait and
//! QUIC flow control pushes back on the senders; nothing inbound is dropped for that reason.
//!
//! QUIC codes: connections are closed with application code [`CLOSE_SHUTDOWN`] on shutdown and
//! [`CLOSE_PROTOCOL`] when a peer could not be identified; a stream carrying an invalid frame
//! is stopped with [`STOP_INVALID_FRAME`].

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use quinn::{ConnectionError, VarInt};
use rand::Rng;
use rustls::pki_types::CertificateDer;
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use super::frame::{self, ReadFrameError, WIRE_VERSION};
use super::identity::{spec_dns_name, IdentityError, TransportIdentity};
use super::verify::{cert_ed25519_key, PinnedClientVerifier, PinnedServerVerifier};

/// The only ALPN protocol spoken, on both sides.
pub const ALPN: &[u8] = b"harmony-fbft/1";
/// Messages queued per peer before new ones are dropped.
pub const PEER_QUEUE_CAPACITY: usize = 1024;
/// Capacity, in messages, of the channel returned by [`Mesh::start`].
pub const INBOUND_CHANNEL_CAPACITY: usize = 4096;
/// Keep-alive period on every connection.
pub const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(1);
/// A connection with no traffic for this long is considered dead.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(5);
/// First delay before redialling a peer.
pub const RECONNECT_BACKOFF_MIN: Duration = Duration::from_millis(200);
/// Largest delay between dials of a peer.
pub const RECONNECT_BACKOFF_MAX: Duration = Duration::from_secs(5);
/// An incoming frame must be complete this long after its stream was accepted.
pub const FRAME_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Concurrent incoming unidirectional streams allowed per connection.
pub const MAX_INCOMING_STREAMS: u32 = 1024;
/// Application close code: the node is shutting down.
pub const CLOSE_SHUTDOWN: u32 = 0;
/// Application close code: the peer could not be identified (ALPN or key).
pub const CLOSE_PROTOCOL: u32 = 1;
/// Stream stop code: the frame on this stream was invalid.
pub const STOP_INVALID_FRAME: u32 = 1;
/// How long [`MeshHandle::shutdown`] waits for its tasks to stop.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);
/// How long [`MeshHandle::shutdown`] then lingers for closing connections to drain.
const CLOSE_LINGER: Duration = Duration::from_millis(300);

/// One committee member as the mesh sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo {
    /// The member's index in the committee (what [`Inbound::from`] and [`MeshHandle::send`] use).
    pub index: usize,
    /// Where it listens.
    pub endpoint: SocketAddr,
    /// Its pinned Ed25519 transport key.
    pub transport_key: [u8; 32],
}

/// Configuration of a mesh.
#[derive(Debug, Clone)]
pub struct MeshConfig {
    /// UDP address to listen on (and dial from).
    pub listen: SocketAddr,
    /// This node's transport identity; its key must be `peers[self_index].transport_key`.
    pub identity: TransportIdentity,
    /// This node's committee index.
    pub self_index: usize,
    /// All committee members, this node included (it is skipped).
    pub peers: Vec<PeerInfo>,
    /// Hash of the chain spec; certificates name it, so other networks are refused.
    pub spec_hash: [u8; 32],
    /// Largest payload sent or accepted (usually [`frame::MAX_MESSAGE_BYTES`]).
    pub max_message_bytes: usize,
}

/// A message received from a peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inbound {
    /// Committee index of the sender, decided by the pinned key of the TLS peer.
    pub from: usize,
    /// Wire version of the frame (`MIN_WIRE_VERSION..=WIRE_VERSION`).
    pub version: u8,
    /// The payload.
    pub payload: Vec<u8>,
}

/// A snapshot of the mesh counters (all monotonic since start).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MeshStats {
    /// Messages written to a stream and finished (handed to QUIC; not necessarily delivered).
    pub messages_sent: u64,
    /// Valid frames received.
    pub messages_received: u64,
    /// Incoming frames dropped as invalid.
    pub dropped_invalid: u64,
    /// Outgoing messages dropped because the peer's send queue was full.
    pub dropped_queue_full: u64,
    /// Handshakes refused, by us or by the peer, for a TLS reason (unknown key, wrong
    /// network, bad signature, wrong ALPN, ...), incoming and outgoing.
    pub handshake_refused: u64,
    /// Outgoing messages lost because writing them failed (twice, or stopped by the peer).
    pub dropped_send_failed: u64,
    /// Outgoing messages refused locally because they exceed `max_message_bytes`.
    pub dropped_oversized_outgoing: u64,
}

#[derive(Debug, Default)]
struct Counters {
    sent: AtomicU64,
    received: AtomicU64,
    dropped_invalid: AtomicU64,
    dropped_queue_full: AtomicU64,
    handshake_refused: AtomicU64,
    send_failed: AtomicU64,
    oversized_outgoing: AtomicU64,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// Errors starting a mesh.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// The configuration is inconsistent.
    #[error("invalid mesh configuration: {0}")]
    Config(String),
    /// The identity could not produce a certificate.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// The UDP socket could not be bound or set up.
    #[error("cannot bind QUIC endpoint on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// TLS configuration failed.
    #[error("TLS configuration: {0}")]
    Tls(String),
    /// `Mesh::start` was called outside a tokio runtime.
    #[error("the mesh must be started inside a tokio runtime")]
    NoRuntime,
}

/// Starts meshes; see [`Mesh::start`].
#[derive(Debug)]
pub struct Mesh;

impl Mesh {
    /// Binds `cfg.listen`, starts dialling every other peer and accepting their connections.
    /// Must be called inside a tokio runtime. Returns the handle and the channel of messages
    /// received from peers.
    pub fn start(cfg: MeshConfig) -> Result<(MeshHandle, mpsc::Receiver<Inbound>), NetError> {
        let socket = std::net::UdpSocket::bind(cfg.listen).map_err(|source| NetError::Bind {
            addr: cfg.listen,
            source,
        })?;
        Self::start_on_socket(cfg, socket)
    }

    /// As [`Mesh::start`], on an already bound socket (`cfg.listen` is then ignored). Useful
    /// when the address must be known before the configuration is complete (port 0 in
    /// tests) or when the socket is inherited.
    pub fn start_on_socket(
        cfg: MeshConfig,
        socket: std::net::UdpSocket,
    ) -> Result<(MeshHandle, mpsc::Receiver<Inbound>), NetError> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(NetError::NoRuntime);
        }
        let checked = check_config(&cfg)?;
        let local_addr = socket.local_addr().map_err(|source| NetError::Bind {
            addr: cfg.listen,
            source,
        })?;
        socket
            .set_nonblocking(true)
            .map_err(|source| NetError::Bind {
                addr: local_addr,
                source,
            })?;

        let certified = cfg.identity.certified_key(cfg.spec_hash)?;
        let client_verifier = Arc::new(PinnedClientVerifier::new(
            checked.others.values().copied(),
            cfg.spec_hash,
        ));
        let server_config = quinn_server_config(certified.clone(), client_verifier)?;
        let endpoint = quinn::Endpoint::new(
            quinn::EndpointConfig::default(),
            Some(server_config),
            socket,
            Arc::new(quinn::TokioRuntime),
        )
        .map_err(|source| NetError::Bind {
            addr: local_addr,
            source,
        })?;

        let counters = Arc::new(Counters::default());
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let (inbound_tx, inbound_rx) = mpsc::channel(INBOUND_CHANNEL_CAPACITY);
        let max = cfg.max_message_bytes;
        let server_name = spec_dns_name(&cfg.spec_hash);

        let mut tasks = Vec::new();
        let mut peers = BTreeMap::new();
        for p in cfg.peers.iter().filter(|p| p.index != cfg.self_index) {
            let verifier = Arc::new(PinnedServerVerifier::new(
                p.transport_key,
                &format!("peer {}", p.index),
                cfg.spec_hash,
            ));
            let client_config = quinn_client_config(certified.clone(), verifier)?;
            let (queue_tx, queue_rx) = mpsc::channel(PEER_QUEUE_CAPACITY);
            let connected = Arc::new(AtomicBool::new(false));
            let dialer = Dialer {
                peer: p.index,
                addr: p.endpoint,
                client_config,
                server_name: server_name.clone(),
                endpoint: endpoint.clone(),
                counters: counters.clone(),
                connected: connected.clone(),
            };
            tasks.push(tokio::spawn(dialer.run(queue_rx, shutdown_rx.clone())));
            peers.insert(
                p.index,
                PeerSlot {
                    queue: queue_tx,
                    connected,
                    dropping: AtomicBool::new(false),
                },
            );
        }

        let blocked = Arc::new(Blocklist::default());
        let acceptor = Arc::new(Acceptor {
            key_to_index: checked.others.iter().map(|(i, k)| (*k, *i)).collect(),
            blocked: blocked.clone(),
            counters: counters.clone(),
            inbound: inbound_tx,
            max_message_bytes: max,
        });
        tasks.push(tokio::spawn(accept_loop(
            endpoint.clone(),
            acceptor,
            shutdown_rx,
        )));

        info!(
            target: "harmony::net",
            %local_addr,
            self_index = cfg.self_index,
            peers = peers.len(),
            key = %hex::encode(cfg.identity.public_key()),
            "QUIC mesh started"
        );
        let inner = Arc::new(Inner {
            blocked,
            self_index: cfg.self_index,
            endpoint,
            local_addr,
            max_message_bytes: max,
            peers,
            counters,
            shutdown_tx,
            tasks: Mutex::new(tasks),
        });
        Ok((MeshHandle { inner }, inbound_rx))
    }
}

struct CheckedConfig {
    /// index -> key, excluding self.
    others: BTreeMap<usize, [u8; 32]>,
}

fn check_config(cfg: &MeshConfig) -> Result<CheckedConfig, NetError> {
    let bad = |m: String| Err(NetError::Config(m));
    if cfg.max_message_bytes == 0 || cfg.max_message_bytes > u32::MAX as usize / 2 {
        return bad(format!(
            "max_message_bytes must be between 1 and {}, got {}",
            u32::MAX / 2,
            cfg.max_message_bytes
        ));
    }
    let mut indices = HashSet::new();
    let mut keys = HashSet::new();
    for p in &cfg.peers {
        if !indices.insert(p.index) {
            return bad(format!("peer index {} appears twice", p.index));
        }
        if !keys.insert(p.transport_key) {
            return bad(format!(
                "transport key {} appears twice (peer {})",
                hex::encode(p.transport_key),
                p.index
            ));
        }
    }
    let Some(me) = cfg.peers.iter().find(|p| p.index == cfg.self_index) else {
        return bad(format!("self_index {} is not in peers", cfg.self_index));
    };
    if me.transport_key != cfg.identity.public_key() {
        return bad(format!(
            "this node's transport key {} differs from the key pinned for index {}: {}",
            hex::encode(cfg.identity.public_key()),
            cfg.self_index,
            hex::encode(me.transport_key)
        ));
    }
    Ok(CheckedConfig {
        others: cfg
            .peers
            .iter()
            .filter(|p| p.index != cfg.self_index)
            .map(|p| (p.index, p.transport_key))
            .collect(),
    })
}

fn transport_config(incoming_uni_streams: u32) -> Arc<quinn::TransportConfig> {
    let mut t = quinn::TransportConfig::default();
    t.keep_alive_interval(Some(KEEP_ALIVE_INTERVAL))
        .max_idle_timeout(Some(
            quinn::IdleTimeout::try_from(IDLE_TIMEOUT).expect("idle timeout fits a VarInt"),
        ))
        .max_concurrent_bidi_streams(VarInt::from_u32(0))
        .max_concurrent_uni_streams(VarInt::from_u32(incoming_uni_streams))
        .stream_receive_window(VarInt::from_u32(2 * 1024 * 1024))
        .receive_window(VarInt::from_u32(16 * 1024 * 1024))
        .datagram_receive_buffer_size(None);
    Arc::new(t)
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The QUIC server configuration: TLS 1.3 only, mandatory pinned client authentication,
/// ALPN [`ALPN`], no session resumption.
pub(crate) fn quinn_server_config(
    certified: Arc<CertifiedKey>,
    verifier: Arc<dyn rustls::server::danger::ClientCertVerifier>,
) -> Result<quinn::ServerConfig, NetError> {
    let mut tls = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| NetError::Tls(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(Arc::new(SingleCertAndKey::from(certified)));
    tls.alpn_protocols = vec![ALPN.to_vec()];
    tls.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    tls.send_tls13_tickets = 0;
    tls.max_early_data_size = 0;
    let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls)
        .map_err(|e| NetError::Tls(e.to_string()))?;
    let mut cfg = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    cfg.transport_config(transport_config(MAX_INCOMING_STREAMS));
    Ok(cfg)
}

/// The QUIC client configuration for dialling one pinned peer: TLS 1.3 only, our certificate
/// for client authentication, ALPN [`ALPN`], no session resumption, no incoming streams.
pub(crate) fn quinn_client_config(
    certified: Arc<CertifiedKey>,
    verifier: Arc<dyn rustls::client::danger::ServerCertVerifier>,
) -> Result<quinn::ClientConfig, NetError> {
    quinn_client_config_alpn(certified, verifier, ALPN)
}

/// As [`quinn_client_config`], offering `alpn` instead (tests use it to speak another ALPN).
pub(crate) fn quinn_client_config_alpn(
    certified: Arc<CertifiedKey>,
    verifier: Arc<dyn rustls::client::danger::ServerCertVerifier>,
    alpn: &[u8],
) -> Result<quinn::ClientConfig, NetError> {
    let mut tls = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| NetError::Tls(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_client_cert_resolver(Arc::new(SingleCertAndKey::from(certified)));
    tls.alpn_protocols = vec![alpn.to_vec()];
    tls.resumption = rustls::client::Resumption::disabled();
    tls.enable_early_data = false;
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls)
        .map_err(|e| NetError::Tls(e.to_string()))?;
    let mut cfg = quinn::ClientConfig::new(Arc::new(crypto));
    cfg.transport_config(transport_config(0));
    Ok(cfg)
}

/// Per-connection memory budget for frames being read: room for two maximal frames.
pub fn read_budget(max_message_bytes: usize) -> usize {
    max_message_bytes
        .saturating_mul(2)
        .min(Semaphore::MAX_PERMITS)
}

fn is_tls_code(code: quinn::TransportErrorCode) -> bool {
    (0x100..0x200).contains(&u64::from(code))
}

/// Whether a connection failed because a TLS handshake was refused (by either side).
fn is_tls_refusal(e: &ConnectionError) -> bool {
    match e {
        ConnectionError::TransportError(t) => is_tls_code(t.code),
        ConnectionError::ConnectionClosed(c) => is_tls_code(c.error_code),
        _ => false,
    }
}

fn alpn_ok(conn: &quinn::Connection) -> bool {
    conn.handshake_data()
        .and_then(|d| d.downcast::<quinn::crypto::rustls::HandshakeData>().ok())
        .and_then(|d| d.protocol)
        .is_some_and(|p| p == ALPN)
}

fn peer_key(conn: &quinn::Connection) -> Option<[u8; 32]> {
    let certs = conn
        .peer_identity()?
        .downcast::<Vec<CertificateDer<'static>>>()
        .ok()?;
    cert_ed25519_key(certs.first()?).ok()
}

struct PeerSlot {
    queue: mpsc::Sender<Arc<Vec<u8>>>,
    connected: Arc<AtomicBool>,
    /// Whether the queue is currently dropping (to warn once per episode).
    dropping: AtomicBool,
}

/// Blocked peers and the incoming connections to cut when one is blocked.
#[derive(Default)]
struct Blocklist {
    peers: Mutex<std::collections::HashSet<usize>>,
    incoming: Mutex<HashMap<usize, Vec<quinn::Connection>>>,
}

impl Blocklist {
    fn contains(&self, peer: usize) -> bool {
        self.peers.lock().expect("lock").contains(&peer)
    }
}

/// Close code sent to a blocked peer.
const CLOSE_BLOCKED: u32 = 0x4b;

struct Inner {
    blocked: Arc<Blocklist>,
    self_index: usize,
    endpoint: quinn::Endpoint,
    local_addr: SocketAddr,
    max_message_bytes: usize,
    peers: BTreeMap<usize, PeerSlot>,
    counters: Arc<Counters>,
    shutdown_tx: watch::Sender<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The last handle is gone: stop everything.
        self.shutdown_tx.send_replace(true);
        self.endpoint
            .close(VarInt::from_u32(CLOSE_SHUTDOWN), b"shutdown");
    }
}

/// Handle to a running mesh. Cloning is cheap; the mesh stops when [`MeshHandle::shutdown`]
/// is called or the last handle is dropped.
#[derive(Clone)]
pub struct MeshHandle {
    inner: Arc<Inner>,
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

    fn check_outgoing(&self, payload: &[u8]) -> bool {
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
        if !self.inner.blocked.peers.lock().expect("lock").insert(peer) {
            return;
        }
        let conns = self
            .inner
            .blocked
            .incoming
            .lock()
            .expect("lock")
            .remove(&peer)
            .unwrap_or_default();
        for c in conns {
            c.close(VarInt::from_u32(CLOSE_BLOCKED), b"blocked");
        }
        warn!(target: "harmony::net", peer, "peer blocked");
    }

    pub fn unblock(&self, peer: usize) {
        if self.inner.blocked.peers.lock().expect("lock").remove(&peer) {
            info!(target: "harmony::net", peer, "peer unblocked");
        }
    }

    pub fn blocked(&self) -> Vec<usize> {
        let mut v: Vec<usize> = self
            .inner
            .blocked
            .peers
            .lock()
            .expect("lock")
            .iter()
            .copied()
            .collect();
        v.sort_unstable();
        v
    }

    fn enqueue(&self, to: usize, payload: Arc<Vec<u8>>) {
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
async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

struct Dialer {
    peer: usize,
    addr: SocketAddr,
    client_config: quinn::ClientConfig,
    server_name: String,
    endpoint: quinn::Endpoint,
    counters: Arc<Counters>,
    connected: Arc<AtomicBool>,
}

/// A message being sent, and whether it already failed once.
struct Outgoing {
    payload: Arc<Vec<u8>>,
    retried: bool,
}

enum DialFailure {
    Connect(quinn::ConnectError),
    Handshake(ConnectionError),
    Alpn,
    Identity,
}

enum PumpEnd {
    Shutdown,
    Lost(ConnectionError),
}

enum WriteFailure {
    /// The connection is gone.
    Connection(ConnectionError),
    /// The peer refused this stream; the connection may be fine.
    Stream(String),
}

impl Dialer {
    async fn run(
        self,
        mut queue: mpsc::Receiver<Arc<Vec<u8>>>,
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
            backoff = (backoff * 2).min(RECONNECT_BACKOFF_MAX);
        }
    }

    async fn connect(&self) -> Result<quinn::Connection, DialFailure> {
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
    async fn pump(
        &self,
        conn: &quinn::Connection,
        queue: &mut mpsc::Receiver<Arc<Vec<u8>>>,
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
                        Some(payload) => Outgoing { payload, retried: false },
                        None => return PumpEnd::Shutdown,
                    },
                },
            };
            match write_message(conn, &msg.payload).await {
                Ok(()) => bump(&self.counters.sent),
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

async fn write_message(conn: &quinn::Connection, payload: &[u8]) -> Result<(), WriteFailure> {
    let mut stream = conn.open_uni().await.map_err(WriteFailure::Connection)?;
    let map = |e: quinn::WriteError| match e {
        quinn::WriteError::ConnectionLost(c) => WriteFailure::Connection(c),
        other => WriteFailure::Stream(other.to_string()),
    };
    stream
        .write_all(&frame::encode_header(WIRE_VERSION, payload.len()))
        .await
        .map_err(map)?;
    stream.write_all(payload).await.map_err(map)?;
    stream
        .finish()
        .map_err(|e| WriteFailure::Stream(e.to_string()))?;
    Ok(())
}

struct Acceptor {
    key_to_index: HashMap<[u8; 32], usize>,
    /// Peers refused at the door (operator block or bad score); shared with the handle.
    blocked: Arc<Blocklist>,
    counters: Arc<Counters>,
    inbound: mpsc::Sender<Inbound>,
    max_message_bytes: usize,
}

async fn accept_loop(
    endpoint: quinn::Endpoint,
    acceptor: Arc<Acceptor>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let incoming = tokio::select! {
            biased;
            _ = stopped(&mut shutdown) => return,
            i = endpoint.accept() => match i {
                Some(i) => i,
                None => return,
            },
        };
        tokio::spawn(handle_incoming(
            incoming,
            acceptor.clone(),
            shutdown.clone(),
        ));
    }
}

async fn handle_incoming(
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
    let from = match peer_key(&conn).and_then(|k| acceptor.key_to_index.get(&k).copied()) {
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
    acceptor
        .blocked
        .incoming
        .lock()
        .expect("lock")
        .entry(from)
        .or_default()
        .push(conn.clone());
    info!(target: "harmony::net", peer = from, %remote, "accepted connection from peer");
    let budget = Arc::new(Semaphore::new(read_budget(acceptor.max_message_bytes)));
    loop {
        let recv = tokio::select! {
            biased;
            _ = stopped(&mut shutdown) => {
                conn.close(VarInt::from_u32(CLOSE_SHUTDOWN), b"shutdown");
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
                    return;
                }
            },
        };
        tokio::spawn(read_one(recv, from, acceptor.clone(), budget.clone()));
    }
}

async fn read_one(
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
