use super::*;
use alloy_consensus::{SignableTransaction, Signed, TxEip1559, TxEnvelope, TxLegacy};
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{Bytes, Signature, TxKind};
use alloy_signer::SignerSync;
use alloy_signer_local::PrivateKeySigner;
use proptest::prelude::*;
use std::collections::HashSet;

const CHAIN: u64 = 7;
const GWEI: u128 = 1_000_000_000;
const BASE: u64 = 1_000_000_000;

fn key(i: u8) -> PrivateKeySigner {
    PrivateKeySigner::from_bytes(&B256::repeat_byte(i + 1)).unwrap()
}

fn sign<T>(k: &PrivateKeySigner, tx: T) -> SignedTx
where
    T: SignableTransaction<Signature>,
    Signed<T>: Into<TxEnvelope>,
{
    let sig = k.sign_hash_sync(&tx.signature_hash()).unwrap();
    let env: TxEnvelope = tx.into_signed(sig).into();
    let raw = env.encoded_2718();
    let tx = SignedTx::decode(&raw, CHAIN).unwrap();
    assert_eq!(tx.sender, k.address());
    tx
}

/// An EIP-1559 transfer with `max_fee` and `tip` in gwei.
fn dyn_tx(k: &PrivateKeySigner, nonce: u64, max_fee: u128, tip: u128) -> SignedTx {
    dyn_tx_full(k, nonce, 21_000, max_fee * GWEI, tip * GWEI, U256::ZERO)
}

fn dyn_tx_full(
    k: &PrivateKeySigner,
    nonce: u64,
    gas: u64,
    max_fee: u128,
    tip: u128,
    value: U256,
) -> SignedTx {
    sign(
        k,
        TxEip1559 {
            chain_id: CHAIN,
            nonce,
            gas_limit: gas,
            max_fee_per_gas: max_fee,
            max_priority_fee_per_gas: tip,
            to: TxKind::Call(Address::repeat_byte(0xee)),
            value,
            ..Default::default()
        },
    )
}

/// A legacy (EIP-155) transfer with `gas_price` in wei.
fn legacy_tx(k: &PrivateKeySigner, nonce: u64, gas: u64, gas_price: u128) -> SignedTx {
    sign(
        k,
        TxLegacy {
            chain_id: Some(CHAIN),
            nonce,
            gas_price,
            gas_limit: gas,
            to: TxKind::Call(Address::repeat_byte(0xee)),
            value: U256::ZERO,
            input: Bytes::new(),
        },
    )
}

/// Accounts for tests: unknown ones have nonce 0 and a large balance.
#[derive(Default)]
struct Accounts(HashMap<Address, (u64, U256)>);

impl Accounts {
    fn set(&mut self, k: &PrivateKeySigner, nonce: u64, balance: U256) {
        self.0.insert(k.address(), (nonce, balance));
    }
    fn set_nonce(&mut self, k: &PrivateKeySigner, nonce: u64) {
        self.set(k, nonce, U256::from(10u128.pow(24)));
    }
}

impl AccountSource for Accounts {
    fn nonce_and_balance(&self, a: Address) -> (u64, U256) {
        self.0
            .get(&a)
            .copied()
            .unwrap_or((0, U256::from(10u128.pow(24))))
    }
}

fn pool() -> Mempool {
    Mempool::new(MempoolConfig::default())
}

fn err(p: &mut Mempool, tx: SignedTx, s: &Accounts) -> String {
    p.insert(tx, s, BASE).unwrap_err().to_string()
}

/// (sender index in `keys`, nonce) of each transaction.
fn order(txs: &[SignedTx], keys: &[&PrivateKeySigner]) -> Vec<(usize, u64)> {
    txs.iter()
        .map(|t| {
            let i = keys.iter().position(|k| k.address() == t.sender).unwrap();
            (i, t.nonce())
        })
        .collect()
}

#[test]
fn defaults() {
    let c = MempoolConfig::default();
    assert_eq!(
        (
            c.max_per_sender,
            c.max_total,
            c.price_bump_percent,
            c.max_nonce_gap,
            c.max_queued,
            c.max_age
        ),
        (64, 8192, 10, 64, 1024, Duration::from_secs(3 * 3600))
    );
    assert!(pool().is_empty());
}

#[test]
fn already_known() {
    let (a, s, mut p) = (key(0), Accounts::default(), pool());
    let t = dyn_tx(&a, 0, 10, 1);
    assert_eq!(p.insert(t.clone(), &s, BASE), Ok(Inserted::New));
    assert_eq!(err(&mut p, t, &s), "already known");
}

#[test]
fn nonce_window() {
    let (a, mut s, mut p) = (key(0), Accounts::default(), pool());
    s.set_nonce(&a, 5);
    assert_eq!(
        err(&mut p, dyn_tx(&a, 4, 10, 1), &s),
        "nonce too low: next nonce 5, tx nonce 4"
    );
    assert_eq!(
        err(&mut p, dyn_tx(&a, 5 + 65, 10, 1), &s),
        "nonce too high: next nonce 5, tx nonce 70, max gap 64"
    );
    assert_eq!(
        p.insert(dyn_tx(&a, 5 + 64, 10, 1), &s, BASE),
        Ok(Inserted::New)
    );
    assert_eq!(p.insert(dyn_tx(&a, 5, 10, 1), &s, BASE), Ok(Inserted::New));
}

#[test]
fn gas_limits() {
    let (a, s, mut p) = (key(0), Accounts::default(), pool());
    let big = dyn_tx_full(&a, 0, GAS_LIMIT + 1, 10 * GWEI, GWEI, U256::ZERO);
    assert_eq!(err(&mut p, big, &s), "exceeds block gas limit");
    let small = dyn_tx_full(&a, 0, 20_999, 10 * GWEI, GWEI, U256::ZERO);
    assert_eq!(
        err(&mut p, small, &s),
        "intrinsic gas too low: gas 20999, minimum needed 21000"
    );
    let max = dyn_tx_full(&a, 0, GAS_LIMIT, 10 * GWEI, GWEI, U256::ZERO);
    assert!(p.insert(max, &s, BASE).is_ok());
}

#[test]
fn underpriced() {
    let (a, s, mut p) = (key(0), Accounts::default(), pool());
    let t = dyn_tx_full(&a, 0, 21_000, GWEI / 2, 0, U256::ZERO);
    assert_eq!(
        err(&mut p, t, &s),
        "transaction underpriced: max fee per gas 500000000 below the minimum 1000000000"
    );
    let t = legacy_tx(&a, 0, 21_000, GWEI - 1);
    assert!(err(&mut p, t, &s).starts_with("transaction underpriced"));
    assert!(p.insert(legacy_tx(&a, 0, 21_000, GWEI), &s, BASE).is_ok());
}

/// Issue 14: a value of 2^256 − gas·fee wrapped the cost to 0, so an empty account filled
/// pool slots for free.
#[test]
fn a_cost_past_u256_is_refused_not_wrapped() {
    let (a, mut s, mut p) = (key(0), Accounts::default(), pool());
    s.set(&a, 0, U256::ZERO);
    let fee = 21_000 * 10 * GWEI;
    let value = U256::MAX - U256::from(fee) + U256::from(1);
    let t = dyn_tx_full(&a, 0, 21_000, 10 * GWEI, GWEI, value);
    assert_eq!(t.max_cost(), U256::MAX);
    assert!(
        err(&mut p, t, &s).starts_with("insufficient funds"),
        "an unfunded transaction was admitted"
    );
    assert_eq!(p.len(), 0);
    // The same transfer with a plain value fails the same way.
    let t = dyn_tx_full(&a, 0, 21_000, 10 * GWEI, GWEI, U256::from(10u128.pow(18)));
    assert!(err(&mut p, t, &s).starts_with("insufficient funds"));
}

#[test]
fn insufficient_funds_is_cumulative() {
    let (a, mut s, mut p) = (key(0), Accounts::default(), pool());
    // Each costs 21000 * 10 gwei + 1 ether.
    let value = U256::from(10u128.pow(18));
    let cost = U256::from(21_000 * 10 * GWEI) + value;
    let t = |n| dyn_tx_full(&a, n, 21_000, 10 * GWEI, GWEI, value);
    s.set(&a, 0, cost - U256::from(1));
    assert_eq!(
        err(&mut p, t(0), &s),
        format!(
            "insufficient funds for gas * price + value: balance {}, tx cost {}",
            cost - U256::from(1),
            cost
        )
    );
    s.set(&a, 0, cost * U256::from(2) - U256::from(1));
    assert_eq!(p.insert(t(0), &s, BASE), Ok(Inserted::New));
    // Enough for nonce 1 alone, not for nonce 0 and 1 together.
    let e = p.insert(t(1), &s, BASE).unwrap_err();
    assert_eq!(
        e,
        MempoolError::InsufficientFunds {
            balance: cost * U256::from(2) - U256::from(1),
            cost: cost * U256::from(2),
        }
    );
    // Transactions above the new one's nonce are not counted.
    let mut p = pool();
    s.set(&a, 0, cost);
    assert!(p.insert(t(1), &s, BASE).is_ok());
    assert!(p.insert(t(0), &s, BASE).is_ok());
}

#[test]
fn replacement_needs_the_bump_on_both_fees() {
    let (a, s, mut p) = (key(0), Accounts::default(), pool());
    let old = dyn_tx_full(&a, 0, 21_000, 100 * GWEI, 2 * GWEI, U256::ZERO);
    let old_hash = old.hash;
    p.insert(old, &s, BASE).unwrap();
    // +5% on both.
    let t = dyn_tx_full(&a, 0, 21_000, 105 * GWEI, 2_100_000_000, U256::ZERO);
    assert_eq!(err(&mut p, t, &s), "replacement transaction underpriced");
    // +10% on the fee cap only.
    let t = dyn_tx_full(&a, 0, 21_000, 110 * GWEI, 2 * GWEI, U256::ZERO);
    assert_eq!(err(&mut p, t, &s), "replacement transaction underpriced");
    // +10% on the tip only.
    let t = dyn_tx_full(&a, 0, 21_000, 100 * GWEI, 2_200_000_000, U256::ZERO);
    assert_eq!(err(&mut p, t, &s), "replacement transaction underpriced");
    // +10% on both.
    let new = dyn_tx_full(&a, 0, 21_000, 110 * GWEI, 2_200_000_000, U256::ZERO);
    let new_hash = new.hash;
    assert_eq!(p.insert(new, &s, BASE), Ok(Inserted::Replaced(old_hash)));
    assert_eq!(p.len(), 1);
    assert!(!p.contains(&old_hash));
    assert_eq!(p.get(&new_hash).unwrap().hash, new_hash);
    assert_eq!(p.next_nonce(a.address(), 0), 1);
}

#[test]
fn legacy_replacement_uses_the_gas_price_for_both() {
    let (a, s, mut p) = (key(0), Accounts::default(), pool());
    let old = legacy_tx(&a, 0, 21_000, 20 * GWEI);
    let old_hash = old.hash;
    p.insert(old, &s, BASE).unwrap();
    let t = legacy_tx(&a, 0, 21_000, 21 * GWEI);
    assert_eq!(err(&mut p, t, &s), "replacement transaction underpriced");
    // A dynamic-fee replacement must beat the gas price with its tip as well.
    let t = dyn_tx_full(&a, 0, 21_000, 30 * GWEI, 21 * GWEI, U256::ZERO);
    assert_eq!(err(&mut p, t, &s), "replacement transaction underpriced");
    let t = legacy_tx(&a, 0, 21_000, 22 * GWEI);
    assert_eq!(p.insert(t, &s, BASE), Ok(Inserted::Replaced(old_hash)));
}

#[test]
fn replacement_must_strictly_beat_a_zero_tip() {
    let (a, s, mut p) = (key(0), Accounts::default(), pool());
    p.insert(dyn_tx(&a, 0, 10, 0), &s, BASE).unwrap();
    let t = dyn_tx(&a, 0, 20, 0);
    assert_eq!(err(&mut p, t, &s), "replacement transaction underpriced");
    assert!(p.insert(dyn_tx(&a, 0, 20, 1), &s, BASE).is_ok());
}

#[test]
fn sender_limit() {
    let (a, b, s) = (key(0), key(1), Accounts::default());
    let mut p = Mempool::new(MempoolConfig {
        max_per_sender: 2,
        ..Default::default()
    });
    p.insert(dyn_tx(&a, 0, 10, 1), &s, BASE).unwrap();
    p.insert(dyn_tx(&a, 1, 10, 1), &s, BASE).unwrap();
    assert_eq!(
        err(&mut p, dyn_tx(&a, 2, 10, 1), &s),
        format!(
            "txpool is full: sender {} has 2 pending transactions",
            a.address()
        )
    );
    // Replacing is still possible, and other senders are unaffected.
    assert!(matches!(
        p.insert(dyn_tx(&a, 1, 20, 2), &s, BASE),
        Ok(Inserted::Replaced(_))
    ));
    assert!(p.insert(dyn_tx(&b, 0, 10, 1), &s, BASE).is_ok());
}

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
    // Tip cap 5 gwei but a fee cap below the base fee: it pays nothing now.
    let a0 = dyn_tx(&a, 0, 2, 5);
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
fn best_ties_go_to_the_lower_address() {
    let keys: Vec<_> = (0..5).map(key).collect();
    let (s, mut p) = (Accounts::default(), pool());
    for k in keys.iter().rev() {
        p.insert(dyn_tx(k, 0, 10, 2), &s, BASE).unwrap();
    }
    let best = p.best(&s, BASE, GAS_LIMIT);
    let senders: Vec<Address> = best.iter().map(|t| t.sender).collect();
    let mut sorted = senders.clone();
    sorted.sort();
    assert_eq!(senders, sorted);
    assert_eq!(senders.len(), 5);
    assert_eq!(best, p.best(&s, BASE, GAS_LIMIT));
}

#[test]
fn best_packs_by_gas() {
    let (a, b, c, d) = (key(0), key(1), key(2), key(3));
    let (s, mut p) = (Accounts::default(), pool());
    let t = |k, gas, tip| dyn_tx_full(k, 0, gas, 100 * GWEI, tip * GWEI, U256::ZERO);
    p.insert(t(&a, 60_000, 10), &s, BASE).unwrap();
    p.insert(t(&b, 50_000, 9), &s, BASE).unwrap();
    p.insert(t(&c, 30_000, 8), &s, BASE).unwrap();
    p.insert(t(&d, 21_000, 7), &s, BASE).unwrap();
    // b does not fit after a; c does, and then d no longer does.
    let best = p.best(&s, BASE, 100_000);
    assert_eq!(order(&best, &[&a, &b, &c, &d]), [(0, 0), (2, 0)]);
    let total: u64 = best.iter().map(SignedTx::gas_limit).sum();
    assert!(total <= 100_000);
    // A sender whose head does not fit loses the rest of its run.
    let mut p = pool();
    p.insert(t(&a, 90_000, 10), &s, BASE).unwrap();
    p.insert(dyn_tx(&a, 1, 100, 20), &s, BASE).unwrap();
    p.insert(t(&b, 30_000, 1), &s, BASE).unwrap();
    let best = p.best(&s, BASE, 100_000);
    assert_eq!(order(&best, &[&a, &b]), [(0, 0)]);
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
               let total: u64 = best.iter().map(SignedTx::gas_limit).sum();
               prop_assert!(total <= block_gas);
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
