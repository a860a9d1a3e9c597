//! QUIC and TLS settings of the mesh: transport limits, the ring provider, pinned server and
//! client configurations.

use super::*;

pub(super) fn transport_config(incoming_uni_streams: u32) -> Arc<quinn::TransportConfig> {
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

pub(super) fn provider() -> Arc<rustls::crypto::CryptoProvider> {
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

/// Per-peer budget for queued outgoing payload bytes: room for two maximal messages, as for
/// reading. Broadcast payloads are shared between queues, so this over-counts, never under.
pub fn queue_budget(max_message_bytes: usize) -> usize {
    max_message_bytes.saturating_mul(2)
}
