//! What every long-running role shares: the tokio runtime, the config watcher that
//! yields a new snapshot when files change, and waiting for SIGINT/SIGTERM.

use std::path::PathBuf;
use std::time::Duration;

use crate::config::{watch, ConfigSet, Diagnostic, Severity};
use crate::router::reload::{build, Built};
use crate::router::Compiler;

/// A multi-threaded runtime with `workers` threads (default: one per core).
pub fn runtime(workers: Option<usize>) -> anyhow::Result<tokio::runtime::Runtime> {
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    rt.enable_all();
    if let Some(w) = workers {
        rt.worker_threads(w.max(1));
    }
    Ok(rt.build()?)
}

/// Loads the config paths and notices when they change.
pub struct ConfigWatcher {
    paths: Vec<PathBuf>,
    fingerprint: watch::Fingerprint,
    last_good: ConfigSet,
    pub version: u64,
    interval: Duration,
    compiler: Compiler,
}

impl ConfigWatcher {
    /// The first load (version 1). Problems are printed; bad resources are dropped.
    pub fn start(paths: Vec<PathBuf>, interval: Duration) -> (ConfigWatcher, Built) {
        let fingerprint = watch::fingerprint(&paths);
        let mut compiler = Compiler::new();
        let built = build(&mut compiler, &paths, &ConfigSet::default(), 1);
        report(&built.diagnostics);
        let w = ConfigWatcher {
            paths,
            fingerprint,
            last_good: built.config.clone(),
            version: 1,
            interval,
            compiler,
        };
        (w, built)
    }

    /// Waits for the files to change, then builds the next snapshot (whatever broke
    /// keeps its last good version).
    pub async fn changed(&mut self) -> Built {
        loop {
            tokio::time::sleep(self.interval).await;
            let now = watch::fingerprint(&self.paths);
            if now == self.fingerprint {
                continue;
            }
            self.fingerprint = now;
            self.version += 1;
            let built = build(
                &mut self.compiler,
                &self.paths,
                &self.last_good,
                self.version,
            );
            report(&built.diagnostics);
            self.last_good = built.config.clone();
            tracing::info!("config version {} built", self.version);
            return built;
        }
    }
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}

pub fn report(diags: &[Diagnostic]) {
    for d in diags {
        if d.severity >= Severity::Warning {
            eprintln!("{}: {d}", d.severity.as_str());
        }
    }
}

/// Starts the access-log writer thread (`text`, `json`, or `off`).
pub fn access_log(
    format: &str,
    metrics: &crate::telemetry::Metrics,
) -> anyhow::Result<
    Option<(
        crate::telemetry::AccessLog,
        crate::telemetry::AccessLogThread,
    )>,
> {
    use crate::telemetry::{AccessLog, AccessLogFormat, DEFAULT_ACCESS_LOG_QUEUE};
    let format = match format {
        "off" | "none" => return Ok(None),
        "text" => AccessLogFormat::Text,
        "json" => AccessLogFormat::Json,
        other => anyhow::bail!("--access-log-format must be text, json or off, not {other:?}"),
    };
    let (log, thread) = AccessLog::spawn(
        format,
        Box::new(std::io::stdout()),
        DEFAULT_ACCESS_LOG_QUEUE,
        metrics.proxy.access_log_dropped(),
    )?;
    Ok(Some((log, thread)))
}

/// Binds the admin, health and metrics ports (each named by its flag when taken) and
/// serves them from their own thread, away from the data path.
pub fn start_admin(
    admin: std::net::SocketAddr,
    health: std::net::SocketAddr,
    metrics_addr: std::net::SocketAddr,
    metrics: std::sync::Arc<crate::telemetry::Metrics>,
    readiness: crate::admin::Readiness,
    state: std::sync::Arc<dyn crate::admin::AdminState>,
) -> anyhow::Result<crate::admin::AdminServer> {
    use crate::admin::{AdminRoutes, AdminServer};
    let ports = vec![
        (
            admin,
            AdminRoutes::admin(metrics.clone(), readiness.clone(), state),
        ),
        (health, AdminRoutes::health(readiness)),
        (metrics_addr, AdminRoutes::metrics(metrics)),
    ];
    AdminServer::start(ports).map_err(|e| {
        let flag = match e.addr() {
            Some(a) if a == admin => "--admin",
            Some(a) if a == health => "--health",
            Some(a) if a == metrics_addr => "--metrics",
            _ => "admin ports",
        };
        anyhow::anyhow!("{e} (set another address with {flag})")
    })
}

/// Notes a (re)load for `/config_dump`, `/reload_status` and the config metrics.
pub fn record_reload(
    metrics: &crate::telemetry::Metrics,
    reload: &std::sync::Mutex<crate::proxy::admin_state::ReloadStatus>,
    version: u64,
    diagnostics: &[Diagnostic],
) {
    let status = crate::proxy::admin_state::ReloadStatus::from_diagnostics(version, diagnostics);
    if !status.rejected.is_empty() {
        metrics.proxy.config_rejected();
    }
    metrics.proxy.config_applied(version);
    if let Ok(mut r) = reload.lock() {
        *r = status;
    }
}
