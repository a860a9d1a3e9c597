//! The chain spec: one TOML file that defines a network.
//!
//! Its hash (keccak256 of its canonical JSON form, so formatting and comments do not matter)
//! is written into block 0 and into every QUIC certificate, so nodes of different networks
//! never talk. Every BLS key carries a proof of possession, checked at load: same-message
//! aggregation is only safe against rogue keys with it.

use crate::block::{Block, BlockTemplate};
use accel::{PublicKey, Signature};
use alloy_primitives::{keccak256, Address, Bytes, B256, U256};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;

/// Harmony's own chain ids (mainnet, testnet, devnet): refused, since localnet keys are public.
pub const HARMONY_CHAIN_IDS: [u64; 4] =
    [1_666_600_000, 1_666_700_000, 1_666_800_000, 1_666_900_000];

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ChainSpec {
    /// Human name of the network.
    pub name: String,
    pub chain_id: u64,
    pub shard: u32,
    /// Target time between blocks.
    pub block_time_ms: u64,
    /// Consecutive blocks each leader proposes before the next takes over (Harmony HET-8).
    pub blocks_per_leader: u64,
    /// Blocks per epoch.
    pub epoch_blocks: u64,
    /// Timestamp of block 0.
    pub genesis_timestamp_ms: u64,
    /// Fork schedule: fork name → first epoch where it is active (names in
    /// [`crate::forks::KNOWN`]; others are refused).
    #[serde(default)]
    pub forks: BTreeMap<String, u64>,
    pub validators: Vec<Validator>,
    /// Staking numbers (`[staking]`; Harmony's mainnet values by default). Left out of the
    /// canonical form while default, so specs written before staking keep their hash.
    #[serde(default, skip_serializing_if = "is_default_staking")]
    pub staking: crate::staking::StakingParams,
    /// Rewards, the issuance cap, availability and the fee policy (`[economics]`; Harmony's
    /// numbers by default). Left out of the canonical form while default.
    #[serde(default, skip_serializing_if = "is_default_economics")]
    pub economics: crate::staking::EconomicsParams,
    /// The epoch VDF (`[vdf]`, from the `vdf` fork). Left out of the canonical form while
    /// default.
    #[serde(default, skip_serializing_if = "is_default_vdf")]
    pub vdf: VdfParams,
    /// Genesis allocation: accounts (0x addresses) with balance, and optionally nonce, code
    /// and storage, that exist in block 0's state.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub alloc: BTreeMap<Address, GenesisAccount>,
}

/// One account of the genesis allocation. Balances are in wei, as a decimal or 0x-hex string.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GenesisAccount {
    pub balance: U256,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub nonce: u64,
    #[serde(default, skip_serializing_if = "is_empty_bytes")]
    pub code: Bytes,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub storage: BTreeMap<U256, U256>,
}

/// The epoch VDF's difficulty: squarings in a class group whose discriminant comes from the
/// epoch's seed (chiavdf's construction, `accel::vdf`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VdfParams {
    /// Sequential squarings (Harmony's difficulty: 50,000). They must finish within half an
    /// epoch on the slowest validator: about 180,000 a second at 1,024 bits on one current core
    /// (`benches/README.md`).
    pub iterations: u64,
    /// Discriminant size in bits: a multiple of 8, at most 1,024.
    pub discriminant_bits: usize,
}

impl Default for VdfParams {
    fn default() -> Self {
        Self {
            iterations: 50_000,
            discriminant_bits: 1024,
        }
    }
}

fn is_default_vdf(p: &VdfParams) -> bool {
    *p == VdfParams::default()
}

fn is_default_economics(p: &crate::staking::EconomicsParams) -> bool {
    *p == crate::staking::EconomicsParams::default()
}

fn is_default_staking(p: &crate::staking::StakingParams) -> bool {
    *p == Default::default()
}

fn is_empty_bytes(b: &Bytes) -> bool {
    b.is_empty()
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Validator {
    /// Operator address (0x-prefixed hex, 20 bytes).
    pub address: Address,
    pub voting_power: u64,
    /// Hex Ed25519 public key of the QUIC transport identity (32 bytes).
    pub transport_key: String,
    /// UDP address the node listens on for QUIC.
    pub endpoint: SocketAddr,
    pub bls_keys: Vec<ValidatorKey>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ValidatorKey {
    /// Hex compressed G1 public key (48 bytes).
    pub public_key: String,
    /// Hex proof of possession (96 bytes).
    pub proof_of_possession: String,
}

/// Why a chain spec was refused; every variant names the field.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error(
        "cannot read chain spec {path}: {source}; copy the network's chain spec there (every \
         validator needs the identical file) or point `chain_spec` in the config at it (`localnet \
         --generate-only` writes one for a local network)"
    )]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("chain spec {path}: {message}")]
    Parse { path: String, message: String },
    #[error("chain spec field `{field}`: {message}")]
    Field { field: String, message: String },
}

fn field(field: impl Into<String>, message: impl Into<String>) -> SpecError {
    SpecError::Field {
        field: field.into(),
        message: message.into(),
    }
}

/// Parses a hex string with or without 0x into exactly `N` bytes.
pub fn parse_hex<const N: usize>(s: &str) -> Result<[u8; N], String> {
    let bytes = hex::decode(s.trim_start_matches("0x")).map_err(|e| format!("not hex: {e}"))?;
    bytes
        .try_into()
        .map_err(|b: Vec<u8>| format!("expected {N} bytes, got {}", b.len()))
}

impl ChainSpec {
    pub fn load(path: &Path) -> Result<Self, SpecError> {
        let text = std::fs::read_to_string(path).map_err(|source| SpecError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_toml(&text).map_err(|e| match e {
            SpecError::Parse { message, .. } => SpecError::Parse {
                path: path.display().to_string(),
                message,
            },
            other => other,
        })
    }

    /// Parses and validates a spec (including every proof of possession).
    pub fn from_toml(text: &str) -> Result<Self, SpecError> {
        let spec: ChainSpec = toml::from_str(text).map_err(|e| SpecError::Parse {
            path: "<text>".into(),
            message: e.to_string(),
        })?;
        spec.validate()?;
        Ok(spec)
    }

    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("spec serializes")
    }

    /// `[economics]`: shares are shares, and the fee collectors take at most the whole fee.
    fn check_economics(&self) -> Result<(), SpecError> {
        let e = &self.economics;
        let one = crate::staking::Dec::ONE;
        if e.min_signing_rate > one {
            return Err(field("economics.min_signing_rate", "is a rate: at most 1"));
        }
        if e.hip30_min_commission > one {
            return Err(field(
                "economics.hip30_min_commission",
                "is a rate: at most 1",
            ));
        }
        for (name, share) in [
            ("economics.slash_self_share", e.slash_self_share),
            ("economics.slash_reporter_share", e.slash_reporter_share),
        ] {
            if share > one {
                return Err(field(name, "is a share: at most 1"));
            }
        }
        if e.hip30_emission.is_some_and(|s| s.share > one) {
            return Err(field(
                "economics.hip30_emission.share",
                "is a share: at most 1",
            ));
        }
        let total = e
            .fee_collectors
            .iter()
            .try_fold(0u128, |t, c| t.checked_add(c.share.0));
        if total.is_none_or(|t| t > one.0) {
            return Err(field(
                "economics.fee_collectors",
                "the shares sum to more than 1; what they leave is burnt",
            ));
        }
        if self.forks.contains_key(crate::forks::FEE_SPLIT) && e.fee_collectors.is_empty() {
            return Err(field(
                "economics.fee_collectors",
                "the fee_split fork is scheduled but no collector is configured",
            ));
        }
        Ok(())
    }

    pub fn validate(&self) -> Result<(), SpecError> {
        for (address, acc) in &self.alloc {
            // EIP-3541: no code starts with 0xEF unless it is an EIP-7702 delegation, which
            // only a transaction sets; such genesis code could never be loaded.
            if acc.code.first() == Some(&0xef) {
                return Err(field(
                    format!("alloc.{address}.code"),
                    "code must not start with 0xEF (EIP-3541)",
                ));
            }
        }
        for name in self.forks.keys() {
            if !crate::forks::KNOWN.contains(&name.as_str()) {
                return Err(field(
                    format!("forks.{name}"),
                    format!(
                        "unknown fork; this node knows {} (upgrade the node if the network \
                         uses a newer one)",
                        crate::forks::KNOWN.join(", ")
                    ),
                ));
            }
        }
        if let Some(&s) = self.forks.get(crate::forks::STAKING) {
            if self
                .forks
                .get(crate::forks::HEADER_V2)
                .is_none_or(|&h| h > s)
            {
                return Err(field(
                    "forks.staking",
                    "staking needs header_v2 active at or before its epoch",
                ));
            }
        }
        for fork in [crate::forks::REWARDS, crate::forks::HIP30] {
            if let Some(&r) = self.forks.get(fork) {
                if self.forks.get(crate::forks::STAKING).is_none_or(|&s| s > r) {
                    return Err(field(
                        format!("forks.{fork}"),
                        format!("{fork} needs staking active at or before its epoch"),
                    ));
                }
            }
        }
        self.check_economics()?;
        if let Some(&v) = self.forks.get(crate::forks::VDF) {
            for needs in [crate::forks::VRF, crate::forks::STAKING] {
                if self.forks.get(needs).is_none_or(|&n| n > v) {
                    return Err(field(
                        "forks.vdf",
                        format!("the epoch VDF needs {needs} active at or before its epoch"),
                    ));
                }
            }
            if self.epoch_blocks < 4 {
                return Err(field(
                    "epoch_blocks",
                    "the epoch VDF needs at least 4 blocks an epoch (its seed is the first half)",
                ));
            }
        }
        let bits = self.vdf.discriminant_bits;
        if bits == 0 || !bits.is_multiple_of(8) || bits > accel::vdf::MAX_DISCRIMINANT_BITS {
            return Err(field(
                "vdf.discriminant_bits",
                "must be a positive multiple of 8, at most 1024",
            ));
        }
        if self.vdf.iterations == 0 {
            return Err(field("vdf.iterations", "must be at least 1"));
        }
        if self.chain_id == 0 || HARMONY_CHAIN_IDS.contains(&self.chain_id) {
            return Err(field(
                "chain_id",
                "must be non-zero and not one of Harmony's chain ids",
            ));
        }
        if self.block_time_ms < 50 {
            return Err(field("block_time_ms", "must be at least 50"));
        }
        if self.blocks_per_leader == 0 {
            return Err(field("blocks_per_leader", "must be at least 1"));
        }
        if self.epoch_blocks == 0 {
            return Err(field("epoch_blocks", "must be at least 1"));
        }
        if self.staking.internal_voting_share > crate::staking::Dec::ONE {
            return Err(field(
                "staking.internal_voting_share",
                "is a share of the voting power: at most 1",
            ));
        }
        if self.validators.is_empty() {
            return Err(field("validators", "the committee is empty"));
        }
        let mut seen_keys = std::collections::HashSet::new();
        let mut seen_transport = std::collections::HashSet::new();
        for (i, v) in self.validators.iter().enumerate() {
            let at = |f: &str| format!("validators[{i}].{f}");
            if v.voting_power == 0 {
                return Err(field(at("voting_power"), "must be positive"));
            }
            let tk =
                parse_hex::<32>(&v.transport_key).map_err(|m| field(at("transport_key"), m))?;
            if !seen_transport.insert(tk) {
                return Err(field(at("transport_key"), "used by two validators"));
            }
            if v.bls_keys.is_empty() {
                return Err(field(
                    at("bls_keys"),
                    "a validator needs at least one BLS key",
                ));
            }
            if v.bls_keys.len() > 106 {
                return Err(field(at("bls_keys"), "at most 106 keys per validator"));
            }
            for (j, k) in v.bls_keys.iter().enumerate() {
                let atk = |f: &str| format!("validators[{i}].bls_keys[{j}].{f}");
                let pk_bytes =
                    parse_hex::<48>(&k.public_key).map_err(|m| field(atk("public_key"), m))?;
                let pk = PublicKey::from_bytes(&pk_bytes)
                    .map_err(|e| field(atk("public_key"), e.to_string()))?;
                let pop_bytes = parse_hex::<96>(&k.proof_of_possession)
                    .map_err(|m| field(atk("proof_of_possession"), m))?;
                let pop = Signature::from_bytes(&pop_bytes)
                    .map_err(|e| field(atk("proof_of_possession"), e.to_string()))?;
                if !pk.verify_possession(&pop) {
                    return Err(field(
                        atk("proof_of_possession"),
                        "does not prove possession of public_key",
                    ));
                }
                if !seen_keys.insert(pk_bytes) {
                    return Err(field(
                        atk("public_key"),
                        "key appears twice in the committee",
                    ));
                }
            }
        }
        Ok(())
    }

    /// keccak256 of the canonical JSON form.
    pub fn hash(&self) -> B256 {
        keccak256(serde_json::to_vec(self).expect("spec serializes"))
    }

    /// The genesis allocation as state changes (what block 0's state holds).
    pub fn genesis_state(&self) -> crate::changes::StateChanges {
        let mut changes = crate::changes::StateChanges::default();
        for (address, acc) in &self.alloc {
            let code_hash = if acc.code.is_empty() {
                crate::types::EMPTY_CODE_HASH
            } else {
                let h = keccak256(&acc.code);
                changes.codes.insert(h, acc.code.clone());
                h
            };
            changes.accounts.insert(
                *address,
                Some(crate::changes::AccountInfoLite {
                    nonce: acc.nonce,
                    balance: acc.balance,
                    code_hash,
                }),
            );
            if !acc.storage.is_empty() {
                changes
                    .storage
                    .insert(*address, acc.storage.clone().into_iter().collect());
            }
        }
        changes
    }

    /// The state root of the genesis allocation.
    pub fn genesis_state_root(&self) -> B256 {
        use alloy_trie::root::{state_root_unhashed, storage_root_unhashed};
        use alloy_trie::TrieAccount;
        state_root_unhashed(self.alloc.iter().map(|(address, acc)| {
            let storage_root = storage_root_unhashed(
                acc.storage
                    .iter()
                    .filter(|(_, v)| !v.is_zero())
                    .map(|(k, v)| (B256::from(k.to_be_bytes::<32>()), *v)),
            );
            let code_hash = if acc.code.is_empty() {
                crate::types::EMPTY_CODE_HASH
            } else {
                keccak256(&acc.code)
            };
            (
                *address,
                TrieAccount {
                    nonce: acc.nonce,
                    balance: acc.balance,
                    storage_root,
                    code_hash,
                },
            )
        }))
    }

    /// Block 0: no transactions, the genesis allocation's state root, the spec hash in
    /// `extra_data`.
    pub fn genesis(&self) -> Block {
        let mut block = BlockTemplate {
            number: 0,
            view: 0,
            epoch: 0,
            shard: self.shard,
            parent_hash: B256::ZERO,
            timestamp_ms: self.genesis_timestamp_ms,
            leader: Address::ZERO,
            last_commit: None,
            transactions: vec![],
            vrf: Default::default(),
        }
        .build_version(crate::forks::header_version(&self.forks, 0));
        block.header.extra_data = Bytes::copy_from_slice(self.hash().as_slice());
        block.header.state_root = self.genesis_state_root();
        block
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use accel::SecretKey;

    fn key(seed: u8) -> ValidatorKey {
        let sk = SecretKey::from_ikm(&[seed; 32]).unwrap();
        ValidatorKey {
            public_key: hex::encode(sk.public_key().to_bytes()),
            proof_of_possession: hex::encode(sk.prove_possession().to_bytes()),
        }
    }

    fn spec() -> ChainSpec {
        ChainSpec {
            name: "t".into(),
            chain_id: 7,
            shard: 0,
            block_time_ms: 1000,
            blocks_per_leader: 1,
            epoch_blocks: 10,
            genesis_timestamp_ms: 1,
            forks: BTreeMap::from([("header_v2".to_string(), 5), ("staking".to_string(), 5)]),
            staking: Default::default(),
            economics: Default::default(),
            vdf: Default::default(),
            alloc: BTreeMap::new(),
            validators: (1..=2u8)
                .map(|i| Validator {
                    address: Address::repeat_byte(i),
                    voting_power: 10,
                    transport_key: hex::encode([i; 32]),
                    endpoint: "127.0.0.1:9000".parse().unwrap(),
                    bls_keys: vec![key(i)],
                })
                .collect(),
        }
    }

    #[test]
    fn toml_roundtrip_and_hash_ignores_formatting() {
        let s = spec();
        let text = s.to_toml();
        let back = ChainSpec::from_toml(&text).unwrap();
        assert_eq!(back, s);
        let reformatted = format!("# a comment\n\n{}", text.replace(" = ", "="));
        assert_eq!(ChainSpec::from_toml(&reformatted).unwrap().hash(), s.hash());
        let mut other = s.clone();
        other.chain_id = 8;
        assert_ne!(other.hash(), s.hash());
        assert_eq!(s.genesis().header.extra_data.as_ref(), s.hash().as_slice());
        assert_ne!(other.genesis().hash(), s.genesis().hash());
    }

    #[test]
    fn economics_section_parses_as_documented() {
        let text = spec().to_toml()
            + r#"
[economics]
block_reward = "7000000000000000000"
annual_issuance_cap = "441000000000000000000000000"
min_signing_rate = "0.666666666666666666"
hip30_min_commission = "0.07"
hip30_emission = { recipient = "0x00000000000000000000000000000000000000f0", share = "0.25" }
fee_collectors = [{ address = "0x00000000000000000000000000000000000000c0", share = "0.5" }]
"#;
        let parsed = ChainSpec::from_toml(&text).unwrap();
        let e = &parsed.economics;
        assert_eq!(e.block_reward, U256::from(7u128 * crate::staking::ONE));
        assert_eq!(
            e.hip30_emission.unwrap().share,
            crate::staking::Dec::percent(25)
        );
        assert_eq!(e.fee_collectors[0].share, crate::staking::Dec::percent(50));
        assert_eq!(
            e.min_signing_rate,
            crate::staking::EconomicsParams::default().min_signing_rate
        );
        // The canonical form keeps it, so the spec hash covers it.
        assert_ne!(parsed.hash(), spec().hash());
        assert_eq!(ChainSpec::from_toml(&parsed.to_toml()).unwrap(), parsed);
    }

    #[test]
    fn errors_name_the_field() {
        type Mutation = Box<dyn Fn(&mut ChainSpec)>;
        let cases: Vec<(Mutation, &str)> = vec![
            (Box::new(|s| s.chain_id = 1_666_600_000), "chain_id"),
            (Box::new(|s| s.blocks_per_leader = 0), "blocks_per_leader"),
            (
                Box::new(|s| s.validators[1].voting_power = 0),
                "validators[1].voting_power",
            ),
            (
                Box::new(|s| s.validators[0].transport_key = "xyz".into()),
                "validators[0].transport_key",
            ),
            (
                Box::new(|s| s.validators[1].transport_key = s.validators[0].transport_key.clone()),
                "validators[1].transport_key",
            ),
            (
                Box::new(|s| {
                    s.validators[1].bls_keys[0].proof_of_possession = key(9).proof_of_possession
                }),
                "validators[1].bls_keys[0].proof_of_possession",
            ),
            (
                Box::new(|s| s.validators[1].bls_keys = vec![key(1)]),
                "validators[1].bls_keys[0].public_key",
            ),
            (
                Box::new(|s| s.validators[0].bls_keys[0].public_key = "00".repeat(48)),
                "validators[0].bls_keys[0].public_key",
            ),
            (Box::new(|s| s.validators.clear()), "validators"),
            (
                Box::new(|s| {
                    s.forks.insert("warp_drive".into(), 1);
                }),
                "forks.warp_drive",
            ),
            (
                Box::new(|s| {
                    s.forks.insert(crate::forks::HEADER_V2.into(), 6);
                }),
                "forks.staking",
            ),
            (
                Box::new(|s| {
                    s.forks.insert(crate::forks::REWARDS.into(), 4);
                }),
                "forks.rewards",
            ),
            (
                Box::new(|s| {
                    s.forks.insert(crate::forks::FEE_SPLIT.into(), 0);
                }),
                "economics.fee_collectors",
            ),
            (
                Box::new(|s| {
                    let c = crate::staking::FeeCollector {
                        address: Address::repeat_byte(1),
                        share: crate::staking::Dec::percent(60),
                    };
                    s.economics.fee_collectors = vec![c, c];
                }),
                "economics.fee_collectors",
            ),
            (
                Box::new(|s| s.economics.min_signing_rate = crate::staking::Dec::percent(101)),
                "economics.min_signing_rate",
            ),
        ];
        for (mutate, field) in cases {
            let mut s = spec();
            mutate(&mut s);
            let err = s.validate().unwrap_err().to_string();
            assert!(err.contains(&format!("`{field}`")), "want {field}: {err}");
        }
        let err = ChainSpec::from_toml("chain_id = 7\nbogus = 1")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("bogus") || err.contains("missing field"),
            "{err}"
        );
    }
}
