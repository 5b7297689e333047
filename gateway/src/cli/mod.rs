//! The command line: parses arguments and starts the role asked for (gateway, sidecar, analyze, route, demo, ca, plugin).

pub mod ca;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "meshgate",
    version,
    about = "Ingress gateway and service-mesh sidecar that speaks Istio's API"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// One variant per subcommand.
#[derive(Debug, Subcommand)]
enum Command {
    /// Local mesh CA for sidecar certificates.
    Ca(ca::CaArgs),
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Ca(args) => ca::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("meshgate: {e:#}");
            ExitCode::FAILURE
        }
    }
}
