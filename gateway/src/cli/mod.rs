//! The command line: parses arguments and starts the role asked for (gateway, sidecar, analyze, route, demo, ca, plugin).

pub mod analyze;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "meshgate",
    version,
    about = "Ingress gateway and service-mesh sidecar that speaks Istio's API"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// One variant per subcommand.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check Istio YAML for mistakes before applying it, like `istioctl analyze`.
    Analyze(analyze::AnalyzeArgs),
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Analyze(args) => analyze::run_analyze(args),
    };
    result.unwrap_or_else(|e| {
        eprintln!("meshgate: {e:#}");
        ExitCode::FAILURE
    })
}
