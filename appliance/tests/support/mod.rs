//! Shared by the process tests: generate a localnet, run its nodes, stop them (and print
//! their logs when a test fails).
#![allow(dead_code)] // each test uses part of it

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
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
    rust_log: String,
    /// By node index; None while stopped.
    children: Vec<Option<Child>>,
}

impl Nodes {
    /// Starts `run` for nodes `0..n` of the network in `dir`, logging to `node<i>/node.log`.
    pub fn start(dir: &Path, n: usize, rust_log: &str) -> Self {
        let mut nodes = Self {
            dir: dir.to_path_buf(),
            rust_log: rust_log.to_string(),
            children: (0..n).map(|_| None).collect(),
        };
        for i in 0..n {
            nodes.restart(i);
        }
        nodes
    }

    /// Starts node `i` again (appending to its log).
    pub fn restart(&mut self, i: usize) {
        let node = self.dir.join(format!("node{i}"));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(node.join("node.log"))
            .unwrap();
        let child = Command::new(BIN)
            .arg("run")
            .arg("--data-dir")
            .arg(&node)
            .env("RUST_LOG", &self.rust_log)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.children[i] = Some(child);
    }

    /// The process id of running node `i`.
    pub fn pid(&self, i: usize) -> Option<u32> {
        self.children[i].as_ref().map(|c| c.id())
    }

    /// Kills node `i` (SIGKILL: no clean shutdown).
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.children[i].take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Nodes {
    fn drop(&mut self) {
        for i in 0..self.children.len() {
            self.kill(i);
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

/// A helper process, killed on drop.
pub struct Kill(pub Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs `harmony-appliance --data-dir <dir> <args>` to completion.
pub fn ha(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// A JSON-RPC client of the node listening on `port` (5 s per request).
pub fn client(port: u16) -> jsonrpsee::http_client::HttpClient {
    jsonrpsee::http_client::HttpClientBuilder::default()
        .request_timeout(Duration::from_secs(5))
        .build(format!("http://127.0.0.1:{port}"))
        .unwrap()
}

/// Starts a MockHsm connector process (not provisioned) on a free port; returns it with its
/// URL once it accepts connections.
pub fn mock_connector() -> (Kill, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mock = Kill(
        Command::new(BIN)
            .args([
                "hsm",
                "mock-connector",
                "--listen",
                &format!("127.0.0.1:{port}"),
            ])
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_port(&format!("127.0.0.1:{port}"), Duration::from_secs(10));
    (mock, format!("http://127.0.0.1:{port}"))
}

/// `hsm setup --connector url` with the data dir `dir`. The connector may accept TCP a moment
/// before it serves requests (seen on a loaded machine); a setup that could not reach the
/// device changed nothing, so it is retried.
pub fn hsm_setup(dir: &Path, url: &str) -> Output {
    let mut attempt = ha(dir, &["hsm", "setup", "--connector", url]);
    for _ in 0..20 {
        if attempt.status.success()
            || !String::from_utf8_lossy(&attempt.stderr).contains("no HSM answers")
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
        attempt = ha(dir, &["hsm", "setup", "--connector", url]);
    }
    attempt
}

/// Starts a MockHsm connector process and provisions it with the default profile (its
/// secrets under `dir/hsm-secrets`); returns it with its URL.
pub fn mock_hsm(dir: &Path) -> (Kill, String) {
    let (mock, url) = mock_connector();
    let attempt = hsm_setup(dir, &url);
    assert!(
        attempt.status.success(),
        "hsm setup: {}",
        String::from_utf8_lossy(&attempt.stderr)
    );
    (mock, url)
}

/// Runs `staking <args[0]> --rpc <each of rpcs> <args[1..]>` with the data dir `dir`;
/// returns (stdout, stderr, success).
pub fn staking(dir: &Path, rpcs: &[String], args: &[&str]) -> (String, String, bool) {
    let mut all = vec!["staking", args[0]];
    for r in rpcs {
        all.extend(["--rpc", r.as_str()]);
    }
    all.extend(&args[1..]);
    let o = ha(dir, &all);
    (
        String::from_utf8_lossy(&o.stdout).to_string(),
        String::from_utf8_lossy(&o.stderr).to_string(),
        o.status.success(),
    )
}

/// A `staking create-validator` with test-sized numbers (commission 0.1 of at most 0.2, min
/// self-delegation 1,000 ONE, max total delegation 100,000 ONE), waiting up to 60 s for the
/// receipt; the signer options are the caller's to add.
pub fn create_validator_args(
    name: &str,
    bls: &str,
    transport: &str,
    endpoint: &str,
    amount: &str,
) -> Vec<String> {
    [
        "create-validator",
        "--bls-key",
        bls,
        "--name",
        name,
        "--rate",
        "0.1",
        "--max-rate",
        "0.2",
        "--max-change-rate",
        "0.05",
        "--min-self-delegation",
        "1000",
        "--max-total-delegation",
        "100000",
        "--amount",
        amount,
        "--transport-key",
        transport,
        "--endpoint",
        endpoint,
        "--wait-s",
        "60",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// A JSON-RPC quantity (`"0x…"`).
pub fn quantity(v: &serde_json::Value) -> u128 {
    u128::from_str_radix(v.as_str().unwrap().trim_start_matches("0x"), 16).unwrap()
}

/// The sum of every sample of metric `name` on node `i`'s `/metrics`.
pub async fn metric(offset: u16, i: usize, name: &str) -> f64 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", 9900 + offset + i as u16))
        .await
        .unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).await.unwrap();
    body.lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// `0xPUBKEY:0xPOP` of the BLS key derived from `[seed; 32]` (what `--bls-key` takes).
pub fn bls_with_pop(seed: u8) -> String {
    let sk = accel::SecretKey::from_ikm(&[seed; 32]).unwrap();
    format!(
        "0x{}:0x{}",
        hex::encode(sk.public_key().to_bytes()),
        hex::encode(sk.prove_possession().to_bytes())
    )
}

/// The chain height node `c` reports (0 while it does not answer).
pub async fn height(c: &jsonrpsee::http_client::HttpClient) -> u64 {
    use jsonrpsee::core::client::ClientT;
    match c
        .request::<serde_json::Value, _>("eth_blockNumber", jsonrpsee::rpc_params![])
        .await
    {
        Ok(v) => quantity(&v) as u64,
        Err(_) => 0,
    }
}

/// The hash of block `n` as node `c` has it.
pub async fn block_hash(c: &jsonrpsee::http_client::HttpClient, n: u64) -> Option<String> {
    use jsonrpsee::core::client::ClientT;
    let b: serde_json::Value = c
        .request(
            "eth_getBlockByNumber",
            jsonrpsee::rpc_params![format!("0x{n:x}"), false],
        )
        .await
        .ok()?;
    b["hash"].as_str().map(str::to_string)
}

/// The validators of the current committee, as node `c` reports them.
pub async fn elected(c: &jsonrpsee::http_client::HttpClient) -> Vec<alloy_primitives::Address> {
    use jsonrpsee::core::client::ClientT;
    c.request("hmy_getElectedValidatorAddresses", jsonrpsee::rpc_params![])
        .await
        .unwrap()
}

/// Polls `check` every 200 ms until it holds, failing after `within`.
pub async fn wait_for(what: &str, within: Duration, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Runs `staking <args>` against the given nodes; panics with the output on failure.
pub fn staking_ok(dir: &Path, rpcs: &[String], args: &[&str]) {
    let (out, err, ok) = staking(dir, rpcs, args);
    assert!(ok, "staking {}: {out}\n{err}", args[0]);
}

/// The line `label 0x…` that `keys pop` prints.
pub fn field<'a>(out: &'a str, label: &str) -> &'a str {
    out.lines()
        .find_map(|l| l.strip_prefix(label))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no `{label}` in {out}"))
}

/// A node's BLS key with its proof of possession (`0xPK:0xPOP`) and its transport key, as
/// `keys pop` and `keys transport` print them from its data dir.
pub fn node_identity(node_dir: &Path) -> (String, String) {
    let pop = ha(node_dir, &["keys", "pop"]);
    let pop = String::from_utf8_lossy(&pop.stdout).to_string();
    let bls = format!(
        "{}:{}",
        field(&pop, "public_key"),
        field(&pop, "proof_of_possession")
    );
    let transport = ha(node_dir, &["keys", "transport"]);
    let transport = String::from_utf8_lossy(&transport.stdout)
        .trim()
        .to_string();
    (bls, transport)
}

/// A test network of 300 ms blocks, two per leader, `epoch_blocks` an epoch, with `observers`
/// extra nodes (see `localnet --observers`).
pub fn generate_fast(dir: &Path, offset: u16, epoch_blocks: u64, observers: usize) {
    let (epochs, observers) = (epoch_blocks.to_string(), observers.to_string());
    generate(
        dir,
        offset,
        &[
            "--block-time-ms",
            "300",
            "--blocks-per-leader",
            "2",
            "--epoch-blocks",
            &epochs,
            "--observers",
            &observers,
        ],
    );
}

/// JSON-RPC URLs of nodes `0..n`.
pub fn rpc_urls(offset: u16, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("http://127.0.0.1:{}", 9500 + offset + i as u16))
        .collect()
}
