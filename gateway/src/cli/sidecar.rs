//! `meshgate sidecar`: a workload's proxy. Inbound terminates mesh mTLS and forwards
//! to the app on localhost; outbound takes the app's plain HTTP/gRPC, routes it by
//! authority with `mesh` VirtualServices and originates mTLS to the destination.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use tokio::sync::watch;

use super::gateway::parse_label;
use std::sync::Mutex;

use super::runtime::{
    access_log, record_reload, runtime, shutdown_signal, start_admin, ConfigWatcher,
};
use crate::admin::Readiness;
use crate::config::parse_duration;
use crate::mesh::upstream::MeshTlsConnector;
use crate::mesh::{MeshInbound, SpiffeId, WorkloadCerts};
use crate::proxy::admin_state::{ProxyAdmin, ReloadStatus};
use crate::proxy::inbound::{local_app, MeshAccept};
use crate::proxy::listener::{bind, serve_http, Plain};
use crate::proxy::telemetry::ProxyTelemetry;
use crate::proxy::{ProxyState, Role, Workload};
use crate::telemetry::Metrics;
use crate::tls::CredentialStore;
use crate::upstream::ClusterManager;

#[derive(Debug, Args)]
pub struct SidecarArgs {
    /// Workload name (what telemetry reports as *_workload).
    #[arg(long)]
    pub workload: String,
    #[arg(long, default_value = "default")]
    pub namespace: String,
    /// Service account: the workload's identity is spiffe://cluster.local/ns/NS/sa/SA.
    #[arg(long = "service-account")]
    pub service_account: Option<String>,
    /// The Kubernetes Service this workload backs (telemetry's destination_service);
    /// defaults to the workload name.
    #[arg(long)]
    pub service: Option<String>,
    /// The app's port on 127.0.0.1.
    #[arg(long = "app-port")]
    pub app_port: u16,
    /// The service port callers use (defaults to the app port).
    #[arg(long = "service-port")]
    pub service_port: Option<u32>,
    /// Files or folders of Istio YAML (repeatable).
    #[arg(long = "config", required = true, num_args = 1..)]
    pub config: Vec<PathBuf>,
    /// Mesh CA folder (`meshgate ca init`).
    #[arg(long)]
    pub ca: PathBuf,
    /// Inbound mTLS listener.
    #[arg(long, default_value = "127.0.0.1:15006")]
    pub inbound: SocketAddr,
    /// Outbound listener the app sends its requests to.
    #[arg(long, default_value = "127.0.0.1:15001")]
    pub outbound: SocketAddr,
    #[arg(long, default_value = "127.0.0.1:15000")]
    pub admin: SocketAddr,
    #[arg(long, default_value = "127.0.0.1:15021")]
    pub health: SocketAddr,
    #[arg(long, default_value = "127.0.0.1:15090")]
    pub metrics: SocketAddr,
    /// Workload labels (`app=reviews`, `version=v1`); `app=<workload>` when none.
    #[arg(long = "label", value_parser = parse_label)]
    pub labels: Vec<(String, String)>,
    #[arg(long = "cert-lifetime", default_value = "24h", value_parser = parse_duration)]
    pub cert_lifetime: Duration,
    #[arg(long = "drain-timeout", default_value = "5s", value_parser = parse_duration)]
    pub drain_timeout: Duration,
    #[arg(long = "reload-interval", default_value = "1s", value_parser = parse_duration)]
    pub reload_interval: Duration,
    #[arg(long)]
    pub workers: Option<usize>,
    #[arg(long = "access-log-format", default_value = "text")]
    pub access_log_format: String,
}

pub fn run(args: SidecarArgs) -> anyhow::Result<ExitCode> {
    runtime(args.workers.or(Some(2)))?.block_on(serve(args))
}

async fn serve(args: SidecarArgs) -> anyhow::Result<ExitCode> {
    let mut labels: crate::config::Labels = args.labels.iter().cloned().collect();
    labels
        .entry("app".into())
        .or_insert_with(|| args.workload.clone());
    let sa = args
        .service_account
        .clone()
        .unwrap_or_else(|| args.workload.clone());
    let workload = Workload {
        name: args.workload.clone(),
        namespace: args.namespace.clone(),
        labels,
        service_account: sa.clone(),
    };
    let id = SpiffeId::in_cluster(&args.namespace, &sa)?;
    let certs = WorkloadCerts::from_ca_dir(&args.ca, id.clone(), args.cert_lifetime)?;
    let _renewal = certs.spawn_renewal();

    let (mut watcher, built) = ConfigWatcher::start(args.config.clone(), args.reload_interval);
    let reload = Arc::new(Mutex::new(ReloadStatus::from_diagnostics(
        1,
        &built.diagnostics,
    )));
    let metrics = Arc::new(Metrics::new(env!("CARGO_PKG_VERSION")));
    metrics.proxy.config_applied(1);
    metrics.add_extra(Arc::new(crate::proxy::telemetry::WasmPluginMetrics));
    let log = access_log(&args.access_log_format, &metrics)?;
    let service = args
        .service
        .clone()
        .unwrap_or_else(|| args.workload.clone());
    let log_handle = log.as_ref().map(|l| l.0.clone());
    let inbound_telemetry = Arc::new(ProxyTelemetry::new(
        metrics.clone(),
        Role::SidecarInbound,
        &workload,
        &service,
        log_handle.clone(),
    ));
    let outbound_telemetry = Arc::new(ProxyTelemetry::new(
        metrics.clone(),
        Role::SidecarOutbound,
        &workload,
        &service,
        log_handle,
    ));
    let connector = Arc::new(MeshTlsConnector::new(
        Some(certs.clone()),
        CredentialStore::without_root(),
    ));
    let upstream = Arc::new(ClusterManager::with_tls_connector(connector));
    metrics.add_proxy_source(upstream.clone());
    let workload_for_inbound = workload;
    let service_port = args.service_port.unwrap_or(u32::from(args.app_port));
    let (route, locals) = local_app(args.app_port, service_port);
    let inbound_state = Arc::new(
        ProxyState::with_parts(
            built.snapshot,
            upstream,
            Role::SidecarInbound,
            workload_for_inbound,
            Vec::new(),
            Some(route),
            locals,
        )
        .with_telemetry(inbound_telemetry),
    );
    let outbound_state =
        Arc::new(inbound_state.sibling_with(Role::SidecarOutbound, outbound_telemetry));
    inbound_state.refresh_plugins();
    outbound_state.refresh_plugins();
    let readiness = Readiness::new();
    let admin_state = Arc::new(ProxyAdmin {
        state: inbound_state.clone(),
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

    let inbound_listener = bind(args.inbound, "--inbound").await?;
    let outbound_listener = bind(args.outbound, "--outbound").await?;
    let (stop, rx) = watch::channel(false);
    let accept = Arc::new(MeshAccept {
        inbound: MeshInbound::new(&certs)?,
        state: inbound_state.clone(),
    });
    let inbound_task = tokio::spawn(serve_http(
        inbound_listener,
        service_port,
        "http",
        accept,
        inbound_state.clone(),
        rx.clone(),
        args.drain_timeout,
    ));
    let outbound_task = tokio::spawn(serve_http(
        outbound_listener,
        0,
        "http",
        Arc::new(Plain),
        outbound_state.clone(),
        rx,
        args.drain_timeout,
    ));
    eprintln!(
        "meshgate sidecar {}.{} ({id}): inbound mTLS {} → app 127.0.0.1:{}, outbound {}",
        args.workload, args.namespace, args.inbound, args.app_port, args.outbound
    );

    readiness.set_ready(true);
    let signal = shutdown_signal();
    tokio::pin!(signal);
    loop {
        tokio::select! {
            _ = &mut signal => break,
            // Published through the inbound side so the local app's cluster stays known.
            built = watcher.changed() => {
                record_reload(&metrics, &reload, watcher.version, &built.diagnostics);
                inbound_state.publish(built.snapshot);
                inbound_state.refresh_plugins();
                outbound_state.refresh_plugins();
            }
        }
    }
    readiness.set_ready(false);
    let _ = stop.send(true);
    let _ = tokio::join!(inbound_task, outbound_task);
    Ok(ExitCode::SUCCESS)
}
