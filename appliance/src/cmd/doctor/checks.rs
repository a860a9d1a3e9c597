//! The checks, in order; each reads what earlier ones found (the config, the spec, whether a
//! node holds the data directory).

use super::report::Finding;
use super::DoctorArgs;
use crate::config::{resolve, NodeConfig};
use crate::host::{ClockState, ClockSync};
use crate::net::TransportIdentity;
use hsm::Signer;
use state::ChainSpec;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub struct Doctor {
    data_dir: PathBuf,
    config_path: Option<PathBuf>,
    skip: Vec<String>,
    min_free_gib: u64,
    peer_timeout: Duration,
    cfg: Option<NodeConfig>,
    spec: Option<ChainSpec>,
    /// The spec's committee (built once by the chain-spec check).
    committee: Option<consensus::Committee>,
    /// A node process holds the database (so it also holds the guard and the ports).
    running: bool,
    backend: Option<Box<dyn Signer>>,
    /// The backend's BLS public keys (the guard check consumes the backend itself).
    bls_keys: Option<Vec<accel::PublicKey>>,
    identity: Option<TransportIdentity>,
}

impl Doctor {
    pub fn new(data_dir: PathBuf, config_path: Option<PathBuf>, args: &DoctorArgs) -> Self {
        Self {
            data_dir,
            config_path,
            skip: args.skip.clone(),
            min_free_gib: args.min_free_gib,
            peer_timeout: Duration::from_millis(args.peer_timeout_ms),
            cfg: None,
            spec: None,
            committee: None,
            running: false,
            backend: None,
            bls_keys: None,
            identity: None,
        }
    }

    pub fn run(mut self) -> Vec<Finding> {
        let mut out = Vec::new();
        for name in super::CHECKS {
            let f = if self.skip.iter().any(|s| s == name) {
                Finding::skip(name, format!("left out (--skip {name})"))
            } else {
                match name {
                    "config" => self.config(),
                    "chain-spec" => self.chain_spec(),
                    "database" => self.database(),
                    "keys" => self.keys(),
                    "guard" => self.guard(),
                    "membership" => self.membership(),
                    "clock" => clock(crate::host::clock_state().map_err(|e| e.to_string())),
                    "ports" => self.ports(),
                    "disk" => self.disk(),
                    "cpu" => cpu(&crate::host::cpu_features()),
                    "gpu" => gpu(Path::new("/proc/driver/nvidia/version")),
                    "peers" => self.peers(),
                    other => unreachable!("check {other} is listed but not run"),
                }
            };
            out.push(f);
        }
        out
    }

    fn config(&mut self) -> Finding {
        let shown = self
            .config_path
            .as_ref()
            .map_or("built-in defaults".to_string(), |p| p.display().to_string());
        let cfg =
            match NodeConfig::load(self.config_path.as_deref()) {
                Ok(c) => c,
                Err(e) => return Finding::fail(
                    "config",
                    format!("{shown}: {e}"),
                    "correct the file (the message names the field); `harmony-appliance config \
                     show` prints the defaults with every field",
                ),
            };
        if let Err(e) = cfg.check() {
            return Finding::fail(
                "config",
                format!("{shown}: {e}"),
                "change that field in the config file",
            );
        }
        self.cfg = Some(cfg);
        Finding::ok("config", format!("{shown} parses and passes its checks"))
    }

    fn chain_spec(&mut self) -> Finding {
        let Some(cfg) = &self.cfg else {
            return Finding::skip("chain-spec", "needs a valid config");
        };
        let path = resolve(&self.data_dir, &cfg.chain_spec);
        let spec = match ChainSpec::load(&path) {
            Ok(s) => s,
            Err(e) => {
                return Finding::fail(
                    "chain-spec",
                    format!("{}: {e}", path.display()),
                    "copy the network's chain spec there (every validator needs the identical \
                     file), or point `chain_spec` in the config at it",
                )
            }
        };
        let committee = match consensus::Committee::from_spec(&spec) {
            Ok(c) => c,
            Err(e) => {
                return Finding::fail(
                    "chain-spec",
                    format!("{}: its committee is invalid: {e}", path.display()),
                    "get the network's published chain spec again; this file is damaged or \
                     altered",
                )
            }
        };
        let f = Finding::ok(
            "chain-spec",
            format!(
                "{}: chain id {}, shard {}, {} validators, hash {}",
                path.display(),
                spec.chain_id,
                spec.shard,
                spec.validators.len(),
                spec.hash()
            ),
        );
        self.spec = Some(spec);
        self.committee = Some(committee);
        f
    }

    fn database(&mut self) -> Finding {
        let dir = self.data_dir.join("db");
        if !dir.join("mdbx.dat").exists() {
            return Finding::ok(
                "database",
                format!("{}: none yet; `run` creates it", dir.display()),
            );
        }
        match state::db::ChainStore::open(&dir) {
            Ok(store) => {
                let tip = store.tip_header().ok().flatten().map(|h| h.number);
                let usage = store.db().usage();
                match (tip, usage) {
                    (Some(tip), Ok(u)) => Finding::ok(
                        "database",
                        format!(
                            "{}: schema {}, tip #{tip}, {} MiB file, {} free pages",
                            dir.display(),
                            state::db::SCHEMA_VERSION,
                            u.file_bytes >> 20,
                            u.free_pages
                        ),
                    ),
                    (None, _) => Finding::fail(
                        "database",
                        format!("{}: opens but holds no chain tip", dir.display()),
                        "remove the db directory and let `run` create it again (the node then \
                         catches up from its peers)",
                    ),
                    (_, Err(e)) => Finding::fail(
                        "database",
                        e.to_string(),
                        "restore the data directory from a backup",
                    ),
                }
            }
            Err(state::db::DbError::InUse { .. }) => {
                self.running = true;
                Finding::ok(
                    "database",
                    format!(
                        "{}: held by a running node (not opened; checks that need it say so)",
                        dir.display()
                    ),
                )
            }
            Err(e) => Finding::fail(
                "database",
                e.to_string(),
                "restore the data directory from a backup, or remove db/ and resync from peers \
                 (keep keys/ and the guard: they protect against double-signing)",
            ),
        }
    }

    fn keys(&mut self) -> Finding {
        let Some(cfg) = &self.cfg else {
            return Finding::skip("keys", "needs a valid config");
        };
        let k = &cfg.keys;
        if k.backend == "local" {
            return Finding::fail(
                "keys",
                "keys.backend = \"local\" keeps the BLS key in a plain file; `run` refuses it",
                "import the key into a keystore (`harmony-appliance keys import`) and set \
                 keys.backend = \"keystore\", or use \"yubihsm\"",
            );
        }
        match super::super::keys::open_backend(&self.data_dir, k) {
            Ok((signer, transport)) => {
                let n = signer.public_keys().len();
                let identity =
                    match transport {
                        Some(t) => t,
                        None => {
                            let p = resolve(&self.data_dir, &k.transport_key_file);
                            match TransportIdentity::from_pkcs8_file(&p) {
                                Ok(t) => t,
                                Err(e) => return Finding::fail(
                                    "keys",
                                    format!("transport key {}: {e}", p.display()),
                                    "restore the node's transport key file (PKCS#8 Ed25519), or \
                                     point keys.transport_key_file at it",
                                ),
                            }
                        }
                    };
                let detail = format!(
                    "backend `{}`: {n} BLS key(s) open, transport key {}",
                    k.backend,
                    hex::encode(identity.public_key())
                );
                self.bls_keys = Some(signer.public_keys().to_vec());
                self.backend = Some(signer);
                self.identity = Some(identity);
                Finding::ok("keys", detail)
            }
            Err(e) => {
                let fix = match k.backend.as_str() {
                    "keystore" => {
                        "check the keystore password (file keys.password_file, or the \
                                   systemd credential `keystore-password`) and that \
                                   keys.keystore_dir holds the node's EIP-2335 keystores"
                    }
                    _ => {
                        "check that the YubiHSM 2 is plugged in and its connector reachable at \
                          keys.hsm_connector, the auth key id and password (credential \
                          `hsm-password`), and that keys.sealed_dir holds the sealed BLS keys \
                          (`harmony-appliance hsm verify`)"
                    }
                };
                Finding::fail(
                    "keys",
                    format!("backend `{}`: {}", k.backend, crate::cmd::describe(&e)),
                    fix,
                )
            }
        }
    }

    fn guard(&mut self) -> Finding {
        let Some(cfg) = &self.cfg else {
            return Finding::skip("guard", "needs a valid config");
        };
        if self.running {
            return Finding::ok("guard", "held by the running node (it checked it at start)");
        }
        let Some(signer) = self.backend.take() else {
            return Finding::skip("guard", "needs the keys to open");
        };
        let dir = resolve(&self.data_dir, &cfg.keys.guard_dir);
        let guard = match super::super::keys::open_guard(&self.data_dir, &cfg.keys) {
            Ok(g) => std::sync::Arc::new(g),
            Err(e) => {
                return Finding::fail(
                    "guard",
                    format!("{}: {}", dir.display(), crate::cmd::describe(&e)),
                    "restore the guard directory from the backup of this machine; never start \
                     signing without it",
                )
            }
        };
        let n = signer.public_keys().len();
        match hsm::GuardedSigner::new(signer, guard, false) {
            Ok(_) => Finding::ok(
                "guard",
                format!("{}: a history for each of the {n} key(s)", dir.display()),
            ),
            Err(e) => Finding::fail(
                "guard",
                format!("{}: {e}", dir.display()),
                "bring the keys' history from the machine that signed with them \
                 (`harmony-appliance keys import-guard`); only keys that never signed anywhere \
                 may start with `run --allow-new-guard-history`",
            ),
        }
    }

    fn membership(&mut self) -> Finding {
        let (Some(committee), Some(identity), Some(mine)) =
            (&self.committee, &self.identity, &self.bls_keys)
        else {
            return Finding::skip("membership", "needs the chain spec and the keys");
        };
        let Some(me) = committee.member_by_transport_key(&identity.public_key()) else {
            return Finding::ok(
                "membership",
                "not a validator of the chain spec: the node observes until its keys are \
                 elected (staking create-validator)",
            );
        };
        if self.running {
            return Finding::ok(
                "membership",
                format!("validator {me} of the chain spec (BLS keys checked by the running node)"),
            );
        }
        if *mine != consensus::fbft::member_keys(committee, me) {
            return Finding::fail(
                "membership",
                format!(
                    "the transport key is validator {me}'s, but the BLS keys are not that \
                     validator's (same keys, same order)"
                ),
                "use the data directory (keys/) that belongs to this validator; \
                 `harmony-appliance keys list` shows the keys",
            );
        }
        Finding::ok(
            "membership",
            format!("validator {me} of the chain spec, BLS keys match"),
        )
    }

    /// The listen addresses of QUIC, RPC and metrics.
    fn listen_addrs(&self) -> Vec<(&'static str, std::net::SocketAddr, bool)> {
        let Some(cfg) = &self.cfg else {
            return vec![];
        };
        let mut v = Vec::new();
        let quic = cfg.network.listen.or_else(|| {
            let spec = self.spec.as_ref()?;
            let id = self.identity.as_ref()?;
            self.committee
                .as_ref()?
                .member_by_transport_key(&id.public_key())
                .map(|me| spec.validators[me].endpoint)
        });
        if let Some(q) = quic {
            v.push(("QUIC (UDP)", q, true));
        }
        if cfg.rpc.enabled {
            v.push(("RPC (TCP)", cfg.rpc.listen, false));
        }
        if cfg.metrics.enabled {
            v.push(("metrics (TCP)", cfg.metrics.listen, false));
        }
        v
    }

    fn ports(&mut self) -> Finding {
        if self.cfg.is_none() {
            return Finding::skip("ports", "needs a valid config");
        }
        let addrs = self.listen_addrs();
        if self.running {
            return Finding::ok(
                "ports",
                format!("{} listener(s) held by the running node", addrs.len()),
            );
        }
        let mut busy = Vec::new();
        for (what, addr, udp) in &addrs {
            let r = if *udp {
                std::net::UdpSocket::bind(addr).map(drop)
            } else {
                std::net::TcpListener::bind(addr).map(drop)
            };
            if let Err(e) = r {
                busy.push(format!("{what} {addr}: {e}"));
            }
        }
        if busy.is_empty() {
            let list: Vec<String> = addrs.iter().map(|(w, a, _)| format!("{w} {a}")).collect();
            Finding::ok("ports", format!("free: {}", list.join(", ")))
        } else {
            Finding::fail(
                "ports",
                busy.join("; "),
                "stop what holds the port (`ss -lntup` names it), or change network.listen, \
                 rpc.listen or metrics.listen in the config",
            )
        }
    }

    fn disk(&mut self) -> Finding {
        let free = match crate::host::disk_free_bytes(&self.data_dir) {
            Ok(f) => f,
            Err(e) => {
                return Finding::fail(
                    "disk",
                    format!("{}: {e}", self.data_dir.display()),
                    "create the data directory (the package's tmpfiles entry makes \
                     /var/lib/harmony) or pass the right --data-dir",
                )
            }
        };
        disk(&self.data_dir, free, self.min_free_gib)
    }

    fn peers(&mut self) -> Finding {
        let (Some(cfg), Some(spec)) = (&self.cfg, &self.spec) else {
            return Finding::skip("peers", "needs the config and the chain spec");
        };
        let rt = match tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => return Finding::skip("peers", format!("no runtime: {e}")),
        };
        if self.running {
            let url = format!("http://{}", cfg.rpc.listen);
            return rt.block_on(peers_of_running_node(&url, spec.validators.len()));
        }
        let Some(identity) = self.identity.take() else {
            return Finding::skip("peers", "needs the transport key (keys check)");
        };
        let directory = crate::directory::PeerDirectory::new(spec, &cfg.network.observer_keys());
        let peers: Vec<crate::net::PeerInfo> = directory
            .peer_infos()
            .into_iter()
            .filter(|p| p.transport_key != identity.public_key())
            .collect();
        let timeout = self.peer_timeout;
        let spec_hash = spec.hash().0;
        let max = cfg.network.max_message_bytes;
        rt.block_on(dial_peers(identity, peers, spec_hash, max, timeout))
    }
}

/// Asks the running node (`hmy_consensusStatus`) how many peers it is connected to.
async fn peers_of_running_node(url: &str, validators: usize) -> Finding {
    use jsonrpsee::core::client::ClientT;
    let client = match jsonrpsee::http_client::HttpClientBuilder::default().build(url) {
        Ok(c) => c,
        Err(e) => return Finding::skip("peers", format!("RPC client for {url}: {e}")),
    };
    let status: Result<serde_json::Value, _> = client
        .request("hmy_consensusStatus", jsonrpsee::rpc_params![])
        .await;
    match status {
        Ok(s) => {
            let n = s["connectedPeers"].as_array().map_or(0, |a| a.len());
            let others = validators.saturating_sub(1);
            if n == 0 && others > 0 {
                Finding::fail(
                    "peers",
                    format!("the running node is connected to none of its {others} peers"),
                    "check that UDP to the peers' endpoints is open both ways (firewall, NAT) and \
                     that this node's endpoint in the chain spec is the address they reach",
                )
            } else {
                Finding::ok(
                    "peers",
                    format!("the running node is connected to {n} peer(s)"),
                )
            }
        }
        Err(e) => Finding::warn(
            "peers",
            format!("the running node did not answer on {url}: {e}"),
            "enable rpc (rpc.enabled) on loopback to let doctor ask the running node",
        ),
    }
}

/// Dials every peer with the node's own transport key and reports who completed the QUIC
/// handshake within `timeout`.
async fn dial_peers(
    identity: TransportIdentity,
    peers: Vec<crate::net::PeerInfo>,
    spec_hash: [u8; 32],
    max_message_bytes: usize,
    timeout: Duration,
) -> Finding {
    if peers.is_empty() {
        return Finding::ok("peers", "no other validator in the chain spec");
    }
    let all: Vec<(usize, std::net::SocketAddr)> =
        peers.iter().map(|p| (p.index, p.endpoint)).collect();
    let started = crate::net::Mesh::start(crate::net::MeshConfig {
        listen: "0.0.0.0:0".parse().expect("literal"),
        identity,
        peers,
        spec_hash,
        max_message_bytes,
    });
    let (mesh, _inbound) = match started {
        Ok(m) => m,
        Err(e) => return Finding::skip("peers", format!("could not start QUIC: {e}")),
    };
    let deadline = tokio::time::Instant::now() + timeout;
    while mesh.connected_peers().len() < all.len() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let connected = mesh.connected_peers();
    mesh.shutdown().await;
    let missing: Vec<String> = all
        .iter()
        .filter(|(i, _)| !connected.contains(i))
        .map(|(i, a)| format!("peer {i} at {a}"))
        .collect();
    peers_finding(all.len(), &missing, timeout)
}

/// The verdict on peer reachability: all reached, some (warning), none (failure).
pub(super) fn peers_finding(total: usize, missing: &[String], timeout: Duration) -> Finding {
    let reached = total - missing.len();
    let fix = "check that UDP to those endpoints is open both ways (firewall, NAT), that the \
               peers run, and that they carry the same chain spec (a different spec hash refuses \
               the handshake)";
    if missing.is_empty() {
        Finding::ok("peers", format!("QUIC handshake with all {total} peer(s)"))
    } else if reached == 0 {
        Finding::fail(
            "peers",
            format!(
                "no QUIC handshake within {timeout:?} with any of {total} peer(s): {}",
                missing.join(", ")
            ),
            fix,
        )
    } else {
        Finding::warn(
            "peers",
            format!(
                "QUIC handshake with {reached} of {total}; unreachable: {}",
                missing.join(", ")
            ),
            fix,
        )
    }
}

pub(super) fn clock(state: Result<ClockState, String>) -> Finding {
    match state {
        Ok(ClockState {
            sync: ClockSync::Synchronized,
            max_error_s,
        }) => Finding::ok(
            "clock",
            format!("synchronized by NTP (maximum error {:.3} s)", max_error_s),
        ),
        Ok(_) => Finding::fail(
            "clock",
            "the kernel clock is not synchronized by NTP; proposals carry timestamps that \
             peers check, and a drifting clock loses leader slots",
            "enable time synchronization: `timedatectl set-ntp true` (systemd-timesyncd) or \
             install chrony",
        ),
        Err(e) => Finding::warn(
            "clock",
            format!("could not read the clock state: {e}"),
            "check time synchronization by hand (`timedatectl`)",
        ),
    }
}

pub(super) fn cpu(features: &[(&'static str, bool)]) -> Finding {
    if features.is_empty() {
        return Finding::warn(
            "cpu",
            "not x86-64: blst runs its portable code",
            "expect slower signature verification than on x86-64 with ADX",
        );
    }
    let missing: Vec<&str> = features.iter().filter(|f| !f.1).map(|f| f.0).collect();
    let have: Vec<&str> = features.iter().filter(|f| f.1).map(|f| f.0).collect();
    if missing.is_empty() {
        Finding::ok("cpu", format!("x86-64 with {}", have.join(", ")))
    } else {
        Finding::warn(
            "cpu",
            format!("missing {} (have: {})", missing.join(", "), have.join(", ")),
            "blst falls back to slower code; a CPU with ADX and BMI2 (Intel Broadwell, AMD \
             Zen or later) verifies signatures about twice as fast. In a VM, pass the host CPU \
             through (e.g. `-cpu host`)",
        )
    }
}

pub(super) fn gpu(driver: &Path) -> Finding {
    match std::fs::read_to_string(driver) {
        Ok(v) => Finding::ok(
            "gpu",
            format!(
                "NVIDIA driver present ({}); this binary verifies on the CPU backend",
                v.lines().next().unwrap_or("").trim()
            ),
        ),
        Err(_) => Finding::ok(
            "gpu",
            "no NVIDIA driver: not needed, this binary verifies on the CPU backend",
        ),
    }
}

pub(super) fn disk(dir: &Path, free: u64, min_free_gib: u64) -> Finding {
    let gib = free as f64 / (1u64 << 30) as f64;
    let min = min_free_gib as f64;
    let detail = format!("{}: {gib:.1} GiB free", dir.display());
    let fix = "free space on that filesystem or move the data directory to a larger one; MDBX \
               grows its file as the chain grows, and a full disk stops the node";
    if gib < min {
        Finding::fail("disk", format!("{detail} (below {min_free_gib} GiB)"), fix)
    } else if gib < 2.0 * min {
        Finding::warn(
            "disk",
            format!("{detail} (below {} GiB)", 2 * min_free_gib),
            fix,
        )
    } else {
        Finding::ok("disk", detail)
    }
}

#[cfg(test)]
mod tests {
    use super::super::report::Status;
    use super::*;

    #[test]
    fn an_unsynchronized_clock_fails_with_the_ntp_fix() {
        let f = clock(Ok(ClockState {
            sync: ClockSync::Unsynchronized,
            max_error_s: 16.0,
        }));
        assert_eq!(f.status, Status::Fail);
        assert!(f.fix.unwrap().contains("timedatectl set-ntp true"));
        let f = clock(Ok(ClockState {
            sync: ClockSync::Synchronized,
            max_error_s: 0.01,
        }));
        assert_eq!(f.status, Status::Ok, "{}", f.detail);
        assert_eq!(clock(Err("EPERM".into())).status, Status::Warn);
    }

    #[test]
    fn missing_cpu_features_warn_and_name_them() {
        let f = cpu(&[
            ("adx", false),
            ("bmi2", true),
            ("avx2", true),
            ("sha", false),
        ]);
        assert_eq!(f.status, Status::Warn);
        assert!(f.detail.contains("missing adx, sha"), "{}", f.detail);
        assert!(f.fix.unwrap().contains("ADX"));
        assert_eq!(cpu(&[("adx", true)]).status, Status::Ok);
    }

    #[test]
    fn the_gpu_check_reads_the_driver_version() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("version");
        assert!(gpu(&p).detail.contains("no NVIDIA driver"));
        std::fs::write(
            &p,
            "NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54\n",
        )
        .unwrap();
        assert!(gpu(&p).detail.contains("550.54"));
    }

    #[test]
    fn low_disk_fails_below_the_minimum_and_warns_below_twice_it() {
        let gib = 1u64 << 30;
        let d = Path::new("/var/lib/harmony");
        assert_eq!(disk(d, 5 * gib, 20).status, Status::Fail);
        assert!(disk(d, 5 * gib, 20).fix.unwrap().contains("full disk"));
        assert_eq!(disk(d, 30 * gib, 20).status, Status::Warn);
        assert_eq!(disk(d, 50 * gib, 20).status, Status::Ok);
    }

    #[test]
    fn peers_are_ok_all_warn_some_and_fail_none() {
        let t = Duration::from_secs(1);
        assert_eq!(peers_finding(3, &[], t).status, Status::Ok);
        let some = peers_finding(3, &["peer 2 at 10.0.0.2:9000".into()], t);
        assert_eq!(some.status, Status::Warn);
        assert!(some.detail.contains("peer 2 at 10.0.0.2:9000"));
        let none = peers_finding(1, &["peer 1 at 10.0.0.1:9000".into()], t);
        assert_eq!(none.status, Status::Fail);
        assert!(none.fix.unwrap().contains("UDP"));
    }
}
