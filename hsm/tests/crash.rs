//! kill -9 at random moments and at failpoints inside the durable write: after every restart a
//! conflicting payload for the last released slot is refused, and no two different payloads
//! were ever released for one slot.
//!
//! The test binary re-runs itself as the signing child (env `GUARD_CRASH_CHILD`). Each child
//! incarnation signs a *different* hash than the previous one for the same slots and starts a
//! few slots below the last one released, so a guard that lost a record would release a
//! conflicting signature and the parent would see it.

use accel::SecretKey;
use hsm::guard::Failpoint;
use hsm::{Guard, GuardedSigner, LocalSigner, MsgKind, SignRequest, Signer};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn req(number: u64, inc: u32) -> SignRequest {
    let mut hash = [0u8; 32];
    hash[..4].copy_from_slice(&inc.to_be_bytes());
    SignRequest {
        kind: MsgKind::Commit,
        chain_id: 5,
        shard: 0,
        number,
        view: 0,
        hash,
    }
}

fn signer_keys() -> Vec<SecretKey> {
    vec![
        SecretKey::from_ikm(&[1; 32]).unwrap(),
        SecretKey::from_ikm(&[2; 32]).unwrap(),
    ]
}

fn child(dir: &str) {
    let inc: u32 = std::env::var("CRASH_INC").unwrap().parse().unwrap();
    let start: u64 = std::env::var("CRASH_START").unwrap().parse().unwrap();
    let mut guard = Guard::open(std::path::Path::new(dir)).unwrap();
    if let Ok(fp) = std::env::var("CRASH_FAILPOINT") {
        let (name, count) = fp.split_once(':').unwrap();
        let target = match name {
            "write" => Failpoint::AfterWrite,
            "filesync" => Failpoint::AfterFileSync,
            "dirsync" => Failpoint::AfterDirSync,
            _ => Failpoint::BeforeReturn,
        };
        let left: u32 = count.parse().unwrap();
        let left = std::sync::Mutex::new(left.max(1));
        guard.set_failpoint_hook(move |p| {
            if p == target {
                let mut l = left.lock().unwrap();
                *l -= 1;
                if *l == 0 {
                    // SAFETY: signalling ourselves.
                    unsafe {
                        libc::kill(libc::getpid(), libc::SIGKILL);
                    }
                }
            }
        });
    }
    let signer = GuardedSigner::new(
        Box::new(LocalSigner::new(signer_keys())),
        Arc::new(guard),
        true,
    )
    .unwrap();
    let mut out = std::io::stdout().lock();
    let mut n = start;
    loop {
        if let Ok(sigs) = signer.sign(&req(n, inc)) {
            assert_eq!(sigs.len(), 2);
            // Released: the parent sees it only after the signer returned.
            writeln!(out, "{n} {inc}").unwrap();
            out.flush().unwrap();
        }
        n += 1;
    }
}

#[test]
fn kill_nine_never_releases_a_conflicting_signature() {
    if let Ok(dir) = std::env::var("GUARD_CRASH_CHILD") {
        child(&dir);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut released: HashMap<u64, u32> = HashMap::new();
    let mut last: u64 = 0;
    let mut kills = 0;
    let mut rng_state: u64 = 0x9e37_79b9_7f4a_7c15 ^ std::process::id() as u64;
    let mut rand = move |m: u64| {
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 7;
        rng_state ^= rng_state << 17;
        rng_state % m
    };
    let started = Instant::now();
    let failpoints = ["write", "filesync", "dirsync", "return"];
    let rounds = 140u32;
    for inc in 1..=rounds {
        let mut cmd = std::process::Command::new(&exe);
        cmd.args([
            "--exact",
            "kill_nine_never_releases_a_conflicting_signature",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("GUARD_CRASH_CHILD", dir.path())
        .env("CRASH_INC", inc.to_string())
        .env("CRASH_START", last.saturating_sub(2).max(1).to_string())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
        let by_failpoint = inc % 2 == 0;
        if by_failpoint {
            let fp = failpoints[(inc as usize / 2) % 4];
            cmd.env("CRASH_FAILPOINT", format!("{fp}:{}", 1 + rand(6)));
        }
        let mut c = cmd.spawn().unwrap();
        if !by_failpoint {
            std::thread::sleep(Duration::from_millis(5 + rand(40)));
            c.kill().unwrap(); // SIGKILL
        }
        let mut text = String::new();
        c.stdout.take().unwrap().read_to_string(&mut text).unwrap();
        let status = c.wait().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            status.signal(),
            Some(libc::SIGKILL),
            "child {inc} ended with {status}"
        );
        kills += 1;
        for line in text.lines() {
            // Other lines are the test harness talking.
            let Some((n, i)) = line.split_once(' ') else {
                continue;
            };
            let (Ok(n), Ok(i)) = (n.parse::<u64>(), i.parse::<u32>()) else {
                continue;
            };
            if let Some(prev) = released.insert(n, i) {
                assert_eq!(
                    prev, i,
                    "slot {n} released with two payloads (incarnations {prev} and {i})"
                );
            }
            last = last.max(n);
        }
        // After the restart: a conflicting payload in the last released slot is refused.
        if last > 0 {
            let g = Guard::open(dir.path()).unwrap();
            let pks: Vec<_> = signer_keys().iter().map(SecretKey::public_key).collect();
            let e = g.check_and_record(&pks, &req(last, 1_000_000 + inc));
            assert!(
                e.is_err(),
                "conflicting request for slot {last} was allowed after kill {kills}"
            );
            let winner = released[&last];
            // The released payload is answered again, unless the child recorded a later slot
            // before it died (then it is below the watermark), but never a conflict.
            let again = g.check_and_record(&pks, &req(last, winner));
            assert!(
                !matches!(again, Err(hsm::GuardError::Conflict { .. })),
                "the released payload for slot {last} is seen as a conflict: {again:?}"
            );
        }
    }
    assert!(kills >= 100);
    assert!(
        released.len() > 100,
        "too little signing happened: {}",
        released.len()
    );
    // Every incarnation after the first tried slots a previous one had signed.
    eprintln!(
        "{kills} kills, {} slots released, {:.1} s",
        released.len(),
        started.elapsed().as_secs_f64()
    );
}
