//! Ethereum interop: a real 4-node localnet driven by web3.py and eth-account (real clients),
//! through `appliance/tests/interop/web3_interop.py`: value transfers of every transaction type,
//! an ERC-20 compiled by solc (contracts/), calls, gas estimates, receipts, logs, the errors
//! wallets expect, WebSocket subscriptions, the same state on every node, and a delegation
//! through the staking precompile at 0xfc (to a validator registered here with the CLI).
//!
//! The Python peer runs from `<workspace>/.venv` (made by `make peers`, part of `make test`).

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const NODES: usize = 4;

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
    let offset = support::port_offset(4000);
    support::generate(tmp.path(), offset, &["--block-time-ms", "1000"]);
    let _nodes = support::Nodes::start(tmp.path(), NODES, "info");
    let urls: Vec<String> = (0..NODES)
        .map(|i| format!("127.0.0.1:{}", 9500 + offset as usize + i))
        .collect();
    for u in &urls {
        support::wait_port(u, Duration::from_secs(60));
    }
    // A validator to delegate to (development account 5, registered with the CLI).
    let rpc0 = format!("http://{}", urls[0]);
    let mut args = support::create_validator_args(
        "web3 target",
        &support::bls_with_pop(42),
        &format!("0x{}", "33".repeat(32)),
        "127.0.0.1:1",
        "1500",
    );
    args.extend(["--dev-account".into(), "5".into()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (_, err, ok) = support::staking(tmp.path(), &[rpc0], &args);
    assert!(ok, "create-validator: {err}");
    let mut cmd = Command::new(python);
    cmd.arg(root.join("appliance/tests/interop/web3_interop.py"))
        .arg("--artifact")
        .arg(root.join("contracts/build/ERC20.json"))
        .args(["--chain-id", "31415926"])
        .args(["--validator", "0x9965507D1a55bcC2695C58ba16FB37d819B0A4dc"]);
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
