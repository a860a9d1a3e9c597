//! Quorum verification of votes on one payload: the `cpu` backend (one aggregate pairing,
//! bisection on failure) beside the `reference` backend (one pairing per vote), same run.

use accel::{Engine, SecretKey, Vote};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use std::sync::Arc;

fn votes(n: usize, msg: &[u8]) -> Vec<Vote> {
    (0..n)
        .map(|i| {
            let mut ikm = [9u8; 32];
            ikm[..8].copy_from_slice(&(i as u64).to_le_bytes());
            let sk = SecretKey::from_ikm(&ikm).unwrap();
            Vote {
                public_key: sk.public_key(),
                signature: sk.sign(msg),
            }
        })
        .collect()
}

fn quorum(c: &mut Criterion) {
    let msg = [0x5au8; 76];
    let one_core = Arc::new(
        rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap(),
    );
    let cpu = Engine::cpu(one_core);
    let reference = Engine::reference();
    let mut g = c.benchmark_group("quorum_verify");
    g.sample_size(10);
    for n in [4usize, 64, 250] {
        let vs = votes(n, &msg);
        g.bench_with_input(BenchmarkId::new("cpu_aggregate_1core", n), &vs, |b, vs| {
            b.iter(|| assert!(cpu.verify_votes(&msg, vs).iter().all(|v| *v)))
        });
        g.bench_with_input(BenchmarkId::new("reference_each", n), &vs, |b, vs| {
            b.iter(|| assert!(reference.verify_votes(&msg, vs).iter().all(|v| *v)))
        });
    }
    g.finish();
}

criterion_group!(benches, quorum);
criterion_main!(benches);
