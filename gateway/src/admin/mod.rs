//! Admin owns the operator endpoints: /config_dump, /clusters, /stats/prometheus and
//! readiness, served from their own thread and runtime so a scrape never competes with
//! the data-plane workers (as ztunnel does).

mod routes;
mod server;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::telemetry::Metrics;

pub use server::{bind, serve, AdminError, AdminListener, AdminServer};

/// What the proxy shows on the admin port. Called on the admin thread; implementations
/// read the current snapshot and must not block for long.
pub trait AdminState: Send + Sync + 'static {
    /// `/config_dump`: the live configuration as JSON.
    fn config_dump(&self) -> serde_json::Value;
    /// `/clusters`: one line per cluster endpoint, Envoy style
    /// (`outbound|80||svc.ns.svc.cluster.local::10.0.0.7:80::health_flags::healthy`).
    fn clusters(&self) -> String;
    /// `/reload_status`: the last reload's outcome, if the proxy tracks one.
    fn reload_status(&self) -> Option<serde_json::Value> {
        None
    }
}

/// The readiness flag behind `/healthz/ready`: 503 until set, 200 after.
#[derive(Clone, Debug, Default)]
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    pub fn new() -> Self {
        Readiness::default()
    }

    pub fn set_ready(&self, ready: bool) {
        self.0.store(ready, Ordering::Release);
    }

    pub fn is_ready(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// Which endpoints one port serves; the product binds admin (15000), health (15021) and
/// metrics (15090) separately, each with its own set.
#[derive(Clone, Default)]
pub struct AdminRoutes {
    pub(crate) metrics: Option<Arc<Metrics>>,
    pub(crate) readiness: Option<Readiness>,
    pub(crate) state: Option<Arc<dyn AdminState>>,
}

impl std::fmt::Debug for AdminRoutes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminRoutes")
            .field("metrics", &self.metrics.is_some())
            .field("readiness", &self.readiness.is_some())
            .field("state", &self.state.is_some())
            .finish()
    }
}

impl AdminRoutes {
    /// No endpoints but `/`; add them with the `with_*` methods.
    pub fn new() -> Self {
        AdminRoutes::default()
    }

    /// Everything: the admin port.
    pub fn admin(metrics: Arc<Metrics>, readiness: Readiness, state: Arc<dyn AdminState>) -> Self {
        AdminRoutes::new()
            .with_metrics(metrics)
            .with_readiness(readiness)
            .with_state(state)
    }

    /// `/healthz/ready` only: the health port.
    pub fn health(readiness: Readiness) -> Self {
        AdminRoutes::new().with_readiness(readiness)
    }

    /// `/stats/prometheus` only: the metrics port.
    pub fn metrics(metrics: Arc<Metrics>) -> Self {
        AdminRoutes::new().with_metrics(metrics)
    }

    /// Adds `/stats/prometheus`.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Adds `/healthz/ready`.
    pub fn with_readiness(mut self, readiness: Readiness) -> Self {
        self.readiness = Some(readiness);
        self
    }

    /// Adds `/config_dump`, `/clusters` and `/reload_status`.
    pub fn with_state(mut self, state: Arc<dyn AdminState>) -> Self {
        self.state = Some(state);
        self
    }
}
