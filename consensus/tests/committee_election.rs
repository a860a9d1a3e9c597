//! The committee of an epoch after an election, as consensus takes it over at the hand-off:
//! the chain spec's (internal) members first with their share of the voting power, then the
//! elected validators in address order with their elected keys and the rest of the power by
//! effective stake, transport keys from the staking records, and quorum and leader rotation
//! over it.

mod common;

use accel::SecretKey;
use alloy_primitives::{Address, B256, U256};
use consensus::Committee;
use state::staking::*;

fn one(n: u64) -> U256 {
    U256::from(n) * U256::from(ONE)
}

fn validator(i: u8, keys: &[u8], stake: u64) -> Validator {
    let address = Address::repeat_byte(0x20 + i);
    Validator {
        address,
        bls_keys: keys
            .iter()
            .map(|k| {
                BlsKey::from(
                    SecretKey::from_ikm(&[*k; 32])
                        .unwrap()
                        .public_key()
                        .to_bytes(),
                )
            })
            .collect(),
        transport_key: B256::repeat_byte(0x20 + i),
        endpoint: format!("10.0.0.{i}:9000"),
        min_self_delegation: one(10_000),
        max_total_delegation: one(1_000_000),
        status: ValidatorStatus::Active,
        commission: CommissionRates::default(),
        epoch_start_rate: Dec::ZERO,
        description: Description::default(),
        creation_epoch: 0,
        delegations: vec![Delegation::new(address, one(stake))],
        lifetime: Default::default(),
        epoch_counters: Default::default(),
        lifetime_reward: U256::ZERO,
    }
}

#[test]
fn an_elected_committee_follows_the_internal_members() {
    // Stakes per key 30k, 20k (two keys of 20k), 10k; the band (35%) around the median of
    // {30k, 20k, 20k, 10k} = 20k clamps 30k to 27k and 10k to 13k.
    let staking = StakingState::from_validators([
        validator(3, &[31], 30_000),
        validator(1, &[11, 12], 40_000),
        validator(2, &[21], 10_000),
    ]);
    let params = StakingParams {
        slots: 10,
        slot_limit: Dec::percent(50),
        ..Default::default()
    };
    let election = elect(&staking, &params);
    assert_eq!(election.slots.len(), 4);
    let internal = Committee::from_spec(&common::spec(&[1, 1], 2)).unwrap();
    let elected = |slots: &[state::staking::Slot], order| state::staking::Elected {
        slots: slots.to_vec(),
        order,
    };
    let c = Committee::after_election(
        &internal,
        &elected(&election.slots, None),
        &staking,
        Dec::percent(49),
    )
    .unwrap();
    assert_eq!(c.key_count(), 6);
    let addresses: Vec<Address> = c.members.iter().map(|m| m.address).collect();
    assert_eq!(
        addresses,
        vec![
            internal.members[0].address,
            internal.members[1].address,
            Address::repeat_byte(0x21),
            Address::repeat_byte(0x22),
            Address::repeat_byte(0x23)
        ],
        "internal members first, then the elected in address order"
    );
    assert_eq!(c.members[2].keys, 2..4, "a validator's keys are contiguous");
    // The internal members share 49% evenly (equal spec power); the elected share 51% by
    // effective stake: 40k, 13k and 27k of 80k.
    let scale = consensus::committee::POWER_SCALE;
    let share = |num: u64, den: u64| scale / den * num;
    assert_eq!(c.members[0].power, share(245, 1000));
    assert_eq!(c.members[1].power, share(245, 1000));
    assert_eq!(c.members[2].power, share(255, 1000));
    assert_eq!(c.members[3].power, share(82_875, 1_000_000));
    assert_eq!(c.members[4].power, share(172_125, 1_000_000));
    assert_eq!(c.total_power, scale);
    // Quorum is strictly more than 2/3: the internal members alone are not one.
    assert!(!c.is_quorum(c.members[0].power + c.members[1].power));
    assert!(c.is_quorum(c.members[0].power + c.members[1].power + c.members[2].power));
    assert_eq!(c.member_by_transport_key(&[0x22; 32]), Some(3));
    assert_eq!(
        c.member_by_transport_key(&internal.members[1].transport_key),
        Some(1)
    );
    // Leaders rotate over all six keys, two blocks each.
    let leaders: Vec<usize> = (1..=12).map(|n| c.leader(n, 0, 0, &[])).collect();
    assert_eq!(leaders, vec![0, 0, 1, 1, 2, 2, 2, 2, 3, 3, 4, 4]);

    // The node holding validator 0x21's two keys signs as member 2, in committee key order.
    let mine: Vec<accel::PublicKey> = [12u8, 11]
        .iter()
        .map(|k| SecretKey::from_ikm(&[*k; 32]).unwrap().public_key())
        .collect();
    let (member, positions) = c.member_signing_with(&mine).expect("member 2");
    assert_eq!(member, 2);
    for (k, p) in c.members[2].keys.clone().zip(positions) {
        assert_eq!(c.keys[k].public_key, mine[p]);
    }
    assert_eq!(
        c.member_signing_with(&mine[..1]),
        None,
        "one key of two: observe"
    );

    // Nobody elected: the internal committee as it is.
    let same =
        Committee::after_election(&internal, &elected(&[], None), &staking, Dec::percent(49))
            .unwrap();
    assert_eq!(same.total_power, internal.total_power);
    assert_eq!(same.key_count(), internal.key_count());
    // An elected key that is also an internal key is left out.
    let mut slots = election.slots.clone();
    slots[0].key = BlsKey::from(internal.keys[0].public_key.to_bytes());
    let c2 = Committee::after_election(
        &internal,
        &elected(&slots, None),
        &staking,
        Dec::percent(49),
    )
    .unwrap();
    assert_eq!(c2.key_count(), 5);
    // An election naming a validator the staking state does not hold is refused.
    let err = Committee::after_election(
        &internal,
        &elected(&election.slots, None),
        &StakingState::default(),
        Dec::percent(49),
    )
    .unwrap_err();
    assert!(err.to_string().contains("has no record"), "{err}");

    // Under the VDF the elected validators come in the order its output gives: the same
    // members with the same power, each validator's keys still together, internal ones first.
    let mut orders = std::collections::BTreeSet::new();
    for x in 0u8..8 {
        let order = Some(alloy_primitives::B256::repeat_byte(x));
        let v = Committee::after_election(
            &internal,
            &elected(&election.slots, order),
            &staking,
            Dec::percent(49),
        )
        .unwrap();
        let members: Vec<Address> = v.members.iter().map(|m| m.address).collect();
        assert_eq!(members[..2], addresses[..2]);
        let mut sorted = members[2..].to_vec();
        sorted.sort();
        assert_eq!(sorted, addresses[2..], "the same elected validators");
        for m in &v.members {
            let before = c.members.iter().find(|b| b.address == m.address).unwrap();
            assert_eq!((m.power, m.keys.len()), (before.power, before.keys.len()));
        }
        // The order is the state crate's seat order, which rewards read certificates with.
        let seats = elected(&election.slots, order).seats(&[
            BlsKey::from(internal.keys[0].public_key.to_bytes()),
            BlsKey::from(internal.keys[1].public_key.to_bytes()),
        ]);
        let seat_keys: Vec<[u8; 48]> = seats.iter().map(|s| s.key.0).collect();
        let committee_keys: Vec<[u8; 48]> =
            v.keys.iter().map(|k| k.public_key.to_bytes()).collect();
        assert_eq!(seat_keys, committee_keys);
        orders.insert(members);
    }
    assert!(
        orders.len() > 1,
        "different outputs order the committee differently"
    );
}
