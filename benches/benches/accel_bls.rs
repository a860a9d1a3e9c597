//! accel BLS engine, each figure beside its baseline in the same run:
//! - quorum verification of N votes on one payload from wire bytes: `cpu` (parallel decode,
//!   one aggregate pairing) against the naive path (`reference`: decode and verify each vote);
//!   one core, all cores, with a subgroup check on every vote, compressed wire signatures;
//! - the time split of the 250-vote quorum (decode, checks, aggregation, pairing);
//! - batch verification of 256 distinct-message triples (random linear combination) against
//!   one-by-one verification.
//!
//! `cargo bench -p benches --bench accel_bls`; results in benches/README.md.

use accel::{
    encode_vote, AggregatePublicKey, AggregateSignature, BatchItem, Engine, PublicKey,
    QuorumPolicy, SecretKey, Signature, WireVote,
};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

const MSG: [u8; 76] = [0x5a; 76];

fn key(i: usize) -> SecretKey {
    let mut ikm = [9u8; 32];
    ikm[..8].copy_from_slice(&(i as u64).to_le_bytes());
    SecretKey::from_ikm(&ikm).unwrap()
}

struct Setup {
    pks: Vec<PublicKey>,
    sigs: Vec<Signature>,
    uncompressed: Vec<Vec<u8>>,
    compressed: Vec<Vec<u8>>,
}

fn setup(n: usize) -> Setup {
    let sks: Vec<SecretKey> = (0..n).map(key).collect();
    let pks = sks.iter().map(|k| k.public_key()).collect();
    let sigs: Vec<Signature> = sks.iter().map(|k| k.sign(&MSG)).collect();
    let uncompressed = sigs
        .iter()
        .enumerate()
        .map(|(i, s)| encode_vote(i as u32, s).to_vec())
        .collect();
    let compressed = sigs
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let mut f = (i as u32).to_be_bytes().to_vec();
            f.extend_from_slice(&s.to_bytes());
            f
        })
        .collect();
    Setup {
        pks,
        sigs,
        uncompressed,
        compressed,
    }
}

fn parse(frames: &[Vec<u8>]) -> Vec<WireVote<'_>> {
    frames.iter().map(|f| WireVote::parse(f).unwrap()).collect()
}

fn pool(n: usize) -> Arc<rayon::ThreadPool> {
    Arc::new(
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .unwrap(),
    )
}

fn all_valid(e: &Engine, s: &Setup, votes: &[WireVote<'_>], policy: QuorumPolicy) {
    let out = e.verify_quorum(&MSG, &s.pks, votes, policy);
    assert_eq!(out.signers.len(), votes.len());
}

fn quorum(c: &mut Criterion) {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let one = Engine::cpu(pool(1));
    let multi = Engine::cpu(pool(cores));
    let naive = Engine::reference();
    let each = QuorumPolicy {
        subgroup_check_each: true,
    };
    let mut g = c.benchmark_group("accel_quorum_wire");
    g.sample_size(10).warm_up_time(Duration::from_secs(1));
    for n in [250usize, 1000, 4000] {
        let s = setup(n);
        let unc = parse(&s.uncompressed);
        let cmp = parse(&s.compressed);
        if n == 250 {
            g.bench_function(BenchmarkId::new("naive_decode_verify_each", n), |b| {
                b.iter(|| all_valid(&naive, &s, &cmp, QuorumPolicy::default()))
            });
            g.bench_function(BenchmarkId::new("cpu_1core_compressed", n), |b| {
                b.iter(|| all_valid(&one, &s, &cmp, QuorumPolicy::default()))
            });
            g.bench_function(BenchmarkId::new("cpu_1core_subgroup_each", n), |b| {
                b.iter(|| all_valid(&one, &s, &unc, each))
            });
            g.bench_function(BenchmarkId::new("cpu_1core_one_bad_vote", n), |b| {
                let mut frames = s.uncompressed.clone();
                frames[77] = encode_vote(77, &key(77).sign(b"other")).to_vec();
                let votes = parse(&frames);
                b.iter(|| {
                    let out = one.verify_quorum(&MSG, &s.pks, &votes, QuorumPolicy::default());
                    assert_eq!(out.signers.len(), n - 1);
                })
            });
        }
        g.bench_function(BenchmarkId::new("cpu_1core", n), |b| {
            b.iter(|| all_valid(&one, &s, &unc, QuorumPolicy::default()))
        });
        g.bench_function(BenchmarkId::new(format!("cpu_{cores}cores"), n), |b| {
            b.iter(|| all_valid(&multi, &s, &unc, QuorumPolicy::default()))
        });
    }
    g.finish();

    // Where the 250-vote quorum's time goes (one core, the steps the cpu backend runs).
    let s = setup(250);
    let unc = parse(&s.uncompressed);
    let cmp = parse(&s.compressed);
    let agg = AggregateSignature::aggregate(&s.sigs)
        .unwrap()
        .to_signature();
    let apk = AggregatePublicKey::aggregate(&s.pks)
        .unwrap()
        .to_public_key();
    let mut g = c.benchmark_group("accel_quorum_split_250");
    g.sample_size(20).warm_up_time(Duration::from_secs(1));
    g.bench_function("decode_uncompressed", |b| {
        b.iter(|| {
            for v in &unc {
                black_box(Signature::from_uncompressed(v.signature).unwrap());
            }
        })
    });
    g.bench_function("decode_compressed", |b| {
        b.iter(|| {
            for v in &cmp {
                black_box(Signature::from_bytes(v.signature).unwrap());
            }
        })
    });
    g.bench_function("subgroup_check_each_vote", |b| {
        b.iter(|| assert!(s.sigs.iter().all(|x| x.subgroup_check())))
    });
    g.bench_function("aggregate_signatures_and_keys", |b| {
        b.iter(|| {
            black_box(
                AggregateSignature::aggregate(&s.sigs)
                    .unwrap()
                    .to_signature(),
            );
            black_box(
                AggregatePublicKey::aggregate(&s.pks)
                    .unwrap()
                    .to_public_key(),
            );
        })
    });
    g.bench_function("subgroup_check_aggregate", |b| {
        b.iter(|| assert!(agg.subgroup_check()))
    });
    g.bench_function("pairing_check", |b| {
        b.iter(|| assert!(agg.verify_unchecked(&apk, &MSG)))
    });
    g.finish();
}

fn batch(c: &mut Criterion) {
    let n = 256;
    let sks: Vec<SecretKey> = (0..n).map(key).collect();
    let pks: Vec<PublicKey> = sks.iter().map(|k| k.public_key()).collect();
    let msgs: Vec<Vec<u8>> = (0..n)
        .map(|i| format!("distinct message {i}").into_bytes())
        .collect();
    let sigs: Vec<Signature> = sks.iter().zip(&msgs).map(|(k, m)| k.sign(m)).collect();
    let items: Vec<BatchItem> = (0..n)
        .map(|i| BatchItem {
            public_key: &pks[i],
            message: &msgs[i],
            signature: &sigs[i],
        })
        .collect();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let one = Engine::cpu(pool(1));
    let multi = Engine::cpu(pool(cores));
    let reference = Engine::reference();
    let mut g = c.benchmark_group("accel_batch_verify_256");
    g.sample_size(10).warm_up_time(Duration::from_secs(1));
    g.bench_function("one_by_one", |b| {
        b.iter(|| assert!(reference.batch_verify(&items)))
    });
    g.bench_function("rlc_1core", |b| {
        b.iter(|| assert!(one.batch_verify(&items)))
    });
    g.bench_function(format!("rlc_{cores}cores"), |b| {
        b.iter(|| assert!(multi.batch_verify(&items)))
    });
    g.finish();
}

criterion_group!(benches, quorum, batch);
criterion_main!(benches);
