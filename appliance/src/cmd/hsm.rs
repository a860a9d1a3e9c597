//! `harmony-appliance hsm ...`: the key ceremony (provisioning a YubiHSM 2 from a profile),
//! a read-back check, and a MockHsm served over the yubihsm-connector HTTP protocol.

use super::Cli;
use crate::config::{resolve, NodeConfig};
use clap::{Args, Subcommand};
use eyre::{bail, eyre};
use hsm::yubi::{self, Profile};
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
pub enum HsmCmd {
    /// Serve a MockHsm (development and tests only) over the yubihsm-connector HTTP protocol.
    MockConnector {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:12345")]
        listen: String,
    },
    /// Provision a device from a declarative profile (idempotent).
    Setup(SetupArgs),
    /// Read back the node's objects and compare them with the profile.
    Check {
        /// Profile to compare with; defaults to `keys.hsm_profile` or the built-in default.
        #[arg(long)]
        profile: Option<PathBuf>,
    },
}

#[derive(Debug, Args)]
pub struct SetupArgs {
    /// Provisioning profile (TOML), e.g. firmware-config/yubihsm/default.toml. Without it the
    /// built-in default profile is used.
    #[arg(long)]
    pub profile: Option<PathBuf>,
    /// `usb` or `http://host:port`; defaults to `keys.hsm_connector`.
    #[arg(long)]
    pub connector: Option<String>,
    /// Authentication key to provision with: 1 (factory key) on a new device, the admin
    /// role's key afterwards.
    #[arg(long, default_value_t = 1)]
    pub auth_key_id: u16,
    /// File holding that key's password (mode 0600). Without it, key 1 uses the factory
    /// password `password`.
    #[arg(long)]
    pub password_file: Option<PathBuf>,
    /// Where new role passwords and new wrap key material are written (mode 0600).
    /// Defaults to `<data-dir>/hsm-secrets`.
    #[arg(long)]
    pub secrets_dir: Option<PathBuf>,
    /// Hex file with the 32-byte wrap key shared with the backup device (see docs/hsm.md).
    /// Without it a new wrap key is generated and written to the secrets directory.
    #[arg(long)]
    pub wrap_key_file: Option<PathBuf>,
    /// Provision a device that already holds objects the profile does not name, and replace
    /// objects that differ from the profile.
    #[arg(long)]
    pub force: bool,
}

pub fn run(cli: &Cli, cmd: &HsmCmd) -> eyre::Result<()> {
    super::keys::no_core_dumps();
    let data_dir = cli.data_dir.clone().unwrap_or_else(|| PathBuf::from("."));
    let cfg = NodeConfig::load(super::config_path(cli, &data_dir).as_deref())?;
    match cmd {
        HsmCmd::MockConnector { listen } => {
            let (addr, port) = listen
                .rsplit_once(':')
                .and_then(|(a, p)| Some((a, p.parse::<u16>().ok()?)))
                .ok_or_else(|| eyre!("--listen `{listen}` is not host:port"))?;
            yubi::serve_mock(addr, port, || {
                println!(
                    "MockHsm connector on http://{addr}:{port} (development only; state is lost when this process ends)"
                );
                use std::io::Write;
                let _ = std::io::stdout().flush();
            })?;
            Ok(())
        }
        HsmCmd::Setup(a) => {
            let profile = match &a.profile {
                Some(p) => Profile::load(p)?,
                None => Profile::default_profile(),
            };
            let connector = a
                .connector
                .clone()
                .unwrap_or_else(|| cfg.keys.hsm_connector.clone());
            let pw = match &a.password_file {
                Some(p) => hsm::keystore::read_password_file(p).map_err(|e| eyre!(e))?,
                None if a.auth_key_id == 1 => zeroize::Zeroizing::new("password".to_string()),
                None => bail!(
                    "--password-file is required for authentication key {}",
                    a.auth_key_id
                ),
            };
            let client = yubi::open(&connector, a.auth_key_id, pw.as_bytes())?;
            let secrets = a
                .secrets_dir
                .clone()
                .unwrap_or_else(|| data_dir.join("hsm-secrets"));
            let wrap = match &a.wrap_key_file {
                Some(p) => Some(hsm::keystore::read_password_file(p).map_err(|e| eyre!(e))?),
                None => None,
            };
            let done = yubi::setup(
                &client,
                &profile,
                &secrets,
                wrap.as_ref().map(|w| w.as_str()),
                a.force,
            )?;
            println!("provisioned {connector} with profile `{}`:", profile.name);
            for line in &done {
                println!("  {line}");
            }
            // Hand the node its (validator) password if this data dir has none yet.
            let vpw = secrets.join("validator-password");
            let dest = resolve(&data_dir, &cfg.keys.hsm_password_file);
            if vpw.exists() && !dest.exists() {
                if let Some(parent) = dest.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                let text = zeroize::Zeroizing::new(std::fs::read(&vpw)?);
                hsm::keystore::write_private(&dest, &text)?;
                println!("  validator password installed at {}", dest.display());
            }
            let transport =
                yubi::HsmEd25519Key::open(std::sync::Arc::new(client), profile.transport_key.id)?;
            println!(
                "transport public key (for the chain spec): {}",
                hex::encode(transport.public_key())
            );
            Ok(())
        }
        HsmCmd::Check { profile } => {
            let k = &cfg.keys;
            let profile = match profile {
                Some(p) => Profile::load(p)?,
                None if k.hsm_profile.as_os_str().is_empty() => Profile::default_profile(),
                None => Profile::load(&resolve(&data_dir, &k.hsm_profile))?,
            };
            let pw = hsm::keystore::read_password_file(&resolve(&data_dir, &k.hsm_password_file))
                .map_err(|e| eyre!(e))?;
            let client = yubi::open(&k.hsm_connector, k.hsm_auth_key_id, pw.as_bytes())?;
            yubi::check_device(&client, &profile, k.hsm_auth_key_id)?;
            println!(
                "{}: every object matches profile `{}`{}",
                k.hsm_connector,
                profile.name,
                if yubi::is_mock(&client)? {
                    " (MockHsm)"
                } else {
                    ""
                }
            );
            Ok(())
        }
    }
}
