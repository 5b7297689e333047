//! `meshgate route`: load the config, compile it as the gateway would, and explain
//! one request. Exit 0 when routed, 1 on 404 NR, 2 on config errors.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::config::{load_paths, Severity};
use crate::router::explain::{explain, RouteQuery};
use crate::router::{compile, Compiled};

#[derive(Debug, Args)]
pub struct RouteArgs {
    /// Config file or folder of YAML (repeat the flag, or separate with commas).
    #[arg(
        long = "config",
        short = 'c',
        value_name = "PATH",
        required = true,
        value_delimiter = ','
    )]
    pub config: Vec<PathBuf>,
    /// Request header, `name: value` (repeatable). `Host:` overrides the URL's host.
    #[arg(short = 'H', long = "header", value_name = "HEADER")]
    pub headers: Vec<String>,
    /// Gateway server port the request arrives on (default: the URL's port, else 80 / 443).
    #[arg(long)]
    pub port: Option<u32>,
    /// TLS server name (default: the URL's host for https).
    #[arg(long)]
    pub sni: Option<String>,
    /// Route as a sidecar does (VirtualServices bound to `mesh`) instead of a gateway.
    #[arg(long)]
    pub mesh: bool,
    /// The caller's namespace (short host names resolve in it; `sourceNamespace`).
    #[arg(long, value_name = "NS")]
    pub source_namespace: Option<String>,
    /// HTTP method, e.g. GET.
    pub method: String,
    /// http://host[:port]/path?query
    pub url: String,
}

pub fn run(args: RouteArgs) -> anyhow::Result<ExitCode> {
    let mut query = match RouteQuery::parse(&args.method, &args.url, &args.headers, args.port) {
        Ok(q) => q,
        Err(e) => {
            eprintln!("meshgate route: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    if args.sni.is_some() {
        query.sni = args.sni;
    }
    query.mesh = args.mesh;
    query.source_namespace = args.source_namespace;

    let loaded = load_paths(&args.config);
    let Compiled { snapshot, rejected } = compile(&loaded.config, 1);
    let mut errors = 0;
    for d in loaded.diagnostics.iter().chain(rejected.iter()) {
        if d.severity >= Severity::Warning {
            eprintln!("{}: {d}", d.severity.as_str());
        }
        if d.is_error() {
            errors += 1;
        }
    }
    let result = explain(&snapshot, &loaded.config, &query);
    print!("{}", result.text);
    Ok(ExitCode::from(if errors > 0 {
        2
    } else if result.routed {
        0
    } else {
        1
    }))
}
