//! Which transactions leave first: eviction, `best` order and packing, pruning after a block, lookups.

use super::*;

#[test]
fn eviction_never_leaves_a_gap() {
    let (a, b, c, d) = (key(0), key(1), key(2), key(3));
    let s = Accounts::default();
    let mut p = Mempool::new(MempoolConfig {
        max_total: 3,
        ..Default::default()
    });
    let a0 = dyn_tx(&a, 0, 100, 1);
    let a1 = dyn_tx(&a, 1, 100, 5);
    let b0 = dyn_tx(&b, 0, 100, 3);
    for t in [&a0, &a1, &b0] {
        p.insert(t.clone(), &s, BASE).unwrap();
    }
    // a0 is the cheapest, but evicting it would strand a1: b0 goes instead.
    assert_eq!(p.insert(dyn_tx(&c, 0, 100, 4), &s, BASE), Ok(Inserted::New));
    assert!(p.contains(&a0.hash) && p.contains(&a1.hash) && !p.contains(&b0.hash));
    assert_eq!(p.len(), 3);
    // The cheapest tail now pays 4: a transaction paying 2 or 4 gets nothing.
    assert_eq!(err(&mut p, dyn_tx(&d, 0, 100, 2), &s), "txpool is full");
    assert_eq!(err(&mut p, dyn_tx(&d, 0, 100, 4), &s), "txpool is full");
    // A sender's own tail is never evicted for a later nonce of the same sender: c1 would
    // be left above a gap. a0 pays more than c1, so nothing can go.
    let mut p = Mempool::new(MempoolConfig {
        max_total: 2,
        ..Default::default()
    });
    p.insert(dyn_tx(&c, 0, 100, 1), &s, BASE).unwrap();
    p.insert(dyn_tx(&a, 0, 100, 10), &s, BASE).unwrap();
    assert_eq!(err(&mut p, dyn_tx(&c, 1, 100, 5), &s), "txpool is full");
    // ... but it can be for an earlier one (nonce 0 fills the gap below nonce 1; d1 is
    // queued, so it goes whatever it pays).
    let mut p = Mempool::new(MempoolConfig {
        max_total: 1,
        ..Default::default()
    });
    let d1 = dyn_tx(&d, 1, 100, 1);
    p.insert(d1.clone(), &s, BASE).unwrap();
    assert_eq!(p.insert(dyn_tx(&d, 0, 100, 2), &s, BASE), Ok(Inserted::New));
    assert!(!p.contains(&d1.hash));
    assert_eq!(p.next_nonce(d.address(), 0), 1);
}

#[test]
fn eviction_ranks_by_the_tip_at_the_base_fee() {
    let (a, b, s) = (key(0), key(1), Accounts::default());
    let mut p = Mempool::new(MempoolConfig {
        max_total: 1,
        ..Default::default()
    });
    // Tip cap 2 gwei (above the newcomer's 1) but a fee cap below the base fee: it pays
    // nothing now.
    let a0 = dyn_tx(&a, 0, 2, 2);
    p.insert(a0.clone(), &s, 3 * BASE).unwrap();
    assert_eq!(
        p.insert(dyn_tx(&b, 0, 10, 1), &s, 3 * BASE),
        Ok(Inserted::New)
    );
    assert!(!p.contains(&a0.hash));
}

#[test]
fn best_orders_nonces_per_sender() {
    let (a, s, mut p) = (key(0), Accounts::default(), pool());
    for n in [2, 0, 1] {
        p.insert(dyn_tx(&a, n, 10, n as u128 + 1), &s, BASE)
            .unwrap();
    }
    let best = p.best(&s, BASE, GAS_LIMIT);
    assert_eq!(order(&best, &[&a]), [(0, 0), (0, 1), (0, 2)]);
}

#[test]
fn a_nonce_gap_ends_the_run() {
    let (a, b, mut s, mut p) = (key(0), key(1), Accounts::default(), pool());
    for n in [0, 1, 3, 4] {
        p.insert(dyn_tx(&a, n, 10, 1), &s, BASE).unwrap();
    }
    p.insert(dyn_tx(&b, 1, 10, 1), &s, BASE).unwrap();
    let best = p.best(&s, BASE, GAS_LIMIT);
    // b has nothing at its account nonce 0.
    assert_eq!(order(&best, &[&a, &b]), [(0, 0), (0, 1)]);
    assert_eq!(p.next_nonce(a.address(), 0), 2);
    assert_eq!(p.next_nonce(b.address(), 0), 0);
    assert_eq!(p.next_nonce(b.address(), 1), 2);
    // Once the chain moves a to nonce 3, its run continues there.
    s.set_nonce(&a, 3);
    let best = p.best(&s, BASE, GAS_LIMIT);
    assert_eq!(order(&best, &[&a, &b]), [(0, 3), (0, 4)]);
    assert_eq!(p.next_nonce(a.address(), 3), 5);
}

#[test]
fn best_interleaves_senders_by_tip() {
    let (a, b, c) = (key(0), key(1), key(2));
    let (s, mut p) = (Accounts::default(), pool());
    p.insert(dyn_tx(&a, 0, 100, 1), &s, BASE).unwrap();
    p.insert(dyn_tx(&a, 1, 100, 10), &s, BASE).unwrap();
    p.insert(dyn_tx(&b, 0, 100, 5), &s, BASE).unwrap();
    p.insert(dyn_tx(&c, 0, 200, 3), &s, BASE).unwrap();
    p.insert(legacy_tx(&c, 1, 21_000, 5 * GWEI), &s, BASE)
        .unwrap();
    // c1's legacy price of 5 gwei tips 4 at a 1 gwei base fee; a1 (tip 10) waits for a0.
    let best = p.best(&s, BASE, GAS_LIMIT);
    assert_eq!(
        order(&best, &[&a, &b, &c]),
        [(1, 0), (2, 0), (2, 1), (0, 0), (0, 1)]
    );
    // At a 98 gwei base fee the fee caps bind: a1 and b0 tip 2, c0 still 3, and c1's
    // gas price is below the base fee, which ends c's run.
    let best = p.best(&s, 98 * BASE, GAS_LIMIT);
    assert_eq!(
        order(&best, &[&a, &b, &c]),
        [(2, 0), (1, 0), (0, 0), (0, 1)]
    );
}

#[test]
fn best_skips_senders_below_the_base_fee() {
    let (a, b) = (key(0), key(1));
    let (s, mut p) = (Accounts::default(), pool());
    p.insert(dyn_tx(&a, 0, 2, 1), &s, BASE).unwrap();
    p.insert(dyn_tx(&a, 1, 100, 50), &s, BASE).unwrap();
    p.insert(dyn_tx(&b, 0, 100, 1), &s, BASE).unwrap();
    let best = p.best(&s, 3 * BASE, GAS_LIMIT);
    assert_eq!(order(&best, &[&a, &b]), [(1, 0)]);
}

#[test]
fn best_ties_go_to_the_one_pooled_first_then_the_lower_address() {
    let keys: Vec<_> = (0..5).map(key).collect();
    let (s, mut p) = (Accounts::default(), pool());
    let t0 = Instant::now();
    // Pooled at the same instant: by address, whatever the insertion order.
    for k in keys.iter().rev() {
        p.insert_at(dyn_tx(k, 0, 10, 2), &s, BASE, t0).unwrap();
    }
    let best = p.best(&s, BASE, GAS_LIMIT);
    let senders: Vec<Address> = best.iter().map(|t| t.sender).collect();
    let mut sorted = senders.clone();
    sorted.sort();
    assert_eq!(senders, sorted);
    assert_eq!(senders.len(), 5);
    assert_eq!(best, p.best(&s, BASE, GAS_LIMIT));

    // Pooled one after the other, highest address first: first seen, first offered, so a
    // high address does not wait behind every later sender with a lower one.
    let mut by_address: Vec<_> = (5..10).map(key).collect();
    by_address.sort_by_key(|k| std::cmp::Reverse(k.address()));
    let (s, mut p) = (Accounts::default(), pool());
    for (i, k) in by_address.iter().enumerate() {
        let at = t0 + std::time::Duration::from_millis(i as u64);
        p.insert_at(dyn_tx(k, 0, 10, 2), &s, BASE, at).unwrap();
    }
    let offered: Vec<Address> = p
        .best(&s, BASE, GAS_LIMIT)
        .iter()
        .map(|t| t.sender)
        .collect();
    let arrival: Vec<Address> = by_address.iter().map(|k| k.address()).collect();
    assert_eq!(offered, arrival);
    // A higher tip still goes first, however late.
    let late = key(10);
    p.insert_at(
        dyn_tx(&late, 0, 10, 3),
        &s,
        BASE,
        t0 + std::time::Duration::from_secs(1),
    )
    .unwrap();
    assert_eq!(p.best(&s, BASE, GAS_LIMIT)[0].sender, late.address());
}

#[test]
fn best_offers_what_a_block_could_hold_and_execution_decides() {
    let (a, b, c, d) = (key(0), key(1), key(2), key(3));
    let (s, mut p) = (Accounts::default(), pool());
    let t = |k, gas, tip| dyn_tx_full(k, 0, gas, 100 * GWEI, tip * GWEI, U256::ZERO);
    p.insert(t(&a, 60_000, 10), &s, BASE).unwrap();
    p.insert(t(&b, 50_000, 9), &s, BASE).unwrap();
    p.insert(t(&c, 30_000, 8), &s, BASE).unwrap();
    p.insert(t(&d, 21_000, 7), &s, BASE).unwrap();
    // Limits sum to 161,000 but each uses at least 21,000: 100,000 gas may hold four of them
    // (execution decides on the gas used), so all four are offered, by tip.
    let best = p.best(&s, BASE, 100_000);
    assert_eq!(
        order(&best, &[&a, &b, &c, &d]),
        [(0, 0), (1, 0), (2, 0), (3, 0)]
    );
    // No block of 63,000 gas holds more than three transactions.
    let best = p.best(&s, BASE, 63_000);
    assert_eq!(order(&best, &[&a, &b, &c, &d]), [(0, 0), (1, 0), (2, 0)]);
    // A head over the whole block's gas is passed over with its sender's later nonces.
    let mut p = pool();
    p.insert(t(&a, 90_000, 10), &s, BASE).unwrap();
    p.insert(dyn_tx(&a, 1, 100, 20), &s, BASE).unwrap();
    p.insert(t(&b, 30_000, 1), &s, BASE).unwrap();
    let best = p.best(&s, BASE, 100_000);
    assert_eq!(order(&best, &[&a, &b]), [(0, 0), (0, 1), (1, 0)]);
    let best = p.best(&s, BASE, 80_000);
    assert_eq!(order(&best, &[&a, &b]), [(1, 0)]);
}

#[test]
fn prune_and_remove_after_a_block() {
    let (a, b, mut s, mut p) = (key(0), key(1), Accounts::default(), pool());
    let a_txs: Vec<_> = (0..3).map(|n| dyn_tx(&a, n, 10, 1)).collect();
    for t in &a_txs {
        p.insert(t.clone(), &s, BASE).unwrap();
    }
    let b0 = dyn_tx(&b, 0, 10, 1);
    p.insert(b0.clone(), &s, BASE).unwrap();
    // A block includes a0 and a1 (and b0 by a different transaction with nonce 0).
    assert_eq!(
        p.remove_included(&[a_txs[0].hash, a_txs[1].hash, B256::ZERO]),
        2
    );
    s.set_nonce(&a, 2);
    s.set_nonce(&b, 1);
    assert_eq!(p.prune(&s), 1);
    assert!(!p.contains(&b0.hash));
    assert_eq!(p.len(), 1);
    assert_eq!(p.senders(), 1);
    assert_eq!(order(&p.best(&s, BASE, GAS_LIMIT), &[&a]), [(0, 2)]);
    // Pruning without removing first works as well.
    s.set_nonce(&a, 3);
    assert_eq!(p.prune(&s), 1);
    assert!(p.is_empty());
    assert_eq!(p.senders(), 0);
}

#[test]
fn lookups_and_stats() {
    let (a, b, s, mut p) = (key(0), key(1), Accounts::default(), pool());
    let txs = [
        dyn_tx(&a, 0, 10, 1),
        dyn_tx(&a, 1, 10, 1),
        dyn_tx(&b, 0, 10, 1),
    ];
    for t in &txs[..2] {
        p.insert(t.clone(), &s, BASE).unwrap();
    }
    let hashes = [txs[0].hash, txs[2].hash, txs[1].hash];
    assert_eq!(p.take_missing(&hashes), [txs[2].hash]);
    assert_eq!(
        p.by_hashes(&hashes),
        [Some(txs[0].clone()), None, Some(txs[1].clone())]
    );
    p.insert(txs[2].clone(), &s, BASE).unwrap();
    assert!(p.take_missing(&hashes).is_empty());
    assert_eq!(
        p.stats(),
        MempoolStats {
            total: 3,
            senders: 2,
            max_per_sender: 2,
            queued: 0,
        }
    );
    assert_eq!(Mempool::default().stats(), MempoolStats::default());
}

#[test]
fn included_transactions_are_known_without_being_pooled_and_refused_ones_are_forgotten() {
    let (a, b, s, mut p) = (key(0), key(1), Accounts::default(), pool());
    let pooled = dyn_tx(&a, 0, 10, 1);
    let refused = dyn_tx(&a, 1, 10, 1);
    let elsewhere = dyn_tx(&b, 0, 10, 1);
    p.insert(pooled.clone(), &s, BASE).unwrap();
    p.insert(refused.clone(), &s, BASE).unwrap();
    assert!(p.knows(&pooled.hash) && p.knows(&refused.hash));
    assert!(!p.knows(&elsewhere.hash));
    // A block includes `pooled` and `elsewhere` (which reached the leader only); execution
    // refused `refused`.
    assert_eq!(p.remove_included(&[pooled.hash, elsewhere.hash]), 1);
    assert_eq!(p.remove_rejected(&[refused.hash]), 1);
    assert!(p.is_empty());
    assert!(p.knows(&pooled.hash), "included, no longer pooled");
    assert!(p.knows(&elsewhere.hash), "included, never pooled here");
    assert!(
        !p.knows(&refused.hash),
        "a refused transaction may be valid later"
    );
    // The memory is bounded: the oldest hashes go first.
    let later: Vec<B256> = (0..RECENTLY_INCLUDED as u64)
        .map(|i| B256::left_padding_from(&i.to_be_bytes()))
        .collect();
    p.remove_included(&later[..RECENTLY_INCLUDED - 2]);
    assert!(p.knows(&pooled.hash) && p.knows(&elsewhere.hash));
    p.remove_included(&later[RECENTLY_INCLUDED - 2..RECENTLY_INCLUDED - 1]);
    assert!(!p.knows(&pooled.hash), "the oldest hash is forgotten first");
    assert!(p.knows(&elsewhere.hash));
    // Seen twice, remembered once.
    p.remove_included(&[elsewhere.hash]);
    p.remove_included(&[B256::repeat_byte(0xee)]);
    assert!(!p.knows(&elsewhere.hash));
    assert!(p.knows(&later[1]));
}
