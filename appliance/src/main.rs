#![forbid(unsafe_code)]
use appliance::cmd::Cli;
use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match appliance::cmd::dispatch(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", appliance::cmd::describe(&e));
            std::process::ExitCode::FAILURE
        }
    }
}
