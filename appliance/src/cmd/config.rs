//! `harmony-appliance config check`: loads the config and chain spec and explains errors.

use super::Cli;
use crate::config::{resolve, NodeConfig};
use clap::Subcommand;
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
pub enum ConfigCmd {
    /// Check the node config and the chain spec it points to; exit 1 with the reason on error.
    Check,
    /// Print the effective config (defaults filled in) as TOML.
    Show,
}

pub fn run(cli: &Cli, cmd: &ConfigCmd) -> eyre::Result<()> {
    let data_dir = cli.data_dir.clone().unwrap_or_else(|| PathBuf::from("."));
    let path = super::config_path(cli, &data_dir);
    let cfg = NodeConfig::load(path.as_deref())?;
    match cmd {
        ConfigCmd::Show => print!("{}", cfg.to_toml()),
        ConfigCmd::Check => {
            let spec_path = resolve(&data_dir, &cfg.chain_spec);
            let spec = state::ChainSpec::load(&spec_path)?;
            println!(
                "config {}: ok\nchain spec {}: ok (chain id {}, {} validators, hash {})",
                path.map(|p| p.display().to_string())
                    .unwrap_or_else(|| "<defaults>".into()),
                spec_path.display(),
                spec.chain_id,
                spec.validators.len(),
                spec.hash()
            );
        }
    }
    Ok(())
}
