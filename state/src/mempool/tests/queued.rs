//! Transactions ahead of their sender's nonce: limits, displacement, expiry, promotion.

use super::*;

#[test]
fn queued_transactions_cannot_lock_out_pending_ones() {
    // The attack, scaled down: funded accounts each pool high-tip transactions above an
    // empty nonce until the pool is full. None of them can execute, so none ever pays.
    let attackers: Vec<_> = (0..4).map(key).collect();
    let s = Accounts::default();
    let mut p = Mempool::new(MempoolConfig {
        max_per_sender: 4,
        max_total: 16,
        max_queued: 16,
        ..Default::default()
    });
    for k in &attackers {
        for n in 1..=4 {
            p.insert(dyn_tx(k, n, 1000, 100), &s, BASE).unwrap();
        }
    }
    assert_eq!((p.len(), p.queued()), (16, 16));
    assert!(p.best(&s, BASE, GAS_LIMIT).is_empty());
    // An honest transaction paying far less still gets in: a queued tail goes first,
    // whatever it pays (ties: the lowest sender address).
    let honest = key(10);
    let h0 = dyn_tx(&honest, 0, 10, 1);
    assert_eq!(p.insert(h0.clone(), &s, BASE), Ok(Inserted::New));
    let lowest = attackers.iter().min_by_key(|k| k.address()).unwrap();
    assert!(!p.contains(&dyn_tx(lowest, 4, 1000, 100).hash));
    assert_eq!((p.len(), p.queued()), (16, 15));
    // So do its next nonces and other honest senders, until no queued transaction is left.
    for n in 1..4 {
        p.insert(dyn_tx(&honest, n, 10, 1), &s, BASE).unwrap();
    }
    for i in 11..23 {
        p.insert(dyn_tx(&key(i), 0, 10, 1), &s, BASE).unwrap();
    }
    assert_eq!((p.len(), p.queued()), (16, 0));
    assert_eq!(p.best(&s, BASE, GAS_LIMIT).len(), 16);
    // Now a queued transaction cannot displace a pending one, however much it offers.
    assert_eq!(
        err(&mut p, dyn_tx(&attackers[0], 1, 1000, 500), &s),
        "txpool is full"
    );
}

#[test]
fn queued_transactions_only_displace_cheaper_queued_ones() {
    let (a, b, c, d) = (key(0), key(1), key(2), key(3));
    let s = Accounts::default();
    let mut p = Mempool::new(MempoolConfig {
        max_total: 2,
        ..Default::default()
    });
    let b0 = dyn_tx(&b, 0, 100, 1);
    let a1 = dyn_tx(&a, 1, 100, 5);
    p.insert(b0.clone(), &s, BASE).unwrap();
    p.insert(a1.clone(), &s, BASE).unwrap();
    // b0 is cheaper, but pending: the queued a1 goes.
    let c1 = dyn_tx(&c, 1, 100, 100);
    assert_eq!(p.insert(c1.clone(), &s, BASE), Ok(Inserted::New));
    assert!(p.contains(&b0.hash) && !p.contains(&a1.hash));
    // A queued transaction must pay more than the queued tail.
    assert_eq!(err(&mut p, dyn_tx(&d, 1, 100, 50), &s), "txpool is full");
    assert_eq!(err(&mut p, dyn_tx(&d, 1, 100, 100), &s), "txpool is full");
    // A pending one needs not: c1 goes for a transaction tipping nothing.
    assert_eq!(p.insert(dyn_tx(&d, 0, 100, 0), &s, BASE), Ok(Inserted::New));
    assert!(p.contains(&b0.hash) && !p.contains(&c1.hash));
    assert_eq!(p.queued(), 0);
}

#[test]
fn queued_limit() {
    const FULL: &str = "txpool is full: too many queued (nonce-gapped) transactions";
    let (a, b, c, s) = (key(0), key(1), key(2), Accounts::default());
    let mut p = Mempool::new(MempoolConfig {
        max_queued: 3,
        ..Default::default()
    });
    for n in 1..=3 {
        p.insert(dyn_tx(&a, n, 100, 5), &s, BASE).unwrap();
    }
    assert_eq!(p.queued(), 3);
    // a's own tail is below the new nonce, so it cannot make room.
    assert_eq!(err(&mut p, dyn_tx(&a, 4, 100, 50), &s), FULL);
    assert_eq!(
        p.insert(dyn_tx(&a, 4, 100, 50), &s, BASE).unwrap_err(),
        MempoolError::QueuedFull
    );
    // Another sender's queued transaction must pay more than the cheapest queued tail.
    assert_eq!(err(&mut p, dyn_tx(&b, 1, 100, 5), &s), FULL);
    let b1 = dyn_tx(&b, 1, 100, 6);
    assert_eq!(p.insert(b1.clone(), &s, BASE), Ok(Inserted::New));
    assert!(!p.contains(&dyn_tx(&a, 3, 100, 5).hash));
    assert_eq!((p.len(), p.queued()), (3, 3));
    // Replacing a queued transaction adds none.
    assert!(matches!(
        p.insert(dyn_tx(&b, 1, 200, 7), &s, BASE),
        Ok(Inserted::Replaced(_))
    ));
    // Pending transactions do not count.
    p.insert(dyn_tx(&c, 0, 100, 1), &s, BASE).unwrap();
    assert_eq!((p.len(), p.queued()), (4, 3));
    // Filling a's gap makes a1 and a2 pending, which frees room for queued ones.
    p.insert(dyn_tx(&a, 0, 100, 1), &s, BASE).unwrap();
    assert_eq!(p.queued(), 1);
    p.insert(dyn_tx(&a, 4, 100, 1), &s, BASE).unwrap();
    p.insert(dyn_tx(&c, 2, 100, 1), &s, BASE).unwrap();
    assert_eq!(p.queued(), 3);
    assert_eq!(err(&mut p, dyn_tx(&c, 3, 100, 1), &s), FULL);
    assert_eq!(p.stats().queued, 3);
}

#[test]
fn old_transactions_expire_with_their_successors() {
    let (a, b, mut s, mut p) = (key(0), key(1), Accounts::default(), pool());
    let t0 = Instant::now();
    let (hour, sec) = (Duration::from_secs(3600), Duration::from_secs(1));
    let a0 = dyn_tx(&a, 0, 10, 1);
    let a1 = dyn_tx(&a, 1, 10, 1);
    let a2 = dyn_tx(&a, 2, 10, 1);
    let b0 = dyn_tx(&b, 0, 10, 1);
    let b1 = dyn_tx(&b, 1, 10, 1);
    p.insert_at(a1.clone(), &s, BASE, t0).unwrap();
    p.insert_at(b0.clone(), &s, BASE, t0 + hour).unwrap();
    for t in [&a0, &a2, &b1] {
        p.insert_at(t.clone(), &s, BASE, t0 + 2 * hour).unwrap();
    }
    // Exactly the maximum age is not older than it.
    assert_eq!(p.prune_at(&s, t0 + 3 * hour), 0);
    assert_eq!(p.prune(&s), 0);
    // a1 expires and takes a2, young as it is, along (it could not execute without a1);
    // a0 stays.
    assert_eq!(p.prune_at(&s, t0 + 3 * hour + sec), 2);
    assert!(p.contains(&a0.hash) && !p.contains(&a1.hash) && !p.contains(&a2.hash));
    assert_eq!(p.next_nonce(a.address(), 0), 1);
    // The chain took b0 (stale, dropped); b1 and a0 are two hours old.
    s.set_nonce(&b, 1);
    assert_eq!(p.prune_at(&s, t0 + 4 * hour), 1);
    assert!(p.contains(&a0.hash) && p.contains(&b1.hash) && !p.contains(&b0.hash));
    // A replacement is a new transaction, with a new insertion time.
    let a0b = dyn_tx(&a, 0, 20, 2);
    assert_eq!(
        p.insert_at(a0b.clone(), &s, BASE, t0 + 5 * hour),
        Ok(Inserted::Replaced(a0.hash))
    );
    assert_eq!(p.prune_at(&s, t0 + 6 * hour), 1);
    assert!(p.contains(&a0b.hash) && !p.contains(&b1.hash));
    assert_eq!((p.len(), p.senders(), p.queued()), (1, 1, 0));
}

#[test]
fn a_filled_gap_makes_queued_transactions_pending() {
    let (a, b, c, mut s) = (key(0), key(1), key(2), Accounts::default());
    let mut p = Mempool::new(MempoolConfig {
        max_total: 3,
        ..Default::default()
    });
    let a1 = dyn_tx(&a, 1, 100, 50);
    let b0 = dyn_tx(&b, 0, 100, 10);
    p.insert(a1.clone(), &s, BASE).unwrap();
    p.insert(b0.clone(), &s, BASE).unwrap();
    assert_eq!(p.queued(), 1);
    // The gap filled in the pool: a1 is pending and its tip protects it like any other.
    p.insert(dyn_tx(&a, 0, 100, 50), &s, BASE).unwrap();
    assert_eq!(p.queued(), 0);
    assert_eq!(err(&mut p, dyn_tx(&c, 0, 100, 1), &s), "txpool is full");
    assert_eq!(
        p.insert(dyn_tx(&c, 0, 100, 20), &s, BASE),
        Ok(Inserted::New)
    );
    assert!(p.contains(&a1.hash) && !p.contains(&b0.hash));

    // The gap filled by the chain (a0 included from elsewhere) before any prune: the
    // eviction judges a by the state's nonce, not the one the pool last read.
    let mut p = Mempool::new(MempoolConfig {
        max_total: 2,
        ..Default::default()
    });
    p.insert(a1.clone(), &s, BASE).unwrap();
    p.insert(b0.clone(), &s, BASE).unwrap();
    assert_eq!(p.queued(), 1);
    s.set_nonce(&a, 1);
    assert_eq!(err(&mut p, dyn_tx(&c, 0, 100, 1), &s), "txpool is full");
    assert_eq!(p.queued(), 0);
    assert_eq!(
        p.insert(dyn_tx(&c, 0, 100, 20), &s, BASE),
        Ok(Inserted::New)
    );
    assert!(p.contains(&a1.hash) && !p.contains(&b0.hash));
    // And the other way: a sender's nonce moved past its whole pooled run, whose stale
    // transactions go before anything is evicted.
    s.set_nonce(&b, 0);
    s.set_nonce(&c, 1);
    assert_eq!(p.insert(b0.clone(), &s, BASE), Ok(Inserted::New));
    assert!(p.contains(&a1.hash) && p.contains(&b0.hash));
    assert_eq!(p.len(), 2);
}
