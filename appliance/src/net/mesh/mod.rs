//! The validator mesh: every node dials every known peer and accepts their dials. Peers are
//! identified by their pinned Ed25519 transport key; the caller names each with an index of
//! its own (a handle, stable while the process runs) and may add peers or change their
//! endpoints at any time ([`MeshHandle::set_peers`]): validators register, observers are
//! listed by the operator, and neither needs a restart of anyone.
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
//! channel holds at most [`INBOUND_CHANNEL_CAPACITY`] messages, and each send queue at most
//! [`PEER_QUEUE_CAPACITY`] messages *and* [`queue_budget`] bytes (a queue of large sync
//! answers to a peer that reads nothing must not grow to a thousand maximal messages). When
//! the consumer of the inbound channel is slow, readers wait and QUIC flow control pushes back
//! on the senders; nothing inbound is dropped for that reason.
//!
//! Slow readers: a message whose stream makes no progress for [`WRITE_STALL_TIMEOUT`] (the
//! peer grants no stream or no flow-control credit) ends the connection; the dialler redials
//! with backoff. Such stalls, invalid frames and reconnections are reported per peer
//! ([`MeshHandle::take_reports`]) so the node can score the peer: the mesh itself only counts.
//!
//! Handshake floods: past [`RETRY_ABOVE_PER_SECOND`] incoming handshakes in a second, clients
//! must complete a QUIC Retry (address validation) first, so spoofed sources cost no TLS
//! handshake (`retries_sent`). Each key holds one incoming connection; a newer one replaces
//! the older.
//!
//! QUIC codes: connections are closed with application code [`CLOSE_SHUTDOWN`] on shutdown and
//! [`CLOSE_PROTOCOL`] when a peer could not be identified; a stream carrying an invalid frame
//! is stopped with [`STOP_INVALID_FRAME`].

use crate::lock::LockExt;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
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
use super::verify::{cert_ed25519_key, PinSet, PinnedClientVerifier, PinnedServerVerifier};

/// The only ALPN protocol spoken, on both sides.
pub const ALPN: &[u8] = b"harmony-fbft/1";
/// Messages queued per peer before new ones are dropped.
pub const PEER_QUEUE_CAPACITY: usize = 1024;
/// A message write that makes no progress for this long (no stream granted, no flow-control
/// credit) ends the connection to that peer. geth's frame write deadline is 20 s; a validator
/// on a data-centre link drains a 64 KiB chunk in far less than this.
pub const WRITE_STALL_TIMEOUT: Duration = Duration::from_secs(10);
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
/// Past this many incoming handshakes in one second, a client must prove its address with a
/// QUIC Retry round trip before the node spends a TLS handshake on it (spoofed floods stop
/// there). A committee reconnecting after a restart stays below it.
pub const RETRY_ABOVE_PER_SECOND: u32 = 64;
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

/// One peer as the mesh sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo {
    /// The caller's handle for this peer (what [`Inbound::from`] and [`MeshHandle::send`] use).
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
    /// This node's transport identity (a peer with its key is this node, and skipped).
    pub identity: TransportIdentity,
    /// The peers known at start (more come with [`MeshHandle::set_peers`]).
    pub peers: Vec<PeerInfo>,
    /// Hash of the chain spec; certificates name it, so other networks are refused.
    pub spec_hash: [u8; 32],
    /// Largest payload sent or accepted (usually [`frame::MAX_MESSAGE_BYTES`]).
    pub max_message_bytes: usize,
}

/// A message received from a peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inbound {
    /// The sender's index, decided by the pinned key of the TLS peer.
    pub from: usize,
    /// Wire version of the frame (`MIN_WIRE_VERSION..=WIRE_VERSION`).
    pub version: u8,
    /// The payload.
    pub payload: Vec<u8>,
}

/// Counters of outgoing messages and bytes by kind, counted per peer as they are queued.
#[derive(Clone)]
pub struct Traffic {
    pub messages: prometheus::IntCounterVec,
    pub bytes: prometheus::IntCounterVec,
    /// Names a payload's kind from its first byte.
    pub kind: fn(u8) -> &'static str,
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
    /// Handshakes answered with a QUIC Retry (address validation) because more than
    /// [`RETRY_ABOVE_PER_SECOND`] arrived in one second.
    pub retries_sent: u64,
    /// Outgoing connections closed because a write made no progress for
    /// [`WRITE_STALL_TIMEOUT`].
    pub stalled_writes: u64,
}

/// What one peer did at the transport level since the last [`MeshHandle::take_reports`]:
/// the node turns these into score (the mesh has no notion of score).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PeerReport {
    /// Frames from it dropped as invalid (version, length, truncation, trailing data, too
    /// slow to arrive).
    pub invalid_frames: u32,
    /// Incoming connections it completed (a handshake that passed the pin check).
    pub connections: u32,
    /// Our connections to it closed because it left a write without progress.
    pub stalled: u32,
}

/// Reports per peer index, shared by the acceptor, the diallers and the handle.
type Reports = Arc<Mutex<HashMap<usize, PeerReport>>>;

fn report(reports: &Reports, peer: usize, f: impl FnOnce(&mut PeerReport)) {
    let mut r = reports.locked();
    let e = r.entry(peer).or_default();
    f(e);
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
    retries: AtomicU64,
    stalled: AtomicU64,
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
        let own_key = cfg.identity.public_key();
        let pins: PinSet = Arc::new(std::sync::RwLock::new(HashSet::new()));
        let client_verifier = Arc::new(PinnedClientVerifier::shared(pins.clone(), cfg.spec_hash));
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
        let known: KnownPeers = Default::default();

        let blocked = Arc::new(Blocklist::default());
        let reports: Reports = Default::default();
        let acceptor = Arc::new(Acceptor {
            known: known.clone(),
            blocked: blocked.clone(),
            counters: counters.clone(),
            reports: reports.clone(),
            inbound: inbound_tx,
            max_message_bytes: max,
        });
        let accept_task =
            tokio::spawn(accept_loop(endpoint.clone(), acceptor, shutdown_rx.clone()));

        let inner = Arc::new(Inner {
            blocked,
            own_key,
            endpoint: endpoint.clone(),
            local_addr,
            max_message_bytes: max,
            peers: Mutex::new(BTreeMap::new()),
            known,
            pins,
            certified,
            server_name: spec_dns_name(&cfg.spec_hash),
            spec_hash: cfg.spec_hash,
            shutdown_rx,
            counters,
            reports,
            traffic: Default::default(),
            shutdown_tx,
            tasks: Mutex::new(vec![accept_task]),
        });
        let handle = MeshHandle { inner };
        handle.apply_peers(checked)?;
        info!(
            target: "harmony::net",
            %local_addr,
            peers = handle.inner.peers.locked().len(),
            key = %hex::encode(own_key),
            "QUIC mesh started"
        );
        Ok((handle, inbound_rx))
    }
}

/// Peers by transport key (the acceptor's view), shared with the handle.
type KnownPeers = Arc<std::sync::RwLock<HashMap<[u8; 32], usize>>>;

/// Checks a peer list: indices and keys unique. Entries with this node's key are dropped.
fn check_peers(peers: &[PeerInfo], own_key: &[u8; 32]) -> Result<Vec<PeerInfo>, NetError> {
    let bad = |m: String| Err(NetError::Config(m));
    let mut indices = HashSet::new();
    let mut keys = HashSet::new();
    for p in peers {
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
    Ok(peers
        .iter()
        .filter(|p| &p.transport_key != own_key)
        .cloned()
        .collect())
}

fn check_config(cfg: &MeshConfig) -> Result<Vec<PeerInfo>, NetError> {
    if cfg.max_message_bytes == 0 || cfg.max_message_bytes > u32::MAX as usize / 2 {
        return Err(NetError::Config(format!(
            "max_message_bytes must be between 1 and {}, got {}",
            u32::MAX / 2,
            cfg.max_message_bytes
        )));
    }
    check_peers(&cfg.peers, &cfg.identity.public_key())
}

mod accept;
mod dial;
mod handle;
mod tls;

use accept::{accept_loop, Acceptor};
use dial::Dialer;
use handle::stopped;
pub use handle::MeshHandle;
pub(crate) use tls::*;

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

/// A message in a peer's send queue, with its share of the queue's byte budget.
struct Queued {
    payload: Arc<Vec<u8>>,
    _charge: Charge,
}

/// Bytes charged to a send queue; given back when the message is sent or dropped.
struct Charge {
    queued: Arc<AtomicUsize>,
    bytes: usize,
}

impl Charge {
    /// Charges `bytes` to `queued` unless that would pass `budget`.
    fn take(queued: &Arc<AtomicUsize>, bytes: usize, budget: usize) -> Option<Self> {
        queued
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |q| {
                q.checked_add(bytes).filter(|n| *n <= budget)
            })
            .ok()?;
        Some(Self {
            queued: queued.clone(),
            bytes,
        })
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.queued.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

struct PeerSlot {
    /// Dropping the slot closes the queue, which ends its dialler.
    queue: mpsc::Sender<Queued>,
    /// Payload bytes queued (or being written), at most [`queue_budget`].
    queued_bytes: Arc<AtomicUsize>,
    key: [u8; 32],
    endpoint: SocketAddr,
    connected: Arc<AtomicBool>,
    /// Whether the queue is currently dropping (to warn once per episode).
    dropping: AtomicBool,
}

/// Blocked peers, and each peer's live incoming connection (to cut when it is blocked). One
/// per key: a newer connection replaces the older one, which is closed, so a key cannot hold
/// many connections with a read budget each, and a closed one is forgotten.
#[derive(Default)]
struct Blocklist {
    peers: Mutex<std::collections::HashSet<usize>>,
    incoming: Mutex<HashMap<usize, quinn::Connection>>,
}

impl Blocklist {
    fn contains(&self, peer: usize) -> bool {
        self.peers.locked().contains(&peer)
    }
}

/// Close code sent to a blocked peer.
const CLOSE_BLOCKED: u32 = 0x4b;
/// Close code sent on a peer's older connection when it opens a newer one.
pub const CLOSE_REPLACED: u32 = 0x4c;
/// Close code sent to a peer that left one of our writes without progress.
pub const CLOSE_STALLED: u32 = 0x4d;

struct Inner {
    blocked: Arc<Blocklist>,
    own_key: [u8; 32],
    endpoint: quinn::Endpoint,
    local_addr: SocketAddr,
    max_message_bytes: usize,
    peers: Mutex<BTreeMap<usize, PeerSlot>>,
    known: KnownPeers,
    pins: PinSet,
    certified: Arc<CertifiedKey>,
    server_name: String,
    spec_hash: [u8; 32],
    shutdown_rx: watch::Receiver<bool>,
    counters: Arc<Counters>,
    reports: Reports,
    /// Per-kind counters of what is queued for peers, once the node attaches them.
    traffic: std::sync::OnceLock<Traffic>,
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
