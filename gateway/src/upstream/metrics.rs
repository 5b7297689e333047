//! The upstream side of the proxy's health metrics (`meshgate_upstream_*`,
//! `meshgate_outlier_*`), read from the cluster counters at scrape time: the request
//! path keeps only its atomics, and a scrape costs nothing while nobody scrapes.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::telemetry::{ExtraMetric, ExtraMetrics, ExtraValue};

use super::cluster::ClusterState;
use super::endpoint::now_ms;
use super::ClusterManager;

impl ExtraMetrics for ClusterManager {
    fn collect(&self, out: &mut Vec<ExtraMetric>) {
        let mut states: Vec<_> = self.clusters.iter().map(|e| e.value().clone()).collect();
        states.sort_by(|a, b| a.name.cmp(&b.name));
        for state in states.iter().filter(|s| ever_used(s)) {
            collect_cluster(state, out);
        }
    }
}

/// Clusters no request ever reached stay out of the scrape: a mesh config names
/// thousands, and Istio's proxies leave cluster stats out by default too.
fn ever_used(state: &ClusterState) -> bool {
    let st = &state.stats;
    state.endpoints.load().list.iter().any(|e| {
        e.stats.rq_total.load(Ordering::Relaxed) > 0 || e.stats.cx_total.load(Ordering::Relaxed) > 0
    }) || [&st.cx_overflow, &st.rq_overflow, &st.rq_pending_overflow]
        .iter()
        .any(|c| c.load(Ordering::Relaxed) > 0)
}

fn collect_cluster(state: &ClusterState, out: &mut Vec<ExtraMetric>) {
    let cluster = state.name.to_string();
    let endpoints = state.endpoints.load();
    let sum = |f: fn(&super::endpoint::EndpointStats) -> &AtomicU64| -> u64 {
        endpoints
            .list
            .iter()
            .map(|e| f(&e.stats).load(Ordering::Relaxed))
            .sum()
    };
    let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let st = &state.stats;
    let mut push = |name: &str, help: &str, extra: Option<(&str, &str)>, value: ExtraValue| {
        let mut labels = vec![("cluster".to_string(), cluster.clone())];
        if let Some((k, v)) = extra {
            labels.push((k.to_string(), v.to_string()));
        }
        out.push(ExtraMetric {
            name: name.to_string(),
            help: help.to_string(),
            labels,
            value,
        });
    };
    let gauge = |v: u32| ExtraValue::Gauge(i64::from(v));
    push(
        "meshgate_upstream_connections_active",
        "Upstream connections open now, per cluster",
        None,
        gauge(state.cx_active.load(Ordering::Relaxed)),
    );
    push(
        "meshgate_upstream_connections",
        "Upstream connections opened, per cluster",
        None,
        ExtraValue::Counter(sum(|s| &s.cx_total)),
    );
    push(
        "meshgate_upstream_connect_failures",
        "Upstream connection attempts that failed, per cluster",
        None,
        ExtraValue::Counter(sum(|s| &s.cx_connect_fail)),
    );
    push(
        "meshgate_upstream_requests_active",
        "Requests in flight to each cluster",
        None,
        gauge(state.rq_active.load(Ordering::Relaxed)),
    );
    push(
        "meshgate_upstream_requests_pending",
        "Requests waiting for an upstream connection, per cluster",
        None,
        gauge(state.rq_pending.load(Ordering::Relaxed)),
    );
    for (limit, counter) in [
        ("max_connections", &st.cx_overflow),
        ("max_pending_requests", &st.rq_pending_overflow),
        ("max_requests", &st.rq_overflow),
        ("max_retries", &st.retry_overflow),
    ] {
        push(
            "meshgate_upstream_overflow",
            "Requests refused by a circuit breaker (connectionPool limit), per cluster and limit",
            Some(("limit", limit)),
            ExtraValue::Counter(load(counter)),
        );
    }
    push(
        "meshgate_outlier_ejections",
        "Hosts ejected by outlier detection, per cluster",
        None,
        ExtraValue::Counter(load(&st.ejections_enforced_total)),
    );
    push(
        "meshgate_outlier_ejections_active",
        "Hosts currently ejected by outlier detection, per cluster",
        None,
        ExtraValue::Gauge(state.ejected_count(now_ms()) as i64),
    );
}
