//! Schema 4 → 5: validator records written before the `rewards` fork's fields decode after it.

use super::env::{self, Db};
use super::{ChainStore, Validators, SCHEMA_VERSION};
use crate::staking::*;
use alloy_primitives::{Address, B256, U256};

fn record() -> Validator {
    let address = Address::repeat_byte(7);
    Validator {
        address,
        bls_keys: vec![BlsKey::repeat_byte(1)],
        transport_key: B256::repeat_byte(2),
        endpoint: "10.0.0.7:9000".into(),
        min_self_delegation: U256::from(10),
        max_total_delegation: U256::from(1000),
        status: ValidatorStatus::Active,
        commission: CommissionRates::default(),
        epoch_start_rate: Dec::ZERO,
        description: Description::default(),
        creation_epoch: 3,
        delegations: vec![Delegation::new(address, U256::from(20))],
        lifetime: Default::default(),
        epoch_counters: Default::default(),
        lifetime_reward: U256::ZERO,
    }
}

/// The record as schema 4 stored it: the same list without the last three fields.
fn schema_4_bytes(v: &Validator) -> Vec<u8> {
    let full = alloy_rlp::encode(v);
    let mut body = full.as_slice();
    let header = alloy_rlp::Header::decode(&mut body).unwrap();
    // Two empty counters (0xc2 0x80 0x80 each) and a zero reward (0x80).
    let tail = [0xc2, 0x80, 0x80, 0xc2, 0x80, 0x80, 0x80];
    assert!(body.ends_with(&tail));
    let payload = &body[..header.payload_length - tail.len()];
    let mut out = Vec::new();
    alloy_rlp::Header {
        list: true,
        payload_length: payload.len(),
    }
    .encode(&mut out);
    out.extend_from_slice(payload);
    out
}

#[test]
fn schema_4_validator_records_gain_zero_counters() {
    let dir = tempfile::tempdir().unwrap();
    let v = record();
    {
        let db = Db::open_raw(dir.path()).unwrap();
        let tx = db.tx_mut().unwrap();
        env::write_schema_version(&tx, 4).unwrap();
        tx.put_raw::<Validators>(&v.address, &schema_4_bytes(&v))
            .unwrap();
        tx.commit().unwrap();
    }
    let store = ChainStore::open(dir.path()).unwrap();
    assert_eq!(store.db().schema_version().unwrap(), Some(SCHEMA_VERSION));
    let state = store.staking_state().unwrap();
    assert_eq!(state.validator(&v.address), Some(&v));
}

#[test]
fn a_damaged_schema_4_record_stops_the_migration_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Db::open_raw(dir.path()).unwrap();
        let tx = db.tx_mut().unwrap();
        env::write_schema_version(&tx, 4).unwrap();
        tx.put_raw::<Validators>(&Address::repeat_byte(9), &[0x83, 1, 2, 3])
            .unwrap();
        tx.commit().unwrap();
    }
    let err = ChainStore::open(dir.path()).unwrap_err().to_string();
    assert!(err.contains("0x0909"), "{err}");
    // Nothing changed: the database is still at version 4.
    let db = Db::open_raw(dir.path()).unwrap();
    assert_eq!(db.schema_version().unwrap(), Some(4));
}

/// The record as schema 4 encoded it, field by field (independent of the new type).
#[derive(alloy_rlp::RlpEncodable)]
struct ValidatorV4 {
    address: Address,
    bls_keys: Vec<BlsKey>,
    transport_key: B256,
    endpoint: String,
    min_self_delegation: U256,
    max_total_delegation: U256,
    status: ValidatorStatus,
    commission: CommissionRates,
    epoch_start_rate: Dec,
    description: Description,
    creation_epoch: u64,
    delegations: Vec<Delegation>,
}

#[test]
fn a_record_without_rewards_hashes_as_before_the_rewards_fields() {
    let v = record();
    let old = ValidatorV4 {
        address: v.address,
        bls_keys: v.bls_keys.clone(),
        transport_key: v.transport_key,
        endpoint: v.endpoint.clone(),
        min_self_delegation: v.min_self_delegation,
        max_total_delegation: v.max_total_delegation,
        status: v.status,
        commission: v.commission,
        epoch_start_rate: v.epoch_start_rate,
        description: v.description.clone(),
        creation_epoch: v.creation_epoch,
        delegations: v.delegations.clone(),
    };
    assert_eq!(super::staking::leaf(&v), alloy_rlp::encode(&old));
    assert_eq!(schema_4_bytes(&v), alloy_rlp::encode(&old));
    let mut hb = alloy_trie::HashBuilder::default();
    hb.add_leaf(
        alloy_trie::Nibbles::unpack(alloy_primitives::keccak256(v.address)),
        &alloy_rlp::encode(&old),
    );
    let state = StakingState::from_validators([v.clone()]);
    assert_eq!(super::staking::root(&state), hb.root());
    // Once it has counted a block, the record is hashed whole.
    let mut counted = v;
    counted.lifetime.to_sign = 1;
    assert_eq!(super::staking::leaf(&counted), alloy_rlp::encode(&counted));
    assert_ne!(
        super::staking::root(&StakingState::from_validators([counted])),
        hb.root()
    );
}
