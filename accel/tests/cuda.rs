//! The CUDA backend on a real device: random batches (valid, invalid, mixed, off-subgroup and
//! identity signatures) give exactly the CPU backend's answers, and no job falls back to the
//! CPU. Without the `cuda` feature or without a device, each GPU test prints why it did not
//! run; the same batches go through the device path's host twin everywhere.

use accel::{BatchItem, Engine, PublicKey, SecretKey, Selection, Signature};
use rand::{Rng, SeedableRng};
use std::io::Write;
use std::sync::Arc;

fn pool() -> Arc<rayon::ThreadPool> {
    Arc::new(rayon::ThreadPoolBuilder::new().build().unwrap())
}

/// The CUDA engine, or None after printing why it cannot run here.
fn cuda_engine(test: &str) -> Option<Engine> {
    match Selection::Cuda.resolve() {
        Ok((backend, _)) => Some(Engine::new(backend, pool()).expect("the cuda backend starts")),
        Err(why) => {
            // Straight to stderr, past the harness's capture, so the skip is always seen.
            let _ = writeln!(
                std::io::stderr(),
                "{test}: skipped, no CUDA device to run on: {why}"
            );
            None
        }
    }
}

/// A point on the G2 curve outside the subgroup (x = 2), compressed: it decodes as a
/// signature, and only a subgroup check refuses it.
const OFF_SUBGROUP: &str = "8000000000000000000000000000000000000000000000000000000000000000\
0000000000000000000000000000000000000000000000000000000000000000\
0000000000000000000000000000000000000000000000000000000000000002";

struct Batch {
    pks: Vec<PublicKey>,
    msgs: Vec<Vec<u8>>,
    sigs: Vec<Signature>,
}

impl Batch {
    fn new(n: usize, seed: u64) -> Self {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let sks: Vec<SecretKey> = (0..n)
            .map(|_| SecretKey::from_ikm(&rng.gen::<[u8; 32]>()).unwrap())
            .collect();
        let msgs: Vec<Vec<u8>> = (0..n).map(|_| rng.gen::<[u8; 32]>().to_vec()).collect();
        let sigs = sks.iter().zip(&msgs).map(|(k, m)| k.sign(m)).collect();
        let pks = sks.iter().map(|k| k.public_key()).collect();
        Self { pks, msgs, sigs }
    }

    fn items(&self) -> Vec<BatchItem<'_>> {
        (0..self.pks.len())
            .map(|i| BatchItem {
                public_key: &self.pks[i],
                message: &self.msgs[i],
                signature: &self.sigs[i],
            })
            .collect()
    }
}

#[test]
fn cuda_batches_match_the_cpu_backend() {
    let Some(cuda) = cuda_engine("cuda_batches_match_the_cpu_backend") else {
        return;
    };
    batches_match_the_cpu_backend(&cuda, &[1, 2, 31, 64, 65, 1000, 4096]);
}

/// The same matrix through the device path with its kernels run on the host (every machine).
#[test]
fn device_twin_batches_match_the_cpu_backend() {
    batches_match_the_cpu_backend(&Engine::device_twin(pool()), &[1, 2, 31, 65]);
}

fn batches_match_the_cpu_backend(device: &Engine, sizes: &[usize]) {
    let cpu = Engine::cpu(pool());
    let off = Signature::from_bytes(&hex::decode(OFF_SUBGROUP).unwrap()).unwrap();
    let mut identity = [0u8; 96];
    identity[0] = 0xc0;
    let identity = Signature::from_bytes(&identity).unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(16);
    for (round, &n) in sizes.iter().enumerate() {
        let mut batch = Batch::new(n, round as u64);
        let cases = [
            "valid",
            "wrong message",
            "swapped",
            "off subgroup",
            "identity",
        ];
        for case in cases {
            let i = rng.gen_range(0..n);
            match case {
                "wrong message" => batch.msgs[i][0] ^= 1,
                "swapped" if n > 1 => batch.sigs.swap(i, (i + 1) % n),
                "off subgroup" => batch.sigs[i] = off,
                "identity" => batch.sigs[i] = identity,
                _ => {}
            }
            let items = batch.items();
            let want = cpu.batch_verify(&items);
            assert_eq!(
                device.batch_verify(&items),
                want,
                "{device:?}: n={n}, {case}"
            );
            assert_eq!(want, case == "valid" || (case == "swapped" && n == 1));
            batch = Batch::new(n, round as u64);
        }
    }
    assert_eq!(
        device.device_fallbacks(),
        0,
        "no batch fell back to the CPU"
    );
}

#[test]
fn auto_takes_cuda_exactly_when_it_can_run() {
    let (backend, why) = Selection::Auto.resolve().unwrap();
    match Selection::Cuda.resolve() {
        Ok(_) => assert_eq!(backend, accel::Backend::Cuda),
        Err(reason) => {
            assert_eq!(backend, accel::Backend::Cpu);
            assert!(
                why.unwrap().contains(&reason),
                "auto says why it chose the CPU"
            );
            let _ = writeln!(
                std::io::stderr(),
                "auto_takes_cuda_exactly_when_it_can_run: no CUDA here: {reason}"
            );
        }
    }
}
