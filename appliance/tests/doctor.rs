//! `harmony-appliance doctor` on a generated localnet node: healthy, then each check made to
//! fail the way an operator would break it, reading the advice it prints.

mod support;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use support::*;

/// A fresh 4-node localnet (not running) in a temp dir; node 0 is the one examined.
fn network(band: u16) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path(), port_offset(band), &[]);
    let node = dir.path().join("node0");
    (dir, node)
}

/// Runs doctor with `--json` (the clock is the machine's and the disk may be small here, so
/// those are left out unless named), returning the exit success and the findings.
fn doctor(node: &Path, extra: &[&str]) -> (bool, Vec<Value>) {
    let min_free: &[&str] = if extra.contains(&"--min-free-gib") {
        &[]
    } else {
        &["--min-free-gib", "0"]
    };
    let out = Command::new(BIN)
        .arg("doctor")
        .arg("--json")
        .arg("--data-dir")
        .arg(node)
        .args(["--skip", "clock", "--peer-timeout-ms", "500"])
        .args(min_free)
        .args(extra)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let findings: Vec<Value> = serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!(
            "doctor --json printed no JSON ({e}):\n{text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.success(), findings)
}

/// The `rpc.listen` address of a generated node's config.
fn rpc_listen(node: &Path) -> String {
    let cfg = std::fs::read_to_string(node.join("config.toml")).unwrap();
    cfg.split("[rpc]")
        .nth(1)
        .and_then(|s| s.lines().find(|l| l.starts_with("listen = ")))
        .map(|l| {
            l.trim_start_matches("listen = ")
                .trim_matches('"')
                .to_string()
        })
        .unwrap()
}

fn finding<'a>(findings: &'a [Value], check: &str) -> &'a Value {
    findings
        .iter()
        .find(|f| f["check"] == check)
        .unwrap_or_else(|| panic!("no finding for {check}: {findings:?}"))
}

/// Asserts `check` failed, its fix mentions `advice`, and doctor exited non-zero.
fn assert_fails(result: &(bool, Vec<Value>), check: &str, advice: &str) {
    let f = finding(&result.1, check);
    assert_eq!(f["status"], "fail", "{check}: {f}");
    let fix = f["fix"].as_str().unwrap_or_default();
    assert!(
        fix.contains(advice),
        "{check}: fix {fix:?} lacks {advice:?}"
    );
    assert!(!result.0, "doctor exited 0 with a failed check");
}

#[test]
fn a_healthy_node_passes_every_check_but_peers_that_are_not_running() {
    let (_dir, node) = network(8000);
    let (ok, findings) = doctor(&node, &["--skip", "peers"]);
    for f in &findings {
        assert!(
            f["status"] == "ok" || f["status"] == "skip",
            "unexpected finding: {f}"
        );
    }
    assert!(ok, "{findings:?}");
    assert_eq!(finding(&findings, "membership")["status"], "ok");
    // Nobody runs: the peer check dials and reaches no one.
    let r = doctor(&node, &[]);
    assert_fails(&r, "peers", "UDP");
    assert!(finding(&r.1, "peers")["detail"]
        .as_str()
        .unwrap()
        .contains("peer 1 at 127.0.0.1:"));
}

#[test]
fn a_config_with_an_unknown_field_fails() {
    let (_dir, node) = network(8010);
    let cfg = node.join("config.toml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(&cfg, format!("listen_port = 9000\n{text}")).unwrap();
    let r = doctor(&node, &["--skip", "peers"]);
    assert_fails(&r, "config", "config show");
    assert!(finding(&r.1, "config")["detail"]
        .as_str()
        .unwrap()
        .contains("listen_port"));
    // Everything that needs the config is skipped, not failed.
    assert_eq!(finding(&r.1, "keys")["status"], "skip");
}

#[test]
fn a_missing_chain_spec_fails() {
    let (dir, node) = network(8020);
    std::fs::remove_file(dir.path().join("chain-spec.toml")).unwrap();
    assert_fails(
        &doctor(&node, &["--skip", "peers"]),
        "chain-spec",
        "chain spec",
    );
}

#[test]
fn a_damaged_database_fails() {
    let (_dir, node) = network(8030);
    std::fs::create_dir_all(node.join("db")).unwrap();
    std::fs::write(node.join("db/mdbx.dat"), vec![0x5a; 64 << 10]).unwrap();
    assert_fails(&doctor(&node, &["--skip", "peers"]), "database", "backup");
}

#[test]
fn a_wrong_keystore_password_fails() {
    let (_dir, node) = network(8040);
    std::fs::write(node.join("keys/keystore-password"), "not the password\n").unwrap();
    let r = doctor(&node, &["--skip", "peers"]);
    assert_fails(&r, "keys", "keystore password");
    assert_eq!(finding(&r.1, "guard")["status"], "skip");
}

#[test]
fn keys_without_their_guard_history_fail() {
    let (_dir, node) = network(8050);
    std::fs::remove_dir_all(node.join("guard")).unwrap();
    std::fs::create_dir(node.join("guard")).unwrap();
    assert_fails(
        &doctor(&node, &["--skip", "peers"]),
        "guard",
        "import-guard",
    );
}

#[test]
fn another_validators_bls_keys_fail_membership() {
    let (dir, node) = network(8060);
    let other = dir.path().join("node1/keys");
    let pw = "keystore-password";
    std::fs::copy(other.join(pw), node.join("keys").join(pw)).unwrap();
    std::fs::remove_dir_all(node.join("keys/keystores")).unwrap();
    std::fs::create_dir(node.join("keys/keystores")).unwrap();
    for e in std::fs::read_dir(other.join("keystores")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), node.join("keys/keystores").join(e.file_name())).unwrap();
    }
    let r = doctor(&node, &["--skip", "peers"]);
    assert_fails(&r, "membership", "keys list");
}

#[test]
fn a_port_in_use_fails() {
    let (_dir, node) = network(8070);
    let rpc = rpc_listen(&node);
    let _held = std::net::TcpListener::bind(&rpc).unwrap();
    let r = doctor(&node, &["--skip", "peers"]);
    assert_fails(&r, "ports", "ss -lntup");
    assert!(finding(&r.1, "ports")["detail"]
        .as_str()
        .unwrap()
        .contains(&rpc));
}

#[test]
fn too_little_disk_fails() {
    let (_dir, node) = network(8080);
    // More free space than any disk has.
    let r = doctor(&node, &["--skip", "peers", "--min-free-gib", "100000000"]);
    assert_fails(&r, "disk", "full disk");
}

#[test]
fn an_unknown_check_name_is_refused() {
    let out = Command::new(BIN)
        .args(["doctor", "--skip", "dns"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no such check") && err.contains("peers"),
        "{err}"
    );
}

#[test]
fn a_running_node_is_examined_without_taking_its_database_or_ports() {
    let (dir, node) = network(8090);
    let mut nodes = Nodes::start(dir.path(), 2, "warn");
    let rpc = rpc_listen(&node);
    wait_port(&rpc, std::time::Duration::from_secs(60));
    // Give the two nodes a moment to connect.
    std::thread::sleep(std::time::Duration::from_secs(3));
    let (ok, findings) = doctor(&node, &[]);
    assert!(
        finding(&findings, "database")["detail"]
            .as_str()
            .unwrap()
            .contains("held by a running node"),
        "{findings:?}"
    );
    assert_eq!(finding(&findings, "ports")["status"], "ok", "{findings:?}");
    assert_eq!(finding(&findings, "guard")["status"], "ok", "{findings:?}");
    let peers = finding(&findings, "peers");
    assert_eq!(peers["status"], "ok", "{peers}");
    assert!(peers["detail"].as_str().unwrap().contains("running node"));
    assert!(ok, "{findings:?}");

    // `status --once` renders the same node from its RPC.
    let out = Command::new(BIN)
        .args(["status", "--once", "--rpc", &format!("http://{rpc}")])
        .output()
        .unwrap();
    let screen = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{screen}");
    // Two of four nodes hold no quorum: height 0, node 0 leading or waiting in its view.
    for want in ["finalized #0", "this node: ", "peers 1 connected"] {
        assert!(screen.contains(want), "missing {want:?}:\n{screen}");
    }
    assert!(!screen.contains("observer"), "{screen}");
    nodes.kill(0);
    nodes.kill(1);
}

#[test]
fn status_once_on_a_node_that_does_not_answer_says_so_and_fails() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = Command::new(BIN)
        .args([
            "status",
            "--once",
            "--rpc",
            &format!("http://127.0.0.1:{port}"),
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("The node does not answer"));
    assert!(String::from_utf8_lossy(&out.stderr).contains("rpc.enabled"));
}

/// Without a terminal (a pipe, a service, CI) the live screen is refused with the way out, not
/// a panic from the terminal library; a missing chain spec is reported once, with the fix.
#[test]
fn a_stranger_without_a_terminal_or_a_chain_spec_gets_errors_that_say_what_to_do() {
    let out = Command::new(BIN)
        .args(["status", "--rpc", "http://127.0.0.1:9"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("status --once") && !err.contains("panicked"),
        "{err}"
    );

    let empty = tempfile::tempdir().unwrap();
    let out = ha(empty.path(), &["run"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("chain-spec.toml") && err.contains("--generate-only"),
        "{err}"
    );
    assert_eq!(
        err.matches("No such file or directory").count(),
        1,
        "the cause once: {err}"
    );
}
