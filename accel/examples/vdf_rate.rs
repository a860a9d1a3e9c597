//! Times `vdf::prove` at 1,024 bits from chiavdf's generator: `cargo run --release -p accel
//! --example vdf_rate -- [T]` (T defaults to 200,000): the squarings alone, `prove` on one
//! thread, and `prove` with the proof spread over every core. For profiling the squaring loop
//! (`perf record` on this binary); the figures of record come from
//! `benches/benches/accel_vdf.rs`.

use accel::vdf::{prove, prove_with_progress, Discriminant, Form};
use std::time::Instant;

fn main() {
    let t: u64 = std::env::args()
        .nth(1)
        .map(|a| a.parse().expect("T: a number of squarings"))
        .unwrap_or(200_000);
    let d = Discriminant::from_seed(b"vdf_rate", 1024).expect("a valid seed");
    let x = Form::generator(&d);
    let rate = |s: f64| t as f64 / s / 1000.0;

    let started = Instant::now();
    let mut y = x.clone();
    for _ in 0..t {
        y = y.square(&d);
    }
    let squarings = started.elapsed().as_secs_f64();
    println!(
        "T = {t}: squarings alone {squarings:.3} s, {:.1} k/s",
        rate(squarings)
    );

    let started = Instant::now();
    let proof = prove(&d, &x, t).expect("prove");
    let one = started.elapsed().as_secs_f64();
    assert_eq!(proof.y, y, "prove's output is the squarings' output");
    println!(
        "T = {t}: prove, one thread {one:.3} s, {:.1} k squarings/s (proof {:.0}% of it)",
        rate(one),
        (one - squarings) / one * 100.0
    );

    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(cores)
        .build()
        .expect("a thread pool");
    let started = Instant::now();
    let spread = prove_with_progress(&d, &x, t, Some(&pool), |_| {}).expect("prove");
    let all = started.elapsed().as_secs_f64();
    assert_eq!(spread, proof, "the proof does not depend on the threads");
    println!(
        "T = {t}: prove, proof on {cores} cores {all:.3} s, {:.1} k squarings/s (output a = {}…)",
        rate(all),
        &proof.y.a.to_string()[..12]
    );
}
