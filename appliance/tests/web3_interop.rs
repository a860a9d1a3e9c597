//! Ethereum interop: a real 4-node localnet driven by web3.py and eth-account (real clients),
//! through `appliance/tests/interop/web3_interop.py`: value transfers of every transaction type,
//! an ERC-20 compiled by solc (contracts/), calls, gas estimates, receipts, logs, the errors
//! wallets expect, WebSocket subscriptions, and the same state on every node.
//!
//! The Python peer runs from `<workspace>/.venv` (made by `make peers`, part of `make test`).

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_harmony-appliance");
const NODES: usize = 4;

struct Nodes(Vec<Child>, PathBuf);

impl Drop for Nodes {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
        if std::thread::panicking() {
            for i in 0..NODES {
                let log = std::fs::read_to_string(self.1.join(format!("node{i}/node.log")))
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

fn python(root: &Path) -> Option<PathBuf> {
    let python = std::env::var_os("WEB3_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join(".venv/bin/python"));
    let ok = python.exists()
        && Command::new(&python)
            .args(["-c", "import web3, eth_account, websockets"])
            .status()
            .is_ok_and(|s| s.success());
    if ok {
        return Some(python);
    }
    let why = format!(
        "web3.py peer unavailable: {} cannot import web3/eth_account (run `make peers`)",
        python.display()
    );
    if std::env::var_os("CI").is_some() {
        panic!("{why}");
    }
    eprintln!("SKIP: {why}");
    None
}

#[test]
fn web3py_drives_a_localnet() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let Some(python) = python(&root) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let offset = 4000 + (std::process::id() % 40) as u16 * 10;
    let status = Command::new(BIN)
        .args(["localnet", "--generate-only", "--block-time-ms", "1000"])
        .arg("--port-offset")
        .arg(offset.to_string())
        .arg("--data-dir")
        .arg(tmp.path())
        .status()
        .unwrap();
    assert!(status.success());
    let mut nodes = Nodes(Vec::new(), tmp.path().to_path_buf());
    for i in 0..NODES {
        let dir = tmp.path().join(format!("node{i}"));
        let log = std::fs::File::create(dir.join("node.log")).unwrap();
        nodes.0.push(
            Command::new(BIN)
                .arg("run")
                .arg("--data-dir")
                .arg(&dir)
                .env("RUST_LOG", "info")
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap(),
        );
    }
    let urls: Vec<String> = (0..NODES)
        .map(|i| format!("127.0.0.1:{}", 9500 + offset as usize + i))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    for u in &urls {
        while TcpStream::connect(u).is_err() {
            assert!(Instant::now() < deadline, "RPC {u} never opened");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    let mut cmd = Command::new(python);
    cmd.arg(root.join("appliance/tests/interop/web3_interop.py"))
        .arg("--artifact")
        .arg(root.join("contracts/build/ERC20.json"))
        .args(["--chain-id", "31415926"]);
    for u in &urls {
        cmd.arg("--rpc").arg(format!("http://{u}"));
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "web3.py interop failed (see above)");
    assert!(
        stdout.contains(" 0 failed") && !stdout.contains("FAIL"),
        "the peer reported failures"
    );
}
