//! Metrics plugins define with `proxy_define_metric`: one process-wide cell per name,
//! so every instance of every plugin defining the same name adds into it (the sum over
//! all VMs), read by telemetry through `plugin_metrics()`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    Counter,
    Gauge,
    Histogram,
}

impl MetricKind {
    pub fn from_abi(v: i32) -> Option<MetricKind> {
        match v {
            0 => Some(MetricKind::Counter),
            1 => Some(MetricKind::Gauge),
            2 => Some(MetricKind::Histogram),
            _ => None,
        }
    }
}

/// Envoy's default histogram bucket bounds.
pub const HISTOGRAM_BOUNDS: [f64; 19] = [
    0.5, 1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 30000.0,
    60000.0, 300000.0, 600000.0, 1800000.0, 3600000.0,
];

pub struct Metric {
    pub name: String,
    pub kind: MetricKind,
    value: AtomicI64,
    sum: AtomicU64,
    buckets: [AtomicU64; HISTOGRAM_BOUNDS.len() + 1],
}

/// A snapshot of one plugin metric.
#[derive(Debug, Clone, PartialEq)]
pub enum MetricValue {
    Counter(u64),
    Gauge(i64),
    Histogram {
        count: u64,
        sum: u64,
        /// (upper bound, cumulative count), bounds as `HISTOGRAM_BOUNDS`.
        buckets: Vec<(f64, u64)>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct PluginMetric {
    pub name: String,
    pub kind: MetricKind,
    pub value: MetricValue,
}

impl Metric {
    fn new(name: String, kind: MetricKind) -> Metric {
        Metric {
            name,
            kind,
            value: AtomicI64::new(0),
            sum: AtomicU64::new(0),
            buckets: Default::default(),
        }
    }

    /// Counters only grow; gauges move either way; histograms do not take increments.
    pub fn increment(&self, by: i64) -> bool {
        match self.kind {
            MetricKind::Counter if by >= 0 => {
                self.value.fetch_add(by, Ordering::Relaxed);
                true
            }
            MetricKind::Gauge => {
                self.value.fetch_add(by, Ordering::Relaxed);
                true
            }
            _ => false,
        }
    }

    /// Counter and gauge: set the value; histogram: observe it.
    pub fn record(&self, v: u64) {
        match self.kind {
            MetricKind::Counter | MetricKind::Gauge => self
                .value
                .store(v.min(i64::MAX as u64) as i64, Ordering::Relaxed),
            MetricKind::Histogram => {
                let i = HISTOGRAM_BOUNDS
                    .iter()
                    .position(|b| (v as f64) <= *b)
                    .unwrap_or(HISTOGRAM_BOUNDS.len());
                self.buckets[i].fetch_add(1, Ordering::Relaxed);
                self.sum.fetch_add(v, Ordering::Relaxed);
                self.value.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Counter/gauge value; for a histogram, its sample count.
    pub fn get(&self) -> u64 {
        self.value.load(Ordering::Relaxed).max(0) as u64
    }

    fn snapshot(&self) -> PluginMetric {
        let value = match self.kind {
            MetricKind::Counter => MetricValue::Counter(self.get()),
            MetricKind::Gauge => MetricValue::Gauge(self.value.load(Ordering::Relaxed)),
            MetricKind::Histogram => {
                let mut cumulative = 0;
                let mut buckets = Vec::with_capacity(HISTOGRAM_BOUNDS.len());
                for (i, bound) in HISTOGRAM_BOUNDS.iter().enumerate() {
                    cumulative += self.buckets[i].load(Ordering::Relaxed);
                    buckets.push((*bound, cumulative));
                }
                MetricValue::Histogram {
                    count: self.get(),
                    sum: self.sum.load(Ordering::Relaxed),
                    buckets,
                }
            }
        };
        PluginMetric {
            name: self.name.clone(),
            kind: self.kind,
            value,
        }
    }
}

fn registry() -> &'static Mutex<HashMap<String, Arc<Metric>>> {
    static REGISTRY: OnceLock<Mutex<HashMap<String, Arc<Metric>>>> = OnceLock::new();
    REGISTRY.get_or_init(Default::default)
}

/// The cell for `name`, created on first definition. `None` when the name is already
/// defined with another kind.
pub fn define(kind: MetricKind, name: &str) -> Option<Arc<Metric>> {
    let mut map = registry().lock().unwrap_or_else(|p| p.into_inner());
    let cell = map
        .entry(name.to_string())
        .or_insert_with(|| Arc::new(Metric::new(name.to_string(), kind)));
    (cell.kind == kind).then(|| cell.clone())
}

/// Every metric any plugin defined, summed over all instances, sorted by name.
pub fn plugin_metrics() -> Vec<PluginMetric> {
    let map = registry().lock().unwrap_or_else(|p| p.into_inner());
    let mut out: Vec<_> = map.values().map(|m| m.snapshot()).collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn same_name_shares_one_cell_and_kinds_do_not_mix() {
        let a = define(MetricKind::Counter, "metrics_test_shared").unwrap();
        let b = define(MetricKind::Counter, "metrics_test_shared").unwrap();
        assert!(a.increment(2) && b.increment(3));
        assert!(!a.increment(-1));
        assert!(define(MetricKind::Gauge, "metrics_test_shared").is_none());
        let found = plugin_metrics()
            .into_iter()
            .find(|m| m.name == "metrics_test_shared")
            .unwrap();
        assert_eq!(found.value, MetricValue::Counter(5));
    }

    #[test]
    fn histogram_buckets_are_cumulative() {
        let h = define(MetricKind::Histogram, "metrics_test_hist").unwrap();
        h.record(3);
        h.record(70);
        h.record(u64::MAX);
        let found = plugin_metrics()
            .into_iter()
            .find(|m| m.name == "metrics_test_hist")
            .unwrap();
        let MetricValue::Histogram { count, buckets, .. } = found.value else {
            panic!()
        };
        assert_eq!(count, 3);
        assert_eq!(buckets[2], (5.0, 1));
        assert_eq!(buckets[6], (100.0, 2));
        assert_eq!(buckets.last().unwrap().1, 2, "u64::MAX lands in +Inf only");
    }
}
