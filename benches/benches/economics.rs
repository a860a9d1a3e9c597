//! What rewards, availability and the epoch VDF add to a block (issue 13), beside an ordinary
//! block, on a real store: `state::exec::verify` of a prebuilt block on its parent (what every
//! validator does with a proposal; nothing is written, so each iteration sees the same state).
//!
//! The chain: 1,000 validators with 4 keys and 10 delegations each are in the staking state at
//! genesis; epoch 0's last block elects 800 slots (48 at most per validator), ordered by the
//! epoch VDF (Harmony's difficulty: 50,000 squarings, 1,024-bit discriminant). In epoch 1:
//!
//! - `ordinary`: an empty block that carries no certificate: no reward, the staking state is
//!   not even read (the baseline).
//! - `certified_800`: the same block carrying its parent's certificate with all 800 elected
//!   seats signed: 7 ONE shared by effective stake, commission first, then 10 delegations per
//!   validator by share; signing counts; the staking root recomputed.
//! - `epoch_end_800`: epoch 1's last block: the same reward, then the availability check,
//!   payout of matured undelegations, the election of the next 800 slots, and the check of
//!   the epoch's VDF proof against the seed recomputed from stored headers.
//! - `vdf_verify`: the VDF check alone. What each node spends once per epoch off its event
//!   loop to prove it is printed when the bench sets up (about half a second).

use criterion::{criterion_group, criterion_main, Criterion};
use state::db::ChainStore;
use state::exec::{self, BlockExtras, ExecConfig};
use state::{Address, Block, BlockTemplate, Bytes, ChainSpec, CommitCertificate, Header};
use std::collections::BTreeMap;
use std::time::Instant;

const EPOCH_BLOCKS: u64 = 8;
const GENESIS_MS: u64 = 1_700_000_000_000;

fn spec() -> ChainSpec {
    ChainSpec {
        name: "economics-bench".into(),
        chain_id: 31_337,
        shard: 0,
        block_time_ms: 2000,
        blocks_per_leader: 1,
        epoch_blocks: EPOCH_BLOCKS,
        genesis_timestamp_ms: GENESIS_MS,
        forks: [
            state::forks::HEADER_V2,
            state::forks::STAKING,
            state::forks::VRF,
            state::forks::REWARDS,
            state::forks::VDF,
        ]
        .iter()
        .map(|f| (f.to_string(), 0))
        .collect(),
        staking: Default::default(),
        economics: Default::default(),
        vdf: Default::default(),
        validators: vec![],
        alloc: BTreeMap::new(),
    }
}

fn tip(store: &ChainStore) -> Header {
    let (n, _) = store.tip().unwrap().unwrap();
    store.header(n).unwrap().unwrap()
}

/// The certificate of `parent` with `signers` seats signed.
fn cert_of(parent: &Header, signers: usize) -> CommitCertificate {
    let mut bitmap = state::Bitmap::with_len(signers);
    for i in 0..signers {
        bitmap.set(i);
    }
    CommitCertificate {
        number: parent.number,
        view: parent.view,
        hash: parent.hash(),
        signature: Bytes::from(vec![0; 96]),
        bitmap: Bytes::copy_from_slice(bitmap.as_bytes()),
    }
}

fn template(parent: &Header, last_commit: Option<CommitCertificate>) -> BlockTemplate {
    let number = parent.number + 1;
    BlockTemplate {
        number,
        view: parent.view + 1,
        epoch: number / EPOCH_BLOCKS,
        shard: 0,
        parent_hash: parent.hash(),
        timestamp_ms: parent.timestamp_ms + 2000,
        leader: Address::repeat_byte(0x1e),
        last_commit,
        transactions: vec![],
        vrf: Default::default(),
    }
}

/// Builds the next block (with the epoch's VDF when it ends one).
fn build(store: &ChainStore, cfg: &ExecConfig, signers: Option<usize>) -> Block {
    let parent = tip(store);
    let number = parent.number + 1;
    let vdf = if exec::epoch_vdf::carries_vdf(cfg, number) {
        let seed = {
            let ro = store.db().tx().unwrap();
            exec::epoch_vdf::seed(&ro, EPOCH_BLOCKS, number / EPOCH_BLOCKS).unwrap()
        };
        let t = Instant::now();
        let proof = exec::epoch_vdf::prove(&cfg.vdf, &seed).unwrap();
        eprintln!(
            "[economics] epoch VDF of block {number}: {} squarings proved in {:.0} ms",
            cfg.vdf.iterations,
            t.elapsed().as_secs_f64() * 1e3
        );
        proof
    } else {
        Bytes::new()
    };
    let extras = BlockExtras {
        vdf,
        ..Default::default()
    };
    let t = template(&parent, signers.map(|n| cert_of(&parent, n)));
    exec::build_full(store, cfg, &parent, t, vec![], extras)
        .unwrap()
        .0
}

fn commit(store: &ChainStore, cfg: &ExecConfig, block: &Block) {
    let executed = exec::verify(store, cfg, &tip(store), block).unwrap();
    store
        .commit_executed(block, Some(&cert_of(&block.header, 1)), executed.writes())
        .unwrap();
}

fn bench(c: &mut Criterion) {
    let spec = spec();
    let cfg = ExecConfig::from_spec(&spec);
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let store = ChainStore::open(dir.path()).unwrap();
    store
        .init_genesis_with_state(&spec.genesis(), &spec.genesis_state())
        .unwrap();
    let staking = benches::staking_state(1000, 4, 10);
    {
        let tx = store.db().tx_mut().unwrap();
        let all: Vec<_> = staking.validators().cloned().collect();
        state::db::staking::write(&tx, &all, None).unwrap();
        tx.commit().unwrap();
    }
    // Epoch 0 (its last block elects, ordered by its VDF), then epoch 1 up to two blocks
    // before its end; every block from 9 on carries a full certificate of its parent.
    while tip(&store).number < 2 * EPOCH_BLOCKS - 3 {
        let number = tip(&store).number + 1;
        let signers = (number > EPOCH_BLOCKS).then_some(800);
        let b = build(&store, &cfg, signers);
        commit(&store, &cfg, &b);
    }
    let seats = exec::staking::parent_seats(&store.db().tx().unwrap(), &cfg, EPOCH_BLOCKS + 1)
        .unwrap()
        .len();
    assert_eq!(seats, 800, "epoch 1's committee");

    let parent = tip(&store);
    let ordinary = build(&store, &cfg, None);
    let certified = build(&store, &cfg, Some(800));
    let mut g = c.benchmark_group("economics");
    g.sample_size(20);
    g.bench_function("ordinary", |b| {
        b.iter(|| exec::verify(&store, &cfg, &parent, &ordinary).unwrap())
    });
    g.bench_function("certified_800", |b| {
        b.iter(|| exec::verify(&store, &cfg, &parent, &certified).unwrap())
    });
    commit(&store, &cfg, &certified);
    let parent = tip(&store);
    let end = build(&store, &cfg, Some(800));
    assert!(!end.header.vdf.is_empty());
    g.bench_function("epoch_end_800", |b| {
        b.iter(|| exec::verify(&store, &cfg, &parent, &end).unwrap())
    });
    let seed = {
        let ro = store.db().tx().unwrap();
        exec::epoch_vdf::seed(&ro, EPOCH_BLOCKS, 1).unwrap()
    };
    g.bench_function("vdf_verify", |b| {
        b.iter(|| exec::epoch_vdf::verify(&cfg.vdf, &seed, &end.header.vdf).unwrap())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
