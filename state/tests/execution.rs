//! Execution on a real MDBX store: roots, fees, transaction types, re-execution by a second
//! node, and the property that block boundaries and restarts never change the state root.

use alloy_consensus::{SignableTransaction, TxEip1559, TxEip4844, TxEip7702, TxEnvelope, TxLegacy};
use alloy_eips::eip2718::Encodable2718;
use alloy_eips::eip7702::Authorization;
use alloy_primitives::{Address, Bytes, TxKind, B256, U256};
use alloy_signer::SignerSync;
use alloy_signer_local::PrivateKeySigner;
use proptest::prelude::*;
use state::db::ChainStore;
use state::exec::{self, ExecConfig, SignedTx, StateReader, TxError, MIN_BASE_FEE};
use state::{Block, BlockTemplate, ChainSpec, CommitCertificate, GenesisAccount, Header};
use std::collections::BTreeMap;

const CHAIN_ID: u64 = 31_415_926;
/// Stores calldata word 1 at the slot named by calldata word 0:
/// PUSH1 0x20 CALLDATALOAD PUSH1 0x00 CALLDATALOAD SSTORE STOP.
const STORE_CODE: [u8; 8] = [0x60, 0x20, 0x35, 0x60, 0x00, 0x35, 0x55, 0x00];

fn signer(i: u64) -> PrivateKeySigner {
    let mut k = [0u8; 32];
    k[24..].copy_from_slice(&(i + 1).to_be_bytes());
    PrivateKeySigner::from_bytes(&B256::from(k)).unwrap()
}

fn store_contract() -> Address {
    Address::repeat_byte(0x5e)
}

fn ether(n: u64) -> U256 {
    U256::from(n) * U256::from(10u64).pow(U256::from(18))
}

/// A spec with `accounts` funded signers and the storage contract in genesis.
fn spec(accounts: u64, forks: BTreeMap<String, u64>) -> ChainSpec {
    let mut alloc: BTreeMap<Address, GenesisAccount> = (0..accounts)
        .map(|i| {
            (
                signer(i).address(),
                GenesisAccount {
                    balance: ether(100),
                    ..Default::default()
                },
            )
        })
        .collect();
    alloc.insert(
        store_contract(),
        GenesisAccount {
            balance: U256::ZERO,
            nonce: 1,
            code: Bytes::from(STORE_CODE.to_vec()),
            storage: BTreeMap::from([(U256::from(7), U256::from(42))]),
        },
    );
    ChainSpec {
        name: "exec-test".into(),
        chain_id: CHAIN_ID,
        shard: 0,
        block_time_ms: 1000,
        blocks_per_leader: 10,
        epoch_blocks: 3600,
        genesis_timestamp_ms: 1_700_000_000_000,
        forks,
        staking: Default::default(),
        economics: Default::default(),
        vdf: Default::default(),
        validators: vec![],
        alloc,
    }
}

fn open(dir: &std::path::Path, spec: &ChainSpec) -> ChainStore {
    let store = ChainStore::open(dir).unwrap();
    store
        .init_genesis_with_state(&spec.genesis(), &spec.genesis_state())
        .unwrap();
    store
}

/// A chain at genesis in a fresh directory: the directory (kept alive by the caller), the
/// spec's execution config and the open store.
fn chain(
    accounts: u64,
    forks: BTreeMap<String, u64>,
) -> (tempfile::TempDir, ExecConfig, ChainStore) {
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(accounts, forks);
    let cfg = ExecConfig::from_spec(&spec);
    let store = open(dir.path(), &spec);
    (dir, cfg, store)
}

fn tip(store: &ChainStore) -> Header {
    let (n, _) = store.tip().unwrap().unwrap();
    store.header(n).unwrap().unwrap()
}

fn sign<T>(tx: T, from: u64) -> Bytes
where
    T: SignableTransaction<alloy_primitives::Signature>,
    alloy_consensus::Signed<T>: Into<TxEnvelope>,
{
    let sig = signer(from).sign_hash_sync(&tx.signature_hash()).unwrap();
    let env: TxEnvelope = tx.into_signed(sig).into();
    Bytes::from(env.encoded_2718())
}

fn transfer(from: u64, nonce: u64, to: Address, value: U256) -> Bytes {
    transfer_with_gas(from, nonce, to, value, 21_000)
}

fn transfer_with_gas(from: u64, nonce: u64, to: Address, value: U256, gas_limit: u64) -> Bytes {
    sign(
        TxEip1559 {
            chain_id: CHAIN_ID,
            nonce,
            gas_limit,
            max_fee_per_gas: 10 * MIN_BASE_FEE as u128,
            max_priority_fee_per_gas: MIN_BASE_FEE as u128,
            to: TxKind::Call(to),
            value,
            ..Default::default()
        },
        from,
    )
}

fn store_call(from: u64, nonce: u64, slot: u64, value: u64) -> Bytes {
    let mut input = [0u8; 64];
    input[24..32].copy_from_slice(&slot.to_be_bytes());
    input[56..64].copy_from_slice(&value.to_be_bytes());
    sign(
        TxEip1559 {
            chain_id: CHAIN_ID,
            nonce,
            gas_limit: 100_000,
            max_fee_per_gas: 10 * MIN_BASE_FEE as u128,
            max_priority_fee_per_gas: 0,
            to: TxKind::Call(store_contract()),
            input: Bytes::from(input.to_vec()),
            ..Default::default()
        },
        from,
    )
}

fn decode(raws: &[Bytes]) -> Vec<SignedTx> {
    SignedTx::decode_all(raws, CHAIN_ID)
        .into_iter()
        .map(|r| r.unwrap())
        .collect()
}

/// Builds (as a leader) and commits one block of `raws` on `store`; returns it.
fn produce(store: &ChainStore, cfg: &ExecConfig, raws: &[Bytes]) -> Block {
    let parent = tip(store);
    let template = next_template(&parent);
    let (block, executed) = exec::build(store, cfg, &parent, template, decode(raws)).unwrap();
    assert!(
        executed.execution.rejected.is_empty(),
        "{:?}",
        executed.execution.rejected
    );
    store
        .commit_executed(&block, Some(&cert(&block)), executed.writes())
        .unwrap();
    assert_eq!(store.state_root().unwrap(), block.header.state_root);
    block
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

fn balance(store: &ChainStore, a: Address) -> U256 {
    let ro = store.db().tx().unwrap();
    StateReader::new(&ro)
        .account(a)
        .unwrap()
        .map(|a| a.balance)
        .unwrap_or_default()
}

#[test]
fn genesis_root_matches_the_stored_state() {
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(5, BTreeMap::new());
    let store = open(dir.path(), &spec);
    assert_eq!(store.state_root().unwrap(), spec.genesis_state_root());
    assert_eq!(tip(&store).state_root, spec.genesis_state_root());
    assert_ne!(spec.genesis_state_root(), state::EMPTY_ROOT);
}

#[test]
fn a_second_node_re_executes_and_a_tampered_header_is_refused() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let spec = spec(4, BTreeMap::new());
    let cfg = ExecConfig::from_spec(&spec);
    let leader = open(a.path(), &spec);
    let follower = open(b.path(), &spec);
    let raws = vec![
        transfer(0, 0, Address::repeat_byte(9), ether(1)),
        transfer(0, 1, Address::repeat_byte(9), ether(2)),
        store_call(1, 0, 3, 99),
        store_call(2, 0, 7, 0), // clears a genesis slot
    ];
    let block = produce(&leader, &cfg, &raws);
    assert_eq!(block.body.transactions.len(), 4);
    let receipts = leader.receipts(1).unwrap().unwrap().receipts;
    assert!(receipts.iter().all(|r| r.success));
    assert_eq!(receipts[3].cumulative_gas_used, block.header.gas_used);

    let parent = tip(&follower);
    let executed = exec::verify(&follower, &cfg, &parent, &block).unwrap();
    follower
        .commit_executed(&block, Some(&cert(&block)), executed.writes())
        .unwrap();
    assert_eq!(follower.state_root().unwrap(), leader.state_root().unwrap());

    for (field, tamper) in [
        (
            "state root",
            Box::new(|h: &mut Header| h.state_root = B256::repeat_byte(1))
                as Box<dyn Fn(&mut Header)>,
        ),
        (
            "receipts root",
            Box::new(|h: &mut Header| h.receipts_root = B256::repeat_byte(1)),
        ),
        ("gas used", Box::new(|h: &mut Header| h.gas_used += 1)),
        ("base fee", Box::new(|h: &mut Header| h.base_fee += 1)),
    ] {
        let mut bad = produce_candidate(
            &leader,
            &cfg,
            &[transfer(3, 0, Address::ZERO, U256::from(1))],
        );
        tamper(&mut bad.header);
        let err = exec::verify(&leader, &cfg, &tip(&leader), &bad).unwrap_err();
        assert!(err.to_string().contains(field), "{field}: {err}");
    }
    // A transaction the state cannot pay for fails validation, naming it.
    let mut bad = produce_candidate(&leader, &cfg, &[]);
    bad.body.transactions = vec![transfer(0, 0, Address::ZERO, U256::from(1))];
    bad.header.transactions_root = bad.compute_transactions_root();
    let err = exec::verify(&leader, &cfg, &tip(&leader), &bad).unwrap_err();
    assert!(err.to_string().contains("nonce too low"), "{err}");
}

/// The next block on `parent`, led by a fixed leader one second later.
fn next_template(parent: &Header) -> BlockTemplate {
    BlockTemplate {
        number: parent.number + 1,
        view: parent.view + 1,
        epoch: 0,
        shard: 0,
        parent_hash: parent.hash(),
        timestamp_ms: parent.timestamp_ms + 1000,
        leader: Address::repeat_byte(0x1e),
        last_commit: None,
        transactions: vec![],
        vrf: Default::default(),
    }
}

/// A block built on the tip but not committed.
fn produce_candidate(store: &ChainStore, cfg: &ExecConfig, raws: &[Bytes]) -> Block {
    let parent = tip(store);
    let template = next_template(&parent);
    exec::build(store, cfg, &parent, template, decode(raws))
        .unwrap()
        .0
}

/// A plain transfer of 1 wei with the given gas limit.
fn transfer_with_limit(from: u64, nonce: u64, gas_limit: u64) -> Bytes {
    transfer_with_gas(
        from,
        nonce,
        Address::repeat_byte(9),
        U256::from(1),
        gas_limit,
    )
}

#[test]
fn the_leader_fits_transactions_by_gas_used_and_skips_a_sender_after_one_that_does_not_fit() {
    let (_dir, cfg, store) = chain(4, BTreeMap::new());
    let gas_limit = state::GAS_LIMIT;
    // Two 20M-limit transfers: their limits sum past the block's gas, their use (21,000
    // each) does not, so both go in. Then sender 2's head needs nearly the whole block and
    // no longer fits; its next nonce would fit but cannot run without it; sender 3 still does.
    let raws = [
        transfer_with_limit(0, 0, 20_000_000),
        transfer_with_limit(1, 0, 20_000_000),
        transfer_with_limit(2, 0, gas_limit - 30_000),
        transfer_with_limit(2, 1, 21_000),
        transfer_with_limit(3, 0, 21_000),
    ];
    let txs = decode(&raws);
    let parent = tip(&store);
    let (block, executed) =
        exec::build(&store, &cfg, &parent, next_template(&parent), txs.clone()).unwrap();
    let included: Vec<B256> = block
        .body
        .transactions
        .iter()
        .map(state::keccak256)
        .collect();
    assert_eq!(included, vec![txs[0].hash, txs[1].hash, txs[4].hash]);
    assert_eq!(block.header.gas_used, 3 * 21_000);
    let rejected = &executed.execution.rejected;
    assert_eq!(rejected.len(), 2, "{rejected:?}");
    assert_eq!(rejected[0].0, txs[2].hash);
    assert!(
        matches!(rejected[0].1, exec::TxRejection::BlockGas { gas, left } if gas == gas_limit - 30_000 && left == gas_limit - 42_000),
        "{:?}",
        rejected[0].1
    );
    assert_eq!(rejected[1], (txs[3].hash, exec::TxRejection::AfterBlockGas));
    // A validator re-executing the block agrees.
    store
        .commit_executed(&block, Some(&cert(&block)), executed.writes())
        .unwrap();
    assert_eq!(store.state_root().unwrap(), block.header.state_root);
}

#[test]
fn fees_are_burnt_unless_the_fork_pays_the_leader() {
    // Block 1 is in epoch 0 (3,600-block epochs): paid from epoch 0, not yet from epoch 1.
    for paid_from in [None, Some(0u64), Some(1)] {
        let forks = paid_from
            .map(|n| BTreeMap::from([(exec::FORK_PRIORITY_FEE_TO_LEADER.to_string(), n)]))
            .unwrap_or_default();
        let (_dir, cfg, store) = chain(2, forks);
        let sender = signer(0).address();
        let before = balance(&store, sender);
        let block = produce(
            &store,
            &cfg,
            &[transfer(0, 0, Address::repeat_byte(9), ether(1))],
        );
        let price = block.header.base_fee as u128 + MIN_BASE_FEE as u128; // base + tip
        let fee = U256::from(21_000u128 * price);
        assert_eq!(before - balance(&store, sender), ether(1) + fee);
        let leader = balance(&store, block.header.leader);
        let zero = balance(&store, Address::ZERO);
        match paid_from {
            None | Some(1) => {
                assert_eq!(leader, U256::ZERO, "fork from {paid_from:?}");
                assert_eq!(zero, U256::ZERO, "burnt fees must not accumulate anywhere");
            }
            Some(_) => assert_eq!(leader, U256::from(21_000u128 * MIN_BASE_FEE as u128)),
        }
    }
}

#[test]
fn transaction_types_blobs_and_chain_ids() {
    let (_dir, cfg, store) = chain(3, BTreeMap::new());
    let legacy = sign(
        TxLegacy {
            chain_id: Some(CHAIN_ID),
            nonce: 0,
            gas_price: 3 * MIN_BASE_FEE as u128,
            gas_limit: 21_000,
            to: TxKind::Call(Address::repeat_byte(8)),
            value: U256::from(5),
            input: Bytes::new(),
        },
        0,
    );
    // EIP-7702: account 1 delegates its code to the storage contract, then is called.
    let auth = Authorization {
        chain_id: U256::from(CHAIN_ID),
        address: store_contract(),
        nonce: 1, // the sender's nonce after this transaction's own increment
    };
    let auth_sig = signer(1).sign_hash_sync(&auth.signature_hash()).unwrap();
    let set_code = sign(
        TxEip7702 {
            chain_id: CHAIN_ID,
            nonce: 0,
            gas_limit: 100_000,
            max_fee_per_gas: 10 * MIN_BASE_FEE as u128,
            max_priority_fee_per_gas: 0,
            to: signer(2).address(),
            value: U256::ZERO,
            access_list: Default::default(),
            authorization_list: vec![auth.into_signed(auth_sig)],
            input: Bytes::new(),
        },
        1,
    );
    produce(&store, &cfg, &[legacy, set_code]);
    let ro = store.db().tx().unwrap();
    let delegated = StateReader::new(&ro)
        .account(signer(1).address())
        .unwrap()
        .unwrap();
    let code = ro
        .get::<state::db::Bytecodes>(&delegated.code_hash)
        .unwrap()
        .unwrap();
    assert_eq!(
        &code[..3],
        &[0xef, 0x01, 0x00],
        "delegation designator stored"
    );
    assert_eq!(&code[3..], store_contract().as_slice());
    drop(ro);

    let blob = sign(
        TxEip4844 {
            chain_id: CHAIN_ID,
            gas_limit: 21_000,
            max_fee_per_gas: MIN_BASE_FEE as u128,
            max_fee_per_blob_gas: 1,
            blob_versioned_hashes: vec![B256::repeat_byte(1)],
            ..Default::default()
        },
        2,
    );
    let err = SignedTx::decode(&blob, CHAIN_ID).unwrap_err();
    assert_eq!(err, TxError::Blob);
    assert!(err.to_string().contains("blob"));
    let other_chain = SignedTx::decode(&transfer(0, 0, Address::ZERO, U256::ZERO), CHAIN_ID + 1);
    assert!(matches!(other_chain, Err(TxError::ChainId { .. })));
    assert!(matches!(
        SignedTx::decode(&[0xde, 0xad], CHAIN_ID),
        Err(TxError::Decode(_))
    ));
    let empty = SignedTx::decode(&[], CHAIN_ID).unwrap_err().to_string();
    assert!(empty.contains("empty transaction"), "{empty}");
}

#[derive(Debug, Clone)]
enum Op {
    Transfer { from: u64, to: u8, value: u64 },
    Store { from: u64, slot: u8, value: u8 },
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(
        prop_oneof![
            (0u64..4, any::<u8>(), 0u64..1_000_000).prop_map(|(from, to, value)| Op::Transfer {
                from,
                to,
                value
            }),
            // Values include zero, so slots are deleted as well as written.
            (0u64..4, 0u8..6, 0u8..3).prop_map(|(from, slot, value)| Op::Store {
                from,
                slot,
                value
            }),
        ],
        1..24,
    )
}

fn raws(ops: &[Op]) -> Vec<Bytes> {
    let mut nonces = [0u64; 4];
    ops.iter()
        .map(|op| match *op {
            Op::Transfer { from, to, value } => {
                let n = nonces[from as usize];
                nonces[from as usize] += 1;
                transfer(from, n, Address::repeat_byte(to), U256::from(value))
            }
            Op::Store { from, slot, value } => {
                let n = nonces[from as usize];
                nonces[from as usize] += 1;
                store_call(from, n, slot as u64, value as u64)
            }
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("EXEC_PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(24)
    ))]

    /// The same transactions give the same state root in one block or split across blocks,
    /// and the root survives closing and reopening the database.
    #[test]
    fn block_boundaries_and_restarts_do_not_change_the_root(ops in ops(), cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..4)) {
        let spec = spec(4, BTreeMap::new());
        let cfg = ExecConfig::from_spec(&spec);
        let raws = raws(&ops);

        let one = tempfile::tempdir().unwrap();
        let store = open(one.path(), &spec);
        produce(&store, &cfg, &raws);
        let root_one = store.state_root().unwrap();

        let split = tempfile::tempdir().unwrap();
        let mut cut_at: Vec<usize> = cuts.iter().map(|c| c.index(raws.len() + 1)).collect();
        cut_at.sort();
        cut_at.dedup();
        {
            let store = open(split.path(), &spec);
            let mut start = 0;
            for end in cut_at.iter().copied().chain([raws.len()]) {
                produce(&store, &cfg, &raws[start..end]);
                start = end;
            }
            prop_assert_eq!(store.state_root().unwrap(), root_one);
        }
        // Restart: reopen the split store and compare again.
        let reopened = ChainStore::open(split.path()).unwrap();
        prop_assert_eq!(reopened.state_root().unwrap(), root_one);
        prop_assert_eq!(tip(&reopened).state_root, root_one);
    }
}

#[test]
fn header_v2_blocks_follow_the_fork_schedule() {
    let forks = BTreeMap::from([(state::forks::HEADER_V2.to_string(), 0u64)]);
    let (_dir, cfg, store) = chain(2, forks);
    assert_eq!(tip(&store).version, 2, "genesis follows the schedule too");
    let block = produce(
        &store,
        &cfg,
        &[transfer(0, 0, Address::repeat_byte(9), ether(1))],
    );
    assert_eq!(block.header.version, 2);
    let v2 = block.header.v2.clone().unwrap();
    assert_eq!(v2.staking_transactions_root, state::EMPTY_ROOT);
    assert_eq!(
        store.block(1).unwrap().unwrap(),
        block,
        "stored and read back"
    );

    // A validator refuses a version-1 block where version 2 is due, and wrong v2 fields.
    let good = produce_candidate(&store, &cfg, &[]);
    exec::verify(&store, &cfg, &tip(&store), &good).unwrap();
    let mut old = good.clone();
    old.header.version = 1;
    old.header.v2 = None;
    let err = exec::verify(&store, &cfg, &tip(&store), &old).unwrap_err();
    assert!(err.to_string().contains("header version"), "{err}");
    let mut bad = good.clone();
    bad.header.v2.as_mut().unwrap().staking_root = B256::repeat_byte(1);
    let err = exec::verify(&store, &cfg, &tip(&store), &bad).unwrap_err();
    assert!(err.to_string().contains("staking root"), "{err}");
    let mut bad = good;
    bad.header.v2.as_mut().unwrap().committee = Bytes::from_static(b"x");
    let err = exec::verify(&store, &cfg, &tip(&store), &bad).unwrap_err();
    assert!(err.to_string().contains("committee"), "{err}");
}
