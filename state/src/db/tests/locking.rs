//! One process, one opener: a second open is refused in this process and in another;
//! readers and a writer run concurrently.

use super::*;

#[test]
fn second_open_in_this_process_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = ChainStore::open(dir.path()).unwrap();
    let err = ChainStore::open(dir.path()).unwrap_err();
    assert!(matches!(err, DbError::InUse { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains(&format!(
            "data dir {} is in use by another harmony-appliance process",
            dir.path().display()
        )),
        "{msg}"
    );
    drop(store);
    ChainStore::open(dir.path()).unwrap();
}

const HOLD_ENV: &str = "HARMONY_STATE_TEST_HOLD_DB";

/// Helper run as a child process by `second_process_is_refused`: opens the store named by
/// `HOLD_ENV`, says so, and holds it until its stdin closes.
#[test]
#[ignore = "child process of second_process_is_refused"]
fn hold_store_child() {
    let Some(path) = std::env::var_os(HOLD_ENV) else {
        return;
    };
    let _store = ChainStore::open(Path::new(&path)).unwrap();
    println!("HOLDING");
    use std::io::Write;
    std::io::stdout().flush().unwrap();
    let mut sink = String::new();
    let _ = std::io::Read::read_to_string(&mut std::io::stdin(), &mut sink);
}

#[test]
fn second_process_is_refused() {
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "db::tests::locking::hold_store_child",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(HOLD_ENV, dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut held = false;
    let mut lines = stdout.lines();
    for line in lines.by_ref() {
        if line.unwrap().contains("HOLDING") {
            held = true;
            break;
        }
    }
    assert!(held, "the child process did not open the store");
    let err = ChainStore::open(dir.path()).unwrap_err();
    assert!(matches!(err, DbError::InUse { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("is in use by another harmony-appliance process"),
        "{err}"
    );
    drop(child.stdin.take());
    for _ in lines {}
    assert!(child.wait().unwrap().success());
    // Released when the child exits.
    ChainStore::open(dir.path()).unwrap();
}

#[test]
fn concurrent_readers_and_writer() {
    let dir = tempfile::tempdir().unwrap();
    let blocks = chain(40);
    let store = std::sync::Arc::new(store_with(dir.path(), &blocks[..1]));
    std::thread::scope(|s| {
        for _ in 0..3 {
            let store = store.clone();
            let blocks = &blocks;
            s.spawn(move || loop {
                let Some((n, h)) = store.tip().unwrap() else {
                    continue;
                };
                assert_eq!(h, blocks[n as usize].hash());
                assert_eq!(store.block(n).unwrap().as_ref(), Some(&blocks[n as usize]));
                if n == 40 {
                    break;
                }
            });
        }
        for b in &blocks[1..] {
            store.insert_block(b, Some(&cert_for(b, 3))).unwrap();
        }
    });
}
