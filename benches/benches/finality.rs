//! Finality latency (announce → committed) of the 4-node loopback localnet, as a histogram.
//!
//! Criterion reports no tail, so this bench runs real node processes, lets them finalize
//! `FINALITY_BLOCKS` blocks (default 60) at `FINALITY_BLOCK_TIME_MS` (default 2000, the
//! localnet default), then reads every node's per-block latencies (`hmy_finalityStats`) into
//! an HdrHistogram and prints p50/p90/p99/max for the leader and for the validators.
//! Binary: `HARMONY_BIN`, else target/release/harmony-appliance, else target/debug.

use hdrhistogram::Histogram;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn binary() -> PathBuf {
    if let Ok(p) = std::env::var("HARMONY_BIN") {
        return p.into();
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    for profile in ["release", "debug"] {
        let p = root.join("target").join(profile).join("harmony-appliance");
        if p.exists() {
            return p;
        }
    }
    panic!("build the node first: cargo build --release -p appliance");
}

struct Kill(Vec<Child>);
impl Drop for Kill {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` would pass nothing: skip quickly.
    if !std::env::args().any(|a| a == "--bench") {
        println!("finality bench: run with `cargo bench -p benches --bench finality`");
        return;
    }
    let blocks = env_u64("FINALITY_BLOCKS", 60);
    let block_time = env_u64("FINALITY_BLOCK_TIME_MS", 2000);
    let bin = binary();
    let dir = std::env::temp_dir().join(format!("finality-bench-{}", std::process::id()));
    let offset = 2000u16;
    let st = Command::new(&bin)
        .args(["localnet", "--generate-only", "--reset", "--nodes", "4"])
        .args([
            "--block-time-ms",
            &block_time.to_string(),
            "--port-offset",
            &offset.to_string(),
        ])
        .arg("--data-dir")
        .arg(&dir)
        .status()
        .expect("run the node binary");
    assert!(st.success());
    let children = Kill(
        (0..4)
            .map(|i| {
                let nd = dir.join(format!("node{i}"));
                let log = std::fs::File::create(nd.join("node.log")).unwrap();
                Command::new(&bin)
                    .arg("run")
                    .arg("--data-dir")
                    .arg(&nd)
                    .stdin(Stdio::null())
                    .stdout(log.try_clone().unwrap())
                    .stderr(log)
                    .spawn()
                    .unwrap()
            })
            .collect(),
    );
    let rpc_port = |i: u16| 9500 + offset + i;
    let start = Instant::now();
    let deadline = Duration::from_millis(blocks * block_time * 3 + 30_000);
    loop {
        let h = benches::rpc(rpc_port(0), "eth_blockNumber", serde_json::json!([]))
            .ok()
            .and_then(|v| u64::from_str_radix(v.as_str()?.trim_start_matches("0x"), 16).ok())
            .unwrap_or(0);
        if h >= blocks + 1 {
            break;
        }
        assert!(start.elapsed() < deadline, "network stalled at height {h}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let mut leader = Histogram::<u64>::new(3).unwrap();
    let mut validators = Histogram::<u64>::new(3).unwrap();
    for i in 0..4u16 {
        let stats = benches::rpc(rpc_port(i), "hmy_finalityStats", serde_json::json!([])).unwrap();
        for s in stats.as_array().unwrap() {
            // Skip block 1: nodes start at slightly different times.
            if s[0].as_u64().unwrap() < 2 {
                continue;
            }
            let us = s[1].as_u64().unwrap();
            if i == 0 {
                leader.record(us).unwrap()
            } else {
                validators.record(us).unwrap()
            }
        }
    }
    drop(children);
    let _ = std::fs::remove_dir_all(&dir);
    println!(
        "finality latency, 4 nodes on loopback, {block_time} ms blocks, binary {}",
        bin.display()
    );
    for (name, h) in [
        ("leader (propose → committed)", &leader),
        ("validators (announce → committed)", &validators),
    ] {
        println!(
            "{name}: n={} p50={:.2} ms p90={:.2} ms p99={:.2} ms max={:.2} ms",
            h.len(),
            h.value_at_quantile(0.5) as f64 / 1000.0,
            h.value_at_quantile(0.9) as f64 / 1000.0,
            h.value_at_quantile(0.99) as f64 / 1000.0,
            h.max() as f64 / 1000.0
        );
    }
}
