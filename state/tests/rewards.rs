//! Block rewards, signing counts, the issuance cap and the availability check
//! (`state::staking::rewards`), on the staking state alone.

use alloy_primitives::{Address, B256, U256};
use proptest::prelude::*;
use state::staking::rewards::BlockReward;
use state::staking::*;
use state::Bitmap;
use std::collections::BTreeMap;

fn one(n: u64) -> U256 {
    U256::from(n) * U256::from(ONE)
}

fn addr(i: u8) -> Address {
    Address::repeat_byte(i)
}

fn key(i: u8) -> BlsKey {
    BlsKey::repeat_byte(i)
}

/// A validator with `keys` keys (named from `first_key`), commission `rate` percent, and the
/// delegations given (the first is the operator's).
fn validator(i: u8, first_key: u8, keys: u8, rate: u128, delegations: &[(u8, u64)]) -> Validator {
    let address = addr(i);
    Validator {
        address,
        bls_keys: (first_key..first_key + keys).map(key).collect(),
        transport_key: B256::repeat_byte(i),
        endpoint: "h:1".into(),
        min_self_delegation: one(1),
        max_total_delegation: U256::MAX,
        status: ValidatorStatus::Active,
        commission: CommissionRates {
            rate: Dec::percent(rate),
            max_rate: Dec::ONE,
            max_change_rate: Dec::ONE,
        },
        epoch_start_rate: Dec::percent(rate),
        description: Description::default(),
        creation_epoch: 0,
        delegations: delegations
            .iter()
            .map(|&(who, n)| Delegation::new(addr(who), one(n)))
            .collect(),
        lifetime: Default::default(),
        epoch_counters: Default::default(),
        lifetime_reward: U256::ZERO,
    }
}

fn slot(v: &Validator, k: usize, stake: u64) -> Slot {
    Slot {
        validator: v.address,
        key: v.bls_keys[k],
        raw_stake: one(stake),
        effective_stake: one(stake),
    }
}

fn bits(n: usize, set: &[usize]) -> Bitmap {
    let mut b = Bitmap::with_len(n);
    for &i in set {
        b.set(i);
    }
    b
}

fn reward(amount: U256) -> BlockReward {
    BlockReward {
        amount,
        cap: U256::MAX,
        year: 0,
        emission: None,
    }
}

fn rewards_of(s: &StakingState, v: Address) -> Vec<U256> {
    s.validator(&v)
        .unwrap()
        .delegations
        .iter()
        .map(|d| d.reward)
        .collect()
}

#[test]
fn signers_share_by_stake_commission_first_then_delegations_dust_to_the_operator() {
    // Validator 1: 10% commission, operator 600 ONE, delegator 9 holds 400. Validator 2: 0%.
    let v1 = validator(1, 10, 1, 10, &[(1, 600), (9, 400)]);
    let v2 = validator(2, 20, 1, 0, &[(2, 1000)]);
    let mut s = StakingState::from_validators([v1.clone(), v2.clone()]);
    // Internal key 0xaa first, then v1 (stake 3), v2 (stake 1).
    let seats = seats(&[key(0xaa)], &[slot(&v1, 0, 3), slot(&v2, 0, 1)], None);
    assert_eq!(seats.len(), 3);
    assert_eq!(seats[0].validator, None);
    let mut balances = BTreeMap::new();

    // Everyone signs 8 ONE: v1 earns 6, v2 earns 2. The internal key earns nothing.
    let paid = s.reward_block(
        &seats,
        &bits(3, &[0, 1, 2]),
        true,
        reward(one(8)),
        &mut balances,
    );
    assert_eq!(paid.to_signers, one(8));
    assert_eq!(paid.emission, U256::ZERO);
    // v1: commission 0.6; the rest 5.4 split 60/40: operator 3.24 + 0.6, delegator 2.16.
    let r1 = rewards_of(&s, addr(1));
    assert_eq!(r1[0], U256::from(3_840_000_000_000_000_000u128));
    assert_eq!(r1[1], U256::from(2_160_000_000_000_000_000u128));
    assert_eq!(rewards_of(&s, addr(2)), vec![one(2)]);
    assert_eq!(s.issuance().total, one(8));
    assert_eq!(s.validator(&addr(1)).unwrap().lifetime_reward, one(6));

    // Only v2 signs: it takes the whole reward; v1 counts a miss.
    s.reward_block(
        &seats,
        &bits(3, &[0, 2]),
        true,
        reward(one(8)),
        &mut balances,
    );
    assert_eq!(rewards_of(&s, addr(2)), vec![one(10)]);
    let c1 = s.validator(&addr(1)).unwrap().epoch_counters;
    assert_eq!((c1.to_sign, c1.signed), (2, 1));
    assert_eq!(s.validator(&addr(2)).unwrap().lifetime.signed, 2);

    // Only the internal key signs: nothing is issued, both elected keys miss.
    let before = s.issuance();
    let paid = s.reward_block(&seats, &bits(3, &[0]), true, reward(one(8)), &mut balances);
    assert_eq!(paid.issued(), U256::ZERO);
    assert_eq!(s.issuance(), before);
    assert_eq!(s.validator(&addr(2)).unwrap().epoch_counters.to_sign, 3);

    // An amount that does not divide: the dust stays with the operator, nothing is lost.
    let mut s = StakingState::from_validators([validator(3, 30, 1, 33, &[(3, 1), (8, 2)])]);
    let v3 = s.validator(&addr(3)).unwrap().clone();
    let seats = state::staking::seats(&[], &[slot(&v3, 0, 1)], None);
    let paid = s.reward_block(
        &seats,
        &bits(1, &[0]),
        true,
        reward(U256::from(100)),
        &mut balances,
    );
    assert_eq!(paid.to_signers, U256::from(100));
    let r = rewards_of(&s, addr(3));
    // Commission 33; the rest 67: delegator 2/3 → 44, operator 22 + dust 1 + commission.
    assert_eq!(r, vec![U256::from(56), U256::from(44)]);
}

#[test]
fn the_hip30_split_pays_its_recipient_and_the_cap_holds_within_a_year() {
    let v = validator(1, 10, 2, 0, &[(1, 100)]);
    let mut s = StakingState::from_validators([v.clone()]);
    let seats = seats(&[], &[slot(&v, 0, 1), slot(&v, 1, 1)], None);
    let mut balances = BTreeMap::new();
    let fund = addr(0xf0);
    let r = BlockReward {
        amount: one(10),
        cap: one(25),
        year: 0,
        emission: Some(EmissionSplit {
            recipient: fund,
            share: Dec::percent(25),
        }),
    };
    let all = bits(2, &[0, 1]);
    let p1 = s.reward_block(&seats, &all, true, r, &mut balances);
    assert_eq!(
        (p1.to_signers, p1.emission),
        (
            U256::from(75) * U256::from(ONE) / U256::from(10),
            U256::from(25) * U256::from(ONE) / U256::from(10)
        )
    );
    s.reward_block(&seats, &all, true, r, &mut balances);
    // The third block may issue only 5 of its 10: the year's cap is 25.
    let p3 = s.reward_block(&seats, &all, true, r, &mut balances);
    assert_eq!(p3.issued(), one(5));
    assert_eq!(s.issuance().issued_in_year, one(25));
    let p4 = s.reward_block(&seats, &all, true, r, &mut balances);
    assert_eq!(p4.issued(), U256::ZERO, "the cap is reached");
    // A new year starts afresh.
    let p5 = s.reward_block(
        &seats,
        &all,
        true,
        BlockReward { year: 1, ..r },
        &mut balances,
    );
    assert_eq!(p5.issued(), one(10));
    assert_eq!(s.issuance().year, 1);
    assert_eq!(s.issuance().total, one(35));
    assert_eq!(balances[&fund], one(35) / U256::from(4));
}

#[test]
fn availability_at_or_below_the_threshold_makes_a_validator_inactive() {
    let a = validator(1, 10, 1, 0, &[(1, 100)]);
    let b = validator(2, 20, 1, 0, &[(2, 100)]);
    let c = validator(3, 30, 1, 0, &[(3, 100)]);
    let mut s = StakingState::from_validators([a.clone(), b.clone(), c.clone()]);
    let seats = seats(&[], &[slot(&a, 0, 1), slot(&b, 0, 1)], None);
    let mut balances = BTreeMap::new();
    // a signs 3 of 3; b signs exactly 2 of 3 (at the threshold); c was not elected.
    for signed in [&[0, 1][..], &[0, 1], &[0]] {
        s.reward_block(
            &seats,
            &bits(2, signed),
            true,
            reward(one(1)),
            &mut balances,
        );
    }
    let two_thirds = EconomicsParams::default().min_signing_rate;
    let made = s.close_epoch_signing(two_thirds);
    assert_eq!(made, vec![addr(2)]);
    assert_eq!(
        s.validator(&addr(1)).unwrap().status,
        ValidatorStatus::Active
    );
    assert_eq!(
        s.validator(&addr(2)).unwrap().status,
        ValidatorStatus::Inactive
    );
    assert_eq!(
        s.validator(&addr(3)).unwrap().status,
        ValidatorStatus::Active
    );
    // Epoch counts restart; lifetime ones stay.
    let b_now = s.validator(&addr(2)).unwrap();
    assert_eq!(b_now.epoch_counters, Counters::default());
    assert_eq!((b_now.lifetime.to_sign, b_now.lifetime.signed), (3, 2));
    // Inactive is not elected.
    let e = elect(&s, &StakingParams::default());
    assert!(!e.validators().contains(&addr(2)));
    assert!(e.validators().contains(&addr(1)));
}

#[test]
fn hip30_raises_low_commissions_and_their_maximum() {
    let mut low = validator(1, 10, 1, 2, &[(1, 100)]);
    low.commission.max_rate = Dec::percent(5);
    let high = validator(2, 20, 1, 12, &[(2, 100)]);
    let mut s = StakingState::from_validators([low, high]);
    s.raise_commissions(Dec::percent(7));
    let c = s.validator(&addr(1)).unwrap().commission;
    assert_eq!((c.rate, c.max_rate), (Dec::percent(7), Dec::percent(7)));
    assert_eq!(
        s.validator(&addr(2)).unwrap().commission.rate,
        Dec::percent(12)
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// Over any run of certified blocks: what delegations accumulate plus what the emission
    /// recipient receives is exactly what the issuance record says was issued (no wei appears
    /// or vanishes); no issuance year exceeds the cap; each block issues at most its reward;
    /// and each validator's lifetime reward is what its delegations received.
    #[test]
    fn rewards_move_exactly_what_is_issued_and_the_cap_holds(
        vals in prop::collection::vec((1u8..4, 0u128..=100, prop::collection::vec(1u64..1_000, 1..4)), 1..5),
        blocks in prop::collection::vec((any::<u64>(), 0u64..3), 1..40),
        amount in 0u64..1_000_000,
        cap in 0u64..5_000_000,
        emission in prop::option::of(0u128..=100),
    ) {
        let mut validators = Vec::new();
        let mut slots = Vec::new();
        let mut next_key = 1u8;
        for (i, (nkeys, rate, dels)) in vals.iter().enumerate() {
            let d: Vec<(u8, u64)> = dels.iter().enumerate().map(|(j, &n)| (if j == 0 { i as u8 + 1 } else { 100 + j as u8 }, n)).collect();
            let v = validator(i as u8 + 1, next_key, *nkeys, *rate, &d);
            next_key += nkeys;
            for k in 0..v.bls_keys.len() {
                slots.push(slot(&v, k, dels[0] + k as u64));
            }
            validators.push(v);
        }
        let mut s = StakingState::from_validators(validators);
        let seats = seats(&[key(0xee)], &slots, None);
        let fund = addr(0xf0);
        let mut balances = BTreeMap::new();
        let mut year = 0u64;
        for (mask, advance) in blocks {
            year += advance;
            let set: Vec<usize> = (0..seats.len()).filter(|i| mask >> (i % 64) & 1 == 1).collect();
            let before = s.issuance();
            let r = BlockReward {
                amount: U256::from(amount),
                cap: U256::from(cap),
                year,
                emission: emission.map(|p| EmissionSplit { recipient: fund, share: Dec::percent(p) }),
            };
            let paid = s.reward_block(&seats, &bits(seats.len(), &set), mask & 1 == 0, r, &mut balances);
            prop_assert!(paid.issued() <= U256::from(amount));
            prop_assert_eq!(s.issuance().total - before.total, paid.issued());
            prop_assert!(s.issuance().issued_in_year <= U256::from(cap));
        }
        let accrued: U256 = s.validators().flat_map(|v| &v.delegations).map(|d| d.reward).sum();
        let emitted = balances.get(&fund).copied().unwrap_or_default();
        prop_assert_eq!(accrued + emitted, s.issuance().total);
        for v in s.validators() {
            let got: U256 = v.delegations.iter().map(|d| d.reward).sum();
            prop_assert_eq!(got, v.lifetime_reward);
            prop_assert!(v.lifetime.signed <= v.lifetime.to_sign);
            prop_assert_eq!(v.lifetime, v.epoch_counters);
        }
    }
}

// ---- Double-sign slashing -------------------------------------------------------------

fn rates() -> SlashRates {
    EconomicsParams::default().slash_rates()
}

#[test]
fn a_slash_takes_half_the_self_stake_and_eighty_percent_of_that_from_delegators_pro_rata() {
    // Operator 1,000 ONE; delegators 9 (600) and 8 (200).
    let mut v = validator(1, 10, 1, 10, &[(1, 1000), (9, 600), (8, 200)]);
    v.delegations[1].reward = one(3);
    let mut s = StakingState::from_validators([v]);
    let mut balances = BTreeMap::new();
    let reporter = addr(0xee);
    let out = s.slash(addr(1), 4, reporter, rates(), &mut balances);
    // 500 from the operator; delegators owe 400 in all: 300 and 100.
    assert_eq!(out.from_self, one(500));
    assert_eq!(out.from_delegators, one(400));
    assert_eq!(out.to_reporter, one(450));
    assert_eq!(out.burnt, one(450));
    assert_eq!(balances[&reporter], one(450));
    let v = s.validator(&addr(1)).unwrap();
    assert_eq!(v.status, ValidatorStatus::Banned);
    let amounts: Vec<U256> = v.delegations.iter().map(|d| d.amount).collect();
    assert_eq!(amounts, vec![one(500), one(300), one(100)]);
    assert_eq!(
        v.delegations[1].reward,
        one(3),
        "the amount covered the debt"
    );
    // Banned is final: it is never elected, and evidence against it again is refused.
    assert_eq!(
        s.check_not_banned(addr(1)),
        Err(SlashError::AlreadyBanned(addr(1)))
    );
    assert!(elect(&s, &StakingParams::default()).slots.is_empty());
}

#[test]
fn a_debt_the_amount_cannot_cover_comes_from_later_undelegations_then_rewards() {
    // The operator loses 500; its one delegator owes 400 but has only 100 staked.
    let mut v = validator(1, 10, 1, 0, &[(1, 1000), (9, 100)]);
    let d = &mut v.delegations[1];
    d.undelegations = vec![
        Undelegation {
            amount: one(50),
            epoch: 2, // before the offence: not the offender's to take
        },
        Undelegation {
            amount: one(30),
            epoch: 5,
        },
    ];
    d.reward = one(40);
    let mut s = StakingState::from_validators([v]);
    let out = s.slash(addr(1), 5, Address::ZERO, rates(), &mut BTreeMap::new());
    assert_eq!(out.from_self, one(500));
    assert_eq!(
        out.from_delegators,
        one(170),
        "all it held from the offence on"
    );
    assert_eq!(out.burnt, one(670), "no reporter: all burnt");
    let d = &s.validator(&addr(1)).unwrap().delegations[1];
    assert_eq!((d.amount, d.reward), (U256::ZERO, U256::ZERO));
    assert_eq!(d.undelegations.len(), 1);
    assert_eq!(d.undelegations[0].amount, one(50));
}

fn evidence(sk: &accel::SecretKey, number: u64, view: u64, hashes: [B256; 2]) -> DoubleSign {
    let vote = |hash: B256| {
        let req = hsm::SignRequest {
            kind: hsm::MsgKind::Commit,
            chain_id: 7,
            shard: 0,
            number,
            view,
            hash: hash.0,
        };
        SignedVote {
            hash,
            signature: sk.sign(&hsm::payload(&req)).to_bytes().to_vec().into(),
        }
    };
    DoubleSign {
        number,
        view,
        keys: vec![BlsKey::from(sk.public_key().to_bytes())],
        first: vote(hashes[0]),
        second: vote(hashes[1]),
        reporter: addr(0xee),
    }
}

#[test]
fn evidence_verifies_only_as_two_signed_commits_for_different_blocks() {
    let sk = accel::SecretKey::from_ikm(&[3; 32]).unwrap();
    let (a, b) = (B256::repeat_byte(1), B256::repeat_byte(2));
    let good = evidence(&sk, 9, 2, [a, b]);
    assert_eq!(good.check_signatures(7, 0), Ok(()));
    // Another network, another shard: the signatures do not verify there.
    assert_eq!(
        good.check_signatures(8, 0),
        Err(SlashError::BadSignature("first"))
    );
    assert_eq!(
        good.check_signatures(7, 1),
        Err(SlashError::BadSignature("first"))
    );
    assert_eq!(
        evidence(&sk, 9, 2, [a, a]).check_signatures(7, 0),
        Err(SlashError::SameBlock)
    );
    let mut swapped = good.clone();
    swapped.second.hash = B256::repeat_byte(3);
    assert_eq!(
        swapped.check_signatures(7, 0),
        Err(SlashError::BadSignature("second"))
    );
    let other = accel::SecretKey::from_ikm(&[4; 32]).unwrap();
    let mut framed = good.clone();
    framed.keys = vec![BlsKey::from(other.public_key().to_bytes())];
    assert_eq!(
        framed.check_signatures(7, 0),
        Err(SlashError::BadSignature("first"))
    );
    let mut none = good;
    none.keys.clear();
    assert_eq!(none.check_signatures(7, 0), Err(SlashError::KeyCount(0)));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// A slash never takes more than the configured shares, never more than a delegation
    /// holds (balances cannot go below zero), and pays the reporter plus the burn exactly
    /// what it took.
    #[test]
    fn slashing_takes_at_most_the_configured_shares(
        dels in prop::collection::vec((0u64..10_000, 0u64..100, prop::collection::vec((0u64..500, 0u64..10), 0..3)), 1..6),
        self_share in 0u128..=100,
        ratio in 0u128..=150,
        reporter_share in 0u128..=100,
        offence_epoch in 0u64..10,
        reported in any::<bool>(),
    ) {
        let spec: Vec<(u8, u64)> = dels.iter().enumerate().map(|(i, d)| (if i == 0 { 1 } else { 100 + i as u8 }, d.0)).collect();
        let mut v = validator(1, 10, 1, 5, &spec);
        for (d, (_, reward, unds)) in v.delegations.iter_mut().zip(&dels) {
            d.reward = one(*reward);
            d.undelegations = unds.iter().map(|&(a, e)| Undelegation { amount: one(a), epoch: e }).collect();
        }
        let before = v.clone();
        let holding = |d: &Delegation| d.amount + d.reward + d.undelegating();
        let rates = SlashRates {
            self_share: Dec::percent(self_share),
            delegation_ratio: Dec::percent(ratio),
            reporter_share: Dec::percent(reporter_share),
        };
        let mut s = StakingState::from_validators([v]);
        let mut balances = BTreeMap::new();
        let reporter = if reported { addr(0xee) } else { Address::ZERO };
        let out = s.slash(addr(1), offence_epoch, reporter, rates, &mut balances);
        let after = s.validator(&addr(1)).unwrap();
        prop_assert_eq!(after.status, ValidatorStatus::Banned);
        prop_assert!(out.from_self <= rates.self_share.mul_amount(before.delegations[0].amount));
        prop_assert!(out.from_delegators <= rates.delegation_ratio.mul_amount(out.from_self));
        let mut taken = U256::ZERO;
        for (b, a) in before.delegations.iter().zip(&after.delegations) {
            prop_assert!(holding(a) <= holding(b));
            taken += holding(b) - holding(a);
            // Undelegations made before the offence are never touched.
            let early = |d: &Delegation| d.undelegations.iter().filter(|u| u.epoch < offence_epoch).map(|u| u.amount).sum::<U256>();
            prop_assert_eq!(early(a), early(b));
        }
        prop_assert_eq!(taken, out.from_self + out.from_delegators);
        prop_assert_eq!(out.to_reporter + out.burnt, taken);
        prop_assert!(out.to_reporter <= rates.reporter_share.mul_amount(taken));
        prop_assert_eq!(balances.get(&addr(0xee)).copied().unwrap_or_default(), out.to_reporter);
    }
}
