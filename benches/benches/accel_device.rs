//! accel's device backend (issue 16, ADR 0023), each figure beside the multicore CPU backend
//! of the same machine in the same run:
//! - RLC batch verification of N distinct-message triples (`ACCEL_BATCH_SIZES`, default
//!   1024,16384; the GPU report adds 131072), as signatures per second;
//! - 250- and 4,000-vote quorums (the device backend keeps these on the CPU, by design);
//! - the same kernels compiled for the host (`device-twin`), at 1,024 triples: how far the
//!   portable kernel source is from blst on a CPU, not a production path.
//!
//! The CUDA rows run when the benches are built with `--features cuda` and a device answers;
//! otherwise the reason is printed and only the CPU rows run.
//! `cargo bench -p benches --bench accel_device [--features cuda]`; results in
//! benches/README.md.

use accel::{encode_vote, BatchItem, Engine, PublicKey, QuorumPolicy, SecretKey, Selection};
use accel::{Signature, WireVote};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

fn key(i: usize) -> SecretKey {
    let mut ikm = [7u8; 32];
    ikm[..8].copy_from_slice(&(i as u64).to_le_bytes());
    SecretKey::from_ikm(&ikm).unwrap()
}

fn pool() -> Arc<rayon::ThreadPool> {
    Arc::new(rayon::ThreadPoolBuilder::new().build().unwrap())
}

/// The CPU engine, and the CUDA engine where it can run (else why not, printed).
fn engines() -> Vec<(String, Engine)> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut out = vec![(format!("cpu_{cores}cores"), Engine::cpu(pool()))];
    match Selection::Cuda.resolve() {
        Ok((backend, _)) => match Engine::new(backend, pool()) {
            Ok(e) => out.push(("cuda".to_string(), e)),
            Err(why) => eprintln_now(&format!("accel_device: cuda rows skipped: {why}")),
        },
        Err(why) => eprintln_now(&format!("accel_device: cuda rows skipped: {why}")),
    }
    out
}

fn eprintln_now(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

fn sizes() -> Vec<usize> {
    std::env::var("ACCEL_BATCH_SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1024, 16384])
}

struct Triples {
    pks: Vec<PublicKey>,
    msgs: Vec<Vec<u8>>,
    sigs: Vec<Signature>,
}

/// n triples from 256 signers (keys repeat; messages never do), so setup stays quick.
/// Signed on every core: 131,072 signatures one after another would cost a GPU machine's
/// session over a minute before the first measurement.
fn triples(n: usize) -> Triples {
    use rayon::prelude::*;
    let sks: Vec<SecretKey> = (0..256.min(n)).map(key).collect();
    let keys: Vec<PublicKey> = sks.iter().map(SecretKey::public_key).collect();
    let msgs: Vec<Vec<u8>> = (0..n).map(|i| format!("block {i}").into_bytes()).collect();
    let pks = (0..n).map(|i| keys[i % keys.len()]).collect();
    let sigs = (0..n)
        .into_par_iter()
        .map(|i| sks[i % sks.len()].sign(&msgs[i]))
        .collect();
    Triples { pks, msgs, sigs }
}

impl Triples {
    fn items(&self) -> Vec<BatchItem<'_>> {
        (0..self.msgs.len())
            .map(|i| BatchItem {
                public_key: &self.pks[i],
                message: &self.msgs[i],
                signature: &self.sigs[i],
            })
            .collect()
    }
}

fn batches(c: &mut Criterion) {
    let engines = engines();
    let mut g = c.benchmark_group("accel_device_batch");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    for n in sizes() {
        let t = triples(n);
        let items = t.items();
        g.throughput(Throughput::Elements(n as u64));
        for (name, e) in &engines {
            g.bench_function(BenchmarkId::new(name, n), |b| {
                b.iter(|| assert!(e.batch_verify(&items)))
            });
        }
    }
    let t = triples(1024);
    let items = t.items();
    let twin = Engine::device_twin(pool());
    g.throughput(Throughput::Elements(1024));
    g.bench_function(BenchmarkId::new("device_twin_host", 1024), |b| {
        b.iter(|| assert!(twin.batch_verify(&items)))
    });
    g.finish();
}

fn quorums(c: &mut Criterion) {
    let engines = engines();
    let mut g = c.benchmark_group("accel_device_quorum");
    g.sample_size(10).warm_up_time(Duration::from_secs(1));
    for n in [250usize, 4000] {
        let sks: Vec<SecretKey> = (0..n).map(key).collect();
        let pks: Vec<PublicKey> = sks.iter().map(|k| k.public_key()).collect();
        let msg = [0x5au8; 76];
        let frames: Vec<_> = sks
            .iter()
            .enumerate()
            .map(|(i, k)| encode_vote(i as u32, &k.sign(&msg)))
            .collect();
        let votes: Vec<WireVote> = frames.iter().map(|f| WireVote::parse(f).unwrap()).collect();
        g.throughput(Throughput::Elements(n as u64));
        for (name, e) in &engines {
            g.bench_function(BenchmarkId::new(name, n), |b| {
                b.iter(|| {
                    let out = e.verify_quorum(&msg, &pks, &votes, QuorumPolicy::default());
                    assert_eq!(out.signers.len(), n);
                })
            });
        }
    }
    g.finish();
}

criterion_group!(benches, batches, quorums);
criterion_main!(benches);
