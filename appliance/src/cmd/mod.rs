//! Subcommands, one file each. Every subcommand takes `--data-dir` and `--config`.

pub mod config;
pub mod doctor;
pub mod hsm;
pub mod keys;
pub mod loadgen;
pub mod localnet;
pub mod run;
pub mod staking;
pub mod status;
pub mod vdf;

use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "harmony-appliance",
    version,
    about = "Harmony-style FBFT validator node for bare metal"
)]
pub struct Cli {
    /// Data directory (database, keys, chain spec). Defaults to `.` for `run` and
    /// `./localnet` for `localnet`.
    #[arg(long, global = true, env = "HARMONY_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Node config file (TOML). Defaults to `<data-dir>/config.toml` when that exists,
    /// otherwise built-in defaults.
    #[arg(long, global = true, env = "HARMONY_CONFIG")]
    pub config: Option<PathBuf>,
    /// Log format: `human`, `json` or `journald` (overrides the config's `log.format`).
    #[arg(long, global = true)]
    pub log_format: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a validator node.
    Run(run::RunArgs),
    /// Generate and run a local network of N nodes on loopback.
    Localnet(localnet::LocalnetArgs),
    /// Inspect configuration.
    #[command(subcommand)]
    Config(config::ConfigCmd),
    /// BLS keys: generate, import, list, export, proof of possession, guard history.
    #[command(subcommand)]
    Keys(keys::KeysCmd),
    /// YubiHSM 2: provisioning from a profile, read-back check, MockHsm connector.
    #[command(subcommand)]
    Hsm(hsm::HsmCmd),
    /// Class-group VDF (chiavdf-compatible): prove and verify.
    #[command(subcommand)]
    Vdf(vdf::VdfCmd),
    /// Load generator: signed ETH and ERC-20 transfers through JSON-RPC at a target rate to a
    /// running localnet; reports offered and included TPS, submit→final latency, refusals.
    Loadgen(loadgen::LoadgenArgs),
    /// Staking transactions: create-validator, edit-validator, delegate, undelegate,
    /// collect-rewards. Each is signed (operator key in the HSM, a key file, or a localnet
    /// development key), sent, and its receipt printed.
    #[command(subcommand)]
    Staking(Box<staking::StakingCmd>),
    /// Check this node's setup: config, chain spec, database, keys and guard, clock, ports,
    /// disk, CPU, GPU and peers; one line per check with a fix for each failure.
    Doctor(doctor::DoctorArgs),
    /// A live terminal screen of a running node (from its RPC): height and finality, view and
    /// leader, this node's keys' signing, peers, pool, catch-up progress. `q` quits.
    Status(status::StatusArgs),
}

/// An error and its causes on one line, leaving out a cause whose text the line holds already
/// (most errors here put their source in their own message; eyre's `{:#}` repeated it:
/// "cannot read config x: No such file or directory: No such file or directory").
pub fn describe(e: &eyre::Report) -> String {
    let mut line = e.to_string();
    for cause in e.chain().skip(1) {
        let cause = cause.to_string();
        if !line.contains(&cause) {
            line.push_str(": ");
            line.push_str(&cause);
        }
    }
    line
}

pub fn dispatch(cli: Cli) -> eyre::Result<()> {
    match &cli.command {
        Command::Run(a) => run::run(&cli, a),
        Command::Localnet(a) => localnet::run(&cli, a),
        Command::Config(c) => config::run(&cli, c),
        Command::Keys(c) => keys::run(&cli, c),
        Command::Hsm(c) => hsm::run(&cli, c),
        Command::Vdf(c) => vdf::run(c),
        Command::Loadgen(a) => loadgen::run(a.clone()),
        Command::Staking(c) => staking::run(c),
        Command::Doctor(a) => doctor::run(&cli, a),
        Command::Status(a) => status::run(a),
    }
}

/// The config file to use: `--config`, else `<data-dir>/config.toml` if present.
pub fn config_path(cli: &Cli, data_dir: &std::path::Path) -> Option<PathBuf> {
    cli.config.clone().or_else(|| {
        let p = data_dir.join("config.toml");
        p.exists().then_some(p)
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn describe_keeps_each_cause_once() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file");
        let repeated = eyre::Report::new(state::spec::SpecError::Io {
            path: "x.toml".into(),
            source: io,
        });
        assert_eq!(
            super::describe(&repeated),
            "cannot read chain spec x.toml: No such file; copy the network's chain spec there (every validator needs the identical file) or point `chain_spec` in the config at it (`localnet --generate-only` writes one for a local network)"
        );
        let wrapped = eyre::eyre!("inner cause").wrap_err("while starting");
        assert_eq!(super::describe(&wrapped), "while starting: inner cause");
    }
}
