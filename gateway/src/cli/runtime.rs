//! What every long-running role shares: the tokio runtime, the config watcher that
//! yields a new snapshot when files change, and waiting for SIGINT/SIGTERM.

use std::path::PathBuf;
use std::time::Duration;

use crate::config::{watch, ConfigSet, Diagnostic, Severity};
use crate::router::reload::{build, Built};

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
}

impl ConfigWatcher {
    /// The first load (version 1). Problems are printed; bad resources are dropped.
    pub fn start(paths: Vec<PathBuf>, interval: Duration) -> (ConfigWatcher, Built) {
        let fingerprint = watch::fingerprint(&paths);
        let built = build(&paths, &ConfigSet::default(), 1);
        report(&built.diagnostics);
        let w = ConfigWatcher {
            paths,
            fingerprint,
            last_good: built.config.clone(),
            version: 1,
            interval,
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
            let built = build(&self.paths, &self.last_good, self.version);
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
