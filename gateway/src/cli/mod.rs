//! The command line: parses arguments and starts the role asked for (gateway, sidecar, analyze, route, demo, ca, plugin).

pub mod analyze;
pub mod ca;
pub mod demo;
pub mod gateway;
pub mod logging;
pub mod plugin;
pub mod route;
pub mod runtime;
pub mod sidecar;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "meshgate",
    version,
    about = "Ingress gateway and service-mesh sidecar that speaks Istio's API"
)]
pub struct Cli {
    /// Log filter: LEVEL or LEVEL,target=LEVEL (off, error, warn, info, debug, trace).
    /// Defaults to $MESHGATE_LOG, then $RUST_LOG, then `warn`, as Istio's proxies do.
    #[arg(long, global = true, value_name = "FILTER")]
    pub log_level: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

/// One variant per subcommand; each owns its arguments in `cli/<name>.rs`.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the Gateway servers in the config as Istio's ingress gateway would.
    Gateway(gateway::GatewayArgs),
    /// The temperature demo on this machine: gateway, two services, sidecars with mTLS.
    Demo(demo::DemoArgs),
    /// Run a workload's sidecar: inbound mesh mTLS to the app, outbound routing with mTLS.
    Sidecar(sidecar::SidecarArgs),
    /// Validate Istio config like `istioctl analyze`; non-zero exit on errors.
    Analyze(analyze::AnalyzeArgs),
    /// Explain which server, virtual host, rule and destination a request takes, and why.
    Route(route::RouteArgs),
    /// Local mesh CA for sidecar certificates.
    Ca(ca::CaArgs),
    /// Write, build and check proxy-wasm plugins: `new`, `build`, `check`.
    Plugin(plugin::PluginArgs),
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(e) = logging::init(cli.log_level.as_deref()) {
        eprintln!("meshgate: {e:#}");
        return ExitCode::from(2);
    }
    let result = match cli.command {
        Command::Gateway(args) => gateway::run(args),
        Command::Demo(args) => demo::run(args),
        Command::Sidecar(args) => sidecar::run(args),
        Command::Analyze(args) => analyze::run_analyze(&args),
        Command::Route(args) => route::run(args),
        Command::Ca(args) => ca::run(args),
        Command::Plugin(args) => plugin::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("meshgate: {e:#}");
            ExitCode::from(2)
        }
    }
}
