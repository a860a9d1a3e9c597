//! Times `vdf::prove` at 1,024 bits from chiavdf's generator: `cargo run --release -p accel
//! --example vdf_rate -- [T]` (T defaults to 200,000). For profiling the squaring loop (`perf
//! record` on this binary); the figures of record come from `benches/benches/accel_vdf.rs`.

use accel::vdf::{prove, Discriminant, Form};
use std::time::Instant;

fn main() {
    let t: u64 = std::env::args()
        .nth(1)
        .map(|a| a.parse().expect("T: a number of squarings"))
        .unwrap_or(200_000);
    let d = Discriminant::from_seed(b"vdf_rate", 1024).expect("a valid seed");
    let x = Form::generator(&d);
    let started = Instant::now();
    let proof = prove(&d, &x, t).expect("prove");
    let s = started.elapsed().as_secs_f64();
    println!(
        "T = {t}: {s:.3} s, {:.1} k squarings/s (output a = {}…)",
        t as f64 / s / 1000.0,
        &proof.y.a.to_string()[..12]
    );
}
