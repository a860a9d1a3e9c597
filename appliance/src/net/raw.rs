//! Wire-level access for tests of the edges: a connection that presents a pinned transport
//! identity (so its handshake succeeds) and then writes whatever bytes the caller likes, and a
//! listener that accepts pinned peers and then reads nothing. The node never uses these; the
//! attack harness (`appliance/tests/under_attack.rs`) and the mesh tests do.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use quinn::VarInt;

use super::identity::{spec_dns_name, TransportIdentity};
use super::mesh::{quinn_client_config, quinn_server_config, NetError};
use super::verify::{PinnedClientVerifier, PinnedServerVerifier};

/// A bare QUIC connection to one peer, as a pinned identity.
pub struct RawConnection {
    conn: quinn::Connection,
    _endpoint: quinn::Endpoint,
}

fn bind(addr: SocketAddr) -> Result<std::net::UdpSocket, NetError> {
    std::net::UdpSocket::bind(addr).map_err(|source| NetError::Bind { addr, source })
}

fn endpoint(
    socket: std::net::UdpSocket,
    server: Option<quinn::ServerConfig>,
) -> Result<quinn::Endpoint, NetError> {
    let addr = socket.local_addr().map_err(|source| NetError::Bind {
        addr: ([0, 0, 0, 0], 0).into(),
        source,
    })?;
    quinn::Endpoint::new(
        quinn::EndpointConfig::default(),
        server,
        socket,
        Arc::new(quinn::TokioRuntime),
    )
    .map_err(|source| NetError::Bind { addr, source })
}

impl RawConnection {
    /// Dials `addr` as `identity`, pinning the server to `server_key` on network `spec_hash`.
    pub async fn dial(
        identity: &TransportIdentity,
        spec_hash: [u8; 32],
        addr: SocketAddr,
        server_key: [u8; 32],
    ) -> Result<Self, NetError> {
        let endpoint = endpoint(bind(([127, 0, 0, 1], 0).into())?, None)?;
        let verifier = Arc::new(PinnedServerVerifier::new(server_key, "raw peer", spec_hash));
        let cfg = quinn_client_config(identity.certified_key(spec_hash)?, verifier)?;
        let connecting = endpoint
            .connect_with(cfg, addr, &spec_dns_name(&spec_hash))
            .map_err(|e| NetError::Tls(e.to_string()))?;
        let conn = connecting.await.map_err(|e| NetError::Tls(e.to_string()))?;
        Ok(Self {
            conn,
            _endpoint: endpoint,
        })
    }

    /// Writes `bytes` as one whole stream (framed or not: the caller decides).
    pub async fn send_stream(&self, bytes: &[u8]) -> Result<(), String> {
        let mut s = self.conn.open_uni().await.map_err(|e| e.to_string())?;
        s.write_all(bytes).await.map_err(|e| e.to_string())?;
        s.finish().map_err(|e| e.to_string())
    }

    /// Opens a stream and writes `bytes` in `chunk`-sized pieces with `pause` between them
    /// (a slowloris frame), then finishes it.
    pub async fn send_trickle(
        &self,
        bytes: &[u8],
        chunk: usize,
        pause: Duration,
    ) -> Result<(), String> {
        let mut s = self.conn.open_uni().await.map_err(|e| e.to_string())?;
        for c in bytes.chunks(chunk.max(1)) {
            s.write_all(c).await.map_err(|e| e.to_string())?;
            tokio::time::sleep(pause).await;
        }
        s.finish().map_err(|e| e.to_string())
    }

    /// Why the connection ended, if it has.
    pub fn close_reason(&self) -> Option<String> {
        self.conn.close_reason().map(|e| e.to_string())
    }

    /// Closes the connection.
    pub fn close(&self) {
        self.conn.close(VarInt::from_u32(0), b"done");
    }
}

/// Accepts connections from pinned peers and never reads: it grants no stream at all, so a
/// peer's first write waits for ever (a slow reader, at no cost to the listener).
pub struct SilentListener {
    endpoint: quinn::Endpoint,
    held: Arc<Mutex<Vec<quinn::Connection>>>,
    task: tokio::task::JoinHandle<()>,
}

impl SilentListener {
    /// Listens on `addr` as `identity` for the peers whose transport keys are `pins`.
    pub fn start(
        identity: &TransportIdentity,
        spec_hash: [u8; 32],
        addr: SocketAddr,
        pins: &[[u8; 32]],
    ) -> Result<Self, NetError> {
        let pins: HashSet<[u8; 32]> = pins.iter().copied().collect();
        let verifier = Arc::new(PinnedClientVerifier::shared(
            Arc::new(std::sync::RwLock::new(pins)),
            spec_hash,
        ));
        let mut server = quinn_server_config(identity.certified_key(spec_hash)?, verifier)?;
        let mut transport = quinn::TransportConfig::default();
        transport
            .max_concurrent_uni_streams(VarInt::from_u32(0))
            .max_concurrent_bidi_streams(VarInt::from_u32(0))
            .keep_alive_interval(Some(Duration::from_secs(1)));
        server.transport_config(Arc::new(transport));
        let endpoint = endpoint(bind(addr)?, Some(server))?;
        let held: Arc<Mutex<Vec<quinn::Connection>>> = Arc::default();
        let task = tokio::spawn({
            let (endpoint, held) = (endpoint.clone(), held.clone());
            async move {
                while let Some(incoming) = endpoint.accept().await {
                    let held = held.clone();
                    tokio::spawn(async move {
                        let Ok(connecting) = incoming.accept() else {
                            return;
                        };
                        if let Ok(conn) = connecting.await {
                            let mut held = held.lock().unwrap_or_else(|e| e.into_inner());
                            held.retain(|c| c.close_reason().is_none());
                            held.push(conn);
                        }
                    });
                }
            }
        });
        Ok(Self {
            endpoint,
            held,
            task,
        })
    }

    /// Connections accepted so far that are still open.
    pub fn open_connections(&self) -> usize {
        let held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        held.iter().filter(|c| c.close_reason().is_none()).count()
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.endpoint.local_addr().expect("bound")
    }
}

impl Drop for SilentListener {
    fn drop(&mut self) {
        self.task.abort();
        self.endpoint.close(VarInt::from_u32(0), b"done");
    }
}
