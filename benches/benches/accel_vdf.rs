//! Class-group VDF (1024-bit discriminant): our `prove` (squarings plus the Wesolowski proof;
//! single-threaded, and with the proof on all cores) beside chiavdf's `prove` from the PyPI
//! wheel, same machine, same run, same challenge and iteration count. Throughput is reported by criterion as iterations (squarings) per second.
//!
//! `cargo bench -p benches --bench accel_vdf`; `ACCEL_VDF_ITERS` (default 1,000,000) sets T.
//! chiavdf runs from `<workspace>/.venv` (`make peers`); its time is measured inside Python, so
//! interpreter start-up is not counted. Without the venv only our side runs, and it says so.

use accel::vdf::{self, Discriminant, Form};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

const CHALLENGE: &[u8] = b"harmony-appliance vdf bench";

fn python() -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    let ok = Command::new(&p)
        .args(["-c", "import chiavdf"])
        .status()
        .is_ok_and(|s| s.success());
    ok.then_some(p)
}

fn chiavdf_prove(py: &PathBuf, iters: u64, runs: u64) -> Duration {
    let script = format!(
        "import chiavdf, time\n\
         c = bytes.fromhex('{}')\n\
         x = b'\\x08' + bytes(99)\n\
         t = time.perf_counter()\n\
         for _ in range({runs}):\n    chiavdf.prove(c, x, 1024, {iters}, '')\n\
         print(time.perf_counter() - t)\n",
        hex::encode(CHALLENGE)
    );
    let out = Command::new(py)
        .args(["-c", &script])
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let secs: f64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    Duration::from_secs_f64(secs)
}

fn vdf_prove(c: &mut Criterion) {
    let iters: u64 = std::env::var("ACCEL_VDF_ITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let d = Discriminant::from_seed(CHALLENGE, 1024).unwrap();
    let x = Form::generator(&d);
    let mut g = c.benchmark_group("accel_vdf_prove_1024");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(1))
        .measurement_time(Duration::from_secs(1))
        .throughput(Throughput::Elements(iters));
    g.bench_function(format!("accel/{iters}"), |b| {
        b.iter(|| vdf::prove(&d, &x, iters).unwrap())
    });
    // The squarings stay on one core; the proof is spread over the pool.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(cores)
        .build()
        .unwrap();
    g.bench_function(format!("accel_proof_on_{cores}_cores/{iters}"), |b| {
        b.iter(|| vdf::prove_with_progress(&d, &x, iters, Some(&pool), |_| {}).unwrap())
    });
    match python() {
        Some(py) => {
            // Same output, byte for byte, before timing anything.
            let ours = vdf::prove(&d, &x, 1000).unwrap().to_bytes(&d).unwrap();
            let script = format!(
                "import chiavdf\nprint(chiavdf.prove(bytes.fromhex('{}'), b'\\x08' + bytes(99), 1024, 1000, '').hex())",
                hex::encode(CHALLENGE)
            );
            let out = Command::new(&py).args(["-c", &script]).output().unwrap();
            assert_eq!(
                String::from_utf8_lossy(&out.stdout).trim(),
                hex::encode(ours)
            );
            g.bench_function(format!("chiavdf/{iters}"), |b| {
                b.iter_custom(|runs| chiavdf_prove(&py, iters, runs))
            });
        }
        None => eprintln!("chiavdf not available in .venv (run `make peers`): only our side ran"),
    }
    g.finish();
}

criterion_group!(benches, vdf_prove);
criterion_main!(benches);
