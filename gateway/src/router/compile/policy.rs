//! DestinationRules: which rule applies to a host, subsets, and the effective
//! traffic policy of one cluster (top level, then port level, then the subset's own,
//! each later layer replacing the fields it sets).

use std::collections::HashMap;
use std::time::Duration;

use super::{problem, Checked, CODE_DURATION, CODE_INVALID};
use crate::config::hosts::{expand_host, wildcard_matches};
use crate::config::*;
use crate::router::snapshot::*;

pub(super) struct DestinationRules<'c> {
    exact: HashMap<String, &'c Res<DestinationRuleSpec>>,
    /// (`*.example.com`, rule), longest first.
    wildcard: Vec<(String, &'c Res<DestinationRuleSpec>)>,
}

/// The policy layers that apply to one cluster.
#[derive(Default, Clone, Copy)]
struct Layers<'c> {
    lb: Option<&'c LoadBalancer>,
    pool: Option<&'c ConnectionPool>,
    outlier: Option<&'c OutlierDetection>,
    tls: Option<&'c ClientTls>,
}

impl<'c> Layers<'c> {
    fn overlay(&mut self, p: &'c TrafficPolicy, port: u32) {
        self.lb = p.load_balancer.as_ref().or(self.lb);
        self.pool = p.connection_pool.as_ref().or(self.pool);
        self.outlier = p.outlier_detection.as_ref().or(self.outlier);
        self.tls = p.tls.as_ref().or(self.tls);
        if let Some(pl) = p
            .port_level_settings
            .iter()
            .find(|s| s.port.as_ref().is_some_and(|sel| sel.number == port))
        {
            self.lb = pl.load_balancer.as_ref().or(self.lb);
            self.pool = pl.connection_pool.as_ref().or(self.pool);
            self.outlier = pl.outlier_detection.as_ref().or(self.outlier);
            self.tls = pl.tls.as_ref().or(self.tls);
        }
    }
}

/// How a DestinationRule changes the protocol spoken upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ProtocolOverride {
    None,
    UpgradeH2,
    Client,
}

impl<'c> DestinationRules<'c> {
    pub fn build(config: &'c ConfigSet, diags: &mut Vec<Diagnostic>) -> Self {
        let mut out = DestinationRules {
            exact: HashMap::new(),
            wildcard: Vec::new(),
        };
        for dr in &config.destination_rules {
            if let Err(p) = validate(dr) {
                diags.push(p.diagnostic(&dr.meta, Severity::Error));
                continue;
            }
            let host = expand_host(&dr.spec.host, &dr.meta.namespace);
            // The first rule for a host wins, as Istio keeps the oldest.
            if host.starts_with('*') {
                if !out.wildcard.iter().any(|(h, _)| *h == host) {
                    out.wildcard.push((host, dr));
                }
            } else {
                out.exact.entry(host).or_insert(dr);
            }
        }
        out.wildcard
            .sort_by_key(|(h, _)| std::cmp::Reverse(h.len()));
        out
    }

    pub fn for_host(&self, host: &str) -> Option<&'c Res<DestinationRuleSpec>> {
        self.exact.get(host).copied().or_else(|| {
            self.wildcard
                .iter()
                .find(|(pattern, _)| wildcard_matches(pattern, host))
                .map(|(_, dr)| *dr)
        })
    }
}

/// The effective policy of `outbound|port|subset|host` under `dr`.
pub(super) fn cluster_policy(
    dr: &Res<DestinationRuleSpec>,
    subset: Option<&Subset>,
    port: u32,
) -> (ClusterPolicy, ProtocolOverride) {
    let mut layers = Layers::default();
    if let Some(top) = &dr.spec.traffic_policy {
        layers.overlay(top, port);
    }
    if let Some(tp) = subset.and_then(|s| s.traffic_policy.as_ref()) {
        layers.overlay(tp, port);
    }
    // `validate` already converted every layer, so these cannot fail here.
    convert(&layers, "").unwrap_or((ClusterPolicy::default(), ProtocolOverride::None))
}

/// Checks every policy layer of a rule so a bad one rejects the rule as a whole.
fn validate(dr: &Res<DestinationRuleSpec>) -> Checked<()> {
    if dr.spec.host.trim().is_empty() {
        return Err(problem(
            CODE_INVALID,
            "spec.host",
            "a DestinationRule needs a host",
        ));
    }
    let check = |tp: &TrafficPolicy, at: &str| -> Checked<()> {
        let mut l = Layers::default();
        l.overlay(tp, 0);
        convert(&l, at)?;
        for (i, pl) in tp.port_level_settings.iter().enumerate() {
            let l = Layers {
                lb: pl.load_balancer.as_ref(),
                pool: pl.connection_pool.as_ref(),
                outlier: pl.outlier_detection.as_ref(),
                tls: pl.tls.as_ref(),
            };
            convert(&l, &format!("{at}.portLevelSettings[{i}]"))?;
        }
        Ok(())
    };
    if let Some(tp) = &dr.spec.traffic_policy {
        check(tp, "spec.trafficPolicy")?;
    }
    let mut seen = std::collections::HashSet::new();
    for (i, s) in dr.spec.subsets.iter().enumerate() {
        if s.name.is_empty() || !seen.insert(s.name.as_str()) {
            return Err(problem(
                CODE_INVALID,
                format!("spec.subsets[{i}].name"),
                format!(
                    "subset names must be unique and non-empty (got {:?})",
                    s.name
                ),
            ));
        }
        if let Some(tp) = &s.traffic_policy {
            check(tp, &format!("spec.subsets[{i}].trafficPolicy"))?;
        }
    }
    Ok(())
}

fn duration(text: &Option<String>, field: impl Fn() -> String) -> Checked<Option<Duration>> {
    text.as_deref()
        .map(|t| parse_duration(t).map_err(|e| problem(CODE_DURATION, field(), e)))
        .transpose()
}

fn convert(l: &Layers<'_>, at: &str) -> Checked<(ClusterPolicy, ProtocolOverride)> {
    let mut out = ClusterPolicy::default();
    let mut proto = ProtocolOverride::None;
    if let Some(lb) = l.lb {
        out.lb = load_balancer(lb, &format!("{at}.loadBalancer"))?;
    }
    if let Some(pool) = l.pool {
        let f = |s: &str| format!("{at}.connectionPool.{s}");
        if let Some(tcp) = &pool.tcp {
            out.max_connections = tcp.max_connections;
            out.connect_timeout = duration(&tcp.connect_timeout, || f("tcp.connectTimeout"))?;
            out.idle_timeout = duration(&tcp.idle_timeout, || f("tcp.idleTimeout"))?;
        }
        if let Some(h) = &pool.http {
            out.max_pending_requests = h.http1_max_pending_requests;
            out.max_requests = h.http2_max_requests;
            out.max_requests_per_connection = h.max_requests_per_connection.filter(|n| *n > 0);
            out.max_retries = h.max_retries;
            if let Some(idle) = duration(&h.idle_timeout, || f("http.idleTimeout"))? {
                out.idle_timeout = Some(idle);
            }
            match h.h2_upgrade_policy.as_deref().map(str::to_ascii_uppercase).as_deref() {
                None | Some("DEFAULT") | Some("DO_NOT_UPGRADE") => {}
                Some("UPGRADE") => proto = ProtocolOverride::UpgradeH2,
                Some(other) => return Err(problem(CODE_INVALID, f("http.h2UpgradePolicy"), format!("unknown h2UpgradePolicy {other:?}: expected DEFAULT, DO_NOT_UPGRADE or UPGRADE"))),
            }
            if h.use_client_protocol == Some(true) {
                proto = ProtocolOverride::Client;
            }
        }
    }
    if let Some(od) = l.outlier {
        let f = |s: &str| format!("{at}.outlierDetection.{s}");
        out.outlier = Some(OutlierPolicy {
            consecutive_5xx: od.consecutive_5xx_errors.unwrap_or(5),
            consecutive_gateway_errors: od.consecutive_gateway_errors.unwrap_or(0),
            interval: duration(&od.interval, || f("interval"))?.unwrap_or(Duration::from_secs(10)),
            base_ejection_time: duration(&od.base_ejection_time, || f("baseEjectionTime"))?
                .unwrap_or(Duration::from_secs(30)),
            max_ejection_percent: od.max_ejection_percent.unwrap_or(10).min(100),
            min_health_percent: od.min_health_percent.unwrap_or(0).min(100),
        });
    }
    if let Some(tls) = l.tls {
        let mode = match tls
            .mode
            .as_deref()
            .unwrap_or("DISABLE")
            .to_ascii_uppercase()
            .as_str()
        {
            "DISABLE" => UpstreamTlsMode::Disable,
            "SIMPLE" => UpstreamTlsMode::Simple,
            "MUTUAL" => UpstreamTlsMode::Mutual,
            "ISTIO_MUTUAL" => UpstreamTlsMode::IstioMutual,
            other => {
                return Err(problem(
                    CODE_INVALID,
                    format!("{at}.tls.mode"),
                    format!(
                    "unknown tls mode {other:?}: expected DISABLE, SIMPLE, MUTUAL or ISTIO_MUTUAL"
                ),
                ))
            }
        };
        out.tls = Some(UpstreamTls {
            mode,
            credential_name: tls.credential_name.clone(),
            client_certificate: tls.client_certificate.clone(),
            private_key: tls.private_key.clone(),
            ca_certificates: tls.ca_certificates.clone(),
            subject_alt_names: tls.subject_alt_names.clone(),
            sni: tls.sni.clone(),
            insecure_skip_verify: tls.insecure_skip_verify.unwrap_or(false),
        });
    }
    Ok((out, proto))
}

fn load_balancer(lb: &LoadBalancer, at: &str) -> Checked<LoadBalancerPolicy> {
    if let Some(ch) = &lb.consistent_hash {
        let f = |s: &str| format!("{at}.consistentHash.{s}");
        let policy = if let Some(h) = &ch.http_header_name {
            let name =
                http::HeaderName::from_bytes(h.to_ascii_lowercase().as_bytes()).map_err(|_| {
                    problem(
                        CODE_INVALID,
                        f("httpHeaderName"),
                        format!("{h:?} is not a valid header name"),
                    )
                })?;
            HashPolicy::Header(name)
        } else if let Some(c) = &ch.http_cookie {
            HashPolicy::Cookie {
                name: c.name.clone(),
                path: c.path.clone(),
                ttl: duration(&c.ttl, || f("httpCookie.ttl"))?,
            }
        } else if ch.use_source_ip == Some(true) {
            HashPolicy::SourceIp
        } else if let Some(q) = &ch.http_query_parameter_name {
            HashPolicy::QueryParameter(q.clone())
        } else {
            return Err(problem(
                CODE_INVALID,
                format!("{at}.consistentHash"),
                "set one of httpHeaderName, httpCookie, useSourceIp, httpQueryParameterName",
            ));
        };
        return Ok(LoadBalancerPolicy::ConsistentHash(policy));
    }
    Ok(match lb.simple.as_deref().map(str::to_ascii_uppercase).as_deref() {
        None | Some("LEAST_REQUEST") | Some("LEAST_CONN") | Some("UNSPECIFIED") => LoadBalancerPolicy::LeastRequest,
        Some("ROUND_ROBIN") => LoadBalancerPolicy::RoundRobin,
        Some("RANDOM") => LoadBalancerPolicy::Random,
        Some("PASSTHROUGH") => LoadBalancerPolicy::Passthrough,
        Some(other) => {
            return Err(problem(CODE_INVALID, format!("{at}.simple"), format!("unknown load balancer {other:?}: expected LEAST_REQUEST, ROUND_ROBIN, RANDOM or PASSTHROUGH")))
        }
    })
}
