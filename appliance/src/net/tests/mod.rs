//! End-to-end tests of the mesh on loopback.

use std::future::Future;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rustls::sign::CertifiedKey;
use tokio::sync::mpsc;

use super::frame::{encode_frame, encode_header, WIRE_VERSION};
use super::identity::TransportIdentity;
use super::mesh::{
    quinn_client_config, quinn_client_config_alpn, quinn_server_config, Inbound, Mesh, MeshConfig,
    MeshHandle, PeerInfo,
};
use super::verify::{PinnedClientVerifier, PinnedServerVerifier};

const SPEC: [u8; 32] = [0x5a; 32];
const OTHER_SPEC: [u8; 32] = [0xa5; 32];
/// Upper bound for anything that should happen "promptly" on loopback.
const PROMPT: Duration = Duration::from_secs(5);

fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .try_init();
}

/// Runs a test body with an overall deadline, so a hang fails instead of blocking CI.
async fn with_deadline(secs: u64, body: impl Future<Output = ()>) {
    init_tracing();
    tokio::time::timeout(Duration::from_secs(secs), body)
        .await
        .expect("test exceeded its deadline");
}

fn bind() -> (UdpSocket, SocketAddr) {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    let a = s.local_addr().unwrap();
    (s, a)
}

struct Committee {
    ids: Vec<TransportIdentity>,
    sockets: Vec<Option<UdpSocket>>,
    peers: Vec<PeerInfo>,
}

impl Committee {
    fn new(n: usize) -> Self {
        let mut ids = Vec::new();
        let mut sockets = Vec::new();
        let mut peers = Vec::new();
        for index in 0..n {
            let (id, _) = TransportIdentity::generate();
            let (s, endpoint) = bind();
            peers.push(PeerInfo {
                index,
                endpoint,
                transport_key: id.public_key(),
            });
            ids.push(id);
            sockets.push(Some(s));
        }
        Self {
            ids,
            sockets,
            peers,
        }
    }

    fn config(&self, i: usize, spec_hash: [u8; 32], max_message_bytes: usize) -> MeshConfig {
        MeshConfig {
            listen: self.peers[i].endpoint,
            identity: self.ids[i].clone(),
            peers: self.peers.clone(),
            spec_hash,
            max_message_bytes,
        }
    }

    fn start_with(
        &mut self,
        i: usize,
        spec_hash: [u8; 32],
        max: usize,
    ) -> (MeshHandle, mpsc::Receiver<Inbound>) {
        let socket = self.sockets[i].take().expect("node already started");
        Mesh::start_on_socket(self.config(i, spec_hash, max), socket).unwrap()
    }

    fn start(&mut self, i: usize) -> (MeshHandle, mpsc::Receiver<Inbound>) {
        self.start_with(i, SPEC, super::MAX_MESSAGE_BYTES)
    }
}

async fn recv(rx: &mut mpsc::Receiver<Inbound>) -> Inbound {
    tokio::time::timeout(PROMPT, rx.recv())
        .await
        .expect("no message arrived in time")
        .expect("inbound channel closed")
}

/// Asserts that nothing arrives for `dur`.
async fn assert_silent(rx: &mut mpsc::Receiver<Inbound>, dur: Duration) {
    if let Ok(m) = tokio::time::timeout(dur, rx.recv()).await {
        panic!("unexpected message: {m:?}");
    }
}

async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + PROMPT;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn msg(from: usize, payload: &[u8]) -> Inbound {
    Inbound {
        from,
        version: WIRE_VERSION,
        payload: payload.to_vec(),
    }
}

/// A bare QUIC client endpoint (no server side).
fn raw_endpoint() -> quinn::Endpoint {
    let (s, _) = bind();
    quinn::Endpoint::new(
        quinn::EndpointConfig::default(),
        None,
        s,
        Arc::new(quinn::TokioRuntime),
    )
    .unwrap()
}

/// Dials `addr` presenting `certified`, pinning the server to `server_key` on `spec`.
async fn raw_dial(
    endpoint: &quinn::Endpoint,
    addr: SocketAddr,
    certified: Arc<CertifiedKey>,
    server_key: [u8; 32],
    spec: [u8; 32],
) -> Result<quinn::Connection, quinn::ConnectionError> {
    let verifier = Arc::new(PinnedServerVerifier::new(server_key, "test server", spec));
    let cfg = quinn_client_config(certified, verifier).unwrap();
    let connecting = endpoint
        .connect_with(cfg, addr, &super::spec_dns_name(&spec))
        .unwrap();
    tokio::time::timeout(PROMPT, connecting)
        .await
        .expect("handshake did not finish in time")
}

/// Writes raw bytes as one stream.
async fn raw_stream(conn: &quinn::Connection, bytes: &[u8]) {
    let mut s = conn.open_uni().await.unwrap();
    s.write_all(bytes).await.unwrap();
    s.finish().unwrap();
}

fn tls_code(e: &quinn::ConnectionError) -> bool {
    let code = match e {
        quinn::ConnectionError::TransportError(t) => t.code,
        quinn::ConnectionError::ConnectionClosed(c) => c.error_code,
        other => panic!("not a TLS refusal: {other:?}"),
    };
    (0x100..0x200).contains(&u64::from(code))
}

/// An intruder dials mesh node 0 presenting `certified` (signed with `key`) and tries to
/// deliver a message. Asserts the handshake is refused, nothing is delivered, and node 0 still
/// receives a legitimate message from node 1 afterwards.
async fn intruder_cannot_deliver(certified: Arc<CertifiedKey>) {
    let mut c = Committee::new(2);
    let (m0, mut rx0) = c.start(0);
    let (m1, _rx1) = c.start(1);

    let ep = raw_endpoint();
    // The intruder trusts node 0; node 0 must not trust the intruder.
    let outcome = raw_dial(
        &ep,
        m0.local_addr(),
        certified,
        c.peers[0].transport_key,
        SPEC,
    )
    .await;
    match outcome {
        Err(e) => assert!(tls_code(&e), "unexpected error {e:?}"),
        Ok(conn) => {
            // TLS 1.3: the client may finish before the server has checked its certificate.
            // Whatever it writes must go nowhere, and the server must close the connection.
            if let Ok(mut s) = conn.open_uni().await {
                let _ = s.write_all(&encode_frame(WIRE_VERSION, b"intruder")).await;
                let _ = s.finish();
            }
            let e = tokio::time::timeout(PROMPT, conn.closed()).await.unwrap();
            assert!(
                tls_code(&e),
                "connection ended with {e:?}, not a TLS refusal"
            );
        }
    }
    wait_until("node 0 to count the refusal", || {
        m0.stats().handshake_refused >= 1
    })
    .await;

    m1.send(0, b"legit".to_vec());
    assert_eq!(recv(&mut rx0).await, msg(1, b"legit"));
    assert_silent(&mut rx0, Duration::from_millis(200)).await;
    assert_eq!(m0.stats().messages_received, 1);
    m0.shutdown().await;
    m1.shutdown().await;
}

/// Mesh node 0 believes node 1 lives at an address where an impostor listens presenting
/// `certified`. Asserts node 0 refuses the handshake and never counts node 1 as connected.
async fn dialer_refuses_impostor(certified: Arc<CertifiedKey>) {
    let mut c = Committee::new(2);
    let impostor_socket = c.sockets[1].take().unwrap();
    // The impostor would happily accept node 0.
    let verifier = Arc::new(PinnedClientVerifier::new([c.peers[0].transport_key], SPEC));
    let impostor = quinn::Endpoint::new(
        quinn::EndpointConfig::default(),
        Some(quinn_server_config(certified, verifier).unwrap()),
        impostor_socket,
        Arc::new(quinn::TokioRuntime),
    )
    .unwrap();
    let streams = Arc::new(AtomicUsize::new(0));
    let streams2 = streams.clone();
    let server = tokio::spawn(async move {
        while let Some(incoming) = impostor.accept().await {
            let Ok(connecting) = incoming.accept() else {
                continue;
            };
            let Ok(conn) = connecting.await else { continue };
            // Even if a server-side handshake completed, no stream may arrive.
            if let Ok(Ok(_)) =
                tokio::time::timeout(Duration::from_millis(300), conn.accept_uni()).await
            {
                streams2.fetch_add(1, Ordering::SeqCst);
            }
        }
    });
    let (m0, _rx0) = c.start(0);
    m0.send(1, b"for node 1 only".to_vec());
    wait_until("node 0 to refuse the impostor", || {
        m0.stats().handshake_refused >= 1
    })
    .await;
    assert!(m0.connected_peers().is_empty());
    assert_eq!(m0.stats().messages_sent, 0);
    m0.shutdown().await;
    server.abort();
    assert_eq!(
        streams.load(Ordering::SeqCst),
        0,
        "impostor received a stream"
    );
}

#[tokio::test]
async fn three_meshes_exchange_messages() {
    with_deadline(20, async {
        let mut c = Committee::new(3);
        let (m0, mut rx0) = c.start(0);
        let (m1, mut rx1) = c.start(1);
        let (m2, mut rx2) = c.start(2);
        for (i, m) in [&m0, &m1, &m2].into_iter().enumerate() {
            let expected: Vec<usize> = (0..3).filter(|j| *j != i).collect();
            wait_until("full mesh", || m.connected_peers() == expected).await;
            assert_eq!(m.local_addr(), c.peers[i].endpoint);
        }

        m0.send(1, b"0->1".to_vec());
        m1.send(0, b"1->0".to_vec());
        m1.send(2, b"1->2".to_vec());
        m2.broadcast(b"2->all".to_vec());
        let big: Vec<u8> = (0..3 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
        m0.send(2, big.clone());
        // Ignored: to self, to an unknown index.
        m0.send(0, b"self".to_vec());
        m0.send(7, b"nobody".to_vec());

        let mut got0 = vec![recv(&mut rx0).await, recv(&mut rx0).await];
        let mut got1 = vec![recv(&mut rx1).await, recv(&mut rx1).await];
        let mut got2 = vec![recv(&mut rx2).await, recv(&mut rx2).await];
        for g in [&mut got0, &mut got1, &mut got2] {
            g.sort_by_key(|m| m.from);
        }
        assert_eq!(got0, vec![msg(1, b"1->0"), msg(2, b"2->all")]);
        assert_eq!(got1, vec![msg(0, b"0->1"), msg(2, b"2->all")]);
        assert_eq!(got2, vec![msg(0, &big), msg(1, b"1->2")]);
        for rx in [&mut rx0, &mut rx1, &mut rx2] {
            assert_silent(rx, Duration::from_millis(100)).await;
        }

        let (s0, s1, s2) = (m0.stats(), m1.stats(), m2.stats());
        assert_eq!(
            (s0.messages_sent, s1.messages_sent, s2.messages_sent),
            (2, 2, 2)
        );
        assert_eq!(
            (
                s0.messages_received,
                s1.messages_received,
                s2.messages_received
            ),
            (2, 2, 2)
        );
        for s in [s0, s1, s2] {
            assert_eq!(
                s.dropped_invalid + s.handshake_refused + s.dropped_queue_full,
                0,
                "{s:?}"
            );
        }
        for m in [&m0, &m1, &m2] {
            m.shutdown().await;
        }
        m0.shutdown().await; // idempotent
    })
    .await;
}

#[tokio::test]
async fn oversized_outgoing_message_is_refused_locally() {
    with_deadline(10, async {
        let mut c = Committee::new(2);
        let (m0, _rx0) = c.start_with(0, SPEC, 100);
        let (m1, mut rx1) = c.start_with(1, SPEC, 100);
        m0.send(1, vec![0; 101]);
        m0.broadcast(vec![0; 101]);
        m0.send(1, vec![1; 100]);
        assert_eq!(recv(&mut rx1).await, msg(0, &[1; 100]));
        assert_silent(&mut rx1, Duration::from_millis(100)).await;
        assert_eq!(m0.stats().dropped_oversized_outgoing, 2);
        m0.shutdown().await;
        m1.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn unknown_key_cannot_deliver() {
    with_deadline(20, async {
        let (stranger, _) = TransportIdentity::generate();
        intruder_cannot_deliver(stranger.certified_key(SPEC).unwrap()).await;
        let (stranger, _) = TransportIdentity::generate();
        dialer_refuses_impostor(stranger.certified_key(SPEC).unwrap()).await;
    })
    .await;
}

#[tokio::test]
async fn unknown_key_rejection_reason_is_reported() {
    with_deadline(10, async {
        // A node dialling a server whose key is not the pinned one gets a precise reason.
        let mut c = Committee::new(2);
        let (m1, _rx1) = c.start(1);
        let (stranger, _) = TransportIdentity::generate();
        let ep = raw_endpoint();
        let err = raw_dial(
            &ep,
            m1.local_addr(),
            c.ids[0].certified_key(SPEC).unwrap(),
            stranger.public_key(),
            SPEC,
        )
        .await
        .unwrap_err();
        assert!(err.to_string().contains("UnknownKey"), "{err}");
        m1.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn stolen_certificate_with_wrong_signing_key_is_refused() {
    with_deadline(20, async {
        // The intruder presents node 1's real certificate (its key is pinned) but signs the
        // handshake with its own key.
        let (attacker, _) = TransportIdentity::generate();
        let forge = |victim: &TransportIdentity| {
            Arc::new(CertifiedKey::new(
                vec![victim.self_signed_cert(SPEC).unwrap()],
                attacker.signing_key(),
            ))
        };

        // As a client dialling node 0, and as an impostor server dialled by node 0.
        let mut c = Committee::new(2);
        let stolen = forge(&c.ids[1]);
        let (m0, mut rx0) = c.start(0);
        let (m1, _rx1) = c.start(1);
        let ep = raw_endpoint();
        let outcome = raw_dial(&ep, m0.local_addr(), stolen, c.peers[0].transport_key, SPEC).await;
        match outcome {
            Err(e) => assert!(tls_code(&e), "{e:?}"),
            Ok(conn) => {
                if let Ok(mut s) = conn.open_uni().await {
                    let _ = s.write_all(&encode_frame(WIRE_VERSION, b"forged")).await;
                    let _ = s.finish();
                }
                let e = tokio::time::timeout(PROMPT, conn.closed()).await.unwrap();
                assert!(tls_code(&e), "{e:?}");
            }
        }
        wait_until("refusal", || m0.stats().handshake_refused >= 1).await;
        m1.send(0, b"real node 1".to_vec());
        assert_eq!(recv(&mut rx0).await, msg(1, b"real node 1"));
        assert_silent(&mut rx0, Duration::from_millis(200)).await;
        m0.shutdown().await;
        m1.shutdown().await;

        let c2 = Committee::new(2);
        dialer_refuses_impostor(forge(&c2.ids[1])).await;

        // The reason seen by a dialler: the pinned certificate, but a bad signature.
        let mut c = Committee::new(2);
        let victim = c.ids[1].clone();
        let impostor_socket = c.sockets[1].take().unwrap();
        let verifier = Arc::new(PinnedClientVerifier::new([c.peers[0].transport_key], SPEC));
        let impostor = quinn::Endpoint::new(
            quinn::EndpointConfig::default(),
            Some(quinn_server_config(forge(&victim), verifier).unwrap()),
            impostor_socket,
            Arc::new(quinn::TokioRuntime),
        )
        .unwrap();
        let server = tokio::spawn(async move {
            if let Some(i) = impostor.accept().await {
                if let Ok(c) = i.accept() {
                    let _ = c.await;
                }
            }
        });
        let ep = raw_endpoint();
        let err = raw_dial(
            &ep,
            c.peers[1].endpoint,
            c.ids[0].certified_key(SPEC).unwrap(),
            victim.public_key(),
            SPEC,
        )
        .await
        .unwrap_err();
        assert!(err.to_string().contains("BadHandshakeSignature"), "{err}");
        server.abort();
    })
    .await;
}

#[tokio::test]
async fn other_chain_spec_is_refused() {
    with_deadline(20, async {
        // Same keys, different chain spec: neither node accepts the other.
        let mut c = Committee::new(2);
        let (m0, mut rx0) = c.start_with(0, SPEC, super::MAX_MESSAGE_BYTES);
        let (m1, mut rx1) = c.start_with(1, OTHER_SPEC, super::MAX_MESSAGE_BYTES);
        m0.send(1, b"x".to_vec());
        m1.send(0, b"y".to_vec());
        wait_until("both refusals", || {
            m0.stats().handshake_refused >= 1 && m1.stats().handshake_refused >= 1
        })
        .await;
        assert_silent(&mut rx0, Duration::from_millis(300)).await;
        assert_silent(&mut rx1, Duration::from_millis(1)).await;
        assert!(m0.connected_peers().is_empty() && m1.connected_peers().is_empty());
        let s = m0.stats();
        assert_eq!((s.messages_sent, s.messages_received), (0, 0));

        // The reason, as seen by a dialler expecting SPEC from a node on OTHER_SPEC.
        let ep = raw_endpoint();
        let err = raw_dial(
            &ep,
            m1.local_addr(),
            c.ids[0].certified_key(SPEC).unwrap(),
            c.peers[1].transport_key,
            SPEC,
        )
        .await
        .unwrap_err();
        assert!(err.to_string().contains("WrongSpec"), "{err}");

        // A client with the right key but the other spec's certificate cannot deliver either.
        let before = m0.stats().handshake_refused;
        let outcome = raw_dial(
            &ep,
            m0.local_addr(),
            c.ids[1].certified_key(OTHER_SPEC).unwrap(),
            c.peers[0].transport_key,
            SPEC,
        )
        .await;
        if let Ok(conn) = outcome {
            let e = tokio::time::timeout(PROMPT, conn.closed()).await.unwrap();
            assert!(tls_code(&e), "{e:?}");
        }
        wait_until("refusal", || m0.stats().handshake_refused > before).await;
        assert_silent(&mut rx0, Duration::from_millis(100)).await;
        m0.shutdown().await;
        m1.shutdown().await;
    })
    .await;
}

/// A burst of handshakes past the per-second threshold is answered with QUIC Retry (address
/// validation) and the honest clients still connect.
#[tokio::test]
async fn a_handshake_burst_gets_address_validation() {
    with_deadline(30, async {
        let mut c = Committee::new(2);
        let (m0, _rx0) = c.start(0);
        let ep = raw_endpoint();
        let mut dials = tokio::task::JoinSet::new();
        let burst = super::mesh::RETRY_ABOVE_PER_SECOND as usize + 36;
        for _ in 0..burst {
            let (ep, addr) = (ep.clone(), m0.local_addr());
            let (certified, key) = (
                c.ids[1].certified_key(SPEC).unwrap(),
                c.peers[0].transport_key,
            );
            dials.spawn(async move { raw_dial(&ep, addr, certified, key, SPEC).await });
        }
        let mut connected = 0;
        while let Some(r) = dials.join_next().await {
            // A connection may already be closed as replaced by a newer one of the same key;
            // the handshake itself succeeded.
            if r.unwrap().is_ok() {
                connected += 1;
            }
        }
        assert_eq!(connected, burst, "every honest client got through");
        assert!(
            m0.stats().retries_sent >= 1,
            "retries sent: {}",
            m0.stats().retries_sent
        );
    })
    .await;
}

/// A key holds one incoming connection: a newer one replaces the older, which is closed, and
/// messages on the newer one are delivered.
#[tokio::test]
async fn a_newer_connection_from_a_key_replaces_the_older() {
    with_deadline(20, async {
        let mut c = Committee::new(2);
        let (m0, mut rx0) = c.start(0);
        let ep = raw_endpoint();
        let dial = || {
            raw_dial(
                &ep,
                m0.local_addr(),
                c.ids[1].certified_key(SPEC).unwrap(),
                c.peers[0].transport_key,
                SPEC,
            )
        };
        let first = dial().await.unwrap();
        raw_stream(&first, &encode_frame(WIRE_VERSION, b"on the first")).await;
        assert_eq!(recv(&mut rx0).await, msg(1, b"on the first"));
        let second = dial().await.unwrap();
        let closed = tokio::time::timeout(PROMPT, first.closed())
            .await
            .expect("the older connection is closed");
        match closed {
            quinn::ConnectionError::ApplicationClosed(a) => {
                assert_eq!(
                    a.error_code,
                    quinn::VarInt::from_u32(super::mesh::CLOSE_REPLACED)
                );
            }
            other => panic!("closed for another reason: {other:?}"),
        }
        raw_stream(&second, &encode_frame(WIRE_VERSION, b"on the second")).await;
        assert_eq!(recv(&mut rx0).await, msg(1, b"on the second"));
    })
    .await;
}

#[tokio::test]
async fn malformed_frames_are_dropped_and_the_mesh_keeps_running() {
    with_deadline(20, async {
        const MAX: usize = 1024;
        let mut c = Committee::new(2);
        let (m0, mut rx0) = c.start_with(0, SPEC, MAX);
        // Node 1 speaks through a raw connection so it can send anything.
        let ep = raw_endpoint();
        let conn = raw_dial(
            &ep,
            m0.local_addr(),
            c.ids[1].certified_key(SPEC).unwrap(),
            c.peers[0].transport_key,
            SPEC,
        )
        .await
        .unwrap();

        let mut bad: Vec<Vec<u8>> = vec![
            encode_frame(WIRE_VERSION + 1, b"future version"),
            encode_frame(0, b"version zero"),
            encode_frame(WIRE_VERSION, &[7; MAX + 1]), // oversized, fully sent
            encode_header(WIRE_VERSION, MAX + 1).to_vec(), // oversized, header only
            encode_header(WIRE_VERSION, u32::MAX as usize).to_vec(),
            vec![WIRE_VERSION, 0, 0], // truncated header
            vec![],                   // empty stream
        ];
        let mut truncated = encode_frame(WIRE_VERSION, &[1; 100]);
        truncated.truncate(50);
        bad.push(truncated);
        let mut trailing = encode_frame(WIRE_VERSION, b"12345");
        trailing.extend_from_slice(b"trailing");
        bad.push(trailing);
        for b in &bad {
            raw_stream(&conn, b).await;
        }
        raw_stream(&conn, &encode_frame(WIRE_VERSION, b"valid after garbage")).await;

        assert_eq!(recv(&mut rx0).await, msg(1, b"valid after garbage"));
        let n = bad.len() as u64;
        wait_until("all invalid frames counted", || {
            m0.stats().dropped_invalid == n
        })
        .await;
        assert_silent(&mut rx0, Duration::from_millis(100)).await;

        // The same connection still works, up to exactly the limit.
        raw_stream(&conn, &encode_frame(WIRE_VERSION, &[9; MAX])).await;
        assert_eq!(recv(&mut rx0).await, msg(1, &[9; MAX]));
        assert!(conn.close_reason().is_none());
        let s = m0.stats();
        assert_eq!((s.messages_received, s.dropped_invalid), (2, n));
        // The node scores what the mesh reports: every invalid frame, against node 1.
        let report = crate::net::PeerReport {
            invalid_frames: n as u32,
            connections: 1,
            stalled: 0,
        };
        assert_eq!(m0.take_reports(), vec![(1, report)]);
        assert_eq!(m0.take_reports(), vec![], "reports are taken once");
        m0.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn reconnects_after_peer_restart_and_delivers_queued_messages() {
    with_deadline(20, async {
        let mut c = Committee::new(2);
        let addr1 = c.peers[1].endpoint;
        let (m0, _rx0) = c.start(0);
        // Node 1 is not running yet: the message waits in node 0's queue.
        m0.send(1, b"queued while down".to_vec());
        tokio::time::sleep(Duration::from_millis(300)).await;
        let (m1, mut rx1) = c.start(1);
        assert_eq!(recv(&mut rx1).await, msg(0, b"queued while down"));

        // Restart node 1 on the same address.
        m1.shutdown().await;
        drop(m1);
        drop(rx1);
        wait_until("node 0 to notice", || m0.connected_peers().is_empty()).await;
        let socket = loop {
            match UdpSocket::bind(addr1) {
                Ok(s) => break s,
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        };
        let (m1, mut rx1) =
            Mesh::start_on_socket(c.config(1, SPEC, super::MAX_MESSAGE_BYTES), socket).unwrap();
        wait_until("node 0 to reconnect", || m0.connected_peers() == vec![1]).await;
        m0.send(1, b"after restart".to_vec());
        assert_eq!(recv(&mut rx1).await, msg(0, b"after restart"));
        m0.shutdown().await;
        m1.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn other_alpn_is_refused() {
    with_deadline(10, async {
        let mut c = Committee::new(2);
        let (m0, mut rx0) = c.start(0);
        let ep = raw_endpoint();
        let verifier = Arc::new(PinnedServerVerifier::new(
            c.peers[0].transport_key,
            "node 0",
            SPEC,
        ));
        let cfg = quinn_client_config_alpn(
            c.ids[1].certified_key(SPEC).unwrap(),
            verifier,
            b"harmony-fbft/2",
        )
        .unwrap();
        let connecting = ep
            .connect_with(cfg, m0.local_addr(), &super::spec_dns_name(&SPEC))
            .unwrap();
        let err = tokio::time::timeout(PROMPT, connecting)
            .await
            .unwrap()
            .unwrap_err();
        assert!(tls_code(&err), "{err:?}");
        // TLS alert 120, no_application_protocol.
        assert!(err.to_string().contains("120"), "{err}");
        wait_until("refusal", || m0.stats().handshake_refused >= 1).await;
        assert_silent(&mut rx0, Duration::from_millis(50)).await;
        m0.shutdown().await;
    })
    .await;
}

mod membership;
mod queues;
