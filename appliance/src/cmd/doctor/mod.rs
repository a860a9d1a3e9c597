//! `harmony-appliance doctor`: checks a node's setup before (or while) it runs, one line per
//! check, a fix for each failure, non-zero exit when anything failed; `--json` for automation.
//!
//! Checks that need exclusive access (the database, the guard) notice a running node and say
//! so instead of failing; the peer check then asks the running node instead of dialing.

mod checks;
mod report;

use super::Cli;
use clap::Args;
pub use report::{Finding, Status};
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Print the findings as a JSON array (check, status, detail, fix).
    #[arg(long)]
    pub json: bool,
    /// Checks to leave out (repeatable), e.g. `--skip peers --skip clock`.
    #[arg(long = "skip", value_name = "CHECK")]
    pub skip: Vec<String>,
    /// Free space the data directory's filesystem must have, in GiB (warning below twice it).
    #[arg(long, default_value_t = 20)]
    pub min_free_gib: u64,
    /// How long the peer check waits for QUIC handshakes, in milliseconds.
    #[arg(long, default_value_t = 5000)]
    pub peer_timeout_ms: u64,
}

/// Every check's name, in the order they run.
pub const CHECKS: [&str; 12] = [
    "config",
    "chain-spec",
    "database",
    "keys",
    "guard",
    "membership",
    "clock",
    "ports",
    "disk",
    "cpu",
    "gpu",
    "peers",
];

pub fn run(cli: &Cli, args: &DoctorArgs) -> eyre::Result<()> {
    for s in &args.skip {
        if !CHECKS.contains(&s.as_str()) {
            eyre::bail!(
                "--skip {s}: no such check; the checks are {}",
                CHECKS.join(", ")
            );
        }
    }
    let data_dir = cli.data_dir.clone().unwrap_or_else(|| PathBuf::from("."));
    let config = super::config_path(cli, &data_dir);
    let findings = checks::Doctor::new(data_dir, config, args).run();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&findings)?);
    } else {
        print!("{}", report::render(&findings));
    }
    let failed = findings.iter().filter(|f| f.status == Status::Fail).count();
    if failed > 0 {
        // The findings are the message; the error only sets the exit status.
        eyre::bail!("{failed} check(s) failed");
    }
    Ok(())
}
