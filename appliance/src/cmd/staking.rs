//! `harmony-appliance staking …`: build, sign and send staking transactions (CreateValidator,
//! EditValidator, Delegate, Undelegate, CollectRewards), print the transaction hash, then wait
//! for the receipt and print it.
//!
//! The sender signs with its secp256k1 key:
//! - `--hsm-connector …`: the operator key inside a YubiHSM 2 (or MockHsm), which never leaves
//!   it: the HSM signs the transaction hash;
//! - `--key-file PATH`: a hex private key in a file readable by the owner only;
//! - `--dev-account N`: a public development key of `localnet` (refused on other chains).
//!
//! The node that receives the transaction relays it to the committee, so one `--rpc` is
//! enough; giving several sends it to each (useful when one may be down).

use alloy_primitives::{keccak256, Address, Signature, B256, U256};
use alloy_signer::SignerSync;
use alloy_signer_local::PrivateKeySigner;
use clap::{Args, Subcommand};
use eyre::{bail, eyre, WrapErr};
use jsonrpsee::core::client::ClientT;
use jsonrpsee::http_client::{HttpClient, HttpClientBuilder};
use jsonrpsee::rpc_params;
use serde_json::Value;
use state::staking::*;
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Subcommand)]
pub enum StakingCmd {
    /// Register a validator: its BLS keys (with proofs of possession), commission, limits,
    /// transport key and endpoint, and the self-delegation.
    CreateValidator(CreateArgs),
    /// Change a validator: description, commission rate, limits, keys, status, endpoint.
    EditValidator(EditArgs),
    /// Delegate stake to a validator.
    Delegate(DelegateArgs),
    /// Undelegate stake (locked for the undelegation period, then paid out).
    Undelegate(DelegateArgs),
    /// Collect accumulated rewards of every delegation.
    CollectRewards(CommonArgs),
}

#[derive(Debug, Clone, Args)]
pub struct CommonArgs {
    /// JSON-RPC endpoint(s) of nodes; repeat to send to several.
    #[arg(long, default_value = "http://127.0.0.1:9500")]
    pub rpc: Vec<String>,
    /// Sign with the public development key N of `localnet` (localnet only).
    #[arg(long, conflicts_with_all = ["key_file", "hsm_connector"])]
    pub dev_account: Option<u32>,
    /// Sign with the hex secp256k1 private key in this file (mode 0600 or stricter).
    #[arg(long, conflicts_with = "hsm_connector")]
    pub key_file: Option<PathBuf>,
    /// Sign with the operator key in a YubiHSM 2: `usb` or `http://host:port`.
    #[arg(long)]
    pub hsm_connector: Option<String>,
    /// Authentication key of the HSM session (the profile's `operator` role).
    #[arg(long, default_value_t = 3)]
    pub hsm_auth_key_id: u16,
    /// File holding that authentication key's password.
    #[arg(long)]
    pub hsm_password_file: Option<PathBuf>,
    /// Object id of the secp256k1 operator key (the profile's `operator_key`).
    #[arg(long)]
    pub operator_key_id: Option<u16>,
    /// Gas price in wei (default: the node's `eth_gasPrice`).
    #[arg(long)]
    pub gas_price: Option<u128>,
    /// Seconds to wait for the receipt (0: print the hash and return).
    #[arg(long, default_value_t = 120)]
    pub wait_s: u64,
}

/// A validator's description (Harmony's limits: 140 bytes, details 280). In an edit, a field
/// left empty keeps its value.
#[derive(Debug, Clone, Args)]
pub struct DescriptionArgs {
    #[arg(long, default_value = "")]
    pub name: String,
    #[arg(long, default_value = "")]
    pub identity: String,
    #[arg(long, default_value = "")]
    pub website: String,
    #[arg(long, default_value = "")]
    pub security_contact: String,
    #[arg(long, default_value = "")]
    pub details: String,
}

impl DescriptionArgs {
    fn to_description(&self) -> Description {
        Description {
            name: self.name.clone(),
            identity: self.identity.clone(),
            website: self.website.clone(),
            security_contact: self.security_contact.clone(),
            details: self.details.clone(),
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct CreateArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// BLS public key and its proof of possession, `0xPUBKEY:0xPOP` (`keys pop` prints
    /// both); repeat for each key.
    #[arg(long = "bls-key", required = true)]
    pub bls_keys: Vec<String>,
    #[command(flatten)]
    pub description: DescriptionArgs,
    /// Commission rate, e.g. 0.1.
    #[arg(long)]
    pub rate: Dec,
    #[arg(long)]
    pub max_rate: Dec,
    #[arg(long)]
    pub max_change_rate: Dec,
    /// Minimum self-delegation, in ONE.
    #[arg(long)]
    pub min_self_delegation: u64,
    /// Maximum total delegation, in ONE.
    #[arg(long)]
    pub max_total_delegation: u64,
    /// Self-delegation, in ONE.
    #[arg(long)]
    pub amount: u64,
    /// Hex Ed25519 public key of the node's QUIC identity (`harmony-appliance keys transport`).
    #[arg(long)]
    pub transport_key: B256,
    /// `host:port` the node accepts QUIC on.
    #[arg(long)]
    pub endpoint: String,
}

#[derive(Debug, Clone, Args)]
pub struct EditArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub description: DescriptionArgs,
    #[arg(long)]
    pub rate: Option<Dec>,
    /// In ONE.
    #[arg(long)]
    pub min_self_delegation: Option<u64>,
    /// In ONE.
    #[arg(long)]
    pub max_total_delegation: Option<u64>,
    /// BLS public key to remove (hex).
    #[arg(long)]
    pub remove_bls_key: Option<BlsKey>,
    /// BLS key to add, `0xPUBKEY:0xPOP`.
    #[arg(long)]
    pub add_bls_key: Option<String>,
    /// `active` or `inactive`.
    #[arg(long)]
    pub status: Option<String>,
    #[arg(long)]
    pub transport_key: Option<B256>,
    #[arg(long)]
    pub endpoint: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct DelegateArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// The validator's operator address.
    #[arg(long)]
    pub validator: Address,
    /// Amount in ONE.
    #[arg(long)]
    pub amount: u64,
}

fn one(n: u64) -> U256 {
    U256::from(n) * U256::from(ONE)
}

fn key_with_pop(s: &str) -> eyre::Result<(BlsKey, BlsSig)> {
    let (k, p) = s
        .split_once(':')
        .ok_or_else(|| eyre!("`{s}` is not 0xPUBKEY:0xPOP (see `harmony-appliance keys pop`)"))?;
    Ok((
        k.parse()
            .wrap_err_with(|| format!("BLS public key `{k}`"))?,
        p.parse()
            .wrap_err_with(|| format!("proof of possession `{p}`"))?,
    ))
}

/// Who signs: a local key, or the operator key in an HSM.
enum Sender {
    Local(PrivateKeySigner),
    Hsm {
        client: hsm::yubi::Client,
        key_id: u16,
        address: Address,
    },
}

impl Sender {
    fn open(a: &CommonArgs, chain_id: u64) -> eyre::Result<Self> {
        if let Some(i) = a.dev_account {
            if chain_id != super::localnet::LOCALNET_CHAIN_ID {
                bail!(
                    "--dev-account keys are public: refused on chain {chain_id} (localnet is {})",
                    super::localnet::LOCALNET_CHAIN_ID
                );
            }
            let accounts = super::localnet::dev_accounts()?;
            let (_, key) = accounts
                .get(i as usize)
                .ok_or_else(|| eyre!("there are {} development accounts", accounts.len()))?;
            return Ok(Self::Local(PrivateKeySigner::from_bytes(key)?));
        }
        if let Some(path) = &a.key_file {
            hsm::check_private(path).map_err(|e| eyre!(e))?;
            let text = std::fs::read_to_string(path)
                .wrap_err_with(|| format!("reading {}", path.display()))?;
            let signer: PrivateKeySigner = text.trim().parse().wrap_err_with(|| {
                format!("{} must hold a hex secp256k1 private key", path.display())
            })?;
            return Ok(Self::Local(signer));
        }
        let Some(connector) = &a.hsm_connector else {
            bail!("choose a signer: --hsm-connector (operator key in the HSM), --key-file, or --dev-account (localnet)");
        };
        let pw_file = a
            .hsm_password_file
            .as_ref()
            .ok_or_else(|| eyre!("--hsm-password-file is needed with --hsm-connector"))?;
        let key_id = a
            .operator_key_id
            .unwrap_or(hsm::yubi::Profile::default_profile().operator_key.id);
        let pw = hsm::keystore::read_password_file(pw_file).map_err(|e| eyre!(e))?;
        let client = hsm::yubi::open(connector, a.hsm_auth_key_id, pw.trim().as_bytes())?;
        let public = hsm::yubi::operator_public_key(&client, key_id)?;
        let address = Address::from_slice(&keccak256(&public[1..])[12..]);
        Ok(Self::Hsm {
            client,
            key_id,
            address,
        })
    }

    fn address(&self) -> Address {
        match self {
            Self::Local(s) => s.address(),
            Self::Hsm { address, .. } => *address,
        }
    }

    fn sign(&self, hash: &B256) -> eyre::Result<Signature> {
        match self {
            Self::Local(s) => Ok(s.sign_hash_sync(hash)?),
            Self::Hsm {
                client,
                key_id,
                address,
            } => {
                let der = client
                    .sign_ecdsa_prehash_raw(*key_id, hash.to_vec())
                    .map_err(|e| eyre!("the HSM refused to sign with key 0x{key_id:04x}: {e}"))?;
                let (r, s) = parse_der(&der)?;
                // The HSM gives no recovery id and may give a high s: normalize (EIP-2),
                // then keep the parity that recovers the operator's address.
                let sig = Signature::new(r, s, false);
                let sig = sig.normalize_s().unwrap_or(sig);
                [false, true]
                    .into_iter()
                    .map(|p| sig.with_parity(p))
                    .find(|c| c.recover_address_from_prehash(hash).ok() == Some(*address))
                    .ok_or_else(|| {
                        eyre!("the HSM's signature does not recover the operator address")
                    })
            }
        }
    }
}

/// (r, s) of a DER `SEQUENCE { INTEGER r, INTEGER s }`.
fn parse_der(der: &[u8]) -> eyre::Result<(U256, U256)> {
    let bad = || eyre!("the HSM returned a malformed ECDSA signature");
    let body = match der {
        [0x30, len, rest @ ..] if *len as usize == rest.len() => rest,
        _ => return Err(bad()),
    };
    let mut rest = body;
    let mut ints = Vec::new();
    while let [0x02, len, tail @ ..] = rest {
        let len = *len as usize;
        if tail.len() < len || len > 33 {
            return Err(bad());
        }
        // DER integers carry a leading zero when the top bit is set: 33 bytes for 256 bits.
        let digits = &tail[..len];
        let digits = &digits[digits.iter().take_while(|b| **b == 0).count()..];
        if digits.len() > 32 {
            return Err(bad());
        }
        ints.push(U256::from_be_slice(digits));
        rest = &tail[len..];
    }
    match (ints.as_slice(), rest.is_empty()) {
        ([r, s], true) => Ok((*r, *s)),
        _ => Err(bad()),
    }
}

fn common(cmd: &StakingCmd) -> &CommonArgs {
    match cmd {
        StakingCmd::CreateValidator(a) => &a.common,
        StakingCmd::EditValidator(a) => &a.common,
        StakingCmd::Delegate(a) | StakingCmd::Undelegate(a) => &a.common,
        StakingCmd::CollectRewards(a) => a,
    }
}

fn message(cmd: &StakingCmd, me: Address) -> eyre::Result<StakeMsg> {
    Ok(match cmd {
        StakingCmd::CreateValidator(a) => {
            let keys = a
                .bls_keys
                .iter()
                .map(|s| key_with_pop(s))
                .collect::<eyre::Result<Vec<_>>>()?;
            StakeMsg::CreateValidator(CreateValidator {
                validator_address: me,
                description: a.description.to_description(),
                commission_rates: CommissionRates {
                    rate: a.rate,
                    max_rate: a.max_rate,
                    max_change_rate: a.max_change_rate,
                },
                min_self_delegation: one(a.min_self_delegation),
                max_total_delegation: one(a.max_total_delegation),
                slot_pub_keys: keys.iter().map(|k| k.0).collect(),
                slot_key_sigs: keys.iter().map(|k| k.1).collect(),
                amount: one(a.amount),
                transport_key: a.transport_key,
                endpoint: a.endpoint.clone(),
            })
        }
        StakingCmd::EditValidator(a) => {
            let add = a.add_bls_key.as_deref().map(key_with_pop).transpose()?;
            let status = match a.status.as_deref() {
                None => None,
                Some("active") => Some(ValidatorStatus::Active),
                Some("inactive") => Some(ValidatorStatus::Inactive),
                Some(s) => bail!("--status must be `active` or `inactive`, not `{s}`"),
            };
            StakeMsg::EditValidator(EditValidator {
                validator_address: me,
                description: a.description.to_description(),
                commission_rate: Opt(a.rate),
                min_self_delegation: Opt(a.min_self_delegation.map(one)),
                max_total_delegation: Opt(a.max_total_delegation.map(one)),
                slot_key_to_remove: Opt(a.remove_bls_key),
                slot_key_to_add: Opt(add.map(|k| k.0)),
                slot_key_to_add_sig: Opt(add.map(|k| k.1)),
                status: Opt(status),
                transport_key: Opt(a.transport_key),
                endpoint: Opt(a.endpoint.clone()),
            })
        }
        StakingCmd::Delegate(a) => StakeMsg::Delegate(Delegate {
            delegator_address: me,
            validator_address: a.validator,
            amount: one(a.amount),
        }),
        StakingCmd::Undelegate(a) => StakeMsg::Undelegate(Undelegate {
            delegator_address: me,
            validator_address: a.validator,
            amount: one(a.amount),
        }),
        StakingCmd::CollectRewards(_) => StakeMsg::CollectRewards(CollectRewards {
            delegator_address: me,
        }),
    })
}

fn quantity(v: &Value) -> eyre::Result<u128> {
    let s = v
        .as_str()
        .ok_or_else(|| eyre!("expected a hex quantity, got {v}"))?;
    Ok(u128::from_str_radix(s.trim_start_matches("0x"), 16)?)
}

pub fn run(cmd: &StakingCmd) -> eyre::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(run_async(cmd))
}

async fn run_async(cmd: &StakingCmd) -> eyre::Result<()> {
    let a = common(cmd);
    let clients: Vec<(String, HttpClient)> = a
        .rpc
        .iter()
        .map(|u| {
            HttpClientBuilder::default()
                .request_timeout(Duration::from_secs(10))
                .build(u)
                .map(|c| (u.clone(), c))
                .wrap_err_with(|| format!("RPC endpoint `{u}`"))
        })
        .collect::<eyre::Result<_>>()?;
    let (first_url, first) = &clients[0];
    let ask = |what: &'static str| {
        move |e: jsonrpsee::core::client::Error| eyre!("{what} from {first_url}: {e}")
    };
    let chain_id = quantity(
        &first
            .request::<Value, _>("eth_chainId", rpc_params![])
            .await
            .map_err(ask("eth_chainId"))?,
    )? as u64;
    let sender = Sender::open(a, chain_id)?;
    let me = sender.address();
    let nonce = quantity(
        &first
            .request::<Value, _>("eth_getTransactionCount", rpc_params![me, "latest"])
            .await
            .map_err(ask("eth_getTransactionCount"))?,
    )? as u64;
    let gas_price = match a.gas_price {
        Some(p) => p,
        None => quantity(
            &first
                .request::<Value, _>("eth_gasPrice", rpc_params![])
                .await
                .map_err(ask("eth_gasPrice"))?,
        )?,
    };
    let msg = message(cmd, me)?;
    let gas_limit = match msg {
        StakeMsg::CreateValidator(_) => 6_000_000,
        _ => 100_000,
    };
    let tx = StakingTx {
        msg,
        nonce,
        gas_price,
        gas_limit,
    };
    let sig = sender.sign(&tx.signing_hash(chain_id))?;
    let raw = tx.encode_signed(chain_id, &sig);
    let mut hash = None;
    let mut errors = Vec::new();
    for (url, c) in &clients {
        match c
            .request::<B256, _>("hmy_sendRawStakingTransaction", rpc_params![raw.clone()])
            .await
        {
            Ok(h) => hash = Some(h),
            Err(e) => errors.push(format!("{url}: {e}")),
        }
    }
    let Some(hash) = hash else {
        bail!(
            "no node accepted the transaction:\n  {}",
            errors.join("\n  ")
        );
    };
    for e in &errors {
        eprintln!("warning: {e}");
    }
    println!("{hash}");
    if a.wait_s == 0 {
        return Ok(());
    }
    let deadline = Instant::now() + Duration::from_secs(a.wait_s);
    loop {
        let r: Value = first
            .request("hmy_getStakingTransactionReceipt", rpc_params![hash])
            .await
            .map_err(ask("hmy_getStakingTransactionReceipt"))?;
        if !r.is_null() {
            println!("{}", serde_json::to_string_pretty(&r)?);
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "no receipt after {} s: the transaction is still waiting in the pools (check \
                 the nodes' logs for `staking transaction left out`), or the node was not \
                 connected to the committee; try again with more --rpc endpoints",
                a.wait_s
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_signatures_parse_and_malformed_ones_are_refused() {
        // r = 1, s = 0x80 (a leading zero keeps it positive).
        let der = [0x30, 0x07, 0x02, 0x01, 0x01, 0x02, 0x02, 0x00, 0x80];
        assert_eq!(parse_der(&der).unwrap(), (U256::from(1), U256::from(0x80)));
        // 33-byte integers (a 256-bit value with its sign byte) are the common case.
        let mut der = vec![0x30, 0x46, 0x02, 0x21, 0x00];
        der.extend([0xff; 32]);
        der.extend([0x02, 0x21, 0x00]);
        der.extend([0x80; 32]);
        let (r, s) = parse_der(&der).unwrap();
        assert_eq!(r, U256::MAX);
        assert_eq!(s.to_be_bytes::<32>(), [0x80; 32]);
        for bad in [
            &[0x30, 0x03, 0x02, 0x01][..],
            &[0x31, 0x03, 0x02, 0x01, 0x01][..],
            &[0x30, 0x03, 0x02, 0x01, 0x01][..],
        ] {
            assert!(parse_der(bad).is_err(), "{bad:?}");
        }
        assert!(key_with_pop("0x00").is_err());
    }
}
