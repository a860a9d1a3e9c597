//! Send queues: bounded in messages and bytes, and cut when a peer reads nothing.

use super::*;

#[tokio::test]
async fn full_send_queue_drops_and_counts() {
    with_deadline(10, async {
        let mut c = Committee::new(2);
        let (m0, _rx0) = c.start(0);
        // Node 1 never starts, so nothing drains node 0's queue.
        let extra = 10;
        for i in 0..crate::net::mesh::PEER_QUEUE_CAPACITY + extra {
            m0.send(1, (i as u32).to_be_bytes().to_vec());
        }
        // The dialler holds at most one message outside the queue.
        let dropped = m0.stats().dropped_queue_full;
        assert!(
            (extra as u64 - 1..=extra as u64).contains(&dropped),
            "dropped {dropped}"
        );
        m0.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn send_queue_is_bounded_in_bytes() {
    with_deadline(20, async {
        const MAX: usize = 64 * 1024;
        let mut c = Committee::new(2);
        let (m0, _rx0) = c.start_with(0, SPEC, MAX);
        // Node 1 is down: nothing drains node 0's queue. Twenty near-maximal messages are far
        // below the queue's 1,024 messages, but only two fit its byte budget.
        assert_eq!(crate::net::mesh::queue_budget(MAX), 2 * MAX);
        for i in 0..20u8 {
            m0.send(1, vec![i; MAX - 100]);
        }
        assert_eq!(m0.stats().dropped_queue_full, 18);
        let (_m1, mut rx1) = c.start_with(1, SPEC, MAX);
        // One stream per message: the two may arrive in either order.
        let mut got = Vec::new();
        for _ in 0..2 {
            let m = recv(&mut rx1).await;
            assert_eq!((m.from, m.payload.len()), (0, MAX - 100));
            got.push(m.payload[0]);
        }
        got.sort_unstable();
        assert_eq!(got, vec![0, 1], "the first two messages, not later ones");
        // Delivered messages give their bytes back.
        wait_until("the queue to drain", || m0.stats().messages_sent == 2).await;
        m0.send(1, vec![7; MAX]);
        let m = recv(&mut rx1).await;
        assert_eq!((m.from, m.payload.len(), m.payload[0]), (0, MAX, 7));
        assert_eq!(m0.stats().dropped_queue_full, 18);
        m0.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn a_peer_that_reads_nothing_is_cut_and_reported() {
    with_deadline(40, async {
        let mut c = Committee::new(2);
        // Node 1's address is held by a listener that accepts node 0 and grants no stream.
        drop(c.sockets[1].take());
        let silent = crate::net::raw::SilentListener::start(
            &c.ids[1],
            SPEC,
            c.peers[1].endpoint,
            &[c.peers[0].transport_key],
        )
        .unwrap();
        let (m0, _rx0) = c.start(0);
        wait_until("node 0 to connect", || m0.connected_peers() == vec![1]).await;
        assert_eq!(silent.open_connections(), 1);
        let started = std::time::Instant::now();
        m0.send(1, b"never read".to_vec());
        let deadline = crate::net::mesh::WRITE_STALL_TIMEOUT + Duration::from_secs(10);
        while m0.stats().stalled_writes == 0 {
            assert!(
                started.elapsed() < deadline,
                "the stalled write was never cut"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(started.elapsed() >= crate::net::mesh::WRITE_STALL_TIMEOUT);
        let reports = m0.take_reports();
        assert_eq!(reports.len(), 1, "{reports:?}");
        assert_eq!((reports[0].0, reports[0].1.stalled), (1, 1));
        m0.shutdown().await;
    })
    .await;
}
