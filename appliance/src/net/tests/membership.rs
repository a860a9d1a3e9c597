//! The mesh's configuration and its peer set: refused configurations, peers that join and
//! leave while it runs, and its lifetime.

use super::*;

#[tokio::test]
async fn config_errors_are_reported() {
    with_deadline(10, async {
        let c = Committee::new(2);
        let mut cfg = c.config(0, SPEC, 1024);
        cfg.peers[1].index = 0;
        let err = Mesh::start_on_socket(cfg, bind().0).unwrap_err();
        assert!(err.to_string().contains("appears twice"), "{err}");

        let mut cfg = c.config(0, SPEC, 1024);
        cfg.peers[1].transport_key = cfg.peers[0].transport_key;
        assert!(Mesh::start_on_socket(cfg, bind().0).is_err());

        let cfg = c.config(0, SPEC, 0);
        assert!(Mesh::start_on_socket(cfg, bind().0).is_err());
    })
    .await;
}

#[tokio::test]
async fn peers_join_and_leave_while_the_mesh_runs() {
    with_deadline(30, async {
        let mut c = Committee::new(3);
        // Nodes 0 and 1 know only each other; node 2 (a newcomer) knows everyone.
        let both = c.peers[..2].to_vec();
        let start = |c: &mut Committee, i: usize, peers: Vec<PeerInfo>| {
            let socket = c.sockets[i].take().unwrap();
            let cfg = MeshConfig {
                peers,
                ..c.config(i, SPEC, crate::net::MAX_MESSAGE_BYTES)
            };
            Mesh::start_on_socket(cfg, socket).unwrap()
        };
        let (m0, mut rx0) = start(&mut c, 0, both.clone());
        let (m1, _rx1) = start(&mut c, 1, both.clone());
        let all = c.peers.clone();
        let (m2, _rx2) = start(&mut c, 2, all);
        m2.send(0, b"let me in".to_vec());
        assert_silent(&mut rx0, Duration::from_millis(600)).await;
        assert!(
            m2.stats().handshake_refused > 0,
            "an unknown key is refused"
        );
        // Node 0 learns of node 2 (it registered): both directions open.
        m0.set_peers(c.peers.clone()).unwrap();
        wait_until("node 0 dials node 2", || m0.connected_peers() == vec![1, 2]).await;
        m2.send(0, b"hello".to_vec());
        let got = loop {
            let m = recv(&mut rx0).await;
            if m.payload == b"hello" {
                break m;
            }
        };
        assert_eq!(got.from, 2);
        // And forgets it again: its connection is closed and its messages are dropped.
        m0.set_peers(both).unwrap();
        wait_until("node 0 drops node 2", || m0.connected_peers() == vec![1]).await;
        m2.send(0, b"still there?".to_vec());
        assert_silent(&mut rx0, Duration::from_millis(600)).await;
        // A peer list naming one key twice is refused as a whole.
        let mut twice = c.peers.clone();
        twice[2].transport_key = twice[1].transport_key;
        assert!(m0.set_peers(twice).is_err());
        for m in [m0, m1, m2] {
            m.shutdown().await;
        }
    })
    .await;
}

#[tokio::test]
async fn dropping_the_last_handle_stops_the_mesh() {
    with_deadline(10, async {
        let mut c = Committee::new(2);
        let (m0, _rx0) = c.start(0);
        let (m1, mut rx1) = c.start(1);
        wait_until("connection", || m0.connected_peers() == vec![1]).await;
        let m0_clone = m0.clone();
        drop(m0);
        // A clone keeps it alive.
        m0_clone.send(1, b"still here".to_vec());
        assert_eq!(recv(&mut rx1).await, msg(0, b"still here"));
        drop(m0_clone);
        wait_until("node 1 to notice", || m1.connected_peers().is_empty()).await;
        m1.shutdown().await;
    })
    .await;
}

#[test]
fn start_outside_a_runtime_is_an_error() {
    let mut c = Committee::new(2);
    let socket = c.sockets[0].take().unwrap();
    let err = Mesh::start_on_socket(c.config(0, SPEC, 1024), socket).unwrap_err();
    assert!(matches!(err, crate::net::NetError::NoRuntime), "{err}");
}
