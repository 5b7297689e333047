//! DestinationRule and PeerAuthentication: a host to apply to, one rule per host and
//! namespace, and traffic policy values Istio accepts.

use std::collections::HashMap;

use super::{checks::*, duration, enum_value, percent, report};
use crate::config::hosts::expand_host;
use crate::config::{ConfigSet, Diagnostic, ResourceMeta, TrafficPolicy};

pub const LOAD_BALANCERS: &[&str] = &[
    "UNSPECIFIED",
    "LEAST_REQUEST",
    "LEAST_CONN",
    "ROUND_ROBIN",
    "RANDOM",
    "PASSTHROUGH",
];
pub const CLIENT_TLS_MODES: &[&str] = &["DISABLE", "SIMPLE", "MUTUAL", "ISTIO_MUTUAL"];
pub const MTLS_MODES: &[&str] = &["UNSET", "DISABLE", "PERMISSIVE", "STRICT"];

pub(super) fn check(config: &ConfigSet, out: &mut Vec<Diagnostic>) {
    // (namespace, host, workload selector) → the first rule written for it.
    let mut seen = HashMap::new();
    for dr in &config.destination_rules {
        let meta = &dr.meta;
        if dr.spec.host.trim().is_empty() {
            let msg = "this DestinationRule has no host, so it applies to nothing: set spec.host to the service it configures, e.g. reviews";
            report(out, &DESTINATION_RULE_WITHOUT_HOST, meta, "spec.host", msg);
        } else {
            let host = expand_host(&dr.spec.host, &meta.namespace);
            let key = (meta.namespace.as_str(), host.clone(), selector(&dr.spec));
            let first = *seen.entry(key).or_insert(dr);
            if !std::ptr::eq(first, dr) {
                let o = first;
                let msg = format!("DestinationRule {}/{} ({}:{}) already configures host {host} in this namespace: Istio merges the two, and where both set the traffic policy or a subset of the same name only the first applies; keep one DestinationRule per host", o.meta.namespace, o.meta.name, o.meta.origin.file.display(), o.meta.origin.line);
                report(out, &DUPLICATE_DESTINATION_RULE, meta, "spec.host", msg);
            }
        }
        if let Some(tp) = &dr.spec.traffic_policy {
            traffic_policy(meta, "spec.trafficPolicy", tp, out);
        }
        for (i, subset) in dr.spec.subsets.iter().enumerate() {
            if let Some(tp) = &subset.traffic_policy {
                traffic_policy(meta, &format!("spec.subsets[{i}].trafficPolicy"), tp, out);
            }
        }
    }
    for pa in &config.peer_authentications {
        let meta = &pa.meta;
        let mode = pa.spec.mtls.as_ref().and_then(|m| m.mode.as_deref());
        enum_value(
            &UNKNOWN_TLS_MODE,
            meta,
            "spec.mtls.mode",
            mode,
            MTLS_MODES,
            out,
        );
        for (port, m) in &pa.spec.port_level_mtls {
            let field = format!("spec.portLevelMtls.{port}.mode");
            enum_value(
                &UNKNOWN_TLS_MODE,
                meta,
                &field,
                m.mode.as_deref(),
                MTLS_MODES,
                out,
            );
        }
    }
}

fn selector(spec: &crate::config::DestinationRuleSpec) -> Option<&crate::config::Labels> {
    spec.workload_selector.as_ref().map(|w| &w.match_labels)
}

/// The parts of a traffic policy that port-level settings repeat.
struct Parts<'a> {
    load_balancer: Option<&'a crate::config::LoadBalancer>,
    connection_pool: Option<&'a crate::config::ConnectionPool>,
    outlier_detection: Option<&'a crate::config::OutlierDetection>,
    tls: Option<&'a crate::config::ClientTls>,
}

fn traffic_policy(meta: &ResourceMeta, at: &str, tp: &TrafficPolicy, out: &mut Vec<Diagnostic>) {
    let top = Parts {
        load_balancer: tp.load_balancer.as_ref(),
        connection_pool: tp.connection_pool.as_ref(),
        outlier_detection: tp.outlier_detection.as_ref(),
        tls: tp.tls.as_ref(),
    };
    parts(meta, at, &top, out);
    for (i, p) in tp.port_level_settings.iter().enumerate() {
        let port = Parts {
            load_balancer: p.load_balancer.as_ref(),
            connection_pool: p.connection_pool.as_ref(),
            outlier_detection: p.outlier_detection.as_ref(),
            tls: p.tls.as_ref(),
        };
        parts(meta, &format!("{at}.portLevelSettings[{i}]"), &port, out);
    }
}

fn parts(meta: &ResourceMeta, at: &str, p: &Parts, out: &mut Vec<Diagnostic>) {
    if let Some(lb) = p.load_balancer {
        let field = format!("{at}.loadBalancer.simple");
        let simple = lb.simple.as_deref();
        enum_value(
            &UNKNOWN_LOAD_BALANCER,
            meta,
            &field,
            simple,
            LOAD_BALANCERS,
            out,
        );
        let cookie = lb
            .consistent_hash
            .as_ref()
            .and_then(|c| c.http_cookie.as_ref());
        if let Some(cookie) = cookie {
            let field = format!("{at}.loadBalancer.consistentHash.httpCookie.ttl");
            duration(meta, &field, cookie.ttl.as_deref(), out);
        }
    }
    if let Some(pool) = p.connection_pool {
        if let Some(tcp) = &pool.tcp {
            let f = format!("{at}.connectionPool.tcp");
            duration(
                meta,
                &format!("{f}.connectTimeout"),
                tcp.connect_timeout.as_deref(),
                out,
            );
            duration(
                meta,
                &format!("{f}.idleTimeout"),
                tcp.idle_timeout.as_deref(),
                out,
            );
            let max = tcp.max_connection_duration.as_deref();
            duration(meta, &format!("{f}.maxConnectionDuration"), max, out);
        }
        if let Some(http) = &pool.http {
            let f = format!("{at}.connectionPool.http.idleTimeout");
            duration(meta, &f, http.idle_timeout.as_deref(), out);
        }
    }
    if let Some(od) = p.outlier_detection {
        let f = format!("{at}.outlierDetection");
        duration(meta, &format!("{f}.interval"), od.interval.as_deref(), out);
        let base = od.base_ejection_time.as_deref();
        duration(meta, &format!("{f}.baseEjectionTime"), base, out);
        let max = od.max_ejection_percent.map(f64::from);
        percent(meta, &format!("{f}.maxEjectionPercent"), max, out);
        let min = od.min_health_percent.map(f64::from);
        percent(meta, &format!("{f}.minHealthPercent"), min, out);
    }
    if let Some(tls) = p.tls {
        let field = format!("{at}.tls.mode");
        let mode = tls.mode.as_deref();
        enum_value(&UNKNOWN_TLS_MODE, meta, &field, mode, CLIENT_TLS_MODES, out);
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;

    fn dr(name: &str, body: &str) -> String {
        format!("apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: {name}}}\nspec:\n{body}---\n")
    }

    #[test]
    fn bad_policy_values_are_reported() {
        let text = dr("reviews", "  host: reviews\n  trafficPolicy:\n    loadBalancer:\n      simple: FASTEST\n      consistentHash: {httpCookie: {name: u, ttl: forever}}\n    connectionPool:\n      tcp: {connectTimeout: \"30\", idleTimeout: 1h}\n      http: {idleTimeout: 1 h}\n    outlierDetection: {interval: 10s, baseEjectionTime: 3O s, maxEjectionPercent: 150}\n    tls: {mode: mutual}\n    portLevelSettings:\n    - port: {number: 9080}\n      loadBalancer: {simple: round_robin}\n  subsets:\n  - name: v1\n    trafficPolicy:\n      tls: {mode: STRICT}\n");
        let d = analyze_yaml(&text);
        assert_eq!(
            with_code(&d, "MG0123"),
            [
                "8 spec.trafficPolicy.loadBalancer.simple: unknown load balancer \"FASTEST\": use one of UNSPECIFIED, LEAST_REQUEST, LEAST_CONN, ROUND_ROBIN, RANDOM or PASSTHROUGH",
                "17 spec.trafficPolicy.portLevelSettings[0].loadBalancer.simple: unknown load balancer \"round_robin\": use ROUND_ROBIN (values are upper-case)",
            ]
        );
        let durations = with_code(&d, "MG0117");
        assert_eq!(durations.len(), 4, "{durations:#?}");
        assert!(durations[0].starts_with("9 spec.trafficPolicy.loadBalancer.consistentHash.httpCookie.ttl: invalid duration \"forever\""));
        assert!(durations[1].starts_with(
            "11 spec.trafficPolicy.connectionPool.tcp.connectTimeout: invalid duration \"30\""
        ));
        assert!(durations[2].starts_with("12 spec.trafficPolicy.connectionPool.http.idleTimeout:"));
        assert!(
            durations[3].starts_with("13 spec.trafficPolicy.outlierDetection.baseEjectionTime:")
        );
        assert_eq!(
            with_code(&d, "MG0118"),
            ["13 spec.trafficPolicy.outlierDetection.maxEjectionPercent: 150 is not a percentage: write a number from 0 to 100"]
        );
        assert_eq!(
            with_code(&d, "MG0124"),
            [
                "14 spec.trafficPolicy.tls.mode: unknown mode \"mutual\": use MUTUAL (values are upper-case)",
                "21 spec.subsets[0].trafficPolicy.tls.mode: unknown mode \"STRICT\": use one of DISABLE, SIMPLE, MUTUAL or ISTIO_MUTUAL",
            ]
        );
    }

    #[test]
    fn missing_and_duplicate_hosts() {
        let mut text = dr("a", "  host: reviews\n");
        text += &dr("b", "  host: reviews.default.svc.cluster.local\n");
        text += &dr(
            "c",
            "  host: reviews\n  workloadSelector: {matchLabels: {app: x}}\n",
        );
        text += &dr("d", "  subsets: [{name: v1}]\n");
        text += "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: e, namespace: prod}\nspec:\n  host: reviews.default.svc.cluster.local\n";
        let d = analyze_yaml(&text);
        assert_eq!(
            with_code(&d, "MG0127"),
            ["11 spec.host: DestinationRule default/a (test.yaml:1) already configures host reviews.default.svc.cluster.local in this namespace: Istio merges the two, and where both set the traffic policy or a subset of the same name only the first applies; keep one DestinationRule per host"]
        );
        assert_eq!(
            with_code(&d, "MG0126"),
            ["23 spec.host: this DestinationRule has no host, so it applies to nothing: set spec.host to the service it configures, e.g. reviews"]
        );
    }

    #[test]
    fn good_policies_and_peer_authentication() {
        let text = dr("r", "  host: reviews\n  trafficPolicy:\n    loadBalancer: {simple: LEAST_REQUEST, consistentHash: {httpCookie: {name: u, ttl: 0s}}}\n    connectionPool: {tcp: {maxConnections: 1, connectTimeout: 250ms}, http: {http1MaxPendingRequests: 1}}\n    outlierDetection: {consecutive5xxErrors: 1, interval: 1s, baseEjectionTime: 3m, maxEjectionPercent: 100}\n    tls: {mode: ISTIO_MUTUAL}\n") + "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: default}\nspec:\n  mtls: {mode: STRICT}\n  portLevelMtls:\n    8080: {mode: permissive}\n";
        let d = analyze_yaml(&text);
        assert_eq!(
            with_code(&d, "MG0124"),
            ["18 spec.portLevelMtls.8080.mode: unknown mode \"permissive\": use PERMISSIVE (values are upper-case)"]
        );
        assert_eq!(d.len(), 1, "{d:#?}");
    }
}
