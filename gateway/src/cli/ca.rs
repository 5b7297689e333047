//! `meshgate ca ...`: the local mesh CA that signs sidecar certificates.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use crate::mesh::{init_ca, CaInitOptions, CA_KEY_FILE, DEFAULT_TRUST_DOMAIN, ROOT_CERT_FILE};

#[derive(Debug, clap::Args)]
pub struct CaArgs {
    #[command(subcommand)]
    pub command: CaCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum CaCommand {
    /// Write a new root CA (root-cert.pem, ca-key.pem) into DIR.
    Init(CaInitArgs),
}

#[derive(Debug, clap::Args)]
pub struct CaInitArgs {
    /// Folder to write the CA into (created if missing).
    pub dir: PathBuf,
    /// Trust domain of the workload identities (spiffe://TRUST_DOMAIN/ns/NS/sa/SA).
    #[arg(long, default_value = DEFAULT_TRUST_DOMAIN)]
    pub trust_domain: String,
    /// Validity of the root certificate, in days.
    #[arg(long, default_value_t = 3650, value_parser = clap::value_parser!(u32).range(1..=36500))]
    pub days: u32,
    /// Replace a CA already in DIR (every workload certificate must then be re-issued).
    #[arg(long)]
    pub force: bool,
}

pub fn run(args: CaArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        CaCommand::Init(init) => run_init(init),
    }
}

fn run_init(args: CaInitArgs) -> anyhow::Result<ExitCode> {
    let opts = CaInitOptions {
        trust_domain: args.trust_domain,
        validity: Duration::from_secs(u64::from(args.days) * 24 * 3600),
        force: args.force,
    };
    let ca = init_ca(&args.dir, &opts)?;
    let days_left = ca
        .not_after()
        .duration_since(SystemTime::now())
        .unwrap_or_default()
        .as_secs()
        / 86_400;
    println!(
        "wrote {} and {} (mode 0600): ECDSA P-256 root CA for trust domain {}, valid for {} days",
        args.dir.join(ROOT_CERT_FILE).display(),
        args.dir.join(CA_KEY_FILE).display(),
        ca.trust_domain(),
        days_left
    );
    Ok(ExitCode::SUCCESS)
}
