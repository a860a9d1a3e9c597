//! `log.format = "journald"`: events reach the journal's socket as native-protocol datagrams
//! with structured fields. The test stands in for journald at its fixed socket path when no
//! journald holds it (CI, containers); on a machine with a running journal it says why it
//! does not run.

mod support;

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::*;

const SOCKET: &str = "/run/systemd/journal/socket";

#[test]
fn node_events_reach_the_journal_with_structured_fields() {
    if Path::new(SOCKET).exists() {
        println!(
            "SKIPPED: a journald holds {SOCKET}; check `journalctl -t harmony-appliance` by hand"
        );
        return;
    }
    let dir = Path::new(SOCKET).parent().unwrap();
    if std::fs::create_dir_all(dir).is_err() {
        println!("SKIPPED: cannot create {} (not root)", dir.display());
        return;
    }
    let journal = UnixDatagram::bind(SOCKET).unwrap();
    struct Remove;
    impl Drop for Remove {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(SOCKET);
        }
    }
    let _remove = Remove;
    journal
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();

    let net = tempfile::tempdir().unwrap();
    generate(net.path(), port_offset(8600), &[]);
    let _node = Kill(
        Command::new(BIN)
            .args(["--log-format", "journald", "run", "--data-dir"])
            .arg(net.path().join("node0"))
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = Vec::new();
    let mut buf = vec![0u8; 64 << 10];
    while Instant::now() < deadline {
        let Ok(n) = journal.recv(&mut buf) else {
            continue;
        };
        let entry = parse(&buf[..n]);
        let get = |k: &str| {
            entry
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        if get("MESSAGE").is_some_and(|m| m.starts_with("starting from tip")) {
            assert_eq!(get("PRIORITY"), Some("5"), "{entry:?}");
            assert_eq!(
                get("SYSLOG_IDENTIFIER"),
                Some("harmony-appliance"),
                "{entry:?}"
            );
            assert_eq!(get("TARGET"), Some("node"), "{entry:?}");
            assert_eq!(get("F_NUMBER"), Some("0"), "{entry:?}");
            assert!(
                get("F_HASH").is_some_and(|h| h.starts_with("0x")),
                "{entry:?}"
            );
            assert!(get("CODE_FILE").is_some(), "{entry:?}");
            return;
        }
        seen.push(format!("{entry:?}"));
    }
    panic!(
        "no 'starting from tip' entry within 30 s; got:\n{}",
        seen.join("\n---\n")
    );
}

/// Fields of one native-protocol entry: `KEY=value\n`, or `KEY\n`, a 64-bit little-endian
/// length, the value and `\n` (binary-safe form).
fn parse(mut b: &[u8]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    while !b.is_empty() {
        let line_end = b.iter().position(|&c| c == b'\n').unwrap_or(b.len());
        let line = &b[..line_end];
        if let Some(eq) = line.iter().position(|&c| c == b'=') {
            out.push((
                String::from_utf8_lossy(&line[..eq]).into(),
                String::from_utf8_lossy(&line[eq + 1..]).into(),
            ));
            b = &b[(line_end + 1).min(b.len())..];
        } else {
            let rest = &b[line_end + 1..];
            let len = u64::from_le_bytes(rest[..8].try_into().unwrap()) as usize;
            out.push((
                String::from_utf8_lossy(line).into(),
                String::from_utf8_lossy(&rest[8..8 + len]).into(),
            ));
            b = &rest[(8 + len + 1).min(rest.len())..];
        }
    }
    out
}
