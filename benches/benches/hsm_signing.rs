//! Signing latency per backend and double-sign guard writes per second (with fsync of the file
//! and its directory), results in benches/README.md (section "hsm").
//!
//! - `guarded_sign/<backend>/<keys>`: a full consensus signature through the guard (one
//!   durable record per message for all keys, then one BLS signature per key). The keystore
//!   and MockHsm backends sign BLS in software from locked memory, so they differ only in
//!   where the secret was unsealed from.
//! - `guard_record/<keys>`: the durable write alone.
//! - `mockhsm/*`: the operations that do reach the device over the connector's HTTP protocol:
//!   the Ed25519 transport signature (every TLS handshake) and the HMAC that unseals a BLS key
//!   (once per key at start).

use accel::SecretKey;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use hsm::keystore::Kdf;
use hsm::yubi::{self, Profile, SealedKey};
use hsm::{Guard, GuardedSigner, Keystore, KeystoreSigner, MsgKind, SignRequest, Signer};
use std::cell::Cell;
use std::sync::Arc;
use std::time::Duration;

fn keys(n: usize) -> Vec<SecretKey> {
    (0..n)
        .map(|i| SecretKey::from_ikm(&[i as u8 + 1; 32]).unwrap())
        .collect()
}

fn req(number: u64) -> SignRequest {
    SignRequest {
        kind: MsgKind::Commit,
        chain_id: 1,
        shard: 0,
        number,
        view: 0,
        hash: [7; 32],
    }
}

fn mock() -> (Arc<yubi::Client>, Profile) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        yubi::serve_mock("127.0.0.1", port, || tx.send(()).unwrap()).unwrap();
    });
    rx.recv().unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let secrets = tempfile::tempdir().unwrap();
    let profile = Profile::default_profile();
    let c = yubi::open(&url, 1, b"password").unwrap();
    yubi::setup(&c, &profile, secrets.path(), None, false).unwrap();
    let pw = std::fs::read_to_string(secrets.path().join("validator-password")).unwrap();
    (
        Arc::new(yubi::open(&url, 4, pw.as_bytes()).unwrap()),
        profile,
    )
}

fn bench(c: &mut Criterion) {
    // On the same disk as the build (not a tmpfs), so fsync is real.
    let base = std::env::current_dir().unwrap();
    let (client, profile) = mock();
    let mut g = c.benchmark_group("hsm");
    g.measurement_time(Duration::from_secs(3));
    g.sample_size(20);
    for n in [1usize, 4] {
        let ks = keys(n);
        let dir = tempfile::tempdir_in(&base).unwrap();
        let files: Vec<_> = ks
            .iter()
            .enumerate()
            .map(|(i, k)| {
                let p = dir.path().join(format!("k{i}.json"));
                Keystore::encrypt(k, "pw", Kdf::Pbkdf2 { c: 10 }, "")
                    .write(&p)
                    .unwrap();
                p
            })
            .collect();
        let sealed: Vec<_> = ks
            .iter()
            .enumerate()
            .map(|(i, k)| {
                let p = dir.path().join(format!("k{i}.sealed.json"));
                SealedKey::seal(&client, profile.hmac_key.id, k)
                    .unwrap()
                    .write(&p)
                    .unwrap();
                p
            })
            .collect();
        let backends: Vec<(&str, Box<dyn Signer>)> = vec![
            (
                "keystore",
                Box::new(KeystoreSigner::open(&files, "pw").unwrap()),
            ),
            (
                "mockhsm",
                Box::new(yubi::HsmSigner::open(client.clone(), &sealed).unwrap()),
            ),
        ];
        for (name, inner) in backends {
            let gdir = tempfile::tempdir_in(&base).unwrap();
            let s = GuardedSigner::new(inner, Arc::new(Guard::open(gdir.path()).unwrap()), true)
                .unwrap();
            let next = Cell::new(1u64);
            g.bench_function(BenchmarkId::new(format!("guarded_sign/{name}"), n), |b| {
                b.iter(|| {
                    let i = next.get();
                    next.set(i + 1);
                    s.sign(&req(i)).unwrap()
                })
            });
        }
        let gdir = tempfile::tempdir_in(&base).unwrap();
        let guard = Guard::open(gdir.path()).unwrap();
        let pks: Vec<_> = ks.iter().map(SecretKey::public_key).collect();
        guard.register(&pks).unwrap();
        let next = Cell::new(1u64);
        g.bench_function(BenchmarkId::new("guard_record", n), |b| {
            b.iter(|| {
                let i = next.get();
                next.set(i + 1);
                guard.check_and_record(&pks, &req(i)).unwrap()
            })
        });
        g.bench_function(BenchmarkId::new("bls_sign_only", n), |b| {
            b.iter(|| ks.iter().map(|k| k.sign(&[1u8; 76])).collect::<Vec<_>>())
        });
    }
    let t = yubi::HsmEd25519Key::open(client.clone(), profile.transport_key.id).unwrap();
    g.bench_function("mockhsm/transport_ed25519_sign", |b| {
        b.iter(|| t.sign(b"tls 1.3 certificate verify").unwrap())
    });
    let sk = SecretKey::from_ikm(&[3; 32]).unwrap();
    let sealed = SealedKey::seal(&client, profile.hmac_key.id, &sk).unwrap();
    g.bench_function("mockhsm/unseal_one_bls_key", |b| {
        b.iter(|| sealed.unseal(&client, "bench").unwrap())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
