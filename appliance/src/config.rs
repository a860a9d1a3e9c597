//! Node configuration (TOML). Every field has a default, so an empty file is a valid config.

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct NodeConfig {
    /// Chain spec file, relative to the data directory unless absolute.
    pub chain_spec: PathBuf,
    pub network: NetworkConfig,
    pub rpc: RpcConfig,
    pub metrics: MetricsConfig,
    pub consensus: ConsensusConfig,
    pub keys: KeysConfig,
    pub accel: AccelConfig,
    pub log: LogConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct NetworkConfig {
    /// UDP address for QUIC; defaults to this validator's endpoint in the chain spec.
    pub listen: Option<SocketAddr>,
    /// Largest accepted message, in bytes.
    pub max_message_bytes: usize,
    /// How often this node tells peers its tip (so a node behind notices), in ms.
    pub status_interval_ms: u64,
    /// Transport keys (hex) of peers to refuse; `hmy_blockPeer` adds more at run time.
    pub blocked_peers: Vec<String>,
    /// Messages one peer may send per status interval before it counts as flooding.
    pub flood_limit: u32,
    /// Forward transactions received over RPC to the committee. Off, they reach the chain
    /// only when this node leads (a private submission node).
    pub relay_transactions: bool,
    /// Nodes outside the committee this node talks to (sentries, monitoring, a validator
    /// waiting for its election): they sync and relay, and carry no consensus weight. Each
    /// must list this node too. Registered validators need no entry.
    pub observers: Vec<ObserverConfig>,
}

/// One `[[network.observers]]` entry.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ObserverConfig {
    /// Its Ed25519 transport public key (64 hex digits; `harmony-appliance keys transport`).
    pub transport_key: String,
    /// Where it listens for QUIC (`ip:port`).
    pub endpoint: SocketAddr,
}

impl NetworkConfig {
    /// The observers as (endpoint, key); [`NodeConfig::validate`] checked the keys.
    pub fn observer_keys(&self) -> Vec<(SocketAddr, [u8; 32])> {
        self.observers
            .iter()
            .filter_map(|o| {
                state::spec::parse_hex::<32>(&o.transport_key)
                    .ok()
                    .map(|k| (o.endpoint, k))
            })
            .collect()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RpcConfig {
    pub enabled: bool,
    /// HTTP and WebSocket on one port; loopback unless the operator opens it.
    pub listen: SocketAddr,
    pub max_request_bytes: u32,
    pub max_connections: u32,
    /// Most calls in one JSON-RPC batch.
    pub max_batch_len: u32,
    /// Gas cap of `eth_call` / `eth_estimateGas` (at most the block gas limit).
    pub call_gas_cap: u64,
    /// Wall-clock limit of one `eth_call` / `eth_estimateGas`.
    pub call_timeout_ms: u64,
    /// Widest block range one `eth_getLogs` may scan.
    pub max_logs_range: u64,
    /// Most logs one `eth_getLogs` returns.
    pub max_logs: usize,
    /// Subscriptions one WebSocket connection may hold.
    pub max_subscriptions_per_connection: u32,
    /// Costly requests (`eth_call`, `eth_estimateGas`, `eth_getLogs`, `eth_feeHistory`, full
    /// blocks) running at once; more are refused with "limit exceeded" rather than queued.
    pub max_concurrent_heavy: u32,
    /// Serve the operator's `hmy_blockPeer`/`hmy_unblockPeer`. Refused on a non-loopback
    /// `listen`: anyone reaching the port could disconnect this validator.
    pub admin_methods: bool,
    /// `Host` headers RPC answers (`host:port`, `host:*`; `*` alone turns the check off). Empty:
    /// loopback names and the `listen` address, any port. Guards against DNS rebinding.
    pub allowed_hosts: Vec<String>,
    /// Browser origins (`Origin` header, e.g. `https://explorer.example`) allowed to call RPC;
    /// `*` allows any. Empty: no web page may call this node (requests without an `Origin`,
    /// from wallets' back ends, scripts and curl, are not affected).
    pub allowed_origins: Vec<String>,
    /// Threads of RPC's own runtime (requests never run on the consensus and QUIC threads).
    pub threads: usize,
    /// Scheduling niceness added to the RPC threads (0 to 19): under a flood of requests the
    /// CPU goes to consensus, QUIC and execution first, so blocks keep coming and stay full.
    pub nice: i32,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    pub enabled: bool,
    pub listen: SocketAddr,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ConsensusConfig {
    /// A header timestamp further ahead of the local clock than this is refused.
    pub max_future_ms: u64,
    /// Time a view may take before validators move to the next one (doubling per failed view);
    /// 0 means one block time, at least one second.
    pub view_timeout_ms: u64,
    /// As leader, announce blocks as header plus transaction hashes (Harmony HET-86):
    /// validators fill the body from their pools and fetch only what they lack.
    pub announce_headers_only: bool,
    /// Test only: after every commit vote, also sign one for another block with the keys
    /// outside the double-sign guard and broadcast it, so peers catch and slash this node.
    /// `run` refuses it outside localnet and with any key backend but `keystore`.
    pub double_sign_for_tests: bool,
    /// Test only: as leader, put a VRF signed by a key that is not the leader's in every block
    /// (well formed, wrong signature), so peers refuse them. Refused outside localnet.
    pub forge_vrf_for_tests: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct KeysConfig {
    /// Local BLS key file (development backend), relative to the data directory.
    pub bls_key_file: PathBuf,
    /// Ed25519 transport identity (PKCS#8, mode 0600), relative to the data directory.
    /// Unused with the `yubihsm` and `mockhsm` backends (the HSM holds the transport key).
    pub transport_key_file: PathBuf,
    /// Where BLS keys live: `keystore` (EIP-2335 files), `yubihsm` (sealed under a YubiHSM 2),
    /// `mockhsm` (the same against `harmony-appliance hsm mock-connector`; development only)
    /// or `local` (plain development key file `bls_key_file`).
    pub backend: String,
    /// Directory of EIP-2335 keystores (`*.json`), relative to the data directory.
    pub keystore_dir: PathBuf,
    /// File holding the keystore password (mode 0600). With systemd `LoadCredential=`, a
    /// credential named `keystore-password` is used instead when present.
    pub password_file: PathBuf,
    /// Directory of BLS secrets sealed under the HSM (`*.sealed.json`).
    pub sealed_dir: PathBuf,
    /// HSM connector: `http://host:port` (yubihsm-connector or `hsm mock-connector`) or `usb`.
    pub hsm_connector: String,
    /// Authentication key the node logs in with (the profile's `validator` role).
    pub hsm_auth_key_id: u16,
    /// File holding that key's password (mode 0600); systemd credential `hsm-password` wins.
    pub hsm_password_file: PathBuf,
    /// Provisioning profile the device must not be looser than (relative to the data
    /// directory); empty means the built-in default profile.
    pub hsm_profile: PathBuf,
    /// Double-sign guard directory, relative to the data directory.
    pub guard_dir: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AccelConfig {
    /// `reference`, `cpu`, `cuda` (refused with the reason when this binary or machine has no
    /// CUDA) or `auto` (CUDA when present, else `cpu`, with the reason in the log).
    pub backend: String,
    /// Threads of the verification pool; 0 = one per core.
    pub threads: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `human`, `json`, or `journald` (the journal's native protocol, structured fields; JSON
    /// on stderr when no journal socket is there).
    pub format: String,
    /// tracing filter, e.g. `info` or `info,consensus=debug`.
    pub filter: String,
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            chain_spec: "chain-spec.toml".into(),
            network: NetworkConfig::default(),
            rpc: RpcConfig::default(),
            metrics: MetricsConfig::default(),
            consensus: ConsensusConfig::default(),
            keys: KeysConfig::default(),
            accel: AccelConfig::default(),
            log: LogConfig::default(),
        }
    }
}

impl Default for NetworkConfig {
    fn default() -> Self {
        Self {
            listen: None,
            max_message_bytes: 8 << 20,
            status_interval_ms: 1000,
            blocked_peers: Vec::new(),
            flood_limit: 5000,
            relay_transactions: true,
            observers: Vec::new(),
        }
    }
}

impl Default for RpcConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: "127.0.0.1:9500".parse().expect("literal"),
            max_request_bytes: 1 << 20,
            max_connections: 100,
            max_batch_len: 100,
            call_gas_cap: state::GAS_LIMIT,
            call_timeout_ms: 5_000,
            max_logs_range: 10_000,
            max_logs: 10_000,
            max_subscriptions_per_connection: 64,
            max_concurrent_heavy: 2,
            admin_methods: true,
            allowed_hosts: Vec::new(),
            allowed_origins: Vec::new(),
            threads: 2,
            nice: 5,
        }
    }
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: "127.0.0.1:9900".parse().expect("literal"),
        }
    }
}

impl Default for ConsensusConfig {
    fn default() -> Self {
        Self {
            max_future_ms: 1000,
            view_timeout_ms: 0,
            announce_headers_only: false,
            double_sign_for_tests: false,
            forge_vrf_for_tests: false,
        }
    }
}

impl Default for KeysConfig {
    fn default() -> Self {
        Self {
            bls_key_file: "keys/bls.json".into(),
            transport_key_file: "keys/transport.pk8".into(),
            backend: "keystore".into(),
            keystore_dir: "keys/keystores".into(),
            password_file: "keys/keystore-password".into(),
            sealed_dir: "keys/sealed".into(),
            hsm_connector: "http://127.0.0.1:12345".into(),
            hsm_auth_key_id: 4,
            hsm_password_file: "keys/hsm-password".into(),
            hsm_profile: PathBuf::new(),
            guard_dir: "guard".into(),
        }
    }
}

impl Default for AccelConfig {
    fn default() -> Self {
        Self {
            backend: "auto".into(),
            threads: 0,
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: "human".into(),
            filter: "info".into(),
        }
    }
}

/// A config that could not be used; the message names the file and the field.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "cannot read config {path}: {source}; pass an existing file with --config (or \
         HARMONY_CONFIG), or leave both out to use <data-dir>/config.toml or the built-in defaults"
    )]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("config {path}: {message}")]
    Invalid { path: String, message: String },
}

impl NodeConfig {
    /// Loads `path`, or the defaults when `path` is None.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let Some(path) = path else {
            return Ok(Self::default());
        };
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let cfg = Self::parse(&text).map_err(|message| ConfigError::Invalid {
            path: path.display().to_string(),
            message,
        })?;
        Ok(cfg)
    }

    /// Parses and checks a config; the error names the offending field.
    pub fn parse(text: &str) -> Result<Self, String> {
        let cfg: NodeConfig = toml::from_str(text).map_err(|e| e.to_string())?;
        cfg.check()?;
        Ok(cfg)
    }

    pub fn check(&self) -> Result<(), String> {
        if !matches!(self.log.format.as_str(), "human" | "json" | "journald") {
            return Err(format!(
                "field `log.format`: `{}` is not `human`, `json` or `journald`",
                self.log.format
            ));
        }
        self.accel
            .backend
            .parse::<accel::Selection>()
            .and_then(|s| s.resolve())
            .map_err(|e| format!("field `accel.backend` (or --accel): {e}"))?;
        if self.rpc.enabled && self.rpc.admin_methods && !self.rpc.listen.ip().is_loopback() {
            return Err(format!(
                "field `rpc.admin_methods`: peer control would be open to anyone reaching {}; \
                 set `rpc.admin_methods = false` or listen on a loopback address",
                self.rpc.listen
            ));
        }
        if self.rpc.threads == 0 || self.rpc.threads > 64 {
            return Err("field `rpc.threads`: must be between 1 and 64".into());
        }
        if !(0..=19).contains(&self.rpc.nice) {
            return Err("field `rpc.nice`: must be between 0 and 19 (added niceness)".into());
        }
        if self.rpc.max_concurrent_heavy == 0 {
            return Err("field `rpc.max_concurrent_heavy`: must be at least 1".into());
        }
        if self.network.max_message_bytes < 64 << 10 {
            return Err("field `network.max_message_bytes`: must be at least 65536".into());
        }
        for (i, o) in self.network.observers.iter().enumerate() {
            state::spec::parse_hex::<32>(&o.transport_key).map_err(|e| {
                format!(
                    "field `network.observers[{i}].transport_key`: {e} (a 32-byte hex transport \
                     key, as `harmony-appliance keys transport` prints it)"
                )
            })?;
        }
        for (i, k) in self.network.blocked_peers.iter().enumerate() {
            state::spec::parse_hex::<32>(k).map_err(|e| {
                format!("field `network.blocked_peers[{i}]`: {e} (a 32-byte hex transport key)")
            })?;
        }
        if !matches!(
            self.keys.backend.as_str(),
            "keystore" | "yubihsm" | "mockhsm" | "local"
        ) {
            return Err(format!(
                "field `keys.backend`: `{}` is not `keystore`, `yubihsm`, `mockhsm` or `local`",
                self.keys.backend
            ));
        }
        if self.keys.hsm_connector != "usb" && !self.keys.hsm_connector.starts_with("http://") {
            return Err(format!(
                "field `keys.hsm_connector`: `{}` is neither `usb` nor `http://host:port`",
                self.keys.hsm_connector
            ));
        }
        if self.network.status_interval_ms == 0 {
            return Err("field `network.status_interval_ms`: must be positive".into());
        }
        Ok(())
    }

    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("config serializes")
    }
}

/// Resolves `p` against the data directory unless it is absolute.
pub fn resolve(data_dir: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        data_dir.join(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_the_defaults_and_roundtrips() {
        assert_eq!(NodeConfig::parse("").unwrap(), NodeConfig::default());
        let d = NodeConfig::default();
        assert_eq!(NodeConfig::parse(&d.to_toml()).unwrap(), d);
    }

    #[test]
    fn keys_section_is_additive() {
        // A config written before the signer backends existed still parses, with defaults.
        let old = "[keys]\nbls_key_file = \"keys/bls.json\"\ntransport_key_file = \"keys/transport.pk8\"\n";
        let cfg = NodeConfig::parse(old).unwrap();
        assert_eq!(cfg.keys.backend, "keystore");
        assert_eq!(cfg.keys.guard_dir, PathBuf::from("guard"));
        let cfg =
            NodeConfig::parse("[keys]\nbackend = \"mockhsm\"\nhsm_auth_key_id = 9\n").unwrap();
        assert_eq!(cfg.keys.backend, "mockhsm");
        assert_eq!(cfg.keys.hsm_auth_key_id, 9);
        assert_eq!(NodeConfig::parse(&cfg.to_toml()).unwrap(), cfg);
    }

    #[test]
    fn errors_name_the_field() {
        for (text, want) in [
            ("[rpc]\nlisten = \"nope\"", "listen"),
            ("[log]\nformat = \"xml\"", "log.format"),
            ("[accel]\nbackend = \"gpu\"", "accel.backend"),
            (
                "[network]\nmax_message_bytes = 10",
                "network.max_message_bytes",
            ),
            ("bogus = 1", "bogus"),
            ("[consensus]\nmax_future_ms = \"soon\"", "max_future_ms"),
            ("[keys]\nbackend = \"ledger\"", "keys.backend"),
            ("[keys]\nhsm_connector = \"tcp://x\"", "keys.hsm_connector"),
            ("[keys]\nhsm_auth_key_id = 70000", "hsm_auth_key_id"),
            ("[rpc]\nlisten = \"0.0.0.0:8545\"", "rpc.admin_methods"),
            (
                "[rpc]\nmax_concurrent_heavy = 0",
                "rpc.max_concurrent_heavy",
            ),
            ("[rpc]\nthreads = 0", "rpc.threads"),
            ("[rpc]\nnice = -5", "rpc.nice"),
            (
                "[[network.observers]]\ntransport_key = \"0xabc\"\nendpoint = \"127.0.0.1:9000\"",
                "network.observers[0].transport_key",
            ),
            (
                "[[network.observers]]\ntransport_key = \"00\"\nendpoint = \"somewhere\"",
                "endpoint",
            ),
        ] {
            let err = NodeConfig::parse(text).unwrap_err();
            assert!(err.contains(want), "{text}: {err}");
        }
        // A public RPC port is fine without the operator's methods.
        NodeConfig::parse("[rpc]\nlisten = \"0.0.0.0:8545\"\nadmin_methods = false").unwrap();
    }
}
