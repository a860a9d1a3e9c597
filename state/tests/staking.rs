//! Staking rules, the signed envelope, and properties: no stake is created or lost across
//! delegate / undelegate / lock / payout, and the election is deterministic and in its band.

use alloy_primitives::{Address, B256, U256};
use alloy_signer::SignerSync;
use alloy_signer_local::PrivateKeySigner;
use proptest::prelude::*;
use state::staking::*;
use std::collections::BTreeMap;
use std::sync::OnceLock;

const CHAIN_ID: u64 = 1_337;

fn one(n: u64) -> U256 {
    U256::from(n) * U256::from(ONE)
}

/// BLS keys with their proofs of possession (derived once: proofs cost a pairing to check).
fn keys() -> &'static Vec<(BlsKey, BlsSig)> {
    static KEYS: OnceLock<Vec<(BlsKey, BlsSig)>> = OnceLock::new();
    KEYS.get_or_init(|| {
        (0..48u8)
            .map(|i| {
                let sk = accel::SecretKey::from_ikm(&[i + 1; 32]).unwrap();
                (
                    BlsKey::from(sk.public_key().to_bytes()),
                    BlsSig::from(sk.prove_possession().to_bytes()),
                )
            })
            .collect()
    })
}

fn addr(i: u8) -> Address {
    Address::repeat_byte(i)
}

fn create(operator: Address, key_range: std::ops::Range<usize>, amount: U256) -> CreateValidator {
    let ks = &keys()[key_range];
    CreateValidator {
        validator_address: operator,
        description: Description {
            name: "validator".into(),
            ..Default::default()
        },
        commission_rates: CommissionRates {
            rate: Dec::percent(10),
            max_rate: Dec::percent(50),
            max_change_rate: Dec::percent(5),
        },
        min_self_delegation: one(10_000),
        max_total_delegation: one(1_000_000),
        slot_pub_keys: ks.iter().map(|k| k.0).collect(),
        slot_key_sigs: ks.iter().map(|k| k.1).collect(),
        amount,
        // One node per operator: its transport key is its own.
        transport_key: operator.into_word(),
        endpoint: "10.0.0.1:9000".into(),
    }
}

struct World {
    params: StakingParams,
    state: StakingState,
    balances: BTreeMap<Address, U256>,
}

impl World {
    fn new() -> Self {
        let balances = (1..=8).map(|i| (addr(i), one(100_000))).collect();
        Self {
            params: StakingParams::default(),
            state: StakingState::default(),
            balances,
        }
    }

    fn apply(&mut self, epoch: u64, sender: Address, msg: StakeMsg) -> Result<(), StakingError> {
        self.state
            .apply(&self.params, epoch, sender, &msg, &mut self.balances)
    }

    /// Applies `msg` expecting `want`, and checks a refusal changed nothing.
    fn refused(&mut self, epoch: u64, sender: Address, msg: StakeMsg, want: StakingError) {
        let (state, balances) = (self.state.clone(), self.balances.clone());
        assert_eq!(self.apply(epoch, sender, msg), Err(want));
        assert_eq!(
            self.state, state,
            "a refused message changed the staking state"
        );
        assert_eq!(
            self.balances, balances,
            "a refused message changed balances"
        );
    }

    /// Balances + delegated + undelegating + rewards: constant without minting.
    fn total(&self) -> U256 {
        let b: U256 = self.balances.values().copied().sum();
        let staked: U256 = self
            .state
            .validators()
            .flat_map(|v| &v.delegations)
            .map(|d| d.amount + d.undelegating() + d.reward)
            .sum();
        b + staked
    }
}

#[test]
fn create_validator_rules() {
    let mut w = World::new();
    let a = addr(1);
    let mut m = create(a, 0..2, one(20_000));
    m.commission_rates.rate = Dec::percent(60);
    w.refused(
        0,
        a,
        StakeMsg::CreateValidator(m),
        StakingError::Commission(
            "rate 0.600000000000000000 is above the max rate 0.500000000000000000".into(),
        ),
    );
    let mut m = create(a, 0..2, one(20_000));
    m.min_self_delegation = one(9_999);
    w.refused(
        0,
        a,
        StakeMsg::CreateValidator(m),
        StakingError::MinSelfDelegationTooLow {
            amount: one(9_999),
            min: one(10_000),
        },
    );
    let mut m = create(a, 0..2, one(20_000));
    m.slot_key_sigs.swap(0, 1);
    w.refused(
        0,
        a,
        StakeMsg::CreateValidator(m),
        StakingError::BadProof(keys()[0].0),
    );
    let mut m = create(a, 0..1, one(20_000));
    m.endpoint = "no-port".into();
    w.refused(
        0,
        a,
        StakeMsg::CreateValidator(m),
        StakingError::BadEndpoint("no-port".into()),
    );
    let mut m = create(a, 0..1, one(20_000));
    m.description.details = "x".repeat(281);
    w.refused(
        0,
        a,
        StakeMsg::CreateValidator(m),
        StakingError::DescriptionTooLong {
            field: "details",
            len: 281,
            max: 280,
        },
    );
    w.refused(
        0,
        a,
        StakeMsg::CreateValidator(create(a, 0..1, one(200_000))),
        StakingError::InsufficientBalance {
            needed: one(200_000),
            available: one(100_000),
        },
    );
    w.refused(
        0,
        addr(2),
        StakeMsg::CreateValidator(create(a, 0..1, one(20_000))),
        StakingError::WrongSender {
            directive: "CreateValidator",
            expected: a,
            sender: addr(2),
        },
    );

    w.apply(
        0,
        a,
        StakeMsg::CreateValidator(create(a, 0..2, one(20_000))),
    )
    .unwrap();
    assert_eq!(w.balances[&a], one(80_000));
    let v = w.state.validator(&a).unwrap();
    assert_eq!(v.self_delegation(), one(20_000));
    assert_eq!(v.status, ValidatorStatus::Active);
    w.refused(
        0,
        a,
        StakeMsg::CreateValidator(create(a, 2..3, one(20_000))),
        StakingError::ValidatorExists(a),
    );
    let b = addr(2);
    w.refused(
        0,
        b,
        StakeMsg::CreateValidator(create(b, 1..3, one(20_000))),
        StakingError::KeyInUse {
            key: keys()[1].0,
            owner: a,
        },
    );
    // Another validator claiming a's transport key: refused, at creation and by an edit.
    let taken = w.state.validator(&a).unwrap().transport_key;
    let mut claim = create(b, 2..3, one(20_000));
    claim.transport_key = taken;
    w.refused(
        0,
        b,
        StakeMsg::CreateValidator(claim),
        StakingError::TransportKeyInUse {
            key: taken,
            owner: a,
        },
    );
    w.apply(
        0,
        b,
        StakeMsg::CreateValidator(create(b, 2..3, one(20_000))),
    )
    .unwrap();
    w.refused(
        0,
        b,
        StakeMsg::EditValidator(EditValidator {
            validator_address: b,
            transport_key: Opt(Some(taken)),
            ..Default::default()
        }),
        StakingError::TransportKeyInUse {
            key: taken,
            owner: a,
        },
    );
}

#[test]
fn edit_validator_rules() {
    let mut w = World::new();
    let a = addr(1);
    w.apply(
        0,
        a,
        StakeMsg::CreateValidator(create(a, 0..1, one(20_000))),
    )
    .unwrap();
    let edit = |f: &dyn Fn(&mut EditValidator)| {
        let mut e = EditValidator {
            validator_address: a,
            ..Default::default()
        };
        f(&mut e);
        StakeMsg::EditValidator(e)
    };
    // 10% → 16% moves 6% from the epoch's starting rate, more than the 5% allowed.
    w.refused(
        0,
        a,
        edit(&|e| e.commission_rate = Opt(Some(Dec::percent(16)))),
        StakingError::Commission(
            "rate 0.160000000000000000 moves more than the max change rate \
             0.050000000000000000 from this epoch's starting rate 0.100000000000000000"
                .into(),
        ),
    );
    w.apply(
        0,
        a,
        edit(&|e| e.commission_rate = Opt(Some(Dec::percent(15)))),
    )
    .unwrap();
    // Still measured from the epoch's start (10%), not from 15%.
    w.refused(
        0,
        a,
        edit(&|e| e.commission_rate = Opt(Some(Dec::percent(16)))),
        StakingError::Commission(
            "rate 0.160000000000000000 moves more than the max change rate \
             0.050000000000000000 from this epoch's starting rate 0.100000000000000000"
                .into(),
        ),
    );
    w.refused(
        0,
        a,
        edit(&|e| e.slot_key_to_remove = Opt(Some(keys()[0].0))),
        StakingError::LastKey(keys()[0].0),
    );
    w.refused(
        0,
        a,
        edit(&|e| e.status = Opt(Some(ValidatorStatus::Banned))),
        StakingError::BadStatus,
    );
    w.apply(
        0,
        a,
        edit(&|e| {
            e.slot_key_to_add = Opt(Some(keys()[5].0));
            e.slot_key_to_add_sig = Opt(Some(keys()[5].1));
            e.description.website = "https://example.org".into();
        }),
    )
    .unwrap();
    let v = w.state.validator(&a).unwrap();
    assert_eq!(v.bls_keys, vec![keys()[0].0, keys()[5].0]);
    assert_eq!(v.description.name, "validator", "empty fields are kept");
    assert_eq!(v.description.website, "https://example.org");
    w.apply(
        0,
        a,
        edit(&|e| e.status = Opt(Some(ValidatorStatus::Inactive))),
    )
    .unwrap();
    assert_eq!(
        w.state.validator(&a).unwrap().status,
        ValidatorStatus::Inactive
    );
}

#[test]
fn delegation_lock_and_payout() {
    let mut w = World::new();
    let (v, d) = (addr(1), addr(2));
    w.apply(
        0,
        v,
        StakeMsg::CreateValidator(create(v, 0..1, one(20_000))),
    )
    .unwrap();
    let delegate = |amount| {
        StakeMsg::Delegate(Delegate {
            delegator_address: d,
            validator_address: v,
            amount,
        })
    };
    let undelegate = |amount| {
        StakeMsg::Undelegate(Undelegate {
            delegator_address: d,
            validator_address: v,
            amount,
        })
    };
    w.refused(
        0,
        d,
        delegate(one(99)),
        StakingError::DelegationTooSmall {
            amount: one(99),
            min: one(100),
        },
    );
    w.apply(0, d, delegate(one(5_000))).unwrap();
    w.refused(
        1,
        d,
        undelegate(one(5_001)),
        StakingError::BadUndelegationAmount {
            delegated: one(5_000),
        },
    );
    w.apply(1, d, undelegate(one(3_000))).unwrap();
    let total = w.total();
    // Locked for 7 epochs: nothing at the end of epochs 1..7.
    for e in 1..8 {
        assert_eq!(w.state.end_epoch(&w.params, e, &mut w.balances), U256::ZERO);
    }
    assert_eq!(w.balances[&d], one(95_000));
    assert_eq!(w.state.end_epoch(&w.params, 8, &mut w.balances), one(3_000));
    assert_eq!(w.balances[&d], one(98_000));
    assert_eq!(w.total(), total);

    // Matured undelegations fund a delegation before the balance does.
    w.apply(10, d, undelegate(one(2_000))).unwrap();
    w.apply(17, d, delegate(one(2_500))).unwrap();
    assert_eq!(w.balances[&d], one(97_500));
    let del = w.state.validator(&v).unwrap().delegation_of(d).unwrap();
    assert_eq!(del.amount, one(2_500));
    assert!(del.undelegations.is_empty());

    // The operator undelegating below its minimum goes Inactive.
    w.apply(
        17,
        v,
        StakeMsg::Undelegate(Undelegate {
            delegator_address: v,
            validator_address: v,
            amount: one(10_001),
        }),
    )
    .unwrap();
    assert_eq!(
        w.state.validator(&v).unwrap().status,
        ValidatorStatus::Inactive
    );
    w.refused(
        17,
        d,
        StakeMsg::CollectRewards(CollectRewards {
            delegator_address: d,
        }),
        StakingError::NoRewards,
    );
}

#[test]
fn signed_envelope_round_trips_and_names_its_signer() {
    let signer = PrivateKeySigner::from_bytes(&B256::repeat_byte(0x11)).unwrap();
    let me = signer.address();
    let tx = StakingTx {
        msg: StakeMsg::Delegate(Delegate {
            delegator_address: me,
            validator_address: addr(1),
            amount: one(100),
        }),
        nonce: 3,
        gas_price: 1_000_000_000,
        gas_limit: 100_000,
    };
    let sig = signer.sign_hash_sync(&tx.signing_hash(CHAIN_ID)).unwrap();
    let raw = tx.encode_signed(CHAIN_ID, &sig);
    let decoded = SignedStakingTx::decode(&raw, CHAIN_ID).unwrap();
    assert_eq!(decoded.tx, tx);
    assert_eq!(decoded.sender, me);

    assert!(matches!(
        SignedStakingTx::decode(&raw, CHAIN_ID + 1),
        Err(StakingTxError::ChainId {
            found: CHAIN_ID,
            ..
        })
    ));
    let mut trailing = raw.to_vec();
    trailing.push(0);
    assert!(SignedStakingTx::decode(&trailing, CHAIN_ID).is_err());
    // Someone else's message signed by `me`.
    let mut other = tx.clone();
    other.msg = StakeMsg::Delegate(Delegate {
        delegator_address: addr(9),
        validator_address: addr(1),
        amount: one(100),
    });
    let sig = signer
        .sign_hash_sync(&other.signing_hash(CHAIN_ID))
        .unwrap();
    let err = SignedStakingTx::decode(&other.encode_signed(CHAIN_ID, &sig), CHAIN_ID).unwrap_err();
    assert!(
        matches!(err, StakingTxError::WrongSigner { found, .. } if found == me),
        "{err}"
    );
    // Every directive, with every optional field present and absent, round-trips.
    let edits = [
        EditValidator::default(),
        EditValidator {
            validator_address: me,
            commission_rate: Opt(Some(Dec::percent(3))),
            status: Opt(Some(ValidatorStatus::Inactive)),
            endpoint: Opt(Some("a:1".into())),
            slot_key_to_add: Opt(Some(keys()[0].0)),
            slot_key_to_add_sig: Opt(Some(keys()[0].1)),
            ..Default::default()
        },
    ];
    for (i, msg) in edits
        .into_iter()
        .map(|mut e| {
            e.validator_address = me;
            StakeMsg::EditValidator(e)
        })
        .chain([
            StakeMsg::CreateValidator(create(me, 0..3, one(10_000))),
            StakeMsg::CollectRewards(CollectRewards {
                delegator_address: me,
            }),
        ])
        .enumerate()
    {
        let tx = StakingTx {
            msg,
            nonce: i as u64,
            gas_price: 1,
            gas_limit: 6_000_000,
        };
        let sig = signer.sign_hash_sync(&tx.signing_hash(CHAIN_ID)).unwrap();
        let back = SignedStakingTx::decode(&tx.encode_signed(CHAIN_ID, &sig), CHAIN_ID).unwrap();
        assert_eq!(back.tx, tx);
    }
}

#[derive(Debug, Clone)]
enum Op {
    Delegate { who: u8, to: u8, amount: u64 },
    Undelegate { who: u8, from: u8, amount: u64 },
    EndEpoch,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (3u8..7, 1u8..3, 50u64..30_000).prop_map(|(who, to, amount)| Op::Delegate {
            who,
            to,
            amount
        }),
        (1u8..7, 1u8..3, 1u64..30_000).prop_map(|(who, from, amount)| Op::Undelegate {
            who,
            from,
            amount
        }),
        Just(Op::EndEpoch),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Whatever sequence of delegations, undelegations and epoch ends (refused ones included),
    /// balances plus stake plus locked stake stay the same, and every paid-out amount had
    /// served its full lock.
    #[test]
    fn no_delegation_is_lost_or_duplicated(ops in prop::collection::vec(op(), 1..60)) {
        let mut w = World::new();
        for (i, v) in [(1u8, 0..1), (2u8, 1..3)] {
            w.apply(0, addr(i), StakeMsg::CreateValidator(create(addr(i), v, one(20_000)))).unwrap();
        }
        let total = w.total();
        let mut epoch = 0;
        for op in ops {
            let (state, balances) = (w.state.clone(), w.balances.clone());
            let r = match op {
                Op::Delegate { who, to, amount } => w.apply(epoch, addr(who), StakeMsg::Delegate(Delegate {
                    delegator_address: addr(who),
                    validator_address: addr(to),
                    amount: one(amount),
                })),
                Op::Undelegate { who, from, amount } => w.apply(epoch, addr(who), StakeMsg::Undelegate(Undelegate {
                    delegator_address: addr(who),
                    validator_address: addr(from),
                    amount: one(amount),
                })),
                Op::EndEpoch => {
                    let locked_before: U256 = w.state.validators().flat_map(|v| &v.delegations)
                        .flat_map(|d| &d.undelegations)
                        .filter(|u| epoch - u.epoch >= w.params.undelegation_lock_epochs)
                        .map(|u| u.amount).sum();
                    let paid = w.state.end_epoch(&w.params, epoch, &mut w.balances);
                    prop_assert_eq!(paid, locked_before, "paid exactly the matured undelegations");
                    epoch += 1;
                    Ok(())
                }
            };
            if r.is_err() {
                prop_assert_eq!(&w.state, &state);
                prop_assert_eq!(&w.balances, &balances);
            }
            prop_assert_eq!(w.total(), total);
        }
    }

    /// The election depends only on the state, keeps every effective stake within the band
    /// around the median, respects the slot count and the per-validator limit, elects only
    /// eligible validators, and passes over no better-staked eligible key.
    #[test]
    fn election_is_deterministic_and_within_the_band(
        vals in prop::collection::vec((1u64..50_000, 1usize..4, any::<bool>()), 1..12),
        slots in 1usize..20,
        band in 0u128..60,
    ) {
        let params = StakingParams {
            slots,
            slot_limit: Dec::percent(25),
            effective_band: Dec::percent(band),
            ..Default::default()
        };
        let mut next_key = 0;
        let validators: Vec<Validator> = vals.iter().enumerate().map(|(i, &(stake, nkeys, active))| {
            let keys: Vec<BlsKey> = (next_key..next_key + nkeys).map(|k| BlsKey::repeat_byte(k as u8 + 1)).collect();
            next_key += nkeys;
            let address = addr(i as u8 + 1);
            Validator {
                address,
                bls_keys: keys,
                transport_key: B256::repeat_byte(1),
                endpoint: "h:1".into(),
                min_self_delegation: one(10_000),
                max_total_delegation: one(1_000_000),
                status: if active { ValidatorStatus::Active } else { ValidatorStatus::Inactive },
                commission: CommissionRates::default(),
                epoch_start_rate: Dec::ZERO,
                description: Description::default(),
                creation_epoch: 0,
                delegations: vec![Delegation::new(address, one(stake))],
                lifetime: Default::default(),
                epoch_counters: Default::default(),
                lifetime_reward: U256::ZERO,
            }
        }).collect();
        let a = elect(&StakingState::from_validators(validators.clone()), &params);
        let b = elect(&StakingState::from_validators(validators.iter().rev().cloned()), &params);
        prop_assert_eq!(&a, &b);
        prop_assert!(a.slots.len() <= slots);
        let low = a.median - params.effective_band.mul_amount(a.median);
        let high = a.median + params.effective_band.mul_amount(a.median);
        let mut per: BTreeMap<Address, usize> = BTreeMap::new();
        for s in &a.slots {
            prop_assert!(s.effective_stake >= low && s.effective_stake <= high);
            let v = validators.iter().find(|v| v.address == s.validator).unwrap();
            prop_assert!(election::eligible(v));
            *per.entry(s.validator).or_default() += 1;
        }
        prop_assert!(per.values().all(|&n| n <= params.max_slots_per_validator()));
        let shares: Dec = Dec(a.voting_power().iter().map(|d| d.0).sum());
        prop_assert!(shares <= Dec::ONE);
        if !a.slots.is_empty() {
            prop_assert!(Dec::ONE.0 - shares.0 < a.slots.len() as u128 + 1, "shares sum to one, up to rounding");
            // Nobody eligible and under the limit was passed over for a lower stake.
            if a.slots.len() < slots {
                for v in validators.iter().filter(|v| election::eligible(v)) {
                    let won = per.get(&v.address).copied().unwrap_or(0);
                    prop_assert!(won == v.bls_keys.len().min(params.max_slots_per_validator()));
                }
            } else {
                let last = a.slots.last().unwrap().raw_stake;
                for v in validators.iter().filter(|v| election::eligible(v)) {
                    let won = per.get(&v.address).copied().unwrap_or(0);
                    let per_key = v.total_delegation() / U256::from(v.bls_keys.len());
                    if won < v.bls_keys.len().min(params.max_slots_per_validator()) {
                        prop_assert!(per_key <= last);
                    }
                }
            }
        }
    }
}
