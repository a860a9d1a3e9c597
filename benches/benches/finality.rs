//! Finality latency (announce → committed) of the 4-node loopback localnet, as a histogram,
//! and the time from killing the leader to the next finalized block.
//!
//! Criterion reports no tail, so this bench runs real node processes with the localnet
//! defaults, lets them finalize `FINALITY_BLOCKS` blocks (default 60) at
//! `FINALITY_BLOCK_TIME_MS` (default 2000, the localnet default), reads every node's per-block
//! latencies (`hmy_finalityStats`) into an HdrHistogram and prints p50/p90/p99/max for the
//! leader and for the validators. Then it kills the leader `LEADER_KILLS` times (default 3),
//! each time measuring until another node's height moves, and restarts it.
//! Binary: `HARMONY_BIN`, else target/release/harmony-appliance, else target/debug.

use hdrhistogram::Histogram;
use std::path::{Path, PathBuf};
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

struct Nodes(Vec<Option<Child>>);
impl Drop for Nodes {
    fn drop(&mut self) {
        for c in self.0.iter_mut().flatten() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn spawn(bin: &Path, dir: &Path) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("node.log"))
        .unwrap();
    Command::new(bin)
        .arg("run")
        .arg("--data-dir")
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap()
}

fn height(port: u16) -> u64 {
    benches::rpc(port, "eth_blockNumber", serde_json::json!([]))
        .ok()
        .and_then(|v| u64::from_str_radix(v.as_str()?.trim_start_matches("0x"), 16).ok())
        .unwrap_or(0)
}

fn wait_height(port: u16, h: u64, limit: Duration) {
    let start = Instant::now();
    while height(port) < h {
        assert!(start.elapsed() < limit, "network stalled below height {h}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` passes nothing: skip quickly.
    if !std::env::args().any(|a| a == "--bench") {
        println!("finality bench: run with `cargo bench -p benches --bench finality`");
        return;
    }
    let blocks = env_u64("FINALITY_BLOCKS", 60);
    let block_time = env_u64("FINALITY_BLOCK_TIME_MS", 2000);
    let kills = env_u64("LEADER_KILLS", 3);
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
    let node_dir = |i: usize| dir.join(format!("node{i}"));
    let mut nodes = Nodes((0..4).map(|i| Some(spawn(&bin, &node_dir(i)))).collect());
    let rpc_port = |i: usize| 9500 + offset + i as u16;
    let limit = Duration::from_millis(blocks * block_time * 3 + 30_000);
    wait_height(rpc_port(0), blocks + 1, limit);

    let mut leader = Histogram::<u64>::new(3).unwrap();
    let mut validators = Histogram::<u64>::new(3).unwrap();
    for i in 0..4 {
        let stats = benches::rpc(rpc_port(i), "hmy_finalityStats", serde_json::json!([])).unwrap();
        for s in stats.as_array().unwrap() {
            // Skip block 1: nodes start at slightly different times.
            if s[0].as_u64().unwrap() < 2 {
                continue;
            }
            let us = s[1].as_u64().unwrap();
            // Leaders rotate: a node's sample is a leader sample when it proposed that block.
            let proposer = benches::rpc(
                rpc_port(i),
                "eth_getBlockByNumber",
                serde_json::json!([format!("0x{:x}", s[0].as_u64().unwrap()), false]),
            )
            .ok()
            .and_then(|b| b["miner"].as_str().map(str::to_owned));
            if proposer.as_deref().is_some_and(|p| is_self(&dir, i, p)) {
                leader.record(us).unwrap();
            } else {
                validators.record(us).unwrap();
            }
        }
    }

    let mut kill_ms = Vec::new();
    for _ in 0..kills {
        let status =
            benches::rpc(rpc_port(0), "hmy_consensusStatus", serde_json::json!([])).unwrap();
        let l = status["leader"].as_u64().unwrap() as usize;
        let watcher = (l + 1) % 4;
        let before = height(rpc_port(watcher));
        let t0 = Instant::now();
        if let Some(mut c) = nodes.0[l].take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
        while height(rpc_port(watcher)) <= before {
            assert!(
                t0.elapsed() < Duration::from_secs(120),
                "no block after killing the leader"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        kill_ms.push(t0.elapsed().as_secs_f64() * 1000.0);
        nodes.0[l] = Some(spawn(&bin, &node_dir(l)));
        let h = height(rpc_port(watcher));
        wait_height(rpc_port(l), h, Duration::from_secs(120));
        std::thread::sleep(Duration::from_millis(block_time * 3));
    }
    drop(nodes);
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
    for (i, ms) in kill_ms.iter().enumerate() {
        println!(
            "leader kill {}: next block after {ms:.0} ms = {:.2} block times",
            i + 1,
            ms / block_time as f64
        );
    }
}

/// True when `address` is node `i`'s validator address (from the generated chain spec).
fn is_self(dir: &Path, i: usize, address: &str) -> bool {
    let spec = std::fs::read_to_string(dir.join("chain-spec.toml")).unwrap_or_default();
    let addrs: Vec<String> = spec
        .lines()
        .filter_map(|l| l.trim().strip_prefix("address = \""))
        .map(|a| a.trim_end_matches('"').to_lowercase())
        .collect();
    addrs.get(i).is_some_and(|a| *a == address.to_lowercase())
}
