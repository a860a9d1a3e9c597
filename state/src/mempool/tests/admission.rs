//! What the pool admits and refuses: limits, prices, funds, replacement.

use super::*;

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

/// A tip cap above the fee cap never executes (revm refuses it at any base fee). Admitted,
/// it held its nonce: the sender's valid transaction with that nonce was then refused as an
/// underpriced replacement until a leader tried the bad one.
#[test]
fn a_tip_above_the_fee_cap_is_refused_and_does_not_hold_the_nonce() {
    let (a, s, mut p) = (key(0), Accounts::default(), pool());
    assert_eq!(
        err(&mut p, dyn_tx(&a, 0, 2, 3), &s),
        "max priority fee per gas higher than max fee per gas: tip 3000000000, max fee 2000000000"
    );
    assert_eq!(p.len(), 0);
    assert!(p.insert(dyn_tx(&a, 0, 2, 1), &s, BASE).is_ok());
    assert!(
        p.insert(dyn_tx(&a, 1, 2, 2), &s, BASE).is_ok(),
        "tip equal to the cap"
    );
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
