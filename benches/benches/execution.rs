//! Execution of a full 30,000,000-gas block on the node's state (revm over MDBX), phase by
//! phase, beside raw revm on an in-memory database; results in benches/README.md (section
//! "execution (state, issue 7)").
//!
//! Two workloads, each filling block 1 on top of a genesis that funds its senders:
//!
//! - `eth_transfers`: 1,428 EIP-1559 transfers of 1 wei (21,000 gas each) from 1,428 distinct
//!   senders (nonce 0) to 1,428 fresh recipients.
//! - `erc20_transfers`: `transfer(to, 1)` on the token of `contracts/build/ERC20.json`, from
//!   distinct senders that hold tokens to fresh recipients, as many as fit in 30M gas at the
//!   gas one transfer uses (measured first). The token's runtime code and its storage
//!   (`balanceOf` at slot 0, `totalSupply` at slot 2) are in the genesis allocation; before
//!   that, the creation code is run once on in-memory revm to check that it deploys exactly
//!   this runtime code and layout.
//!
//! Benchmarks per workload (one criterion group, `exec_<workload>`):
//!
//! - `recover_senders`: `SignedTx::decode_all` of the block body (decoding + ECDSA recovery
//!   on rayon's pool, i.e. all cores).
//! - `execute`: `state::exec::execute` in strict mode on a fresh read transaction of the store
//!   at genesis (revm over MDBX, receipts built, changes collected).
//! - `state_root`: `ChainStore::state_root_after(&changes)`: apply the changes in a write
//!   transaction that is then aborted, refresh changed storage roots, hash the account trie.
//! - `commit`: `ChainStore::commit_executed` of block 1 (block, certificate, state, receipts,
//!   tx index, one durable MDBX commit with fsync), each iteration on a fresh store at genesis
//!   (the setup, not measured, creates the store in a temporary directory under the target
//!   directory and writes the genesis allocation).
//! - `end_to_end`: what a validator does with the block: `state::exec::verify` (recover,
//!   execute, state root, receipts and transactions roots, checks against the header) then
//!   `commit_executed`, on a fresh store per iteration as above.
//! - `revm_in_memory`: the reference: the same transactions (senders already recovered) run
//!   with `transact_commit` on `CacheDB<EmptyDB>` holding the same accounts, code and storage,
//!   at the Prague spec; no receipts, no roots, no disk.
//!
//! No store grows across iterations: the read and root benchmarks leave the store at genesis
//! (read transaction; aborted write transaction), and the commit benchmarks each use a new
//! store. Before the criterion runs, one manually timed pass prints the phases (eprintln).
//!
//! Beside them, in the same run, the work an epoch's last block adds (group `epoch_end`,
//! issue 12): `election_1000x4` runs `state::staking::elect` over 1,000 Active validators
//! with 4 keys each (4,000 keys, stakes all different, 800 slots, at most 48 per validator),
//! and `payout_1000x10` runs `StakingState::end_epoch` over the same validators holding 10
//! delegations each, every delegation with one matured undelegation to pay out;
//! `staking_root_1000x10` hashes that state into its root, and `load_1000x10` reads the
//! 1,000 records back from MDBX (what a block touching staking does before applying it).
//!
//! `EXEC_BENCH_BACKGROUND=N` adds N funded accounts the block never touches, to see how the
//! phases (the state root above all) depend on the size of the state rather than of the block.

use alloy_consensus::{SignableTransaction, TxEip1559, TxEnvelope};
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{keccak256, Address, Bytes, TxKind, B256, B512, U256};
use alloy_signer::SignerSync;
use alloy_signer_local::PrivateKeySigner;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, SamplingMode};
use rayon::prelude::*;
use revm::bytecode::Bytecode;
use revm::context::{BlockEnv, CfgEnv, Context, TxEnv};
use revm::context_interface::block::BlobExcessGasAndPrice;
use revm::database::{CacheDB, EmptyDB};
use revm::primitives::hardfork::SpecId;
use revm::state::AccountInfo;
use revm::{ExecuteCommitEvm, MainBuilder, MainContext};
use state::db::{Accounts, ChainStore, Storage};
use state::exec::{ExecConfig, ExecutedBlock, SignedTx, StateReader};
use state::{Block, BlockTemplate, ChainSpec, CommitCertificate, GenesisAccount, Header};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const CHAIN_ID: u64 = 31_415_926;
const GENESIS_MS: u64 = 1_800_000_000_000;
const GWEI: u128 = 1_000_000_000;
/// Fee cap and tip of every transaction (the base fee of block 1 is 1 gwei).
const MAX_FEE: u128 = 2 * GWEI;
const TIP: u128 = GWEI;
const ETH: u128 = 1_000_000_000_000_000_000;
const ERC20_JSON: &str = include_str!("../../contracts/build/ERC20.json");
const TOKEN: Address = Address::new([0x20; 20]);
const TOKENS_PER_SENDER: u64 = 1_000_000;

fn key(i: usize, salt: u8) -> PrivateKeySigner {
    let mut b = [0u8; 32];
    b[0] = salt;
    b[24..].copy_from_slice(&(i as u64 + 1).to_be_bytes());
    PrivateKeySigner::from_bytes(&B256::from(b)).expect("valid key")
}

/// A fresh address without zero bytes, so every transfer's calldata costs the same gas.
fn recipient(i: usize, salt: u8) -> Address {
    let mut seed = [0u8; 9];
    seed[0] = salt;
    seed[1..].copy_from_slice(&(i as u64).to_be_bytes());
    let h = keccak256(seed);
    let mut a = [0u8; 20];
    for (d, s) in a.iter_mut().zip(&h[12..]) {
        *d = if *s == 0 { 1 } else { *s };
    }
    Address::from(a)
}

fn sign(k: &PrivateKeySigner, tx: TxEip1559) -> Bytes {
    let sig = k.sign_hash_sync(&tx.signature_hash()).expect("signs");
    let env: TxEnvelope = tx.into_signed(sig).into();
    env.encoded_2718().into()
}

fn balance_slot(holder: Address) -> U256 {
    let mut buf = [0u8; 64];
    buf[12..32].copy_from_slice(holder.as_slice());
    U256::from_be_bytes(keccak256(buf).0)
}

fn transfer_calldata(to: Address, amount: U256) -> Bytes {
    let mut d = Vec::with_capacity(68);
    d.extend_from_slice(&keccak256("transfer(address,uint256)")[..4]);
    d.extend_from_slice(&[0u8; 12]);
    d.extend_from_slice(to.as_slice());
    d.extend_from_slice(&amount.to_be_bytes::<32>());
    d.into()
}

fn artifact(field: &str) -> Bytes {
    let v: serde_json::Value = serde_json::from_str(ERC20_JSON).expect("ERC20.json parses");
    let s = v[field].as_str().expect("bytecode field");
    hex::decode(s.trim_start_matches("0x"))
        .expect("hex bytecode")
        .into()
}

fn spec_with(alloc: BTreeMap<Address, GenesisAccount>) -> ChainSpec {
    // Validators are irrelevant to execution; the spec is not validated, only its genesis used.
    ChainSpec {
        name: "exec-bench".into(),
        chain_id: CHAIN_ID,
        shard: 0,
        block_time_ms: 2000,
        blocks_per_leader: 1,
        epoch_blocks: 100,
        genesis_timestamp_ms: GENESIS_MS,
        forks: Default::default(),
        staking: Default::default(),
        economics: Default::default(),
        vdf: Default::default(),
        validators: vec![],
        alloc,
    }
}

fn add_background(alloc: &mut BTreeMap<Address, GenesisAccount>) -> usize {
    let n: usize = std::env::var("EXEC_BENCH_BACKGROUND")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    for i in 0..n {
        alloc.insert(
            recipient(i, 0xbb),
            GenesisAccount {
                balance: U256::from(ETH),
                ..Default::default()
            },
        );
    }
    n
}

/// The block env the node derives from block 1's header (state::exec::BlockInputs, leader not
/// paid), for the in-memory reference.
fn block_env(header: &Header) -> BlockEnv {
    BlockEnv {
        number: U256::from(header.number),
        beneficiary: Address::ZERO,
        timestamp: U256::from(header.timestamp_ms / 1000),
        gas_limit: header.gas_limit,
        basefee: header.base_fee,
        difficulty: U256::ZERO,
        prevrandao: Some(header.parent_hash),
        blob_excess_gas_and_price: Some(BlobExcessGasAndPrice::new_with_spec(0, SpecId::PRAGUE)),
        ..Default::default()
    }
}

fn cfg_env() -> CfgEnv {
    let mut c = CfgEnv::new_with_spec(SpecId::PRAGUE);
    c.chain_id = CHAIN_ID;
    c
}

fn reference_db(spec: &ChainSpec) -> CacheDB<EmptyDB> {
    let mut db = CacheDB::new(EmptyDB::default());
    for (address, acc) in &spec.alloc {
        let mut info = AccountInfo {
            balance: acc.balance,
            nonce: acc.nonce,
            ..Default::default()
        };
        if !acc.code.is_empty() {
            info.code_hash = keccak256(&acc.code);
            info.code = Some(Bytecode::new_raw(acc.code.clone()));
        }
        db.insert_account_info(*address, info);
        for (slot, value) in &acc.storage {
            db.insert_account_storage(*address, *slot, *value)
                .expect("in-memory db");
        }
    }
    db
}

/// Runs `envs` on in-memory revm; returns the database (so its drop is not timed) and the gas.
fn run_reference(db: CacheDB<EmptyDB>, block: &BlockEnv, envs: Vec<TxEnv>) -> (impl Sized, u64) {
    let mut evm = Context::mainnet()
        .with_cfg(cfg_env())
        .with_block(block.clone())
        .with_db(db)
        .build_mainnet();
    let mut gas = 0;
    for env in envs {
        let r = evm.transact_commit(env).expect("valid tx");
        assert!(r.is_success(), "reference tx failed: {r:?}");
        gas += r.tx_gas_used();
    }
    (evm, gas)
}

/// Deploys the token from its creation code on in-memory revm, checks that the runtime code
/// and storage layout are what the genesis allocation uses, and measures the gas of one
/// `transfer` to a fresh recipient (what every transaction of the block does).
fn check_token_and_measure_transfer(header: &Header) -> u64 {
    let deployer = key(0, 0xde);
    let supply = U256::from(TOKENS_PER_SENDER);
    let mut db = CacheDB::new(EmptyDB::default());
    db.insert_account_info(
        deployer.address(),
        AccountInfo {
            balance: U256::from(ETH),
            ..Default::default()
        },
    );
    let mut evm = Context::mainnet()
        .with_cfg(cfg_env())
        .with_block(block_env(header))
        .with_db(db)
        .build_mainnet();
    let mut init = artifact("bytecode").to_vec();
    init.extend_from_slice(&supply.to_be_bytes::<32>());
    let base = TxEnv {
        tx_type: 2,
        caller: deployer.address(),
        gas_price: MAX_FEE,
        gas_priority_fee: Some(TIP),
        chain_id: Some(CHAIN_ID),
        ..Default::default()
    };
    let r = evm
        .transact_commit(TxEnv {
            gas_limit: 3_000_000,
            kind: TxKind::Create,
            data: init.into(),
            nonce: 0,
            ..base.clone()
        })
        .expect("deploys");
    let token = r.created_address().expect("contract created");
    {
        let db = &evm.ctx.journaled_state.database;
        let acc = &db.cache.accounts[&token];
        let code = acc.info.code.as_ref().expect("code").original_bytes();
        assert_eq!(code, artifact("deployedBytecode"), "runtime code differs");
        assert_eq!(
            acc.storage.get(&balance_slot(deployer.address())),
            Some(&supply)
        );
        assert_eq!(acc.storage.get(&U256::from(2)), Some(&supply));
    }
    let r = evm
        .transact_commit(TxEnv {
            gas_limit: 200_000,
            kind: TxKind::Call(token),
            data: transfer_calldata(recipient(usize::MAX, 0xcc), U256::from(1)),
            nonce: 1,
            ..base
        })
        .expect("transfers");
    assert!(r.is_success());
    r.tx_gas_used()
}

struct Workload {
    name: &'static str,
    spec: ChainSpec,
    /// The transactions of block 1, signed, in block order.
    raws: Vec<Bytes>,
    background: usize,
}

fn eth_workload() -> Workload {
    let n = (state::GAS_LIMIT / 21_000) as usize;
    let keys: Vec<_> = (0..n).map(|i| key(i, 0xe1)).collect();
    let mut alloc: BTreeMap<_, _> = keys
        .iter()
        .map(|k| {
            (
                k.address(),
                GenesisAccount {
                    balance: U256::from(ETH),
                    ..Default::default()
                },
            )
        })
        .collect();
    let background = add_background(&mut alloc);
    let raws = keys
        .par_iter()
        .enumerate()
        .map(|(i, k)| {
            sign(
                k,
                TxEip1559 {
                    chain_id: CHAIN_ID,
                    nonce: 0,
                    gas_limit: 21_000,
                    max_fee_per_gas: MAX_FEE,
                    max_priority_fee_per_gas: TIP,
                    to: TxKind::Call(recipient(i, 0xe2)),
                    value: U256::from(1),
                    ..Default::default()
                },
            )
        })
        .collect();
    Workload {
        name: "eth_transfers",
        spec: spec_with(alloc),
        raws,
        background,
    }
}

fn erc20_workload(gas_per_transfer: u64) -> Workload {
    let n = (state::GAS_LIMIT / gas_per_transfer) as usize;
    let keys: Vec<_> = (0..n).map(|i| key(i, 0x20)).collect();
    let mut alloc: BTreeMap<_, _> = keys
        .iter()
        .map(|k| {
            (
                k.address(),
                GenesisAccount {
                    balance: U256::from(ETH),
                    ..Default::default()
                },
            )
        })
        .collect();
    let mut storage: BTreeMap<U256, U256> = keys
        .iter()
        .map(|k| (balance_slot(k.address()), U256::from(TOKENS_PER_SENDER)))
        .collect();
    storage.insert(U256::from(2), U256::from(TOKENS_PER_SENDER) * U256::from(n));
    alloc.insert(
        TOKEN,
        GenesisAccount {
            balance: U256::ZERO,
            nonce: 1,
            code: artifact("deployedBytecode"),
            storage,
        },
    );
    let background = add_background(&mut alloc);
    let raws = keys
        .par_iter()
        .enumerate()
        .map(|(i, k)| {
            sign(
                k,
                TxEip1559 {
                    chain_id: CHAIN_ID,
                    nonce: 0,
                    gas_limit: gas_per_transfer,
                    max_fee_per_gas: MAX_FEE,
                    max_priority_fee_per_gas: TIP,
                    to: TxKind::Call(TOKEN),
                    value: U256::ZERO,
                    input: transfer_calldata(recipient(i, 0x21), U256::from(1)),
                    ..Default::default()
                },
            )
        })
        .collect();
    Workload {
        name: "erc20_transfers",
        spec: spec_with(alloc),
        raws,
        background,
    }
}

/// A store at genesis in a new temporary directory under the target directory (a real disk,
/// so the commit's fsync is real). Store first: it closes before the directory goes.
fn fresh_store(
    genesis: &Block,
    alloc: &state::exec::StateChanges,
) -> (ChainStore, tempfile::TempDir) {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("temp dir");
    let store = ChainStore::open(dir.path()).expect("opens");
    store
        .init_genesis_with_state(genesis, alloc)
        .expect("genesis");
    (store, dir)
}

/// (accounts, storage slots) stored.
fn entries(store: &ChainStore) -> (usize, usize) {
    let tx = store.db().tx().unwrap();
    (
        tx.entries::<Accounts>().unwrap(),
        tx.entries::<Storage>().unwrap(),
    )
}

/// Sender recovery, one core, split: `SignedTx::decode` as the node runs it, then ECDSA public
/// key recovery alone with revm's two secp256k1 backends (pure-Rust k256, which alloy uses
/// here, and the C libsecp256k1, which revm's ecrecover precompile uses). Per transaction, µs.
fn recovery_split(txs: &[SignedTx], raws: &[Bytes]) -> (f64, f64, f64) {
    use revm::precompile::secp256k1::{bitcoin_secp256k1, k256};
    let per = |d: Duration| d.as_secs_f64() * 1e6 / txs.len() as f64;
    let t = Instant::now();
    for r in raws {
        std::hint::black_box(SignedTx::decode(r, CHAIN_ID).unwrap());
    }
    let decode = per(t.elapsed());
    let sigs: Vec<(B512, u8, B256, Address)> = txs
        .iter()
        .map(|t| {
            let s = t.envelope.signature();
            let mut rs = [0u8; 64];
            rs[..32].copy_from_slice(&s.r().to_be_bytes::<32>());
            rs[32..].copy_from_slice(&s.s().to_be_bytes::<32>());
            (
                B512::from(rs),
                s.v() as u8,
                t.envelope.signature_hash(),
                t.sender,
            )
        })
        .collect();
    let t = Instant::now();
    for (rs, v, h, sender) in &sigs {
        let a = k256::ecrecover(rs, *v, h).unwrap();
        assert_eq!(&a[12..], sender.as_slice());
    }
    let k = per(t.elapsed());
    let t = Instant::now();
    for (rs, v, h, sender) in &sigs {
        let a = bitcoin_secp256k1::ecrecover(rs, *v, h).unwrap();
        assert_eq!(&a[12..], sender.as_slice());
    }
    (decode, k, per(t.elapsed()))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn bench_workload(c: &mut Criterion, w: Workload) {
    let genesis = w.spec.genesis();
    let alloc = w.spec.genesis_state();
    let cfg = ExecConfig::from_spec(&w.spec);
    let parent = genesis.header.clone();
    let (store, _store_dir) = fresh_store(&genesis, &alloc);
    assert_eq!(
        store.state_root().unwrap(),
        genesis.header.state_root,
        "stored genesis state hashes to the spec's root"
    );

    // Block 1, built the way a leader builds it.
    let txs: Vec<SignedTx> = SignedTx::decode_all(&w.raws, CHAIN_ID)
        .into_iter()
        .map(|r| r.expect("valid tx"))
        .collect();
    let template = BlockTemplate {
        number: 1,
        view: 1,
        epoch: 0,
        shard: 0,
        parent_hash: genesis.hash(),
        timestamp_ms: GENESIS_MS + 2000,
        leader: Address::repeat_byte(0x11),
        last_commit: None,
        transactions: vec![],
        vrf: Default::default(),
    };
    let (block, built) =
        state::exec::build(&store, &cfg, &parent, template, txs.clone()).expect("builds");
    assert!(
        built.execution.rejected.is_empty(),
        "rejected: {:?}",
        built.execution.rejected.first()
    );
    assert_eq!(built.execution.txs.len(), w.raws.len());
    assert!(built.execution.receipts.iter().all(|r| r.success));
    let gas_used = built.outcome.gas_used;
    let cert = CommitCertificate {
        number: 1,
        view: block.header.view,
        hash: block.hash(),
        signature: Bytes::from(vec![0u8; 96]),
        bitmap: Bytes::from(vec![0x0f]),
    };
    let inputs = state::exec::inputs_of(&block.header);
    let ref_db = reference_db(&w.spec);
    let ref_block = block_env(&block.header);
    let ref_envs: Vec<TxEnv> = txs.iter().map(|t| t.tx_env()).collect();

    // One manually timed pass of every phase.
    let t = Instant::now();
    let recovered: Vec<SignedTx> = SignedTx::decode_all(&block.body.transactions, CHAIN_ID)
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    let t_recover = t.elapsed();
    let t = Instant::now();
    let ro = store.db().tx().unwrap();
    let execution =
        state::exec::execute(StateReader::new(&ro), &cfg, &inputs, recovered, true, None)
            .expect("executes");
    drop(ro);
    let t_execute = t.elapsed();
    let t = Instant::now();
    let root = store.state_root_after(&execution.changes).unwrap();
    let t_root = t.elapsed();
    assert_eq!(root, block.header.state_root);
    let t = Instant::now();
    let raws: Vec<Bytes> = execution.txs.iter().map(|t| t.raw.clone()).collect();
    let other_roots = (
        state::exec::receipts_root(&execution.receipts),
        state::transactions_root(&raws),
        state::exec::block_bloom(&execution.receipts),
    );
    let t_other = t.elapsed();
    assert_eq!(other_roots.0, block.header.receipts_root);
    let changes = &execution.changes;
    let (accounts_changed, slots_changed) = (
        changes.accounts.len(),
        changes.storage.values().map(|s| s.len()).sum::<usize>(),
    );
    let (s1, d1) = fresh_store(&genesis, &alloc);
    let entries_before = entries(&s1);
    let t = Instant::now();
    s1.commit_executed(&block, Some(&cert), built.writes())
        .unwrap();
    let t_commit = t.elapsed();
    let entries_after = entries(&s1);
    assert_eq!(s1.state_root().unwrap(), block.header.state_root);
    drop((s1, d1));
    let (s2, d2) = fresh_store(&genesis, &alloc);
    let t = Instant::now();
    let executed = state::exec::verify(&s2, &cfg, &parent, &block).expect("verifies");
    s2.commit_executed(&block, Some(&cert), executed.writes())
        .unwrap();
    let t_e2e = t.elapsed();
    drop((s2, d2));
    let (db, envs) = (ref_db.clone(), ref_envs.clone());
    let t = Instant::now();
    let (ref_state, ref_gas) = run_reference(db, &ref_block, envs);
    let t_ref = t.elapsed();
    drop(ref_state);
    assert_eq!(ref_gas, gas_used, "in-memory revm uses the same gas");
    let (dec_1core, k256_us, libsecp_us) = recovery_split(&txs, &w.raws);
    eprintln!(
        "\n[{}] {} txs, gas used {} ({:.2}% of {}), {} genesis accounts ({} background), \
         {} accounts and {} storage slots changed; stored accounts/slots {:?} -> {:?} after block 1\n\
         one timed pass (ms): recover {:.2} | execute {:.2} | state root {:.2} | \
         receipts+tx roots+bloom {:.2} | commit {:.2} || end to end (verify+commit) {:.2} \
         || in-memory revm {:.2}\n\
         sender recovery on one core, per tx (µs): SignedTx::decode {:.1} | \
         ecrecover alone: k256 {:.1}, libsecp256k1 {:.1}",
        w.name,
        w.raws.len(),
        gas_used,
        gas_used as f64 * 100.0 / state::GAS_LIMIT as f64,
        state::GAS_LIMIT,
        w.spec.alloc.len(),
        w.background,
        accounts_changed,
        slots_changed,
        entries_before,
        entries_after,
        ms(t_recover),
        ms(t_execute),
        ms(t_root),
        ms(t_other),
        ms(t_commit),
        ms(t_e2e),
        ms(t_ref),
        dec_1core,
        k256_us,
        libsecp_us,
    );

    let mut g = c.benchmark_group(format!("exec_{}", w.name));
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sampling_mode(SamplingMode::Flat);
    g.bench_function("recover_senders", |b| {
        b.iter(|| SignedTx::decode_all(&block.body.transactions, CHAIN_ID))
    });
    g.bench_function("execute", |b| {
        b.iter_batched(
            || txs.clone(),
            |txs| {
                let ro = store.db().tx().unwrap();
                state::exec::execute(StateReader::new(&ro), &cfg, &inputs, txs, true, None).unwrap()
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function("state_root", |b| {
        b.iter(|| store.state_root_after(&execution.changes).unwrap())
    });
    g.bench_function("commit", |b| {
        b.iter_batched(
            || fresh_store(&genesis, &alloc),
            |(s, d)| {
                s.commit_executed(&block, Some(&cert), built.writes())
                    .unwrap();
                (s, d)
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function("end_to_end", |b| {
        b.iter_batched(
            || fresh_store(&genesis, &alloc),
            |(s, d)| {
                let executed: ExecutedBlock =
                    state::exec::verify(&s, &cfg, &parent, &block).unwrap();
                s.commit_executed(&block, Some(&cert), executed.writes())
                    .unwrap();
                (executed, s, d)
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function("revm_in_memory", |b| {
        b.iter_batched(
            || (ref_db.clone(), ref_envs.clone()),
            |(db, envs)| run_reference(db, &ref_block, envs),
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

fn bench_epoch_end(c: &mut Criterion) {
    use state::staking::{elect, StakingParams};
    let staking = benches::staking_state(1000, 4, 10);
    let params = StakingParams::default();
    let t = Instant::now();
    let e = elect(&staking, &params);
    eprintln!(
        "\n[epoch_end] election: {} slots from {} validators in {:.2} ms (median stake {})",
        e.slots.len(),
        e.validators().len(),
        ms(t.elapsed()),
        e.median
    );
    let mut g = c.benchmark_group("epoch_end");
    g.bench_function("election_1000x4", |b| b.iter(|| elect(&staking, &params)));
    g.bench_function("staking_root_1000x10", |b| {
        b.iter(|| state::db::staking::root(&staking))
    });
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let store = ChainStore::open(dir.path()).unwrap();
    {
        let tx = store.db().tx_mut().unwrap();
        let all: Vec<_> = staking.validators().cloned().collect();
        state::db::staking::write(&tx, &all, None).unwrap();
        tx.commit().unwrap();
    }
    assert_eq!(store.staking_state().unwrap(), staking);
    g.bench_function("load_1000x10", |b| {
        b.iter(|| store.staking_state().unwrap())
    });
    g.bench_function("payout_1000x10", |b| {
        b.iter_batched(
            || (staking.clone(), BTreeMap::<Address, U256>::new()),
            |(mut s, mut balances)| s.end_epoch(&params, 7, &mut balances),
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

fn bench(c: &mut Criterion) {
    bench_epoch_end(c);
    bench_workload(c, eth_workload());
    let probe = spec_with(BTreeMap::new()).genesis();
    let mut header = probe.header.clone();
    header.number = 1;
    header.parent_hash = probe.hash();
    header.timestamp_ms = GENESIS_MS + 2000;
    let gas = check_token_and_measure_transfer(&header);
    eprintln!("\n[erc20_transfers] one transfer to a fresh recipient uses {gas} gas");
    bench_workload(c, erc20_workload(gas));
}

criterion_group!(benches, bench);
criterion_main!(benches);
