//! The admin `/clusters` page in Envoy's text format: circuit-breaker limits and
//! outlier counters per cluster, then counters and health flags per endpoint.

use std::fmt::Write;
use std::sync::atomic::Ordering;

use super::cluster::{limit, ClusterState};
use super::endpoint::now_ms;

pub(crate) fn write_cluster(out: &mut String, state: &ClusterState) {
    let cfg = state.config.load();
    let name = &state.name;
    let p = &cfg.policy;
    let now = now_ms();
    let set = state.endpoints.load();
    let st = &state.stats;
    let load = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
    let _ = writeln!(out, "{name}::observability_name::{name}");
    for (key, value) in [
        ("max_connections", limit(p.max_connections)),
        ("max_pending_requests", limit(p.max_pending_requests)),
        ("max_requests", limit(p.max_requests)),
        ("max_retries", limit(p.max_retries)),
    ] {
        let _ = writeln!(out, "{name}::default_priority::{key}::{value}");
    }
    let _ = writeln!(out, "{name}::added_via_api::true");
    for (key, value) in [
        ("upstream_cx_overflow", load(&st.cx_overflow)),
        (
            "upstream_rq_pending_overflow",
            load(&st.rq_pending_overflow),
        ),
        ("upstream_rq_overflow", load(&st.rq_overflow)),
        ("upstream_rq_retry_overflow", load(&st.retry_overflow)),
        (
            "upstream_rq_pending_active",
            u64::from(state.rq_pending.load(Ordering::Relaxed)),
        ),
        (
            "outlier_detection.ejections_active",
            state.ejected_count(now) as u64,
        ),
        (
            "outlier_detection.ejections_enforced_total",
            load(&st.ejections_enforced_total),
        ),
        (
            "outlier_detection.ejections_overflow",
            load(&st.ejections_overflow),
        ),
    ] {
        let _ = writeln!(out, "{name}::{key}::{value}");
    }
    let original_dst: Vec<_> = state
        .original_dst
        .iter()
        .map(|e| e.value().clone())
        .collect();
    for ep in set.list.iter().chain(original_dst.iter()) {
        let host = format!("{name}::{}", ep.address);
        let s = &ep.stats;
        for (key, value) in [
            ("cx_active", u64::from(ep.cx_active.load(Ordering::Relaxed))),
            ("cx_connect_fail", load(&s.cx_connect_fail)),
            ("cx_total", load(&s.cx_total)),
            ("rq_active", ep.rq_active()),
            ("rq_error", load(&s.rq_error)),
            ("rq_success", load(&s.rq_success)),
            ("rq_timeout", load(&s.rq_timeout)),
            ("rq_total", load(&s.rq_total)),
        ] {
            let _ = writeln!(out, "{host}::{key}::{value}");
        }
        let hostname = if cfg.dns { ep.address.as_str() } else { "" };
        let _ = writeln!(out, "{host}::hostname::{hostname}");
        let health = if ep.is_ejected(now) {
            "/failed_outlier_check"
        } else {
            "healthy"
        };
        let _ = writeln!(out, "{host}::health_flags::{health}");
        let _ = writeln!(out, "{host}::weight::{}", ep.weight());
        let _ = writeln!(
            out,
            "{host}::outlier_ejections::{}",
            load(&ep.outlier.ejections_total)
        );
    }
}
