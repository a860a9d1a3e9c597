//! Shared by the process tests: generate a localnet, run its nodes, stop them (and print
//! their logs when a test fails).
#![allow(dead_code)] // each test uses part of it

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_harmony-appliance");

/// `localnet --generate-only` into `dir` with the given extra arguments and port offset.
pub fn generate(dir: &Path, offset: u16, args: &[&str]) {
    let status = Command::new(BIN)
        .args(["localnet", "--generate-only"])
        .args(args)
        .arg("--port-offset")
        .arg(offset.to_string())
        .arg("--data-dir")
        .arg(dir)
        .status()
        .unwrap();
    assert!(status.success(), "localnet --generate-only failed");
}

/// Edits node `i`'s generated config, checking that each `from` is there.
pub fn edit_config(dir: &Path, i: usize, edits: &[(&str, &str)]) {
    let path = dir.join(format!("node{i}/config.toml"));
    let mut cfg = std::fs::read_to_string(&path).unwrap();
    for (from, to) in edits {
        assert!(cfg.contains(from), "config template changed: no `{from}`");
        cfg = cfg.replace(from, to);
    }
    std::fs::write(&path, cfg).unwrap();
}

/// Running node processes of one network; killed on drop, logs printed if the test failed.
pub struct Nodes {
    dir: PathBuf,
    children: Vec<Child>,
}

impl Nodes {
    /// Starts `run` for nodes `0..n` of the network in `dir`, logging to `node<i>/node.log`.
    pub fn start(dir: &Path, n: usize, rust_log: &str) -> Self {
        let children = (0..n)
            .map(|i| {
                let node = dir.join(format!("node{i}"));
                let log = std::fs::File::create(node.join("node.log")).unwrap();
                Command::new(BIN)
                    .arg("run")
                    .arg("--data-dir")
                    .arg(&node)
                    .env("RUST_LOG", rust_log)
                    .stdin(Stdio::null())
                    .stdout(log.try_clone().unwrap())
                    .stderr(log)
                    .spawn()
                    .unwrap()
            })
            .collect();
        Self {
            dir: dir.to_path_buf(),
            children,
        }
    }
}

impl Drop for Nodes {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        if std::thread::panicking() {
            for i in 0..self.children.len() {
                let log = std::fs::read_to_string(self.dir.join(format!("node{i}/node.log")))
                    .unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(30).collect();
                eprintln!("--- node{i} log (last lines) ---");
                for l in tail.iter().rev() {
                    eprintln!("{l}");
                }
            }
        }
    }
}

/// Waits until something accepts TCP connections on `addr`.
pub fn wait_port(addr: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "{addr} never opened");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A port offset for this test process (QUIC 9000+, RPC 9500+, metrics 9900+ plus offset),
/// in a band of its own so parallel test binaries do not collide.
pub fn port_offset(band: u16) -> u16 {
    band + (std::process::id() % 40) as u16 * 10
}
