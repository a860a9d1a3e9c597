//! `harmony-appliance keys ...`: BLS keys of this node, wherever they live, and the signer
//! that `run` builds from the `[keys]` config (always behind the double-sign guard).
// libc: core dumps off and memory locked while secrets are in memory.
#![allow(unsafe_code)]

use super::Cli;
use crate::config::{resolve, KeysConfig, NodeConfig};
use crate::net::TransportIdentity;
use accel::SecretKey;
use clap::{Args, Subcommand};
use eyre::{bail, eyre, WrapErr};
use hsm::keystore::{keystore_files, read_password_file, Kdf};
use hsm::yubi::{self, HsmEd25519Key, Profile, SealedKey};
use hsm::{Guard, GuardedSigner, Interchange, Keystore, LocalSigner, Signer};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use zeroize::Zeroizing;

#[derive(Debug, Subcommand)]
pub enum KeysCmd {
    /// Generate new BLS keys in this node's backend (keystore or HSM-sealed).
    Generate(GenerateArgs),
    /// Import an EIP-2335 keystore into this node's backend.
    Import(ImportArgs),
    /// List each BLS public key and where it lives.
    List,
    /// Write this node's BLS keys as EIP-2335 keystores (a backup, or to move them).
    ExportKeystore(ExportArgs),
    /// Print each BLS public key with its proof of possession (for registering the key).
    Pop,
    /// Print the node's transport (QUIC identity) Ed25519 public key, from its PKCS#8 file or
    /// from the HSM (for `staking create-validator --transport-key`).
    Transport,
    /// Write the double-sign guard history as an interchange JSON file.
    ExportGuard {
        #[arg(long)]
        out: PathBuf,
    },
    /// Merge a guard interchange file (from the machine the keys come from).
    ImportGuard {
        #[arg(long)]
        file: PathBuf,
    },
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// How many keys.
    #[arg(long, default_value_t = 1)]
    pub count: usize,
    /// Key derivation of new keystores: scrypt or pbkdf2.
    #[arg(long, default_value = "scrypt")]
    pub kdf: String,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    #[arg(long)]
    pub keystore: PathBuf,
    /// File holding the keystore's password (mode 0600).
    #[arg(long)]
    pub password_file: PathBuf,
    /// Start an empty guard history for the key: only for a key that never signed anywhere.
    /// Otherwise import its history with `keys import-guard`.
    #[arg(long)]
    pub allow_new_guard_history: bool,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Directory to write keystores into.
    #[arg(long)]
    pub out: PathBuf,
    /// Password for the written keystores (mode 0600 file); defaults to the node's.
    #[arg(long)]
    pub password_file: Option<PathBuf>,
}

fn load_cfg(cli: &Cli) -> eyre::Result<(PathBuf, NodeConfig)> {
    let data_dir = cli.data_dir.clone().unwrap_or_else(|| PathBuf::from("."));
    let cfg = NodeConfig::load(super::config_path(cli, &data_dir).as_deref())?;
    Ok((data_dir, cfg))
}

pub fn run(cli: &Cli, cmd: &KeysCmd) -> eyre::Result<()> {
    no_core_dumps();
    let (dir, cfg) = load_cfg(cli)?;
    let k = &cfg.keys;
    match cmd {
        KeysCmd::Generate(a) => {
            if a.count == 0 || a.count > 106 {
                bail!("--count must be between 1 and 106");
            }
            let kdf = match a.kdf.as_str() {
                "scrypt" => Kdf::SCRYPT_DEFAULT,
                "pbkdf2" => Kdf::PBKDF2_DEFAULT,
                o => bail!("--kdf `{o}` is not scrypt or pbkdf2"),
            };
            let keys: Vec<SecretKey> = (0..a.count)
                .map(|_| new_key())
                .collect::<eyre::Result<_>>()?;
            let stored = store_keys(&dir, k, &keys, kdf)?;
            let guard = open_guard(&dir, k)?;
            let pks: Vec<_> = keys.iter().map(SecretKey::public_key).collect();
            guard.register(&pks)?;
            for (pk, p) in pks.iter().zip(stored) {
                println!("0x{}  {}", hex::encode(pk.to_bytes()), p.display());
            }
        }
        KeysCmd::Import(a) => {
            let pw = read_password_file(&a.password_file).map_err(|e| eyre!(e))?;
            let ks = Keystore::load(&a.keystore)?;
            let sk = ks.decrypt(&pw, &a.keystore.display().to_string())?;
            let pk = sk.public_key();
            let guard = open_guard(&dir, k)?;
            if !guard.has_history(&pk)? {
                if !a.allow_new_guard_history {
                    bail!(
                        "key 0x{} has no guard history on this node. Import its history first \
                         (`keys import-guard --file <interchange.json>` from the old machine), or \
                         pass --allow-new-guard-history if it has never signed anywhere",
                        hex::encode(pk.to_bytes())
                    );
                }
                guard.register(std::slice::from_ref(&pk))?;
            }
            let stored = store_keys(&dir, k, std::slice::from_ref(&sk), Kdf::SCRYPT_DEFAULT)?;
            println!("0x{}  {}", hex::encode(pk.to_bytes()), stored[0].display());
        }
        KeysCmd::List => {
            let guard = open_guard(&dir, k)?;
            for (pk, place) in list_keys(&dir, k)? {
                let hist = match accel::PublicKey::from_bytes(&pk) {
                    Ok(p) if guard.has_history(&p)? => "guard history present",
                    _ => "NO guard history",
                };
                println!("0x{}  {place}  ({hist})", hex::encode(pk));
            }
        }
        KeysCmd::ExportKeystore(a) => {
            let pw = match &a.password_file {
                Some(p) => read_password_file(p).map_err(|e| eyre!(e))?,
                None => keystore_password(&dir, k)?,
            };
            std::fs::create_dir_all(&a.out)?;
            for sk in secret_keys(&dir, k)? {
                let pk = hex::encode(sk.public_key().to_bytes());
                let path = a.out.join(format!("keystore-{}.json", &pk[..16]));
                Keystore::encrypt(&sk, &pw, Kdf::SCRYPT_DEFAULT, "").write(&path)?;
                println!("0x{pk}  {}", path.display());
            }
        }
        KeysCmd::Transport => {
            let identity = if is_hsm(k) {
                let (client, profile) = hsm_client(&dir, k)?;
                let key = HsmEd25519Key::open(client, profile.transport_key.id)?;
                TransportIdentity::from_signing_key(Arc::new(key))?
            } else {
                let path = resolve(&dir, &k.transport_key_file);
                TransportIdentity::from_pkcs8_file(&path)
                    .wrap_err_with(|| format!("transport key {}", path.display()))?
            };
            println!("0x{}", hex::encode(identity.public_key()));
        }
        KeysCmd::Pop => {
            for sk in secret_keys(&dir, k)? {
                println!(
                    "public_key 0x{}\nproof_of_possession 0x{}",
                    hex::encode(sk.public_key().to_bytes()),
                    hex::encode(sk.prove_possession().to_bytes())
                );
            }
        }
        KeysCmd::ExportGuard { out } => {
            let guard = open_guard(&dir, k)?;
            hsm::keystore::write_private(out, guard.export()?.to_json().as_bytes())
                .wrap_err_with(|| format!("writing {}", out.display()))?;
            println!("guard history written to {}", out.display());
        }
        KeysCmd::ImportGuard { file } => {
            let text = std::fs::read_to_string(file)
                .wrap_err_with(|| format!("reading {}", file.display()))?;
            let ic = Interchange::from_json(&text)?;
            let raised = open_guard(&dir, k)?.import(&ic)?;
            println!(
                "imported {} keys, {raised} watermarks raised",
                ic.keys.len()
            );
        }
    }
    Ok(())
}

/// Secrets pass through this process: keep them out of core files.
pub(crate) fn no_core_dumps() {
    let zero = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: setrlimit reads a valid, initialized struct; failure leaves the limit as is.
    unsafe {
        libc::setrlimit(libc::RLIMIT_CORE, &zero);
    }
}

fn new_key() -> eyre::Result<SecretKey> {
    use rand::RngCore;
    let mut ikm = Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng.fill_bytes(&mut ikm[..]);
    Ok(SecretKey::from_ikm(&ikm[..])?)
}

pub fn open_guard(dir: &Path, k: &KeysConfig) -> eyre::Result<Guard> {
    Ok(Guard::open(&resolve(dir, &k.guard_dir))?)
}

/// A secret from systemd credentials (`$CREDENTIALS_DIRECTORY/<name>`) or else `file`.
fn secret_from(name: &str, file: &Path) -> eyre::Result<Zeroizing<String>> {
    if let Some(cd) = std::env::var_os("CREDENTIALS_DIRECTORY") {
        let p = Path::new(&cd).join(name);
        if p.exists() {
            let t = Zeroizing::new(std::fs::read_to_string(&p)?);
            return Ok(Zeroizing::new(t.trim_end_matches(['\n', '\r']).to_string()));
        }
    }
    read_password_file(file).map_err(|e| {
        eyre!(
            "{e}; put the password in that file (mode 0600, owned by the service user) or \
             pass it as the systemd credential `{name}`"
        )
    })
}

fn keystore_password(dir: &Path, k: &KeysConfig) -> eyre::Result<Zeroizing<String>> {
    secret_from("keystore-password", &resolve(dir, &k.password_file))
}

fn hsm_client(dir: &Path, k: &KeysConfig) -> eyre::Result<(Arc<yubi::Client>, Profile)> {
    let pw = secret_from("hsm-password", &resolve(dir, &k.hsm_password_file))?;
    let client = yubi::open(&k.hsm_connector, k.hsm_auth_key_id, pw.as_bytes())?;
    let mock = yubi::is_mock(&client)?;
    if mock && k.backend != "mockhsm" {
        bail!(
            "the device at {} is a MockHsm, not a YubiHSM 2; refusing it for backend `{}` \
             (set keys.backend = \"mockhsm\" only on development networks)",
            k.hsm_connector,
            k.backend
        );
    }
    let profile = if k.hsm_profile.as_os_str().is_empty() {
        Profile::default_profile()
    } else {
        Profile::load(&resolve(dir, &k.hsm_profile))?
    };
    yubi::check_device(&client, &profile, k.hsm_auth_key_id)?;
    Ok((Arc::new(client), profile))
}

fn is_hsm(k: &KeysConfig) -> bool {
    matches!(k.backend.as_str(), "yubihsm" | "mockhsm")
}

/// Stores new secrets in the configured backend; returns where each went.
pub fn store_keys(
    dir: &Path,
    k: &KeysConfig,
    keys: &[SecretKey],
    kdf: Kdf,
) -> eyre::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    if is_hsm(k) {
        let (client, profile) = hsm_client(dir, k)?;
        let sd = resolve(dir, &k.sealed_dir);
        create_private_dir(&sd)?;
        for sk in keys {
            let pk = hex::encode(sk.public_key().to_bytes());
            let p = sd.join(format!("bls-{}.sealed.json", &pk[..16]));
            SealedKey::seal(&client, profile.hmac_key.id, sk)?.write(&p)?;
            out.push(p);
        }
    } else if k.backend == "keystore" {
        let pw = keystore_password(dir, k)?;
        let kd = resolve(dir, &k.keystore_dir);
        create_private_dir(&kd)?;
        for sk in keys {
            let pk = hex::encode(sk.public_key().to_bytes());
            let p = kd.join(format!("keystore-{}.json", &pk[..16]));
            Keystore::encrypt(sk, &pw, kdf, "").write(&p)?;
            out.push(p);
        }
    } else {
        bail!("keys.backend `local` is a fixed development file; use the keystore backend");
    }
    Ok(out)
}

fn create_private_dir(d: &Path) -> eyre::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if !d.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(d)
            .wrap_err_with(|| format!("creating {}", d.display()))?;
    }
    Ok(())
}

/// Public keys and where they live, without unlocking anything.
fn list_keys(dir: &Path, k: &KeysConfig) -> eyre::Result<Vec<(Vec<u8>, String)>> {
    let mut v = Vec::new();
    match k.backend.as_str() {
        "keystore" => {
            for p in keystore_files(&resolve(dir, &k.keystore_dir)).map_err(|e| eyre!(e))? {
                let ks = Keystore::load(&p)?;
                v.push((
                    hex::decode(ks.pubkey.trim_start_matches("0x"))?,
                    format!("keystore {}", p.display()),
                ));
            }
        }
        "local" => {
            let s = LocalSigner::from_file(&resolve(dir, &k.bls_key_file))?;
            for pk in s.public_keys() {
                v.push((
                    pk.to_bytes().to_vec(),
                    format!("plain file {}", k.bls_key_file.display()),
                ));
            }
        }
        _ => {
            for p in yubi::sealed_files(&resolve(dir, &k.sealed_dir))? {
                let s = SealedKey::load(&p)?;
                v.push((
                    hex::decode(s.public_key.trim_start_matches("0x"))?,
                    format!(
                        "sealed under HSM key 0x{:04x} ({}) in {}",
                        s.hmac_key_id,
                        k.hsm_connector,
                        p.display()
                    ),
                ));
            }
        }
    }
    Ok(v)
}

/// The secrets themselves (for `pop` and `export-keystore`); zeroized when dropped.
fn secret_keys(dir: &Path, k: &KeysConfig) -> eyre::Result<Vec<SecretKey>> {
    let mut v = Vec::new();
    match k.backend.as_str() {
        "keystore" => {
            let pw = keystore_password(dir, k)?;
            for p in keystore_files(&resolve(dir, &k.keystore_dir)).map_err(|e| eyre!(e))? {
                v.push(Keystore::load(&p)?.decrypt(&pw, &p.display().to_string())?);
            }
        }
        "local" => {
            let text = std::fs::read_to_string(resolve(dir, &k.bls_key_file))?;
            let f: hsm::LocalKeyFile = serde_json::from_str(&text)?;
            for h in f.bls_secret_keys {
                let b = Zeroizing::new(hex::decode(h.trim_start_matches("0x"))?);
                v.push(SecretKey::from_bytes(&b)?);
            }
        }
        _ => {
            let (client, _) = hsm_client(dir, k)?;
            for p in yubi::sealed_files(&resolve(dir, &k.sealed_dir))? {
                v.push(SealedKey::load(&p)?.unseal(&client, &p.display().to_string())?);
            }
        }
    }
    if v.is_empty() {
        bail!("this node holds no BLS key; create one with `harmony-appliance keys generate`");
    }
    Ok(v)
}

/// What `run` signs with.
pub struct NodeSigner {
    pub signer: Arc<GuardedSigner>,
    /// The transport identity when the HSM holds it; `None` means the PKCS#8 file.
    pub transport: Option<TransportIdentity>,
}

/// The node's keystore keys **without** the double-sign guard, for the test-only
/// double-signing mode (`consensus.double_sign_for_tests`); `run` allows it on localnet only.
pub fn unguarded_keystore_signer(dir: &Path, k: &KeysConfig) -> eyre::Result<Arc<dyn Signer>> {
    if k.backend != "keystore" {
        bail!(
            "consensus.double_sign_for_tests needs keys.backend = \"keystore\", not `{}`",
            k.backend
        );
    }
    let pw = keystore_password(dir, k)?;
    let files = keystore_files(&resolve(dir, &k.keystore_dir)).map_err(|e| eyre!(e))?;
    Ok(Arc::new(hsm::KeystoreSigner::open(&files, &pw)?))
}

/// Builds the configured backend behind the double-sign guard. A key without guard history
/// is refused unless `allow_new_guard_history`.
pub fn node_signer(
    dir: &Path,
    k: &KeysConfig,
    allow_new_guard_history: bool,
) -> eyre::Result<NodeSigner> {
    let (inner, transport) = open_backend(dir, k)?;
    let guard = Arc::new(open_guard(dir, k)?);
    let signer = GuardedSigner::new(inner, guard, allow_new_guard_history)?;
    Ok(NodeSigner {
        signer: Arc::new(signer),
        transport,
    })
}

/// The configured key backend without its guard: keystores decrypted, or the HSM session
/// open with its BLS keys unsealed and its transport key (then returned) found.
pub fn open_backend(
    dir: &Path,
    k: &KeysConfig,
) -> eyre::Result<(Box<dyn Signer>, Option<TransportIdentity>)> {
    Ok(match k.backend.as_str() {
        "keystore" => {
            let pw = keystore_password(dir, k)?;
            let files = keystore_files(&resolve(dir, &k.keystore_dir)).map_err(|e| eyre!(e))?;
            let s = hsm::KeystoreSigner::open(&files, &pw)?;
            if !s.memory_locked() {
                tracing::warn!(target: "signer", "could not mlock the BLS keys (raise LimitMEMLOCK); they may be swapped out");
            }
            (Box::new(s), None)
        }
        "local" => (
            Box::new(LocalSigner::from_file(&resolve(dir, &k.bls_key_file))?),
            None,
        ),
        _ => {
            let (client, profile) = hsm_client(dir, k)?;
            let files = yubi::sealed_files(&resolve(dir, &k.sealed_dir))?;
            let s = yubi::HsmSigner::open(client.clone(), &files)?;
            let key = HsmEd25519Key::open(client, profile.transport_key.id)?;
            let transport = TransportIdentity::from_signing_key(Arc::new(key))?;
            (Box::new(s), Some(transport))
        }
    })
}

// ---------------------------------------------------------------------------------------------
// localnet: per-node keys in the chosen backend, guard history started at generation.

/// Port of node `i`'s MockHsm connector on a localnet.
fn localnet_mock_port(i: usize, offset: u16) -> u16 {
    12400 + offset + i as u16
}

/// Writes node `i`'s keys (BLS key `sk` in `signer`'s backend, transport key), registers the
/// BLS key with a fresh guard, and sets `cfg.keys`. Returns the transport public key.
pub fn localnet_generate_node_keys(
    node_dir: &Path,
    cfg: &mut NodeConfig,
    sk: &SecretKey,
    signer: &str,
    i: usize,
    offset: u16,
) -> eyre::Result<[u8; 32]> {
    let transport = if signer == "mockhsm" {
        let port = localnet_mock_port(i, offset);
        start_mock(node_dir, port)?;
        cfg.keys.backend = "mockhsm".into();
        cfg.keys.hsm_connector = format!("http://127.0.0.1:{port}");
        let client = yubi::open(&cfg.keys.hsm_connector, 1, b"password")?;
        let profile = Profile::default_profile();
        let secrets = node_dir.join("hsm-secrets");
        yubi::setup(&client, &profile, &secrets, None, false)?;
        let dest = resolve(node_dir, &cfg.keys.hsm_password_file);
        let pw = Zeroizing::new(std::fs::read(secrets.join("validator-password"))?);
        hsm::keystore::write_private(&dest, &pw)?;
        let (client, profile) = hsm_client(node_dir, &cfg.keys)?;
        store_keys(
            node_dir,
            &cfg.keys,
            std::slice::from_ref(sk),
            Kdf::PBKDF2_DEFAULT,
        )?;
        HsmEd25519Key::open(client, profile.transport_key.id)?.public_key()
    } else {
        let pw_path = resolve(node_dir, &cfg.keys.password_file);
        let mut pw = Zeroizing::new([0u8; 24]);
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut pw[..]);
        hsm::keystore::write_private(&pw_path, hex::encode(&pw[..]).as_bytes())?;
        // PBKDF2 at the EIP's 262144 iterations: a fraction of a second per node start.
        store_keys(
            node_dir,
            &cfg.keys,
            std::slice::from_ref(sk),
            Kdf::PBKDF2_DEFAULT,
        )?;
        let (identity, der) = TransportIdentity::generate();
        TransportIdentity::write_pkcs8_file(resolve(node_dir, &cfg.keys.transport_key_file), &der)?;
        identity.public_key()
    };
    open_guard(node_dir, &cfg.keys)?.register(&[sk.public_key()])?;
    Ok(transport)
}

/// Before a localnet restart: node dirs from before keystores (plain `bls.json`) move their
/// key into a keystore and start a guard; MockHsm nodes need their connector still running.
pub fn localnet_resume_node(node_dir: &Path, i: usize, offset: u16) -> eyre::Result<()> {
    let cfg_path = node_dir.join("config.toml");
    let mut cfg = NodeConfig::load(Some(&cfg_path))?;
    let k = &cfg.keys;
    if k.backend == "mockhsm" {
        let pw = secret_from("hsm-password", &resolve(node_dir, &k.hsm_password_file))?;
        if yubi::open(&k.hsm_connector, k.hsm_auth_key_id, pw.as_bytes()).is_err() {
            bail!(
                "node{i}'s MockHsm at {} is gone (MockHsm keeps no state, so the keys sealed \
                 under it are lost); start over with `localnet --reset --signer mockhsm`",
                k.hsm_connector
            );
        }
        let _ = offset;
        return Ok(());
    }
    let kd = resolve(node_dir, &k.keystore_dir);
    let old = resolve(node_dir, &k.bls_key_file);
    if k.backend == "keystore" && !kd.exists() && old.exists() {
        let text = Zeroizing::new(std::fs::read_to_string(&old)?);
        let f: hsm::LocalKeyFile = serde_json::from_str(&text)?;
        let mut keys = Vec::new();
        for h in &f.bls_secret_keys {
            let b = Zeroizing::new(hex::decode(h.trim_start_matches("0x"))?);
            keys.push(SecretKey::from_bytes(&b)?);
        }
        let pw_path = resolve(node_dir, &k.password_file);
        if !pw_path.exists() {
            let mut pw = Zeroizing::new([0u8; 24]);
            rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut pw[..]);
            hsm::keystore::write_private(&pw_path, hex::encode(&pw[..]).as_bytes())?;
        }
        store_keys(node_dir, k, &keys, Kdf::PBKDF2_DEFAULT)?;
        let pks: Vec<_> = keys.iter().map(SecretKey::public_key).collect();
        // This node signed before the guard existed; its chain resumes above those heights
        // (the node only signs new blocks), so an empty history is as safe as it was.
        open_guard(node_dir, k)?.register(&pks)?;
        std::fs::remove_file(&old)?;
        cfg.keys.backend = "keystore".into();
        std::fs::write(&cfg_path, cfg.to_toml())?;
        println!("node{i}: moved keys/bls.json into an EIP-2335 keystore");
    }
    Ok(())
}

fn start_mock(node_dir: &Path, port: u16) -> eyre::Result<()> {
    use std::os::unix::process::CommandExt;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(node_dir.join("mockhsm.log"))?;
    let child = std::process::Command::new(std::env::current_exe()?)
        .args(["hsm", "mock-connector", "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .process_group(0)
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()?;
    std::fs::write(node_dir.join("mockhsm.pid"), child.id().to_string())?;
    // The connector outlives this localnet run (it is the node's device); wait until it answers.
    let url = format!("http://127.0.0.1:{port}");
    for _ in 0..100 {
        if yubi::open(&url, 1, b"password").is_ok() {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    bail!(
        "the MockHsm connector on {url} did not answer; see {}",
        node_dir.join("mockhsm.log").display()
    )
}

/// Stops the MockHsm connectors a localnet started (before `--reset` deletes their keys).
pub fn localnet_stop_mocks(dir: &Path) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let pid_file = e.path().join("mockhsm.pid");
        if let Some(pid) = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok())
        {
            // Only a process that is still our mock connector (its command line says so).
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            if cmdline.windows(14).any(|w| w == b"mock-connector") {
                // SAFETY: signalling a pid we started and just identified.
                unsafe {
                    libc::kill(pid, libc::SIGTERM);
                }
            }
        }
    }
}
