//! One signer test suite, run against every backend: EIP-2335 keystores, the local dev file,
//! MockHsm over the yubihsm-connector HTTP protocol, and a real YubiHSM 2 over USB when one is
//! plugged in (skipped with a printed reason otherwise). Plus the HSM-specific bad inputs and
//! the capability read-back.

use accel::SecretKey;
use hsm::keystore::Kdf;
use hsm::yubi::{self, Profile, SealedKey};
use hsm::{
    payload, Decision, Guard, GuardedSigner, Keystore, KeystoreSigner, LocalSigner, MsgKind,
    SignRequest, Signer,
};
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn keys(n: u8) -> Vec<SecretKey> {
    (1..=n)
        .map(|i| SecretKey::from_ikm(&[i; 32]).unwrap())
        .collect()
}

fn req(number: u64, view: u64, h: u8) -> SignRequest {
    SignRequest {
        kind: MsgKind::Prepare,
        chain_id: 31,
        shard: 0,
        number,
        view,
        hash: [h; 32],
    }
}

/// The suite: `make(guard_dir)` builds a fresh signer of the backend over that guard.
fn suite(name: &str, make: &dyn Fn(&Path) -> Box<dyn Signer>) {
    let dir = tempfile::tempdir().unwrap();
    let gdir = dir.path().join("guard");
    let guarded =
        |allow: bool| GuardedSigner::new(make(&gdir), Arc::new(Guard::open(&gdir).unwrap()), allow);
    // No history: refused until allowed.
    let e = guarded(false).err().unwrap().to_string();
    assert!(e.contains("no double-sign guard history"), "{name}: {e}");
    let s = guarded(true).unwrap();
    let pks = s.public_keys().to_vec();
    assert!(!pks.is_empty(), "{name}");

    // Every key signs; the signatures verify over the frozen payload.
    let (sigs, d) = s.sign_decided(&req(1, 0, 1)).unwrap();
    assert_eq!(d, Decision::Recorded, "{name}");
    assert_eq!(sigs.len(), pks.len(), "{name}");
    for (sig, pk) in sigs.iter().zip(&pks) {
        assert!(sig.verify(pk, &payload(&req(1, 0, 1))), "{name}");
    }
    // Identical: answered again, same bytes.
    let (again, d) = s.sign_decided(&req(1, 0, 1)).unwrap();
    assert_eq!(d, Decision::Repeat, "{name}");
    assert_eq!(
        again.iter().map(|s| s.to_bytes()).collect::<Vec<_>>(),
        sigs.iter().map(|s| s.to_bytes()).collect::<Vec<_>>(),
        "{name}"
    );
    // Conflict and below watermark: refused, counted.
    let e = s.sign(&req(1, 0, 2)).err().unwrap().to_string();
    assert!(e.contains("double-sign refused"), "{name}: {e}");
    s.sign(&req(5, 3, 1)).unwrap();
    let e = s.sign(&req(5, 2, 1)).err().unwrap().to_string();
    assert!(e.contains("below"), "{name}: {e}");
    let st = s.stats();
    assert_eq!(st.refused(), 2, "{name}");
    drop(s);

    // A new signer (a restart) over the same guard still refuses.
    let s = guarded(false).unwrap();
    assert!(s.sign(&req(5, 3, 9)).is_err(), "{name}");
    assert!(s.sign(&req(5, 3, 1)).is_ok(), "{name}");

    // Two signers racing on one guard: exactly one of two conflicting requests wins.
    let s2 = guarded(false).unwrap();
    for n in 10..30u64 {
        let (a, b) = std::thread::scope(|sc| {
            let ha = sc.spawn(|| s.sign(&req(n, 0, 1)).is_ok());
            let hb = sc.spawn(|| s2.sign(&req(n, 0, 2)).is_ok());
            (ha.join().unwrap(), hb.join().unwrap())
        });
        assert!(a ^ b, "{name}: slot {n}: a={a} b={b}");
    }
}

#[test]
fn suite_keystore() {
    let dir = tempfile::tempdir().unwrap();
    let mut files: Vec<PathBuf> = Vec::new();
    for (i, k) in keys(3).iter().enumerate() {
        let p = dir.path().join(format!("k{i}.json"));
        Keystore::encrypt(k, "pw", Kdf::Pbkdf2 { c: 100 }, "")
            .write(&p)
            .unwrap();
        files.push(p);
    }
    suite("keystore", &|_| {
        Box::new(KeystoreSigner::open(&files, "pw").unwrap())
    });
}

#[test]
fn suite_local_file() {
    suite("local", &|_| Box::new(LocalSigner::new(keys(2))));
}

/// A MockHsm served over HTTP on a free port, in a background thread (the same server the
/// `harmony-appliance hsm mock-connector` process runs).
fn mock_connector() -> String {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        yubi::serve_mock("127.0.0.1", port, || tx.send(()).unwrap()).unwrap();
    });
    rx.recv().unwrap();
    format!("http://127.0.0.1:{port}")
}

struct Provisioned {
    url: String,
    secrets: tempfile::TempDir,
    validator_pw: String,
}

fn provision(profile: &Profile) -> Provisioned {
    let url = mock_connector();
    let secrets = tempfile::tempdir().unwrap();
    let c = yubi::open(&url, 1, b"password").unwrap();
    let done = yubi::setup(&c, profile, secrets.path(), None, false).unwrap();
    assert!(
        done.iter()
            .any(|l| l.contains("HMAC sealing key generated")),
        "{done:?}"
    );
    let validator_pw = std::fs::read_to_string(secrets.path().join("validator-password")).unwrap();
    Provisioned {
        url,
        secrets,
        validator_pw,
    }
}

#[test]
fn suite_mockhsm_connector() {
    let profile = Profile::default_profile();
    let p = provision(&profile);
    let client = Arc::new(yubi::open(&p.url, 4, p.validator_pw.as_bytes()).unwrap());
    assert!(yubi::is_mock(&client).unwrap());
    yubi::check_device(&client, &profile, 4).unwrap();
    let sealed_dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for (i, k) in keys(3).iter().enumerate() {
        let f = sealed_dir.path().join(format!("bls-{i}.sealed.json"));
        SealedKey::seal(&client, profile.hmac_key.id, k)
            .unwrap()
            .write(&f)
            .unwrap();
        // The sealed file holds no secret in the clear.
        let text = std::fs::read_to_string(&f).unwrap();
        assert!(!text.contains(&hex::encode(&k.to_bytes()[..])));
        files.push(f);
    }
    assert_eq!(yubi::sealed_files(sealed_dir.path()).unwrap(), files);
    suite("mockhsm", &|_| {
        Box::new(yubi::HsmSigner::open(client.clone(), &files).unwrap())
    });

    // The health probe (`harmony_signer_up`) is an echo through the open session.
    let probed = yubi::HsmSigner::open(client.clone(), &files).unwrap();
    hsm::Signer::probe(&probed).unwrap();

    // The transport key signs through the HSM and verifies with its public key.
    let t = yubi::HsmEd25519Key::open(client.clone(), profile.transport_key.id).unwrap();
    let sig = t.sign(b"hello").unwrap();
    ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, t.public_key())
        .verify(b"hello", &sig)
        .unwrap();
    use rustls::sign::SigningKey;
    assert!(t.public_key().len() == 32 && SigningKey::public_key(&t).is_some());
    let op = yubi::operator_public_key(&client, profile.operator_key.id).unwrap();
    assert_eq!(op.len(), 65);

    // Setup again: idempotent, everything kept.
    let admin_pw = std::fs::read_to_string(p.secrets.path().join("admin-password")).unwrap();
    let admin = yubi::open(&p.url, 2, admin_pw.as_bytes()).unwrap();
    let again = yubi::setup(&admin, &profile, p.secrets.path(), None, false).unwrap();
    assert!(again.iter().all(|l| l.contains("kept")), "{again:?}");
    // The factory key is gone.
    assert!(yubi::open(&p.url, 1, b"password").is_err());
}

/// A TCP relay in front of the connector that can be cut (listener and open connections) and
/// restored on the same port: the HSM "unplugged" and "plugged back".
struct Relay {
    port: u16,
    up: Arc<std::sync::atomic::AtomicBool>,
}

impl Relay {
    fn start(upstream: &str) -> Self {
        let upstream = upstream.trim_start_matches("http://").to_string();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(std::sync::atomic::AtomicBool::new(true));
        Self::serve(listener, upstream, up.clone());
        Self { port, up }
    }

    fn serve(
        listener: std::net::TcpListener,
        upstream: String,
        up: Arc<std::sync::atomic::AtomicBool>,
    ) {
        use std::sync::atomic::Ordering::SeqCst;
        listener.set_nonblocking(true).unwrap();
        std::thread::spawn(move || {
            let mut open: Vec<std::net::TcpStream> = Vec::new();
            while up.load(SeqCst) {
                match listener.accept() {
                    Ok((client, _)) => {
                        client.set_nonblocking(false).unwrap();
                        let server = std::net::TcpStream::connect(&upstream).unwrap();
                        for (mut from, mut to) in [
                            (client.try_clone().unwrap(), server.try_clone().unwrap()),
                            (server.try_clone().unwrap(), client.try_clone().unwrap()),
                        ] {
                            std::thread::spawn(move || {
                                let _ = std::io::copy(&mut from, &mut to);
                                let _ = to.shutdown(std::net::Shutdown::Both);
                            });
                        }
                        open.extend([client, server]);
                    }
                    Err(_) => std::thread::sleep(std::time::Duration::from_millis(5)),
                }
            }
            for c in open {
                let _ = c.shutdown(std::net::Shutdown::Both);
            }
        });
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn cut(&self) {
        self.up.store(false, std::sync::atomic::Ordering::SeqCst);
        // Until the accept loop has seen the flag and dropped the listener.
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    fn restore(&mut self, upstream: &str) {
        let listener = std::net::TcpListener::bind(("127.0.0.1", self.port)).unwrap();
        self.up = Arc::new(std::sync::atomic::AtomicBool::new(true));
        Self::serve(
            listener,
            upstream.trim_start_matches("http://").to_string(),
            self.up.clone(),
        );
    }
}

/// The health probe behind `harmony_signer_up`: it fails with a backend error, saying the HSM
/// is unreachable, while the connector is gone, and succeeds again once it is back (the client
/// reconnects on its own).
#[test]
fn probe_reports_an_unreachable_hsm_and_recovers() {
    let profile = Profile::default_profile();
    let p = provision(&profile);
    let mut relay = Relay::start(&p.url);
    let client = Arc::new(yubi::open(&relay.url(), 4, p.validator_pw.as_bytes()).unwrap());
    let sealed_dir = tempfile::tempdir().unwrap();
    let file = sealed_dir.path().join("bls-0.sealed.json");
    SealedKey::seal(&client, profile.hmac_key.id, &keys(1)[0])
        .unwrap()
        .write(&file)
        .unwrap();
    let signer = yubi::HsmSigner::open(client, &[file]).unwrap();
    hsm::Signer::probe(&signer).unwrap();

    relay.cut();
    match hsm::Signer::probe(&signer) {
        Err(hsm::SignError::Backend(m)) => assert!(m.contains("HSM unreachable"), "{m}"),
        other => panic!("a probe with the HSM gone must fail as a backend error: {other:?}"),
    }

    relay.restore(&p.url);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        match hsm::Signer::probe(&signer) {
            Ok(()) => break,
            Err(e) if std::time::Instant::now() < deadline => {
                eprintln!("probe while reconnecting: {e}");
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
            Err(e) => panic!("the probe did not recover after the HSM came back: {e}"),
        }
    }
}

#[test]
fn mockhsm_bad_inputs_are_clear_errors() {
    let profile = Profile::default_profile();
    let p = provision(&profile);
    // Wrong password.
    let e = yubi::open(&p.url, 4, b"nope").err().unwrap().to_string();
    assert!(e.contains("refused authentication key 4"), "{e}");
    // No HSM there.
    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let e = yubi::open(&format!("http://127.0.0.1:{free}"), 4, b"x")
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("no HSM answers") && e.contains("mock-connector"),
        "{e}"
    );
    let e = yubi::connector("tcp://x").err().unwrap().to_string();
    assert!(e.contains("http://host:port"), "{e}");

    let client = yubi::open(&p.url, 4, p.validator_pw.as_bytes()).unwrap();
    let sk = SecretKey::from_ikm(&[5; 32]).unwrap();
    let sealed = SealedKey::seal(&client, profile.hmac_key.id, &sk).unwrap();
    assert_eq!(
        sealed.unseal(&client, "k").unwrap().to_bytes()[..],
        sk.to_bytes()[..]
    );
    // Altered sealed file.
    let mut bad = sealed.clone();
    let mut ct = hex::decode(&bad.ciphertext).unwrap();
    ct[3] ^= 1;
    bad.ciphertext = hex::encode(ct);
    let e = bad
        .unseal(&client, "k.sealed.json")
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("does not open") && e.contains("k.sealed.json"),
        "{e}"
    );
    let mut bad = sealed.clone();
    bad.nonce = "zz".into();
    assert!(bad
        .unseal(&client, "k")
        .err()
        .unwrap()
        .to_string()
        .contains("damaged"));
    // Another device cannot open it (its HMAC key differs): the file is useless without the HSM.
    let other = provision(&profile);
    let c2 = yubi::open(&other.url, 4, other.validator_pw.as_bytes()).unwrap();
    let e = sealed.unseal(&c2, "k").err().unwrap().to_string();
    assert!(e.contains("another device"), "{e}");
    // Garbage file.
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("x.sealed.json");
    std::fs::write(&f, "{").unwrap();
    assert!(SealedKey::load(&f)
        .err()
        .unwrap()
        .to_string()
        .contains("damaged"));
    // Profiles: unknown capability, missing role, exportable transport key.
    for (from, to, want) in [
        (
            "\"sign-eddsa\"]\n\n[wrap_key]",
            "\"sign-everything\"]\n\n[wrap_key]",
            "not a YubiHSM capability",
        ),
        (
            "name = \"auditor\"",
            "name = \"watcher\"",
            "no `auditor` role",
        ),
        (
            "capabilities = [\"sign-eddsa\"]\n",
            "capabilities = [\"sign-eddsa\", \"exportable-under-wrap\"]\n",
            "never leave",
        ),
    ] {
        let text = yubi::DEFAULT_PROFILE.replacen(from, to, 1);
        assert_ne!(text, yubi::DEFAULT_PROFILE, "{from}");
        let e = Profile::parse(&text, "p.toml").err().unwrap().to_string();
        assert!(e.contains(want) && e.contains("p.toml"), "{e}");
    }
}

/// MockHsm enforces no capability, so a device set up looser than the profile must be caught
/// by reading the objects back.
#[test]
fn looser_device_is_refused_by_read_back() {
    let strict = Profile::default_profile();
    let loose_text = yubi::DEFAULT_PROFILE.replacen(
        "id = 32\ncapabilities = [\"sign-hmac\", \"exportable-under-wrap\"]",
        "id = 32\ncapabilities = [\"sign-hmac\", \"exportable-under-wrap\", \"export-wrapped\"]",
        1,
    );
    assert_ne!(loose_text, yubi::DEFAULT_PROFILE);
    let loose = Profile::parse(&loose_text, "loose").unwrap();
    let p = provision(&loose);
    let c = yubi::open(&p.url, 4, p.validator_pw.as_bytes()).unwrap();
    yubi::check_device(&c, &loose, 4).unwrap();
    let e = yubi::check_device(&c, &strict, 4)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("looser than profile") && e.contains("EXPORT_WRAPPED"),
        "{e}"
    );
    // Wrong auth key for the validator role.
    let e = yubi::check_device(&c, &strict, 3)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("hsm_auth_key_id = 4"), "{e}");
    // A device holding objects the profile does not name is not touched without --force.
    let admin_pw = std::fs::read_to_string(p.secrets.path().join("admin-password")).unwrap();
    let admin = yubi::open(&p.url, 2, admin_pw.as_bytes()).unwrap();
    admin
        .generate_hmac_key(
            0x99,
            "stranger".into(),
            yubihsm::Domain::DOM1,
            yubihsm::Capability::SIGN_HMAC,
            yubihsm::hmac::Algorithm::Sha256,
        )
        .unwrap();
    let e = yubi::setup(&admin, &strict, p.secrets.path(), None, false)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("--force"), "{e}");
}

/// A real YubiHSM 2: over USB, or through yubihsm-connector when `HARMONY_TEST_HSM_CONNECTOR`
/// is set (e.g. `http://127.0.0.1:12345`). Runs only where a device answers with the factory
/// credentials (or `HARMONY_TEST_HSM_AUTH_KEY` / `HARMONY_TEST_HSM_PASSWORD`); it reads and
/// checks, and never provisions or deletes anything. Prints why it skips otherwise.
#[test]
fn yubihsm2_hardware() {
    let connector = std::env::var("HARMONY_TEST_HSM_CONNECTOR").unwrap_or_else(|_| "usb".into());
    let pw = std::env::var("HARMONY_TEST_HSM_PASSWORD").unwrap_or_else(|_| "password".into());
    let id: u16 = std::env::var("HARMONY_TEST_HSM_AUTH_KEY")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let c = match yubi::open(&connector, id, pw.as_bytes()) {
        Err(e) => {
            eprintln!("SKIPPED yubihsm2_hardware: no usable YubiHSM 2 at `{connector}`: {e}");
            return;
        }
        Ok(c) => c,
    };
    assert!(!yubi::is_mock(&c).unwrap(), "{connector} is a MockHsm");
    let info = c.device_info().unwrap();
    eprintln!(
        "YubiHSM 2 serial {} firmware {}.{}",
        info.serial_number, info.major_version, info.minor_version
    );
    let profile = Profile::default_profile();
    match yubi::check_device(&c, &profile, id) {
        Ok(()) => {
            // Provisioned with the default profile: the sealing round trip works on hardware.
            let sk = SecretKey::from_ikm(&[8; 32]).unwrap();
            let sealed = SealedKey::seal(&c, profile.hmac_key.id, &sk).unwrap();
            assert_eq!(
                sealed.unseal(&c, "hw").unwrap().to_bytes()[..],
                sk.to_bytes()[..]
            );
            let t = yubi::HsmEd25519Key::open(Arc::new(c), profile.transport_key.id).unwrap();
            let sig = t.sign(b"hw").unwrap();
            ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, t.public_key())
                .verify(b"hw", &sig)
                .unwrap();
        }
        Err(e) => eprintln!(
            "device not provisioned with the default profile ({e}); checked reachability only"
        ),
    }
}

/// The documented backup: a second device set up with the same wrap key receives the HMAC
/// sealing key wrapped under it, and opens the sealed files of the first.
#[test]
fn backup_to_a_second_device_under_the_wrap_key() {
    let profile = Profile::default_profile();
    let a = provision(&profile);
    let wrap_hex = std::fs::read_to_string(a.secrets.path().join("wrap-key.hex")).unwrap();
    // Device B: same profile, the wrap key from A's ceremony.
    let b_url = mock_connector();
    let b_secrets = tempfile::tempdir().unwrap();
    let c = yubi::open(&b_url, 1, b"password").unwrap();
    let done = yubi::setup(&c, &profile, b_secrets.path(), Some(&wrap_hex), false).unwrap();
    assert!(!b_secrets.path().join("wrap-key.hex").exists(), "{done:?}");
    let admin = |url: &str, dir: &Path| {
        let pw = std::fs::read_to_string(dir.join("admin-password")).unwrap();
        yubi::open(url, 2, pw.as_bytes()).unwrap()
    };
    let (admin_a, admin_b) = (
        admin(&a.url, a.secrets.path()),
        admin(&b_url, b_secrets.path()),
    );
    // B generated its own HMAC key at setup; replace it with A's.
    admin_b
        .delete_object(profile.hmac_key.id, yubihsm::object::Type::HmacKey)
        .unwrap();
    let wrapped = admin_a
        .export_wrapped(
            profile.wrap_key.id,
            yubihsm::object::Type::HmacKey,
            profile.hmac_key.id,
        )
        .unwrap();
    admin_b
        .import_wrapped(profile.wrap_key.id, wrapped)
        .unwrap();

    let va = yubi::open(&a.url, 4, a.validator_pw.as_bytes()).unwrap();
    let b_pw = std::fs::read_to_string(b_secrets.path().join("validator-password")).unwrap();
    let vb = yubi::open(&b_url, 4, b_pw.as_bytes()).unwrap();
    yubi::check_device(&vb, &profile, 4).unwrap();
    let sk = SecretKey::from_ikm(&[42; 32]).unwrap();
    let sealed = SealedKey::seal(&va, profile.hmac_key.id, &sk).unwrap();
    assert_eq!(
        sealed.unseal(&vb, "k").unwrap().to_bytes()[..],
        sk.to_bytes()[..]
    );
    // The transport key is not exportable: its export is refused.
    assert!(admin_a
        .export_wrapped(
            profile.wrap_key.id,
            yubihsm::object::Type::AsymmetricKey,
            profile.transport_key.id
        )
        .is_err());
}
