//! Staking transactions executed by the chain (the `staking` fork on header version 2):
//! a leader builds blocks with them, a second node re-executes and stores the same blocks,
//! invalid ones are left out by the leader and refused by a validator, and the epoch's last
//! block carries the elected committee.

use alloy_primitives::{Address, Bytes, B256, U256};
use alloy_signer::SignerSync;
use alloy_signer_local::PrivateKeySigner;
use state::db::ChainStore;
use state::exec::{self, ExecConfig, StateReader};
use state::staking::*;
use state::{Block, BlockTemplate, ChainSpec, CommitCertificate, GenesisAccount, Header};
use std::collections::BTreeMap;

const CHAIN_ID: u64 = 31_337;
const EPOCH_BLOCKS: u64 = 4;
const GAS_PRICE: u128 = 2_000_000_000;

fn signer(i: u8) -> PrivateKeySigner {
    PrivateKeySigner::from_bytes(&B256::repeat_byte(i + 1)).unwrap()
}

fn one(n: u64) -> U256 {
    U256::from(n) * U256::from(ONE)
}

fn spec() -> ChainSpec {
    ChainSpec {
        name: "staking-test".into(),
        chain_id: CHAIN_ID,
        shard: 0,
        block_time_ms: 1000,
        blocks_per_leader: 1,
        epoch_blocks: EPOCH_BLOCKS,
        genesis_timestamp_ms: 1_700_000_000_000,
        forks: BTreeMap::from([
            (state::forks::HEADER_V2.to_string(), 0),
            (state::forks::STAKING.to_string(), 0),
        ]),
        staking: Default::default(),
        validators: vec![],
        alloc: (0..3)
            .map(|i| {
                (
                    signer(i).address(),
                    GenesisAccount {
                        balance: one(1_000_000),
                        ..Default::default()
                    },
                )
            })
            .collect(),
    }
}

fn open(dir: &std::path::Path, spec: &ChainSpec) -> ChainStore {
    let store = ChainStore::open(dir).unwrap();
    store
        .init_genesis_with_state(&spec.genesis(), &spec.genesis_state())
        .unwrap();
    store
}

fn tip(store: &ChainStore) -> Header {
    let (n, _) = store.tip().unwrap().unwrap();
    store.header(n).unwrap().unwrap()
}

fn template(parent: &Header) -> BlockTemplate {
    let number = parent.number + 1;
    BlockTemplate {
        number,
        view: parent.view + 1,
        epoch: number / EPOCH_BLOCKS,
        shard: 0,
        parent_hash: parent.hash(),
        timestamp_ms: parent.timestamp_ms + 1000,
        leader: Address::repeat_byte(0x1e),
        last_commit: None,
        transactions: vec![],
    }
}

fn cert(block: &Block) -> CommitCertificate {
    CommitCertificate {
        number: block.number(),
        view: block.header.view,
        hash: block.hash(),
        signature: Bytes::from(vec![0; 96]),
        bitmap: Bytes::from(vec![1]),
    }
}

fn staking_tx(from: u8, nonce: u64, msg: StakeMsg) -> SignedStakingTx {
    let tx = StakingTx {
        msg,
        nonce,
        gas_price: GAS_PRICE,
        gas_limit: 6_000_000,
    };
    let sig = signer(from)
        .sign_hash_sync(&tx.signing_hash(CHAIN_ID))
        .unwrap();
    SignedStakingTx::decode(&tx.encode_signed(CHAIN_ID, &sig), CHAIN_ID).unwrap()
}

fn create(from: u8, key_seed: u8) -> StakeMsg {
    let sk = accel::SecretKey::from_ikm(&[key_seed; 32]).unwrap();
    StakeMsg::CreateValidator(CreateValidator {
        validator_address: signer(from).address(),
        description: Description {
            name: format!("validator {from}"),
            ..Default::default()
        },
        commission_rates: CommissionRates {
            rate: Dec::percent(10),
            max_rate: Dec::percent(20),
            max_change_rate: Dec::percent(1),
        },
        min_self_delegation: one(10_000),
        max_total_delegation: one(500_000),
        slot_pub_keys: vec![BlsKey::from(sk.public_key().to_bytes())],
        slot_key_sigs: vec![BlsSig::from(sk.prove_possession().to_bytes())],
        amount: one(20_000),
        transport_key: B256::repeat_byte(from + 1),
        endpoint: format!("10.0.0.{from}:9000"),
    })
}

/// The leader builds the next block from `staking`, commits it, and a second node
/// re-executes and commits it too; both must agree.
fn step(
    leader: &ChainStore,
    follower: &ChainStore,
    cfg: &ExecConfig,
    staking: Vec<SignedStakingTx>,
) -> Block {
    let parent = tip(leader);
    let (block, executed) =
        exec::build_with_staking(leader, cfg, &parent, template(&parent), vec![], staking).unwrap();
    leader
        .commit_executed(&block, Some(&cert(&block)), executed.writes())
        .unwrap();
    let checked = exec::verify(follower, cfg, &tip(follower), &block).unwrap();
    follower
        .commit_executed(&block, Some(&cert(&block)), checked.writes())
        .unwrap();
    assert_eq!(
        leader.staking_state().unwrap(),
        follower.staking_state().unwrap()
    );
    block
}

fn balance(store: &ChainStore, a: Address) -> U256 {
    let ro = store.db().tx().unwrap();
    StateReader::new(&ro)
        .account(a)
        .unwrap()
        .map_or(U256::ZERO, |a| a.balance)
}

#[test]
fn staking_transactions_run_on_chain_and_the_epoch_end_elects() {
    let spec = spec();

    let cfg = ExecConfig::from_spec(&spec);
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (leader, follower) = (open(d1.path(), &spec), open(d2.path(), &spec));
    let (v, d) = (signer(0).address(), signer(1).address());

    // Block 1: a CreateValidator, and one with a key already taken that the leader leaves out.
    let good = staking_tx(0, 0, create(0, 1));
    let dup = staking_tx(2, 0, create(2, 1));
    let b1 = step(&leader, &follower, &cfg, vec![good.clone(), dup.clone()]);
    assert_eq!(b1.body.staking_transactions, vec![good.raw.clone()]);
    let state = leader.staking_state().unwrap();
    let val = state.validator(&v).unwrap();
    assert_eq!(val.self_delegation(), one(20_000));
    let gas = b1.header.gas_used;
    assert!(gas >= state::exec::staking::CREATE_VALIDATOR_GAS, "{gas}");
    assert_eq!(
        balance(&leader, v),
        one(1_000_000) - one(20_000) - U256::from(u128::from(gas) * GAS_PRICE)
    );
    let receipts = leader.receipts(1).unwrap().unwrap().receipts;
    assert_eq!(receipts.len(), 1);
    assert_eq!(receipts[0].tx_hash, good.hash);
    assert_eq!(leader.tx_location(&good.hash).unwrap().unwrap().block, 1);
    let root1 = b1.header.v2.as_ref().unwrap().staking_root;
    assert_ne!(root1, state::EMPTY_ROOT);

    // A block carrying the refused transaction is refused by a validator, naming it.
    let parent = tip(&leader);
    let (mut bad, _) =
        exec::build_with_staking(&leader, &cfg, &parent, template(&parent), vec![], vec![])
            .unwrap();
    bad.body.staking_transactions = vec![dup.raw.clone()];
    bad.header.v2.as_mut().unwrap().staking_transactions_root =
        state::transactions_root(&bad.body.staking_transactions);
    let err = exec::verify(&follower, &cfg, &tip(&follower), &bad).unwrap_err();
    assert!(err.to_string().contains("staking transaction 0"), "{err}");
    assert!(err.to_string().contains("already used"), "{err}");
    // And a wrong staking root.
    let (mut bad, _) =
        exec::build_with_staking(&leader, &cfg, &parent, template(&parent), vec![], vec![])
            .unwrap();
    bad.header.v2.as_mut().unwrap().staking_root = B256::repeat_byte(3);
    let err = exec::verify(&follower, &cfg, &tip(&follower), &bad).unwrap_err();
    assert!(err.to_string().contains("staking root"), "{err}");

    // Block 2: a delegation. Block 3 (the epoch's last): nothing sent, the committee elected.
    let delegate = staking_tx(
        1,
        0,
        StakeMsg::Delegate(Delegate {
            delegator_address: d,
            validator_address: v,
            amount: one(5_000),
        }),
    );
    let b2 = step(&leader, &follower, &cfg, vec![delegate]);
    assert_ne!(b2.header.v2.as_ref().unwrap().staking_root, root1);
    assert!(b2.header.v2.as_ref().unwrap().committee.is_empty());
    let b3 = step(&leader, &follower, &cfg, vec![]);
    assert_eq!(b3.number(), EPOCH_BLOCKS - 1);
    let committee: Vec<Slot> =
        alloy_rlp::decode_exact(&b3.header.v2.as_ref().unwrap().committee[..]).unwrap();
    assert_eq!(committee.len(), 1);
    assert_eq!(committee[0].validator, v);
    assert_eq!(committee[0].raw_stake, one(25_000));
    assert_eq!(
        b3.header.v2.as_ref().unwrap().staking_root,
        b2.header.v2.as_ref().unwrap().staking_root,
        "an epoch end with nothing to pay keeps the root"
    );
}

#[test]
fn the_staking_pool_checks_rules_at_admission() {
    use state::mempool::staking::{StakingAdmission, StakingPool};
    let spec = spec();
    let cfg = ExecConfig::from_spec(&spec);
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), &spec);
    let mut pool = StakingPool::default();
    let staking = store.staking_state().unwrap();
    let ro = store.db().tx().unwrap();
    let reader = StateReader::new(&ro);
    let base_fee = 1_000_000_000;

    // Not before the fork.
    let mut off = cfg;
    off.staking_from = Some(5);
    let err = pool
        .insert(
            staking_tx(0, 0, create(0, 1)),
            &off,
            0,
            base_fee,
            &reader,
            &staking,
        )
        .unwrap_err();
    assert!(
        matches!(
            err,
            StakingAdmission::Inactive {
                epoch: 0,
                from: Some(5)
            }
        ),
        "{err}"
    );
    // Under the base fee.
    let err = pool
        .insert(
            staking_tx(0, 0, create(0, 1)),
            &cfg,
            0,
            u64::MAX,
            &reader,
            &staking,
        )
        .unwrap_err();
    assert!(matches!(err, StakingAdmission::Underpriced { .. }), "{err}");
    // A rule broken at the sender's next nonce: refused with the rule's own error.
    let mut bad = create(0, 1);
    if let StakeMsg::CreateValidator(m) = &mut bad {
        m.min_self_delegation = one(1);
    }
    let err = pool
        .insert(staking_tx(0, 0, bad), &cfg, 0, base_fee, &reader, &staking)
        .unwrap_err();
    assert!(
        matches!(
            err,
            StakingAdmission::Rules(StakingError::MinSelfDelegationTooLow { .. })
        ),
        "{err}"
    );
    assert!(pool.is_empty(), "refusals leave nothing behind");
    // Admitted; then a later nonce waits without the rules check (its state is unknown yet).
    let create0 = staking_tx(0, 0, create(0, 1));
    pool.insert(create0.clone(), &cfg, 0, base_fee, &reader, &staking)
        .unwrap();
    let edit = staking_tx(
        0,
        1,
        StakeMsg::EditValidator(EditValidator {
            validator_address: signer(0).address(),
            commission_rate: Opt(Some(Dec::percent(11))),
            ..Default::default()
        }),
    );
    pool.insert(edit.clone(), &cfg, 0, base_fee, &reader, &staking)
        .unwrap();
    let err = pool
        .insert(create0.clone(), &cfg, 0, base_fee, &reader, &staking)
        .unwrap_err();
    assert!(matches!(err, StakingAdmission::Known), "{err}");
    let order: Vec<u64> = pool.candidates().iter().map(|t| t.tx.nonce).collect();
    assert_eq!(order, vec![0, 1]);
    drop(ro);

    // Both go into one block; the pool forgets them once the chain passed their nonces.
    let (d2, follower) = {
        let d = tempfile::tempdir().unwrap();
        let s = open(d.path(), &spec);
        (d, s)
    };
    let block = step(&store, &follower, &cfg, pool.candidates());
    assert_eq!(block.body.staking_transactions.len(), 2);
    let ro = store.db().tx().unwrap();
    pool.prune(&StateReader::new(&ro));
    assert!(pool.is_empty());
    let err = pool
        .insert(
            create0,
            &cfg,
            0,
            base_fee,
            &StateReader::new(&ro),
            &store.staking_state().unwrap(),
        )
        .unwrap_err();
    assert!(
        matches!(err, StakingAdmission::NonceTooLow { next: 2, nonce: 0 }),
        "{err}"
    );
    drop(d2);
}
