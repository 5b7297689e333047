//! Clusters: `outbound|PORT|SUBSET|HOST` for every destination and mirror, plus one
//! per service port and DestinationRule subset, with endpoints and policy resolved.

use std::collections::HashMap;
use std::sync::Arc;

use super::policy::{cluster_policy, DestinationRules, ProtocolOverride};
use super::services::{Port, Services};
use super::{CODE_HOST_UNKNOWN, CODE_PORT_AMBIGUOUS, CODE_SUBSET_MISSING};
use crate::router::snapshot::*;

/// What kind of route reaches a cluster: decides the protocol when the service's port
/// does not say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RouteKind {
    Http,
    Tcp,
    Tls,
}

#[derive(Debug, Clone)]
pub(super) struct Target {
    pub name: ClusterName,
    pub host: String,
    pub port: u32,
    pub subset: Option<String>,
    pub kind: RouteKind,
}

/// A destination a VirtualService asked for, with the field that named it.
#[derive(Debug, Clone)]
pub(super) struct TargetReq {
    pub target: Target,
    pub field: String,
}

pub(super) fn cluster_name(port: u32, subset: Option<&str>, host: &str) -> ClusterName {
    format!("outbound|{port}|{}|{host}", subset.unwrap_or("")).into()
}

/// Picks the port of a destination (its own, or the service's only one) and names the
/// cluster. The second value warns when the choice was a guess.
pub(super) fn resolve_target(
    services: &Services,
    host: &str,
    port: Option<u32>,
    subset: Option<&str>,
    kind: RouteKind,
) -> (Target, Option<(&'static str, String)>) {
    let mut warning = None;
    let port = match (port, services.get(host)) {
        (Some(p), _) => p,
        (None, Some(svc)) if svc.ports.len() == 1 => svc.ports[0].number,
        (None, Some(svc)) if !svc.ports.is_empty() => {
            let wanted = |p: &&Port| match kind {
                RouteKind::Http => matches!(
                    p.protocol,
                    None | Some(UpstreamProtocol::Http1) | Some(UpstreamProtocol::Http2)
                ),
                RouteKind::Tcp => true,
                RouteKind::Tls => p.protocol == Some(UpstreamProtocol::Tls),
            };
            let chosen = svc
                .ports
                .iter()
                .find(wanted)
                .unwrap_or(&svc.ports[0])
                .number;
            let all: Vec<String> = svc.ports.iter().map(|p| p.number.to_string()).collect();
            warning = Some((
                CODE_PORT_AMBIGUOUS,
                format!(
                    "{host} has several ports ({}); using {chosen}: set destination.port.number",
                    all.join(", ")
                ),
            ));
            chosen
        }
        // Unknown service (or one without ports): HTTP's default port.
        (None, _) => 80,
    };
    let subset = subset.filter(|s| !s.is_empty()).map(str::to_string);
    let target = Target {
        name: cluster_name(port, subset.as_deref(), host),
        host: host.to_string(),
        port,
        subset,
        kind,
    };
    (target, warning)
}

pub(super) struct ClusterSet<'a> {
    services: &'a Services,
    rules: &'a DestinationRules<'a>,
    clusters: HashMap<ClusterName, Arc<Cluster>>,
}

impl<'a> ClusterSet<'a> {
    pub fn new(services: &'a Services, rules: &'a DestinationRules<'a>) -> Self {
        ClusterSet {
            services,
            rules,
            clusters: HashMap::new(),
        }
    }

    /// Builds the cluster for `t` unless it exists. Returns a warning (code, message)
    /// when the cluster can only answer 503 NC (unknown host, subset defined nowhere).
    pub fn ensure(&mut self, t: &Target) -> Option<(&'static str, String)> {
        if let Some(c) = self.clusters.get(&t.name) {
            return c.missing.clone().map(|m| (missing_code(c), m));
        }
        let cluster = self.build(t);
        let warning = cluster.missing.clone().map(|m| (missing_code(&cluster), m));
        self.clusters.insert(t.name.clone(), Arc::new(cluster));
        warning
    }

    fn build(&self, t: &Target) -> Cluster {
        let default_protocol = match t.kind {
            RouteKind::Http => UpstreamProtocol::Http1,
            RouteKind::Tcp => UpstreamProtocol::Tcp,
            RouteKind::Tls => UpstreamProtocol::Tls,
        };
        let mut cluster = Cluster {
            name: t.name.clone(),
            host: t.host.clone(),
            port: t.port,
            subset: t.subset.clone(),
            protocol: default_protocol,
            endpoints: Vec::new(),
            dns: false,
            policy: ClusterPolicy::default(),
            missing: None,
        };
        let Some(svc) = self.services.get(&t.host) else {
            cluster.missing = Some(format!(
                "host {} is not a known service: add a ServiceEntry, or a Service with Endpoints",
                t.host
            ));
            return cluster;
        };
        let port = svc.port(t.port).cloned().unwrap_or(Port {
            number: t.port,
            name: String::new(),
            protocol: None,
            target_port: None,
        });
        cluster.dns = svc.dns;
        cluster.protocol = port.protocol.unwrap_or(default_protocol);
        let rule = self.rules.for_host(&t.host);
        let subset = match (&t.subset, rule) {
            (None, _) => None,
            (Some(name), Some(dr)) => match dr.spec.subsets.iter().find(|s| &s.name == name) {
                Some(s) => Some(s),
                None => {
                    cluster.missing = Some(format!(
                        "subset {name} of {} is not defined: DestinationRule {}/{} has no subset {name}",
                        t.host, dr.meta.namespace, dr.meta.name
                    ));
                    return cluster;
                }
            },
            (Some(name), None) => {
                cluster.missing = Some(format!(
                    "subset {name} of {} is not defined: no DestinationRule for this host",
                    t.host
                ));
                return cluster;
            }
        };
        cluster.endpoints = svc.endpoints_for(&port, subset.map(|s| &s.labels));
        if let Some(dr) = rule {
            let (policy, proto) = cluster_policy(dr, subset, t.port);
            let originates_tls = policy
                .tls
                .as_ref()
                .is_some_and(|tls| tls.mode != UpstreamTlsMode::Disable);
            if cluster.protocol == UpstreamProtocol::Tls
                && originates_tls
                && t.kind == RouteKind::Http
            {
                // HTTP routed to a TLS port with TLS origination: HTTP inside that TLS.
                cluster.protocol = UpstreamProtocol::Http1;
            }
            match proto {
                ProtocolOverride::UpgradeH2 if cluster.protocol == UpstreamProtocol::Http1 => {
                    cluster.protocol = UpstreamProtocol::Http2
                }
                ProtocolOverride::Client => cluster.protocol = UpstreamProtocol::Client,
                _ => {}
            }
            cluster.policy = policy;
        }
        cluster
    }

    /// Clusters nobody routes to yet but a sidecar or a plugin's `http_call` may name:
    /// every service port, and every DestinationRule subset on every port.
    pub fn add_service_defaults(&mut self) {
        let services = self.services;
        let mut wanted = Vec::new();
        for svc in services.by_host.values() {
            for p in &svc.ports {
                let kind = match p.protocol {
                    Some(UpstreamProtocol::Tcp) => RouteKind::Tcp,
                    Some(UpstreamProtocol::Tls) => RouteKind::Tls,
                    _ => RouteKind::Http,
                };
                wanted.push(resolve_target(services, &svc.host, Some(p.number), None, kind).0);
                if let Some(dr) = self.rules.for_host(&svc.host) {
                    for s in &dr.spec.subsets {
                        wanted.push(
                            resolve_target(
                                services,
                                &svc.host,
                                Some(p.number),
                                Some(&s.name),
                                kind,
                            )
                            .0,
                        );
                    }
                }
            }
        }
        for t in wanted {
            self.ensure(&t);
        }
    }

    pub fn finish(self) -> HashMap<ClusterName, Arc<Cluster>> {
        self.clusters
    }
}

fn missing_code(c: &Cluster) -> &'static str {
    if c.subset.is_some()
        && c.missing
            .as_deref()
            .is_some_and(|m| m.starts_with("subset"))
    {
        CODE_SUBSET_MISSING
    } else {
        CODE_HOST_UNKNOWN
    }
}
