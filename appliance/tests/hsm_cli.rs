//! The key ceremony end to end, as separate processes against one long-lived MockHsm
//! (`hsm mock-connector`): setup (twice: idempotent), keys generate / list / pop /
//! export-keystore, the read-back check, refusing a MockHsm as a real device, and `run`
//! refusing keys without guard history.

use std::path::Path;
use std::process::{Command, Stdio};

mod support;

use support::{ha, BIN};

fn ok(dir: &Path, args: &[&str]) -> String {
    let o = ha(dir, args);
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        o.status.success(),
        "{args:?}: {out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    out
}

fn fails(dir: &Path, args: &[&str]) -> String {
    let o = ha(dir, args);
    assert!(!o.status.success(), "{args:?} succeeded");
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(!err.contains("panicked"), "{err}");
    err
}

fn write_private(p: &Path, text: &str) {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(p)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

#[test]
fn ceremony_against_a_mock_connector_process() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let (_mock, url) = support::mock_connector();
    let attempt = support::hsm_setup(d, &url);
    let out = String::from_utf8_lossy(&attempt.stdout).to_string();
    assert!(
        attempt.status.success(),
        "hsm setup: {out}\n{}",
        String::from_utf8_lossy(&attempt.stderr)
    );
    assert!(out.contains("HMAC sealing key generated"), "{out}");
    assert!(out.contains("validator password installed"), "{out}");
    assert!(
        out.contains("factory authentication key (0x0001): deleted"),
        "{out}"
    );
    // Idempotent, with the admin role now that the factory key is gone.
    let admin_pw = d.join("hsm-secrets/admin-password");
    let out = ok(
        d,
        &[
            "hsm",
            "setup",
            "--connector",
            &url,
            "--auth-key-id",
            "2",
            "--password-file",
            admin_pw.to_str().unwrap(),
        ],
    );
    assert!(!out.contains("created") && out.contains("kept"), "{out}");
    let err = fails(d, &["hsm", "setup", "--connector", &url]);
    assert!(err.contains("refused authentication key 1"), "{err}");

    std::fs::write(
        d.join("config.toml"),
        format!("[keys]\nbackend = \"mockhsm\"\nhsm_connector = \"{url}\"\n"),
    )
    .unwrap();
    ok(d, &["hsm", "check"]);
    let out = ok(d, &["keys", "generate", "--count", "2"]);
    assert_eq!(out.lines().count(), 2, "{out}");
    let list = ok(d, &["keys", "list"]);
    assert_eq!(
        list.lines()
            .filter(|l| l.contains("sealed under HSM"))
            .count(),
        2,
        "{list}"
    );
    assert!(list.contains("guard history present"), "{list}");
    // The transport key comes from the HSM (its Ed25519 key never leaves it).
    let tk = ok(d, &["keys", "transport"]);
    let tk = hex::decode(tk.trim().trim_start_matches("0x")).unwrap();
    assert_eq!(tk.len(), 32);
    assert_eq!(
        ok(d, &["keys", "transport"]),
        ok(d, &["keys", "transport"]),
        "stable"
    );
    let pop = ok(d, &["keys", "pop"]);
    let lines: Vec<&str> = pop.lines().collect();
    assert_eq!(lines.len(), 4, "{pop}");
    for pair in lines.chunks(2) {
        let pk = hex::decode(pair[0].trim_start_matches("public_key 0x")).unwrap();
        let pop = hex::decode(pair[1].trim_start_matches("proof_of_possession 0x")).unwrap();
        let pk = accel::PublicKey::from_bytes(&pk).unwrap();
        assert!(pk.verify_possession(&accel::Signature::from_bytes(&pop).unwrap()));
        assert!(list.contains(&hex::encode(pk.to_bytes())));
    }
    // Export to keystores readable by other tools.
    let pw = d.join("export-pw");
    write_private(&pw, "export password\n");
    let out_dir = d.join("export");
    let out = ok(
        d,
        &[
            "keys",
            "export-keystore",
            "--out",
            out_dir.to_str().unwrap(),
            "--password-file",
            pw.to_str().unwrap(),
        ],
    );
    assert_eq!(out.lines().count(), 2);
    // And import one of them into a keystore-backed node.
    let n2 = d.join("node2");
    std::fs::create_dir_all(n2.join("keys")).unwrap();
    write_private(&n2.join("keys/keystore-password"), "node2 pw");
    let ks = std::fs::read_dir(&out_dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let err = fails(
        &n2,
        &[
            "keys",
            "import",
            "--keystore",
            ks.to_str().unwrap(),
            "--password-file",
            pw.to_str().unwrap(),
        ],
    );
    assert!(
        err.contains("import-guard") && err.contains("--allow-new-guard-history"),
        "{err}"
    );
    let guard_file = d.join("guard.json");
    ok(
        d,
        &[
            "keys",
            "export-guard",
            "--out",
            guard_file.to_str().unwrap(),
        ],
    );
    let out = ok(
        &n2,
        &[
            "keys",
            "import-guard",
            "--file",
            guard_file.to_str().unwrap(),
        ],
    );
    assert!(out.contains("imported 2 keys"), "{out}");
    ok(
        &n2,
        &[
            "keys",
            "import",
            "--keystore",
            ks.to_str().unwrap(),
            "--password-file",
            pw.to_str().unwrap(),
        ],
    );
    let l2 = ok(&n2, &["keys", "list"]);
    assert!(
        l2.contains("keystore") && l2.contains("guard history present"),
        "{l2}"
    );
    // Wrong password: a clear error.
    write_private(&n2.join("keys/keystore-password"), "wrong");
    let err = fails(&n2, &["keys", "pop"]);
    assert!(err.contains("wrong password"), "{err}");

    // The same MockHsm named as a real YubiHSM 2 is refused.
    std::fs::write(
        d.join("config.toml"),
        format!("[keys]\nbackend = \"yubihsm\"\nhsm_connector = \"{url}\"\n"),
    )
    .unwrap();
    let err = fails(d, &["keys", "pop"]);
    assert!(err.contains("is a MockHsm"), "{err}");
    // Absent device.
    std::fs::write(
        d.join("config.toml"),
        "[keys]\nbackend = \"mockhsm\"\nhsm_connector = \"http://127.0.0.1:1\"\n",
    )
    .unwrap();
    let err = fails(d, &["keys", "pop"]);
    assert!(err.contains("no HSM answers"), "{err}");
}

#[test]
fn run_refuses_keys_without_guard_history() {
    let tmp = tempfile::tempdir().unwrap();
    let st = Command::new(BIN)
        .args([
            "localnet",
            "--generate-only",
            "--nodes",
            "1",
            "--port-offset",
            "640",
            "--data-dir",
        ])
        .arg(tmp.path())
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    let node = tmp.path().join("node0");
    assert!(node.join("keys/keystores").is_dir());
    assert!(node.join("guard/guard.log").is_file());
    std::fs::remove_dir_all(node.join("guard")).unwrap();
    let o = Command::new(BIN)
        .args(["run", "--data-dir"])
        .arg(&node)
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("no double-sign guard history") && err.contains("--allow-new-guard-history"),
        "{err}"
    );
    let list = ok(&node, &["keys", "list"]);
    assert!(list.contains("NO guard history"), "{list}");
}

/// Re-running localnet keeps every key, and a node directory from before keystores (plain
/// `keys/bls.json`) is moved into an EIP-2335 keystore with a guard, same key.
#[test]
fn localnet_resume_keeps_keys_and_migrates_plain_files() {
    let tmp = tempfile::tempdir().unwrap();
    let gen = || {
        let o = Command::new(BIN)
            .args([
                "localnet",
                "--generate-only",
                "--nodes",
                "1",
                "--port-offset",
                "650",
                "--data-dir",
            ])
            .arg(tmp.path())
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).to_string()
    };
    gen();
    let node = tmp.path().join("node0");
    let pop = ok(&node, &["keys", "pop"]);
    assert!(gen().contains("resuming"));
    assert_eq!(ok(&node, &["keys", "pop"]), pop);

    // Rebuild the old layout from the same secret.
    let pw = node.join("export-pw");
    write_private(&pw, "x");
    let out = node.join("export");
    ok(
        &node,
        &[
            "keys",
            "export-keystore",
            "--out",
            out.to_str().unwrap(),
            "--password-file",
            pw.to_str().unwrap(),
        ],
    );
    let f = std::fs::read_dir(&out)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let sk = hsm::Keystore::load(&f).unwrap().decrypt("x", "f").unwrap();
    hsm::LocalSigner::write_file(&node.join("keys/bls.json"), &[sk]).unwrap();
    std::fs::remove_dir_all(node.join("keys/keystores")).unwrap();
    std::fs::remove_dir_all(node.join("guard")).unwrap();
    let out = gen();
    assert!(out.contains("moved keys/bls.json"), "{out}");
    assert!(!node.join("keys/bls.json").exists());
    assert_eq!(ok(&node, &["keys", "pop"]), pop);
    assert!(ok(&node, &["keys", "list"]).contains("guard history present"));
}
