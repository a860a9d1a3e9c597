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
        economics: Default::default(),
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
            .chain(
                [
                    (FORWARDER.0, FORWARDER.1.to_vec()),
                    (REVERTER.0, REVERTER.1.to_vec()),
                ]
                .map(|(address, code)| {
                    (
                        address,
                        GenesisAccount {
                            balance: one(50_000),
                            code: Bytes::from(code),
                            ..Default::default()
                        },
                    )
                }),
            )
            .collect(),
    }
}

/// Runtime code that calls the staking precompile with its own calldata (CALL, no value).
const CALL_0XFC: [u8; 19] = [
    0x36, 0x60, 0x00, 0x60, 0x00, 0x37, // calldatacopy(0, 0, calldatasize)
    0x60, 0x00, 0x60, 0x00, 0x36, 0x60, 0x00, 0x60, 0x00, 0x60, 0xfc, 0x5a,
    0xf1, // call(gas, 0xfc, 0, 0, calldatasize, 0, 0)
];

const fn concat<const N: usize>(tail: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    let mut i = 0;
    while i < 19 {
        out[i] = CALL_0XFC[i];
        i += 1;
    }
    while i < N {
        out[i] = tail[i - 19];
        i += 1;
    }
    out
}

/// A contract that forwards its calldata to 0xfc and succeeds when the call did.
const FORWARDER: (Address, [u8; 29]) = (
    Address::repeat_byte(0xf0),
    // jumpi(27, success); revert(0, 0); 27: jumpdest; stop
    concat(&[0x60, 0x1b, 0x57, 0x60, 0x00, 0x60, 0x00, 0xfd, 0x5b, 0x00]),
);

/// A contract that forwards its calldata to 0xfc, then reverts whatever happened.
const REVERTER: (Address, [u8; 25]) = (
    Address::repeat_byte(0xf1),
    // pop; revert(0, 0)
    concat(&[0x50, 0x60, 0x00, 0x60, 0x00, 0xfd]),
);

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
        vrf: Default::default(),
    }
}

fn cert(block: &Block) -> CommitCertificate {
    cert_of(&block.header)
}

fn cert_of(header: &Header) -> CommitCertificate {
    CommitCertificate {
        number: header.number,
        view: header.view,
        hash: header.hash(),
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
    step_with(leader, follower, cfg, vec![], staking)
}

/// As [`step`], with EVM transactions first.
fn step_with(
    leader: &ChainStore,
    follower: &ChainStore,
    cfg: &ExecConfig,
    txs: Vec<state::exec::SignedTx>,
    staking: Vec<SignedStakingTx>,
) -> Block {
    step_certified(leader, follower, cfg, txs, staking, None)
}

/// As [`step_with`], the block carrying its parent's certificate with signer `bitmap`.
fn step_certified(
    leader: &ChainStore,
    follower: &ChainStore,
    cfg: &ExecConfig,
    txs: Vec<state::exec::SignedTx>,
    staking: Vec<SignedStakingTx>,
    bitmap: Option<&[u8]>,
) -> Block {
    let parent = tip(leader);
    let mut t = template(&parent);
    t.last_commit = bitmap.map(|b| CommitCertificate {
        bitmap: Bytes::copy_from_slice(b),
        ..cert_of(&parent)
    });
    let (block, executed) =
        exec::build_with_staking(leader, cfg, &parent, t, txs, staking).unwrap();
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
    let mut off = cfg.clone();
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

/// An EVM transaction from `from` to `to` with `input`.
fn evm_tx(from: u8, nonce: u64, to: Address, input: Vec<u8>) -> state::exec::SignedTx {
    use alloy_consensus::{SignableTransaction, TxEip1559, TxEnvelope};
    use alloy_eips::eip2718::Encodable2718;
    let tx = TxEip1559 {
        chain_id: CHAIN_ID,
        nonce,
        gas_limit: 200_000,
        max_fee_per_gas: 10 * GAS_PRICE,
        max_priority_fee_per_gas: GAS_PRICE,
        to: alloy_primitives::TxKind::Call(to),
        input: input.into(),
        ..Default::default()
    };
    let sig = signer(from).sign_hash_sync(&tx.signature_hash()).unwrap();
    let env: TxEnvelope = tx.into_signed(sig).into();
    state::exec::SignedTx::decode(&env.encoded_2718(), CHAIN_ID).unwrap()
}

fn abi_delegate(delegator: Address, validator: Address, amount: U256) -> Vec<u8> {
    use alloy_sol_types::SolCall;
    state::exec::precompile::DelegateCall {
        delegatorAddress: delegator,
        validatorAddress: validator,
        amount,
    }
    .abi_encode()
}

#[test]
fn wallets_and_contracts_delegate_through_the_staking_precompile() {
    use alloy_sol_types::{SolCall, SolError};
    use state::exec::precompile::{UndelegateCall, STAKING_PRECOMPILE};
    let spec = spec();
    let cfg = ExecConfig::from_spec(&spec);
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (leader, follower) = (open(d1.path(), &spec), open(d2.path(), &spec));
    let v = signer(0).address();
    let (w1, w2) = (signer(1).address(), signer(2).address());
    let (fwd, rev) = (FORWARDER.0, REVERTER.0);
    step(
        &leader,
        &follower,
        &cfg,
        vec![staking_tx(0, 0, create(0, 1))],
    );
    let root_before = tip(&leader).v2.unwrap().staking_root;
    let w1_before = balance(&leader, w1);

    let txs = vec![
        // A wallet delegates for itself: included, the stake leaves its balance.
        evm_tx(1, 0, STAKING_PRECOMPILE, abi_delegate(w1, v, one(1_000))),
        // ...and for someone else: reverted.
        evm_tx(2, 0, STAKING_PRECOMPILE, abi_delegate(w1, v, one(100))),
        // A contract delegates, then reverts: nothing of it stays.
        evm_tx(2, 1, rev, abi_delegate(rev, v, one(500))),
        // A contract delegates for itself through a plain CALL.
        evm_tx(2, 2, fwd, abi_delegate(fwd, v, one(700))),
        // The wallet takes some back, in the same block.
        evm_tx(
            1,
            1,
            STAKING_PRECOMPILE,
            UndelegateCall {
                delegatorAddress: w1,
                validatorAddress: v,
                amount: one(200),
            }
            .abi_encode(),
        ),
        // Garbage input: reverted with a clear reason.
        evm_tx(2, 3, STAKING_PRECOMPILE, vec![1, 2, 3, 4, 5]),
    ];
    let block = step_with(&leader, &follower, &cfg, txs, vec![]);
    assert_eq!(block.body.transactions.len(), 6, "every call is includable");
    let receipts = leader.receipts(2).unwrap().unwrap().receipts;
    let ok: Vec<bool> = receipts.iter().map(|r| r.success).collect();
    assert_eq!(ok, vec![true, false, false, true, true, false]);
    // Successful calls leave a log at 0xfc naming the caller.
    assert_eq!(receipts[0].logs.len(), 1);
    assert_eq!(receipts[0].logs[0].address, STAKING_PRECOMPILE);
    assert_eq!(receipts[0].logs[0].topics()[1], w1.into_word());
    assert!(receipts[2].logs.is_empty(), "a reverted call leaves no log");

    let state = leader.staking_state().unwrap();
    let val = state.validator(&v).unwrap();
    let delegated = |a: Address| {
        val.delegations
            .iter()
            .find(|d| d.delegator == a)
            .map(|d| d.amount)
    };
    assert_eq!(delegated(w1), Some(one(800)));
    assert_eq!(delegated(fwd), Some(one(700)));
    assert_eq!(delegated(rev), None);
    assert_eq!(delegated(w2), None);
    assert_ne!(tip(&leader).v2.unwrap().staking_root, root_before);
    // The stake left the balances; the precompile keeps no escrow.
    let gas = U256::from(receipts[0].gas_used + receipts[4].gas_used)
        * U256::from(receipts[0].effective_gas_price);
    assert_eq!(balance(&leader, w1), w1_before - one(1_000) - gas);
    assert_eq!(balance(&leader, fwd), one(50_000) - one(700));
    assert_eq!(balance(&leader, rev), one(50_000));
    assert_eq!(balance(&leader, STAKING_PRECOMPILE), U256::ZERO);

    // eth_call and gas estimation see the precompile too, with the rule's message.
    let ro = leader.db().tx().unwrap();
    let inputs = {
        let mut i = exec::inputs_of(&tip(&leader));
        i.number += 1;
        i
    };
    let call = |from: Address, input: Vec<u8>| {
        let req = exec::CallRequest {
            from: Some(from),
            to: Some(STAKING_PRECOMPILE),
            data: input.into(),
            ..Default::default()
        };
        let calls = exec::staking_calls(&cfg, inputs.epoch, &ro);
        exec::call(StateReader::new(&ro), &cfg, &inputs, &req, 200_000, calls).unwrap()
    };
    match call(w2, abi_delegate(w2, v, one(150))) {
        exec::CallOutcome::Success { gas_used, .. } => assert!(gas_used > 21_000 * 2),
        other => panic!("{other:?}"),
    }
    match call(w2, abi_delegate(w1, v, one(10))) {
        exec::CallOutcome::Revert { output, .. } => {
            let reason = alloy_sol_types::Revert::abi_decode(&output).unwrap().reason;
            assert!(reason.contains("is not the caller"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    match call(w2, abi_delegate(w2, Address::repeat_byte(0x77), one(10))) {
        exec::CallOutcome::Revert { output, .. } => {
            let reason = alloy_sol_types::Revert::abi_decode(&output).unwrap().reason;
            assert!(reason.contains("staking precompile"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
}

/// Every account's balance plus everything held by staking (delegations, undelegations and
/// accumulated rewards).
fn supply(store: &ChainStore) -> U256 {
    let ro = store.db().tx().unwrap();
    let mut total = U256::ZERO;
    ro.walk::<state::db::Accounts>(&B256::ZERO, |_, a| {
        total += a.balance;
        Ok(true)
    })
    .unwrap();
    let staked: U256 = store
        .staking_state()
        .unwrap()
        .validators()
        .flat_map(|v| &v.delegations)
        .map(|d| d.amount + d.reward + d.undelegating())
        .sum();
    total + staked
}

#[test]
fn certified_blocks_pay_their_signers_and_supply_moves_only_by_issuance_and_burns() {
    let collector = Address::repeat_byte(0xc0);
    let mut spec = spec();
    spec.forks.insert(state::forks::REWARDS.into(), 0);
    spec.forks.insert(state::forks::FEE_SPLIT.into(), 0);
    spec.economics.fee_collectors = vec![FeeCollector {
        address: collector,
        share: Dec::percent(50),
    }];
    let cfg = ExecConfig::from_spec(&spec);
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (leader, follower) = (open(d1.path(), &spec), open(d2.path(), &spec));
    let (v, d) = (signer(0).address(), signer(1).address());
    let genesis_supply = supply(&leader);

    // Epoch 0: v registers (10% commission, 20,000 ONE), d delegates 5,000; v is elected.
    step(
        &leader,
        &follower,
        &cfg,
        vec![staking_tx(0, 0, create(0, 1))],
    );
    let delegate = Delegate {
        delegator_address: d,
        validator_address: v,
        amount: one(5_000),
    };
    step(
        &leader,
        &follower,
        &cfg,
        vec![staking_tx(1, 0, StakeMsg::Delegate(delegate))],
    );
    while tip(&leader).number < EPOCH_BLOCKS - 1 {
        step(&leader, &follower, &cfg, vec![]);
    }
    // Block 4 carries block 3's certificate: epoch 0 had no elected seat, nothing is paid.
    let b4 = step_certified(&leader, &follower, &cfg, vec![], vec![], Some(&[1]));
    assert_eq!(
        leader.staking_state().unwrap().issuance(),
        Issuance::default()
    );
    // Blocks 5–7 carry epoch 1's certificates: v's key (seat 0) signed two of three.
    let mut roots = vec![b4.header.v2.as_ref().unwrap().staking_root];
    for bit in [1u8, 0, 1] {
        let b = step_certified(&leader, &follower, &cfg, vec![], vec![], Some(&[bit]));
        roots.push(b.header.v2.as_ref().unwrap().staking_root);
    }
    assert!(
        roots.windows(2).all(|w| w[0] != w[1]),
        "every certified block counts: {roots:?}"
    );
    let state = leader.staking_state().unwrap();
    let val = state.validator(&v).unwrap();
    assert_eq!(state.issuance().total, one(14));
    assert_eq!(val.lifetime_reward, one(14));
    assert_eq!((val.lifetime.to_sign, val.lifetime.signed), (3, 2));
    // d: 90% of 14 ONE by 5,000 of 25,000 stake = 2.52 ONE; v keeps the rest.
    let d_reward = U256::from(2_520_000_000_000_000_000u128);
    assert_eq!(val.delegation_of(d).unwrap().reward, d_reward);
    assert_eq!(val.delegation_of(v).unwrap().reward, one(14) - d_reward);
    // Block 7 was the epoch's last: 2 of 3 is at the threshold, so v is Inactive now and the
    // next committee is empty; the epoch counts restarted.
    assert_eq!(val.status, ValidatorStatus::Inactive);
    assert_eq!(val.epoch_counters, Counters::default());
    assert!(tip(&leader).v2.unwrap().committee.as_ref() == [0xc0]);

    // A block whose certificate says otherwise than its staking root is refused.
    let parent = tip(&leader);
    let mut t = template(&parent);
    t.last_commit = Some(cert_of(&parent));
    let (mut forged, _) =
        exec::build_with_staking(&leader, &cfg, &parent, t, vec![], vec![]).unwrap();
    forged.header.last_commit_bitmap = Bytes::from(vec![0]);
    let err = exec::verify(&follower, &cfg, &tip(&follower), &forged).unwrap_err();
    assert!(err.to_string().contains("staking root"), "{err}");

    // d collects: its balance grows by the reward less the fee; the reward is gone.
    let before = balance(&leader, d);
    let collect = StakeMsg::CollectRewards(CollectRewards {
        delegator_address: d,
    });
    let b = step(&leader, &follower, &cfg, vec![staking_tx(1, 1, collect)]);
    let fee = U256::from(u128::from(b.header.gas_used) * GAS_PRICE);
    assert_eq!(balance(&leader, d), before + d_reward - fee);
    let state = leader.staking_state().unwrap();
    assert_eq!(
        state
            .validator(&v)
            .unwrap()
            .delegation_of(d)
            .unwrap()
            .reward,
        U256::ZERO
    );

    // Supply: genesis + issued − fees burnt (half of each base fee went to the collector).
    let mut burnt = U256::ZERO;
    let mut collected = U256::ZERO;
    for n in 1..=tip(&leader).number {
        let h = leader.header(n).unwrap().unwrap();
        let gas = U256::from(h.gas_used);
        burnt += gas * U256::from(GAS_PRICE);
        collected += gas * U256::from(h.base_fee) / U256::from(2);
    }
    assert!(!collected.is_zero());
    assert_eq!(balance(&leader, collector), collected);
    assert_eq!(
        supply(&leader),
        genesis_supply + state.issuance().total - burnt + collected
    );
    assert_eq!(supply(&follower), supply(&leader));
}

/// Commit votes of `key_seed`'s BLS key for two different blocks at (number, view).
fn double_sign(key_seed: u8, number: u64, view: u64, reporter: Address) -> DoubleSign {
    let sk = accel::SecretKey::from_ikm(&[key_seed; 32]).unwrap();
    let vote = |hash: B256| {
        let req = hsm::SignRequest {
            kind: hsm::MsgKind::Commit,
            chain_id: CHAIN_ID,
            shard: 0,
            number,
            view,
            hash: hash.0,
        };
        SignedVote {
            hash,
            signature: Bytes::from(sk.sign(&hsm::payload(&req)).to_bytes().to_vec()),
        }
    };
    DoubleSign {
        number,
        view,
        keys: vec![BlsKey::from(sk.public_key().to_bytes())],
        first: vote(B256::repeat_byte(0xa1)),
        second: vote(B256::repeat_byte(0xa2)),
        reporter,
    }
}

#[test]
fn double_sign_evidence_in_a_header_slashes_bans_and_pays_the_reporter() {
    let spec = spec();
    let cfg = ExecConfig::from_spec(&spec);
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (leader, follower) = (open(d1.path(), &spec), open(d2.path(), &spec));
    let (v, d, reporter) = (
        signer(0).address(),
        signer(1).address(),
        signer(2).address(),
    );
    step(
        &leader,
        &follower,
        &cfg,
        vec![staking_tx(0, 0, create(0, 1))],
    );
    let delegate = Delegate {
        delegator_address: d,
        validator_address: v,
        amount: one(5_000),
    };
    step(
        &leader,
        &follower,
        &cfg,
        vec![staking_tx(1, 0, StakeMsg::Delegate(delegate))],
    );
    while tip(&leader).number < EPOCH_BLOCKS + 1 {
        step(&leader, &follower, &cfg, vec![]);
    }
    let reporter_before = balance(&leader, reporter);
    let supply_before = supply(&leader);

    // v's key signed two blocks at (4, 7): block 4 sat in epoch 1, where v was elected.
    let evidence = double_sign(1, EPOCH_BLOCKS, 7, reporter);
    let early = double_sign(1, 2, 1, reporter); // epoch 0: v was not in the committee
    let future = double_sign(1, EPOCH_BLOCKS + 5, 1, reporter);
    let parent = tip(&leader);
    let (block, executed) = exec::build_with_evidence(
        &leader,
        &cfg,
        &parent,
        template(&parent),
        vec![],
        vec![],
        vec![early, evidence.clone(), evidence.clone(), future],
    )
    .unwrap();
    let reasons: Vec<&String> = executed
        .staking
        .rejected_slashes
        .iter()
        .map(|r| &r.1)
        .collect();
    assert_eq!(reasons.len(), 3, "{reasons:?}");
    assert!(
        reasons[0].contains("did not sit in the committee"),
        "{reasons:?}"
    );
    assert!(reasons[1].contains("already banned"), "{reasons:?}");
    assert!(
        reasons[2].contains("is not before this block"),
        "{reasons:?}"
    );
    let included: Vec<DoubleSign> =
        alloy_rlp::decode_exact(&block.header.v2.as_ref().unwrap().slashes[..]).unwrap();
    assert_eq!(included, vec![evidence.clone()]);
    leader
        .commit_executed(&block, Some(&cert(&block)), executed.writes())
        .unwrap();
    let checked = exec::verify(&follower, &cfg, &tip(&follower), &block).unwrap();
    follower
        .commit_executed(&block, Some(&cert(&block)), checked.writes())
        .unwrap();

    // Half of v's 20,000 ONE; d owes 80% of that (8,000) but holds 5,000; half of the
    // 15,000 taken to the reporter, the rest burnt.
    let state = leader.staking_state().unwrap();
    let val = state.validator(&v).unwrap();
    assert_eq!(val.status, ValidatorStatus::Banned);
    assert_eq!(val.self_delegation(), one(10_000));
    assert_eq!(val.delegation_of(d).unwrap().amount, U256::ZERO);
    assert_eq!(balance(&leader, reporter), reporter_before + one(7_500));
    assert_eq!(supply(&leader), supply_before - one(7_500));
    assert_eq!(supply(&follower), supply(&leader));
    // Banned for good: the next election leaves v out, and v cannot re-activate.
    while !state::exec::staking::is_epoch_end(tip(&leader).number, EPOCH_BLOCKS) {
        step(&leader, &follower, &cfg, vec![]);
    }
    let committee = &tip(&leader).v2.unwrap().committee;
    assert_eq!(committee.as_ref(), [0xc0], "nobody elected");

    // A block whose header carries a forged record is refused, naming it.
    let parent = tip(&leader);
    let (mut bad, _) =
        exec::build_with_staking(&leader, &cfg, &parent, template(&parent), vec![], vec![])
            .unwrap();
    let mut forged = double_sign(1, EPOCH_BLOCKS + 1, 7, reporter);
    forged.second.signature = forged.first.signature.clone();
    bad.header.v2.as_mut().unwrap().slashes = alloy_rlp::encode(vec![forged]).into();
    let err = exec::verify(&follower, &cfg, &tip(&follower), &bad).unwrap_err();
    assert!(err.to_string().contains("slash record 0"), "{err}");
    assert!(err.to_string().contains("second vote"), "{err}");
}
