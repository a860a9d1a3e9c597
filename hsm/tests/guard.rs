//! The double-sign guard: rules, persistence, damage, interchange, and races between threads
//! and between processes on one guard directory.

use accel::{PublicKey, SecretKey};
use hsm::guard::INTERCHANGE_FORMAT;
use hsm::{
    Decision, Guard, GuardError, GuardedSigner, Interchange, LocalSigner, MsgKind, SignRequest,
    Signer,
};
use std::sync::atomic::Ordering;
use std::sync::Arc;

fn keys(n: u8) -> Vec<SecretKey> {
    (1..=n)
        .map(|i| SecretKey::from_ikm(&[i; 32]).unwrap())
        .collect()
}

fn pks(n: u8) -> Vec<PublicKey> {
    keys(n).iter().map(SecretKey::public_key).collect()
}

fn req(number: u64, view: u64, h: u8) -> SignRequest {
    SignRequest {
        kind: MsgKind::Prepare,
        chain_id: 7,
        shard: 0,
        number,
        view,
        hash: [h; 32],
    }
}

#[test]
fn rules_repeat_conflict_below() {
    let dir = tempfile::tempdir().unwrap();
    let g = Guard::open(dir.path()).unwrap();
    let k = pks(2);
    g.register(&k).unwrap();
    assert_eq!(
        g.check_and_record(&k, &req(5, 0, 1)).unwrap(),
        Decision::Recorded
    );
    assert_eq!(
        g.check_and_record(&k, &req(5, 0, 1)).unwrap(),
        Decision::Repeat
    );
    let e = g.check_and_record(&k, &req(5, 0, 2)).unwrap_err();
    assert!(matches!(e, GuardError::Conflict { .. }), "{e}");
    assert!(e.to_string().contains("double-sign refused"), "{e}");
    // Another chain id at the same slot is another payload: refused too.
    let other_chain = SignRequest {
        chain_id: 8,
        ..req(5, 0, 1)
    };
    assert!(matches!(
        g.check_and_record(&k, &other_chain),
        Err(GuardError::Conflict { .. })
    ));
    let e = g.check_and_record(&k, &req(4, 9, 1)).unwrap_err();
    assert!(matches!(e, GuardError::BelowWatermark { .. }), "{e}");
    // Same number, higher view: allowed (view change); then the lower view is below.
    assert_eq!(
        g.check_and_record(&k, &req(5, 1, 3)).unwrap(),
        Decision::Recorded
    );
    assert!(matches!(
        g.check_and_record(&k, &req(5, 0, 1)),
        Err(GuardError::BelowWatermark { .. })
    ));
    // Other kinds and shards have their own watermarks.
    let commit = SignRequest {
        kind: MsgKind::Commit,
        ..req(5, 0, 1)
    };
    assert_eq!(g.check_and_record(&k, &commit).unwrap(), Decision::Recorded);
    let shard1 = SignRequest {
        shard: 1,
        ..req(1, 0, 1)
    };
    assert_eq!(g.check_and_record(&k, &shard1).unwrap(), Decision::Recorded);
    let s = g.stats();
    assert_eq!(s.conflicts.load(Ordering::Relaxed), 2);
    assert_eq!(s.below_watermark.load(Ordering::Relaxed), 2);
    assert_eq!(s.records.load(Ordering::Relaxed), 4);
    assert_eq!(s.repeats.load(Ordering::Relaxed), 1);
    // One key already past the slot refuses the whole message, for all keys.
    let k3 = pks(3);
    g.register(&k3).unwrap();
    assert!(g.check_and_record(&k3, &req(5, 1, 9)).is_err());
    // Unknown key.
    let stranger = SecretKey::from_ikm(&[99; 32]).unwrap().public_key();
    assert!(matches!(
        g.check_and_record(&[stranger], &req(9, 0, 1)),
        Err(GuardError::NoHistory(_))
    ));
}

#[test]
fn one_record_per_message_for_all_keys() {
    let dir = tempfile::tempdir().unwrap();
    let g = Guard::open(dir.path()).unwrap();
    let k = pks(8);
    g.register(&k).unwrap();
    let before = std::fs::metadata(dir.path().join("guard.log"))
        .unwrap()
        .len();
    g.check_and_record(&k, &req(1, 0, 1)).unwrap();
    let after = std::fs::metadata(dir.path().join("guard.log"))
        .unwrap()
        .len();
    // 4 length + 64 header + 2 per key + 8 checksum.
    assert_eq!(after - before, 4 + 64 + 2 * 8 + 8);
    assert_eq!(g.stats().records.load(Ordering::Relaxed), 1);
}

#[test]
fn survives_reopen_and_cuts_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let k = pks(1);
    {
        let g = Guard::open(dir.path()).unwrap();
        g.register(&k).unwrap();
        g.check_and_record(&k, &req(10, 2, 1)).unwrap();
    }
    let log = dir.path().join("guard.log");
    let good_len = std::fs::metadata(&log).unwrap().len();
    // A crash inside write(): half a record at the end.
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    f.write_all(&[0, 0, 0, 70, 2, 1, 0]).unwrap();
    drop(f);
    let g = Guard::open(dir.path()).unwrap();
    assert_eq!(std::fs::metadata(&log).unwrap().len(), good_len);
    assert!(matches!(
        g.check_and_record(&k, &req(10, 2, 2)),
        Err(GuardError::Conflict { .. })
    ));
    assert!(matches!(
        g.check_and_record(&k, &req(9, 0, 1)),
        Err(GuardError::BelowWatermark { .. })
    ));
    assert_eq!(
        g.check_and_record(&k, &req(10, 2, 1)).unwrap(),
        Decision::Repeat
    );
}

#[test]
fn damage_in_the_middle_stops_the_guard() {
    let dir = tempfile::tempdir().unwrap();
    let k = pks(1);
    {
        let g = Guard::open(dir.path()).unwrap();
        g.register(&k).unwrap();
        g.check_and_record(&k, &req(1, 0, 1)).unwrap();
        g.check_and_record(&k, &req(2, 0, 1)).unwrap();
    }
    let log = dir.path().join("guard.log");
    let mut bytes = std::fs::read(&log).unwrap();
    bytes[70] ^= 0xff; // inside the first sign record
    std::fs::write(&log, &bytes).unwrap();
    let e = Guard::open(dir.path()).unwrap_err();
    assert!(matches!(e, GuardError::Corrupt { .. }), "{e}");
    assert!(e.to_string().contains("import-guard"), "{e}");
}

#[test]
fn interchange_roundtrip_and_import_only_raises() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let k = pks(2);
    let ga = Guard::open(a.path()).unwrap();
    ga.register(&k).unwrap();
    ga.check_and_record(&k, &req(20, 1, 1)).unwrap();
    ga.check_and_record(
        &k,
        &SignRequest {
            kind: MsgKind::Commit,
            ..req(19, 0, 4)
        },
    )
    .unwrap();
    let json = ga.export().unwrap().to_json();
    let ic = Interchange::from_json(&json).unwrap();
    assert_eq!(ic.format, INTERCHANGE_FORMAT);
    assert_eq!(ic.keys.len(), 2);
    assert_eq!(ic.keys[0].watermarks.len(), 2);

    let gb = Guard::open(b.path()).unwrap();
    gb.register(&k[..1]).unwrap();
    gb.check_and_record(&k[..1], &req(30, 0, 1)).unwrap();
    gb.import(&ic).unwrap();
    // Key 0 keeps its higher prepare watermark (30), key 1 gets 20/1 from the import.
    assert!(gb.check_and_record(&k[..1], &req(25, 0, 1)).is_err());
    assert!(matches!(
        gb.check_and_record(&k[1..], &req(20, 1, 2)),
        Err(GuardError::Conflict { .. })
    ));
    assert_eq!(
        gb.check_and_record(&k[1..], &req(20, 1, 1)).unwrap(),
        Decision::Repeat
    );
    assert!(gb.has_history(&k[1]).unwrap());
    assert_eq!(
        gb.export().unwrap(),
        Guard::open(b.path()).unwrap().export().unwrap()
    );
    for (text, want) in [
        ("{}", "missing field"),
        (&json.replace(INTERCHANGE_FORMAT, "eip-3076"), "eip-3076"),
        (&json.replace("\"prepare\"", "\"vote\""), "vote"),
    ] {
        let e = Interchange::from_json(text)
            .and_then(|ic| gb.import(&ic))
            .unwrap_err();
        assert!(e.to_string().contains(want), "{e}");
    }
}

#[test]
fn signer_without_history_is_refused_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let g = Arc::new(Guard::open(dir.path()).unwrap());
    let mk = || Box::new(LocalSigner::new(keys(2))) as Box<dyn Signer>;
    let e = GuardedSigner::new(mk(), g.clone(), false).unwrap_err();
    assert!(e.to_string().contains("--allow-new-guard-history"), "{e}");
    GuardedSigner::new(mk(), g.clone(), true).unwrap();
    GuardedSigner::new(mk(), g, false).unwrap();
}

/// A refusal reaches the caller as the guard's own error, so it can tell a conflict (alert)
/// from a slot below the watermark.
#[test]
fn guarded_signer_keeps_the_guard_error_whole() {
    let dir = tempfile::tempdir().unwrap();
    let g = Arc::new(Guard::open(dir.path()).unwrap());
    let s = GuardedSigner::new(Box::new(LocalSigner::new(keys(2))), g, true).unwrap();
    s.sign(&req(5, 2, 1)).unwrap();
    assert!(matches!(
        s.sign(&req(5, 2, 9)),
        Err(hsm::SignError::Refused(GuardError::Conflict {
            number: 5,
            view: 2,
            ..
        }))
    ));
    assert!(matches!(
        s.sign(&req(5, 1, 1)),
        Err(hsm::SignError::Refused(GuardError::BelowWatermark {
            w_view: 2,
            ..
        }))
    ));
}

/// Two guard instances (two open file descriptions, as in two processes) and many threads:
/// for every slot, exactly one payload wins.
#[test]
fn racing_threads_exactly_one_wins() {
    let dir = tempfile::tempdir().unwrap();
    let k = pks(1);
    let g1 = Arc::new(Guard::open(dir.path()).unwrap());
    g1.register(&k).unwrap();
    let g2 = Arc::new(Guard::open(dir.path()).unwrap());
    let slots = 30u64;
    let wins = Arc::new(std::sync::Mutex::new(Vec::new()));
    std::thread::scope(|s| {
        for t in 0..4u8 {
            let g = if t % 2 == 0 { g1.clone() } else { g2.clone() };
            let k = k.clone();
            let wins = wins.clone();
            s.spawn(move || {
                for n in 1..=slots {
                    if g.check_and_record(&k, &req(n, 0, t + 1)).is_ok() {
                        wins.lock().unwrap().push((n, t));
                    }
                }
            });
        }
    });
    let wins = wins.lock().unwrap();
    for n in 1..=slots {
        let w: Vec<_> = wins.iter().filter(|(m, _)| *m == n).collect();
        assert!(w.len() <= 1, "slot {n} signed with two payloads: {w:?}");
    }
    // Watermarks move up, so some slots may be skipped by everyone; most are won.
    assert!(wins.len() as u64 >= slots / 2, "{}", wins.len());
}

/// The same race between two processes: this test binary re-runs itself as the children.
#[test]
fn racing_processes_exactly_one_wins() {
    if let Ok(dir) = std::env::var("GUARD_RACE_CHILD") {
        let tag: u8 = std::env::var("GUARD_RACE_TAG").unwrap().parse().unwrap();
        let g = Guard::open(std::path::Path::new(&dir)).unwrap();
        let k = pks(1);
        let mut out = String::new();
        for n in 1..=40u64 {
            if g.check_and_record(&k, &req(n, 0, tag)).is_ok() {
                out.push_str(&format!("{n}\n"));
            }
        }
        std::fs::write(format!("{dir}/won-{tag}"), out).unwrap();
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    Guard::open(dir.path()).unwrap().register(&pks(1)).unwrap();
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = [1u8, 2]
        .iter()
        .map(|t| {
            std::process::Command::new(&exe)
                .args([
                    "--exact",
                    "racing_processes_exactly_one_wins",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env("GUARD_RACE_CHILD", dir.path())
                .env("GUARD_RACE_TAG", t.to_string())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let read = |t: u8| -> Vec<u64> {
        std::fs::read_to_string(dir.path().join(format!("won-{t}")))
            .unwrap()
            .lines()
            .map(|l| l.parse().unwrap())
            .collect()
    };
    let (a, b) = (read(1), read(2));
    for n in &a {
        assert!(!b.contains(n), "slot {n} won by both processes");
    }
    assert!(a.len() + b.len() >= 20, "{a:?} {b:?}");
    // And what both saw is what the guard holds: slot 40 belongs to its one winner.
    let g = Guard::open(dir.path()).unwrap();
    let winner = if a.contains(&40) {
        1
    } else if b.contains(&40) {
        2
    } else {
        0
    };
    if winner != 0 {
        assert_eq!(
            g.check_and_record(&pks(1), &req(40, 0, winner)).unwrap(),
            Decision::Repeat
        );
        assert!(g
            .check_and_record(&pks(1), &req(40, 0, 3 - winner))
            .is_err());
    }
}

/// The log is rewritten to its watermarks; the rules hold across the rewrite, including for
/// another open guard that still holds the old file.
#[test]
fn compaction_keeps_every_watermark() {
    let dir = tempfile::tempdir().unwrap();
    let k = pks(3);
    let old = Guard::open(dir.path()).unwrap();
    old.register(&k).unwrap();
    for n in 1..=200u64 {
        old.check_and_record(&k, &req(n, 0, 1)).unwrap();
        let c = SignRequest {
            kind: MsgKind::Commit,
            ..req(n, 0, 2)
        };
        old.check_and_record(&k[..2], &c).unwrap();
    }
    let log = dir.path().join("guard.log");
    let before = std::fs::metadata(&log).unwrap().len();
    let fresh = Guard::open_compacting_above(dir.path(), 1000).unwrap();
    let after = std::fs::metadata(&log).unwrap().len();
    assert!(after < before / 20, "{before} -> {after}");
    for g in [&fresh, &old] {
        assert!(matches!(
            g.check_and_record(&k, &req(200, 0, 9)),
            Err(GuardError::Conflict { .. })
        ));
        assert!(matches!(
            g.check_and_record(&k, &req(150, 0, 1)),
            Err(GuardError::BelowWatermark { .. })
        ));
        assert_eq!(
            g.check_and_record(&k, &req(200, 0, 1)).unwrap(),
            Decision::Repeat
        );
        let c = SignRequest {
            kind: MsgKind::Commit,
            ..req(200, 0, 3)
        };
        assert!(g.check_and_record(&k[..2], &c).is_err());
        // Key 2 never signed a commit: free.
        assert!(g.check_and_record(&k[2..], &c).is_ok());
    }
    assert_eq!(fresh.export().unwrap(), old.export().unwrap());
    // What the old handle wrote after the rewrite is seen by a third opener.
    old.check_and_record(&k, &req(201, 0, 1)).unwrap();
    let third = Guard::open(dir.path()).unwrap();
    assert!(third.check_and_record(&k, &req(201, 0, 2)).is_err());
}

#[test]
fn debug_output_never_shows_secrets() {
    let ks = keys(2);
    let secret_hex: Vec<String> = ks.iter().map(|k| hex::encode(&k.to_bytes()[..])).collect();
    let locked = hsm::LockedKeys::new(keys(2));
    let dir = tempfile::tempdir().unwrap();
    let g = Arc::new(Guard::open(dir.path()).unwrap());
    let s = GuardedSigner::new(Box::new(LocalSigner::new(keys(2))), g, true).unwrap();
    for text in [format!("{locked:?}"), format!("{s:?}")] {
        for h in &secret_hex {
            assert!(!text.contains(h.as_str()), "{text}");
        }
    }
    assert!(format!("{locked:?}").contains("redacted"));
}
