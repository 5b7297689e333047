//! `meshgate gateway`: serve every Gateway server in the config, hot-reload it, and
//! drain on SIGTERM.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;

use std::sync::Mutex;

use super::runtime::{
    access_log, record_reload, runtime, shutdown_signal, start_admin, ConfigWatcher,
};
use crate::admin::Readiness;
use crate::config::parse_duration;
use crate::mesh::upstream::MeshTlsConnector;
use crate::mesh::{SpiffeId, WorkloadCerts};
use crate::proxy::admin_state::{ProxyAdmin, ReloadStatus};
use crate::proxy::server::{Listeners, PortMap};
use crate::proxy::telemetry::ProxyTelemetry;
use crate::proxy::{ProxyState, Role, Workload};
use crate::telemetry::Metrics;
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
    /// Mesh CA folder (`meshgate ca init`): gives the gateway a mesh identity for
    /// ISTIO_MUTUAL towards sidecars.
    #[arg(long)]
    pub ca: Option<PathBuf>,
    /// Lifetime of the mesh workload certificate (renewed at half-life).
    #[arg(long = "cert-lifetime", default_value = "24h", value_parser = parse_duration)]
    pub cert_lifetime: Duration,
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
    runtime(args.workers)?.block_on(serve(args))
}

async fn serve(args: GatewayArgs) -> anyhow::Result<ExitCode> {
    let mut labels: crate::config::Labels = args.labels.iter().cloned().collect();
    if labels.is_empty() {
        labels.insert("istio".into(), "ingressgateway".into());
        labels.insert("app".into(), "istio-ingressgateway".into());
    }
    let service_account = format!("{}-service-account", args.name);
    let workload = Workload {
        name: args.name.clone(),
        namespace: args.namespace.clone(),
        labels,
        service_account,
    };

    let (mut watcher, built) = ConfigWatcher::start(args.config.clone(), args.reload_interval);
    let reload = Arc::new(Mutex::new(ReloadStatus::from_diagnostics(
        1,
        &built.diagnostics,
    )));
    let metrics = Arc::new(Metrics::new(env!("CARGO_PKG_VERSION")));
    metrics.proxy.config_applied(1);
    metrics.add_extra(Arc::new(crate::proxy::telemetry::WasmPluginMetrics));
    let log = access_log(&args.access_log_format, &metrics)?;
    let log_handle = log.as_ref().map(|l| l.0.clone());
    let telemetry = ProxyTelemetry::new(
        metrics.clone(),
        Role::Gateway,
        &workload,
        &workload.name,
        log_handle,
    );
    let upstream = Arc::new(ClusterManager::with_tls_connector(upstream_tls(
        &args, &workload,
    )?));
    metrics.add_proxy_source(upstream.clone());
    let state = ProxyState::new(built.snapshot, upstream, Role::Gateway, workload)
        .with_telemetry(Arc::new(telemetry));
    let state = Arc::new(state);
    state.refresh_plugins();
    let readiness = Readiness::new();
    let admin_state = Arc::new(ProxyAdmin {
        state: state.clone(),
        reload: reload.clone(),
    });
    let _admin = start_admin(
        args.admin,
        args.health,
        args.metrics,
        metrics.clone(),
        readiness.clone(),
        admin_state,
    )?;

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
    // Ready means serving: every listener is open and the loaded config is live.
    readiness.set_ready(true);
    let signal = shutdown_signal();
    tokio::pin!(signal);
    loop {
        tokio::select! {
            _ = &mut signal => break,
            built = watcher.changed() => {
                record_reload(&metrics, &reload, watcher.version, &built.diagnostics);
                state.publish(built.snapshot);
                state.refresh_plugins();
                for e in listeners.sync(&state.snapshot()).await {
                    eprintln!("error: {e}");
                }
                tracing::info!("config version {} applied", watcher.version);
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

/// TLS towards upstreams: mesh mTLS when a mesh CA is given, credential files always.
fn upstream_tls(args: &GatewayArgs, workload: &Workload) -> anyhow::Result<Arc<MeshTlsConnector>> {
    let certs = match &args.ca {
        Some(dir) => {
            let id = SpiffeId::in_cluster(&workload.namespace, &workload.service_account)?;
            let certs = WorkloadCerts::from_ca_dir(dir, id, args.cert_lifetime)?;
            std::mem::forget(certs.spawn_renewal());
            Some(certs)
        }
        None => None,
    };
    let store = match &args.credentials {
        Some(dir) => CredentialStore::new(dir.clone()),
        None => CredentialStore::without_root(),
    };
    Ok(Arc::new(MeshTlsConnector::new(certs, store)))
}
