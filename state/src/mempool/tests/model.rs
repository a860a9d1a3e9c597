//! Index invariants under random operations (proptest).

use super::*;

/// The transactions queued by the account nonces in `s`.
fn queued_by_state(p: &Mempool, s: &Accounts) -> HashSet<B256> {
    let mut out = HashSet::new();
    for (sender, st) in &p.by_sender {
        let run = p.next_nonce(*sender, s.nonce_and_balance(*sender).0);
        out.extend(st.nonces.range(run..).map(|(_, h)| *h));
    }
    out
}

/// Index consistency: every pooled transaction is indexed under its sender and nonce and
/// nothing else is, and the queued counts agree with `s` (which the pool has read since it
/// last changed: every nonce is at least the account's).
fn check_invariants(p: &Mempool, s: &Accounts) {
    let cfg = p.config();
    assert!(p.len() <= cfg.max_total);
    let mut seen = 0;
    let mut queued = 0;
    for (sender, st) in &p.by_sender {
        assert!(!st.nonces.is_empty());
        assert!(st.nonces.len() <= cfg.max_per_sender);
        assert_eq!(st.base, s.nonce_and_balance(*sender).0);
        for (n, h) in &st.nonces {
            let t = &p.txs[h].tx;
            assert_eq!((t.sender, t.nonce()), (*sender, *n));
            assert!(*n >= st.base);
        }
        seen += st.nonces.len();
        queued += st.queued;
    }
    assert_eq!(seen, p.len());
    assert_eq!(queued, p.queued());
    assert_eq!(queued_by_state(p, s).len(), p.queued());
}

#[derive(Debug, Clone)]
enum Op {
    Insert {
        sender: usize,
        nonce: u64,
        fee: u128,
        tip: u128,
        gas: u64,
    },
    /// The chain moved this sender's nonce by a transaction the pool never saw.
    Advance { sender: usize, by: u64 },
    /// A block included the first `take` of `best`.
    Block { take: usize },
    /// Time passed, then the pool was pruned.
    Wait { secs: u64 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (0..4usize, prop_oneof![3 => 0..2u64, 1 => 0..8u64], 1..6u128, 0..5u128, 0..3u64).prop_map(
            |(sender, nonce, fee, tip, gas)| Op::Insert {
                sender,
                nonce,
                fee,
                tip,
                gas: 21_000 + gas * 20_000,
            }
        ),
        1 => (0..4usize, 1..3u64).prop_map(|(sender, by)| Op::Advance { sender, by }),
        1 => (0..4usize).prop_map(|take| Op::Block { take }),
        1 => (0..8u64).prop_map(|secs| Op::Wait { secs }),
    ]
}

proptest! {
       #![proptest_config(ProptestConfig::with_cases(128))]

       #[test]
       fn random_inserts_keep_limits_and_best_is_contiguous(
           ops in proptest::collection::vec(op(), 1..40),
           base in 1..4u64,
           block_gas in 21_000..200_000u64,
       ) {
           let keys: Vec<_> = (0..4).map(key).collect();
           let mut s = Accounts::default();
           let cfg = MempoolConfig {
               max_per_sender: 3,
               max_total: 7,
               price_bump_percent: 10,
               max_nonce_gap: 5,
               max_queued: 2,
               max_age: Duration::from_secs(10),
           };
           let mut p = Mempool::new(cfg);
           let mut now = Instant::now();
           let rank = |t: &SignedTx| eviction_rank(t, base * BASE);
           for op in ops {
               match op {
                   Op::Insert { sender, nonce, fee, tip, gas } => {
                       let k = &keys[sender];
                       let next = s.nonce_and_balance(k.address()).0;
                       let t = dyn_tx_full(k, next + nonce, gas, fee * GWEI, tip * GWEI, U256::ZERO);
                       let before = p.len();
                       let snapshot_txs = p.txs.clone();
                       let snapshot: Vec<B256> = snapshot_txs.keys().copied().collect();
                       let queued_before = queued_by_state(&p, &s);
                       let incoming_queued = t.nonce() > p.next_nonce(t.sender, next);
                       // The tails that could make room, and whether each is queued.
                       let tails: Vec<(B256, bool)> = p
                           .by_sender
                           .iter()
                           .filter_map(|(a, st)| {
                               let (n, h) = st.nonces.last_key_value()?;
                               (*a != t.sender || t.nonce() < *n)
                                   .then(|| (*h, queued_before.contains(h)))
                           })
                           .collect();
                       let cheaper_queued_tail = tails
                           .iter()
                           .any(|(h, q)| *q && rank(&snapshot_txs[h].tx) < rank(&t));
                       match p.insert_at(t.clone(), &s, base * BASE, now) {
                           Ok(Inserted::New) => {
                               prop_assert!(p.contains(&t.hash));
                               prop_assert!(p.len() == before + 1 || p.len() == before);
                               let gone: Vec<&B256> =
                                   snapshot.iter().filter(|h| !p.contains(h)).collect();
                               prop_assert!(gone.len() <= 1);
                               for h in gone {
                                   // An eviction took a tail: nothing of its sender is above it.
                                   let gone = &snapshot_txs[h].tx;
                                   let above = p.by_sender.get(&gone.sender).and_then(|st| {
                                       st.nonces.range(gone.nonce() + 1..).next()
                                   });
                                   prop_assert!(above.is_none(), "eviction left a gap");
                                   if incoming_queued {
                                       // Only a cheaper queued tail makes room for a queued one.
                                       prop_assert!(queued_before.contains(h));
                                       prop_assert!(rank(gone) < rank(&t));
                                   } else if !queued_before.contains(h) {
                                       // A pending tail goes only when no queued one can,
                                       // and only for a transaction paying more.
                                       prop_assert!(tails.iter().all(|(_, q)| !q));
                                       prop_assert!(rank(gone) < rank(&t));
                                   }
                               }
                           }
                           Ok(Inserted::Replaced(old)) => {
                               prop_assert!(!p.contains(&old));
                               prop_assert_eq!(p.len(), before);
                           }
                           Err(e) => {
                               prop_assert_eq!(p.len(), before);
                               match e {
                                   MempoolError::QueuedFull => {
                                       prop_assert!(incoming_queued);
                                       prop_assert_eq!(queued_before.len(), cfg.max_queued);
                                       prop_assert!(!cheaper_queued_tail);
                                   }
                                   MempoolError::PoolFull => {
                                       prop_assert_eq!(before, cfg.max_total);
                                       prop_assert!(!cheaper_queued_tail);
                                       if !incoming_queued {
                                           // No queued tail at all, and every pending one
                                           // pays at least as much.
                                           for (h, q) in &tails {
                                               prop_assert!(!q);
                                               prop_assert!(rank(&snapshot_txs[h].tx) >= rank(&t));
                                           }
                                       }
                                   }
                                   _ => {}
                               }
                           }
                       }
                   }
                   Op::Advance { sender, by } => {
                       let k = &keys[sender];
                       let next = s.nonce_and_balance(k.address()).0;
                       s.set_nonce(k, next + by);
                       p.prune_at(&s, now);
                   }
                   Op::Block { take } => {
                       let best = p.best(&s, base * BASE, GAS_LIMIT);
                       let included: Vec<B256> = best.iter().take(take).map(|t| t.hash).collect();
                       for t in best.iter().take(take) {
                           let (next, balance) = s.nonce_and_balance(t.sender);
                           prop_assert_eq!(t.nonce(), next);
                           s.0.insert(t.sender, (next + 1, balance));
                       }
                       prop_assert_eq!(p.remove_included(&included), included.len());
                       prop_assert_eq!(p.prune_at(&s, now), 0);
                   }
                   Op::Wait { secs } => {
                       now += Duration::from_secs(secs);
                       let snapshot_txs = p.txs.clone();
                       let dropped = p.prune_at(&s, now);
                       prop_assert_eq!(p.len() + dropped, snapshot_txs.len());
                       let old = |h: &B256| now.saturating_duration_since(snapshot_txs[h].added) > cfg.max_age;
                       for (h, pooled) in &snapshot_txs {
                           let t = &pooled.tx;
                           if p.contains(h) {
                               prop_assert!(!old(h));
                               continue;
                           }
                           // Dropped: it or an earlier nonce of its sender was too old, and
                           // nothing of its sender is left above it.
                           let expired = snapshot_txs.iter().any(|(g, q)| {
                               q.tx.sender == t.sender && q.tx.nonce() <= t.nonce() && old(g)
                           });
prop_assert!(expired);
                           let above = p.by_sender.get(&t.sender).and_then(|st| {
                               st.nonces.range(t.nonce() + 1..).next()
                           });
                           prop_assert!(above.is_none(), "expiry left a gap");
                       }
                   }
               }
               check_invariants(&p, &s);
               prop_assert!(p.queued() <= cfg.max_queued);

               let best = p.best(&s, base * BASE, block_gas);
               prop_assert!(best.len() as u64 * 21_000 <= block_gas);
               prop_assert!(best.iter().all(|t| t.gas_limit() <= block_gas));
               let hashes: HashSet<B256> = best.iter().map(|t| t.hash).collect();
               prop_assert_eq!(hashes.len(), best.len());
               let mut expect: HashMap<Address, u64> = HashMap::new();
               for t in &best {
                   prop_assert!(p.contains(&t.hash));
                   prop_assert!(t.effective_tip(base * BASE).is_some());
                   let want = expect
                       .entry(t.sender)
                       .or_insert_with(|| s.nonce_and_balance(t.sender).0);
                   prop_assert_eq!(t.nonce(), *want);
                   *want += 1;
               }
           }
       }
   }
