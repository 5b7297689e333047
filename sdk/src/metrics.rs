//! Metrics the plugin defines; the proxy exports them (Meshgate sums them over every
//! instance). Define once (in `Plugin::configure`) and keep the handle.

use proxy_wasm::hostcalls;
use proxy_wasm::types::MetricType;

use crate::{Error, Result};

/// A counter: only goes up.
#[derive(Debug, Clone, Copy)]
pub struct Counter(u32);

/// A gauge: set or moved either way.
#[derive(Debug, Clone, Copy)]
pub struct Gauge(u32);

/// A histogram: records observations.
#[derive(Debug, Clone, Copy)]
pub struct Histogram(u32);

fn define(kind: MetricType, name: &str) -> Result<u32> {
    hostcalls::define_metric(kind, name)
        .map_err(|s| Error::host(&format!("define metric {name:?}"), s))
}

impl Counter {
    pub fn define(name: &str) -> Result<Counter> {
        define(MetricType::Counter, name).map(Counter)
    }

    /// Adds `by`. A failure is logged, never returned: metrics must not fail requests.
    pub fn increment(&self, by: u64) {
        let by = i64::try_from(by).unwrap_or(i64::MAX);
        if let Err(s) = hostcalls::increment_metric(self.0, by) {
            log::warn!("increment metric: {s:?}");
        }
    }
}

impl Gauge {
    pub fn define(name: &str) -> Result<Gauge> {
        define(MetricType::Gauge, name).map(Gauge)
    }

    pub fn set(&self, value: u64) {
        if let Err(s) = hostcalls::record_metric(self.0, value) {
            log::warn!("record metric: {s:?}");
        }
    }

    pub fn add(&self, by: i64) {
        if let Err(s) = hostcalls::increment_metric(self.0, by) {
            log::warn!("increment metric: {s:?}");
        }
    }
}

impl Histogram {
    pub fn define(name: &str) -> Result<Histogram> {
        define(MetricType::Histogram, name).map(Histogram)
    }

    pub fn record(&self, value: u64) {
        if let Err(s) = hostcalls::record_metric(self.0, value) {
            log::warn!("record metric: {s:?}");
        }
    }
}
