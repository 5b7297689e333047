//! `meshgate gateway`: serve every Gateway server in the config, hot-reload it, and
//! drain on SIGTERM.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;

use crate::config::{parse_duration, watch, ConfigSet, Severity};
use crate::proxy::server::{Listeners, PortMap};
use crate::proxy::{ProxyState, Role, Workload};
use crate::router::reload;
use crate::tls::CredentialStore;
use crate::upstream::ClusterManager;

#[derive(Debug, Args)]
pub struct GatewayArgs {
    /// Files or folders of Istio YAML (repeatable).
    #[arg(long = "config", required = true, num_args = 1..)]
    pub config: Vec<PathBuf>,
    /// Serve Gateway port P on local port L (`80=8080`); repeatable.
    #[arg(long = "port-map", value_parser = parse_port_map)]
    pub port_map: Vec<(u32, u16)>,
    /// Address the Gateway ports are served on.
    #[arg(long, default_value = "0.0.0.0")]
    pub bind: IpAddr,
    /// Folder of TLS credentials: `DIR/NAME/{tls.crt,tls.key,ca.crt}` for `credentialName: NAME`.
    #[arg(long)]
    pub credentials: Option<PathBuf>,
    /// Admin endpoint (`/config_dump`, `/clusters`, `/stats/prometheus`).
    #[arg(long, default_value = "127.0.0.1:15000")]
    pub admin: SocketAddr,
    /// Readiness endpoint (`/healthz/ready`).
    #[arg(long, default_value = "127.0.0.1:15021")]
    pub health: SocketAddr,
    /// Prometheus scrape endpoint (`/stats/prometheus`).
    #[arg(long, default_value = "127.0.0.1:15090")]
    pub metrics: SocketAddr,
    /// How long in-flight requests may finish after SIGTERM.
    #[arg(long = "drain-timeout", default_value = "5s", value_parser = parse_duration)]
    pub drain_timeout: Duration,
    /// Access log format on stdout: text (Istio's), json, or off.
    #[arg(long = "access-log-format", default_value = "text")]
    pub access_log_format: String,
    /// Worker threads (default: one per core).
    #[arg(long)]
    pub workers: Option<usize>,
    /// This gateway's workload name, namespace and labels (what Gateway selectors match).
    #[arg(long, default_value = "istio-ingressgateway")]
    pub name: String,
    #[arg(long, default_value = "istio-system")]
    pub namespace: String,
    #[arg(long = "label", value_parser = parse_label)]
    pub labels: Vec<(String, String)>,
    /// How often the config paths are checked for changes.
    #[arg(long = "reload-interval", default_value = "1s", value_parser = parse_duration)]
    pub reload_interval: Duration,
}

pub fn parse_port_map(s: &str) -> Result<(u32, u16), String> {
    let (g, l) = s
        .split_once('=')
        .ok_or_else(|| format!("expected GATEWAY_PORT=LOCAL_PORT, got {s:?}"))?;
    let g = g
        .trim()
        .parse()
        .map_err(|_| format!("bad gateway port in {s:?}"))?;
    let l = l
        .trim()
        .parse()
        .map_err(|_| format!("bad local port in {s:?}"))?;
    Ok((g, l))
}

pub fn parse_label(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("expected KEY=VALUE, got {s:?}"))?;
    Ok((k.to_string(), v.to_string()))
}

pub fn run(args: GatewayArgs) -> anyhow::Result<ExitCode> {
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    rt.enable_all();
    if let Some(w) = args.workers {
        rt.worker_threads(w.max(1));
    }
    rt.build()?.block_on(serve(args))
}

async fn serve(args: GatewayArgs) -> anyhow::Result<ExitCode> {
    let mut labels: crate::config::Labels = args.labels.iter().cloned().collect();
    if labels.is_empty() {
        labels.insert("istio".into(), "ingressgateway".into());
        labels.insert("app".into(), "istio-ingressgateway".into());
    }
    let workload = Workload {
        name: args.name.clone(),
        namespace: args.namespace.clone(),
        labels,
        service_account: format!("{}-service-account", args.name),
    };

    let mut version = 1;
    let built = reload::build(&args.config, &ConfigSet::default(), version);
    report(&built.diagnostics);
    let mut last_good = built.config;
    let upstream = Arc::new(ClusterManager::new());
    let state = Arc::new(ProxyState::new(
        built.snapshot,
        upstream,
        Role::Gateway,
        workload,
    ));

    let mut ports = PortMap::istio_defaults(args.bind);
    ports
        .map
        .extend(args.port_map.iter().copied().collect::<HashMap<_, _>>());
    let mut listeners = Listeners::new(state.clone(), ports, args.drain_timeout);
    if let Some(dir) = &args.credentials {
        listeners = listeners.with_credentials(CredentialStore::new(dir));
    }
    let errors = listeners.sync(&state.snapshot()).await;
    for e in &errors {
        eprintln!("error: {e}");
    }
    if listeners.addresses().is_empty() && !errors.is_empty() {
        return Ok(ExitCode::FAILURE);
    }
    for (port, addr, kind) in listeners.described() {
        eprintln!("meshgate gateway: port {port} → {addr} ({kind})");
    }

    let mut fingerprint = watch::fingerprint(&args.config);
    let mut tick = tokio::time::interval(args.reload_interval);
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
            _ = tick.tick() => {
                let now = watch::fingerprint(&args.config);
                if now == fingerprint {
                    continue;
                }
                fingerprint = now;
                version += 1;
                let built = reload::build(&args.config, &last_good, version);
                report(&built.diagnostics);
                last_good = built.config;
                let snapshot = built.snapshot;
                state.publish(snapshot);
                for e in listeners.sync(&state.snapshot()).await {
                    eprintln!("error: {e}");
                }
                tracing::info!("config version {version} applied");
            }
        }
    }
    eprintln!(
        "meshgate gateway: draining (up to {:?})",
        args.drain_timeout
    );
    listeners.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

fn report(diags: &[crate::config::Diagnostic]) {
    for d in diags {
        if d.severity >= Severity::Warning {
            eprintln!("{}: {d}", d.severity.as_str());
        }
    }
}
