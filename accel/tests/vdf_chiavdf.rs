//! Interop with chiavdf (PyPI), the reference VDF, in both directions, on random challenges:
//! the same discriminant, byte-identical `prove` output, and each side's verifier accepting the
//! other's proofs (and refusing a wrong iteration count).
//!
//! The peer runs from `<workspace>/.venv` (made by `make peers`, part of `make test`). Without
//! it the test prints why it skips, except under CI (`CI` set), where it fails.

use accel::vdf::{self, Discriminant, Form, Proof};
use rand::{Rng, RngCore};
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

struct Peer {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Peer {
    fn start() -> Option<Self> {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        let python = std::env::var_os("ACCEL_PYTHON")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join(".venv/bin/python"));
        let script = root.join("accel/tests/chiavdf_peer.py");
        let ok = python.exists()
            && Command::new(&python)
                .args(["-c", "import chiavdf"])
                .status()
                .is_ok_and(|s| s.success());
        if !ok {
            let why = format!(
                "chiavdf peer unavailable: {} cannot import chiavdf (run `make peers`)",
                python.display()
            );
            if std::env::var_os("CI").is_some() {
                panic!("{why}");
            }
            writeln!(std::io::stderr(), "SKIP: {why}").ok();
            return None;
        }
        let mut child = Command::new(python)
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the chiavdf peer");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        // A peer that hangs must fail the test, not stall CI: kill it after two minutes (the
        // whole exchange takes about a second), which ends its output and fails `ask`.
        let pid = child.id();
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_secs(120));
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        });
        Some(Self {
            child,
            stdin,
            stdout,
        })
    }

    fn ask(&mut self, req: String) -> String {
        writeln!(self.stdin, "{req}").unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        assert!(
            !line.is_empty(),
            "chiavdf peer died or hung (killed after 120 s) on {req}"
        );
        line.trim().to_string()
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn unquote(s: &str) -> String {
    s.trim_matches('"').to_string()
}

#[test]
fn interop_with_chiavdf_both_ways() {
    let Some(mut peer) = Peer::start() else {
        return;
    };
    let mut rng = rand::thread_rng();
    let mut log = std::io::stderr();
    // chiavdf's `create_discriminant` never returns for some very short seeds (seen with 1-byte
    // seeds at 1024 bits and 0x50 at 256 bits), so the peer gets seeds of 8 to 32 bytes at the
    // sizes chiavdf is used with; our side's other sizes are covered by the unit tests.
    for (case, bits) in [512usize, 1024, 1024, 1024, 512].into_iter().enumerate() {
        let mut seed = vec![0u8; rng.gen_range(8..=32)];
        rng.fill_bytes(&mut seed);
        let iters: u64 = rng.gen_range(265..3000);
        let seed_hex = hex::encode(&seed);
        writeln!(
            log,
            "case {case}: seed {seed_hex}, {bits} bits, {iters} iterations"
        )
        .ok();

        // Same discriminant.
        let theirs = unquote(&peer.ask(format!(
            r#"{{"op":"disc","seed":"{seed_hex}","bits":{bits}}}"#
        )));
        let d = Discriminant::from_seed(&seed, bits).unwrap();
        let ours = format!("-0x{:x}", rug::Integer::from(-d.value()));
        assert_eq!(ours, theirs, "discriminant, seed {seed_hex}");

        // Byte-identical prove output.
        let x = Form::generator(&d);
        let proof = vdf::prove(&d, &x, iters).unwrap();
        let ours = hex::encode(proof.to_bytes(&d).unwrap());
        let theirs = unquote(&peer.ask(format!(
            r#"{{"op":"prove","seed":"{seed_hex}","bits":{bits},"iters":{iters}}}"#
        )));
        assert_eq!(ours, theirs, "prove output, seed {seed_hex}");

        // chiavdf verifies our proof, and refuses it for another iteration count.
        let verify = |peer: &mut Peer, proof: &str, iters: u64| {
            peer.ask(format!(
                r#"{{"op":"verify","seed":"{seed_hex}","bits":{bits},"iters":{iters},"proof":"{proof}"}}"#
            ))
        };
        assert_eq!(verify(&mut peer, &ours, iters), "true");
        assert_eq!(verify(&mut peer, &ours, iters + 1), "false");

        // We verify chiavdf's proof (parsed from its bytes), and refuse tampering.
        let p = Proof::from_bytes(&hex::decode(&theirs).unwrap(), &d).unwrap();
        assert!(vdf::verify(&d, &x, &p.y, &p.pi, iters).unwrap());
        assert!(!vdf::verify(&d, &x, &p.y, &p.pi, iters - 1).unwrap());
        assert!(!vdf::verify(&d, &x, &p.pi, &p.y, iters).unwrap());
    }
}
