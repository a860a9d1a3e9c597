//! The committee an election chose, as consensus will use it at the epoch hand-off: members
//! in address order with their elected keys, voting power from effective stake, transport
//! keys from the staking records, and quorum and leader rotation over it.

use accel::SecretKey;
use alloy_primitives::{Address, B256, U256};
use consensus::Committee;
use state::staking::*;

fn one(n: u64) -> U256 {
    U256::from(n) * U256::from(ONE)
}

fn validator(i: u8, keys: &[u8], stake: u64) -> Validator {
    let address = Address::repeat_byte(i);
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
        transport_key: B256::repeat_byte(i),
        endpoint: format!("10.0.0.{i}:9000"),
        min_self_delegation: one(10_000),
        max_total_delegation: one(1_000_000),
        status: ValidatorStatus::Active,
        commission: CommissionRates::default(),
        epoch_start_rate: Dec::ZERO,
        description: Description::default(),
        creation_epoch: 0,
        delegations: vec![Delegation::new(address, one(stake))],
    }
}

#[test]
fn an_elected_committee_votes_by_effective_stake() {
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
    let c = Committee::from_election(&election.slots, &staking, 2).unwrap();
    assert_eq!(c.key_count(), 4);
    let addresses: Vec<Address> = c.members.iter().map(|m| m.address).collect();
    assert_eq!(
        addresses,
        vec![
            Address::repeat_byte(1),
            Address::repeat_byte(2),
            Address::repeat_byte(3)
        ]
    );
    assert_eq!(c.members[0].keys, 0..2, "a validator's keys are contiguous");
    let gwei = |ones: u64| ones * 1_000_000_000;
    assert_eq!(c.members[0].power, gwei(40_000));
    assert_eq!(c.members[1].power, gwei(13_000));
    assert_eq!(c.members[2].power, gwei(27_000));
    assert_eq!(c.total_power, gwei(80_000));
    // Quorum is strictly more than 2/3 of the effective stake.
    assert!(!c.is_quorum(gwei(40_000) + gwei(13_000)));
    assert!(c.is_quorum(gwei(40_000) + gwei(27_000)));
    assert_eq!(c.member_by_transport_key(&[2; 32]), Some(1));
    // Leaders rotate over the elected keys, two blocks each.
    let leaders: Vec<usize> = (1..=8).map(|n| c.leader(n, 0, 0, &[])).collect();
    assert_eq!(leaders, vec![0, 0, 0, 0, 1, 1, 2, 2]);

    // An election naming a validator the staking state does not hold is refused.
    let err = Committee::from_election(&election.slots, &StakingState::default(), 2).unwrap_err();
    assert!(err.to_string().contains("has no record"), "{err}");
    assert!(Committee::from_election(&[], &staking, 2).is_err());
}
