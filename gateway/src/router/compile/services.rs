//! The service registry compile resolves destinations against: ServiceEntries
//! (endpoints or DNS) and Kubernetes Services with their Endpoints, keyed by FQDN.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::Arc;

use super::{problem, Checked, CODE_INVALID};
use crate::config::hosts::expand_host;
use crate::config::*;
use crate::router::snapshot::{Endpoint, ServiceInfo, UpstreamProtocol};

#[derive(Debug, Clone)]
pub(super) struct Port {
    pub number: u32,
    pub name: String,
    /// None when neither protocol nor port name says (the route kind decides).
    pub protocol: Option<UpstreamProtocol>,
    pub target_port: Option<u32>,
}

#[derive(Debug, Clone)]
pub(super) struct RawEndpoint {
    /// IP, or a DNS name when the service resolves by DNS.
    pub address: String,
    /// Port name → port on this endpoint ("" for an unnamed Endpoints port).
    pub ports: BTreeMap<String, u32>,
    pub labels: Labels,
    pub weight: u32,
    pub service_account: Option<String>,
}

#[derive(Debug)]
pub(super) struct Service {
    pub host: String,
    pub namespace: String,
    pub ports: Vec<Port>,
    pub endpoints: Vec<RawEndpoint>,
    pub dns: bool,
}

impl Service {
    /// The endpoints serving `port`, limited to those carrying all of `labels`.
    pub fn endpoints_for(&self, port: &Port, labels: Option<&Labels>) -> Vec<Endpoint> {
        self.endpoints
            .iter()
            .filter(|e| {
                labels.is_none_or(|want| want.iter().all(|(k, v)| e.labels.get(k) == Some(v)))
            })
            .map(|e| {
                let p = e
                    .ports
                    .get(&port.name)
                    .copied()
                    .or_else(|| {
                        (e.ports.len() == 1 && self.ports.len() == 1)
                            .then(|| e.ports.values().next().copied())
                            .flatten()
                    })
                    .or(port.target_port)
                    .unwrap_or(port.number);
                let address = match e.address.parse::<IpAddr>() {
                    Ok(IpAddr::V6(ip)) => format!("[{ip}]:{p}"),
                    _ => format!("{}:{p}", e.address),
                };
                Endpoint {
                    address,
                    labels: e.labels.clone(),
                    weight: e.weight,
                    service_account: e.service_account.clone(),
                }
            })
            .collect()
    }

    pub fn port(&self, number: u32) -> Option<&Port> {
        self.ports.iter().find(|p| p.number == number)
    }
}

#[derive(Debug, Default)]
pub(super) struct Services {
    pub by_host: HashMap<String, Service>,
}

/// `http`, `http-web`, `grpc`, `tcp-db`... → protocol (Istio's port naming convention).
pub(super) fn protocol_from_name(name: &str) -> Option<UpstreamProtocol> {
    let prefix = name.split('-').next().unwrap_or(name);
    // `grpc-web` is gRPC over HTTP/1.1, not h2.
    if name.eq_ignore_ascii_case("grpc-web") || name.to_ascii_lowercase().starts_with("grpc-web-") {
        return Some(UpstreamProtocol::Http1);
    }
    protocol_from_keyword(prefix)
}

/// An Istio protocol keyword (`HTTP`, `HTTP2`, `GRPC`, `TCP`, `TLS`, `HTTPS`, ...).
pub(super) fn protocol_from_keyword(p: &str) -> Option<UpstreamProtocol> {
    match p.to_ascii_lowercase().as_str() {
        "http" | "grpc-web" => Some(UpstreamProtocol::Http1),
        "http2" | "grpc" | "kubernetes.io/h2c" => Some(UpstreamProtocol::Http2),
        "tcp" | "mongo" | "mysql" | "redis" => Some(UpstreamProtocol::Tcp),
        "tls" | "https" => Some(UpstreamProtocol::Tls),
        _ => None,
    }
}

impl Services {
    pub fn build(config: &ConfigSet, diags: &mut Vec<Diagnostic>) -> Services {
        let mut out = Services::default();
        for se in &config.service_entries {
            match from_service_entry(se) {
                Ok(list) => {
                    for s in list {
                        out.by_host.entry(s.host.clone()).or_insert(s);
                    }
                }
                Err(p) => diags.push(p.diagnostic(&se.meta, Severity::Error)),
            }
        }
        for svc in &config.services {
            let host = expand_host(&svc.meta.name, &svc.meta.namespace);
            // A ServiceEntry with endpoints says where the host is; a Service then adds nothing.
            if out
                .by_host
                .get(&host)
                .is_some_and(|s| !s.endpoints.is_empty())
            {
                continue;
            }
            let eps = config
                .endpoints
                .iter()
                .find(|e| e.meta.name == svc.meta.name && e.meta.namespace == svc.meta.namespace);
            out.by_host.insert(host.clone(), from_kube(svc, eps, host));
        }
        out
    }

    pub fn get(&self, host: &str) -> Option<&Service> {
        self.by_host.get(host)
    }

    /// The public view of every service, for `Snapshot.services`.
    pub fn infos(&self) -> impl Iterator<Item = Arc<ServiceInfo>> + '_ {
        self.by_host.values().map(|s| {
            Arc::new(ServiceInfo {
                host: s.host.clone(),
                namespace: s.namespace.clone(),
                ports: s
                    .ports
                    .iter()
                    .map(|p| {
                        (
                            p.number,
                            p.protocol.unwrap_or(UpstreamProtocol::Http1),
                            p.name.clone(),
                        )
                    })
                    .collect(),
                endpoints: s
                    .ports
                    .first()
                    .map(|p| s.endpoints_for(p, None))
                    .unwrap_or_default(),
                dns: s.dns,
            })
        })
    }
}

fn from_service_entry(se: &Res<ServiceEntrySpec>) -> Checked<Vec<Service>> {
    let spec = &se.spec;
    if spec.hosts.is_empty() {
        return Err(problem(
            CODE_INVALID,
            "spec.hosts",
            "a ServiceEntry needs at least one host",
        ));
    }
    let resolution = spec
        .resolution
        .as_deref()
        .unwrap_or("NONE")
        .to_ascii_uppercase();
    let dns = match resolution.as_str() {
        "DNS" | "DNS_ROUND_ROBIN" => true,
        "STATIC" | "NONE" => false,
        other => {
            return Err(problem(
                CODE_INVALID,
                "spec.resolution",
                format!(
                    "unknown resolution {other:?}: expected NONE, STATIC, DNS or DNS_ROUND_ROBIN"
                ),
            ))
        }
    };
    let mut ports = Vec::new();
    for (i, p) in spec.ports.iter().enumerate() {
        if p.number == 0 || p.number > 65535 {
            return Err(problem(
                CODE_INVALID,
                format!("spec.ports[{i}].number"),
                format!("port {} is outside 1-65535", p.number),
            ));
        }
        let protocol = match &p.protocol {
            Some(proto) => Some(protocol_from_keyword(proto).ok_or_else(|| {
                problem(
                    CODE_INVALID,
                    format!("spec.ports[{i}].protocol"),
                    format!(
                        "unknown protocol {proto:?}: expected HTTP, HTTPS, HTTP2, GRPC, TCP or TLS"
                    ),
                )
            })?),
            None => protocol_from_name(&p.name),
        };
        ports.push(Port {
            number: p.number,
            name: p.name.clone(),
            protocol,
            target_port: p.target_port,
        });
    }
    let mut endpoints = Vec::new();
    for (i, e) in spec.endpoints.iter().enumerate() {
        let field = format!("spec.endpoints[{i}].address");
        if e.address.is_empty() {
            return Err(problem(CODE_INVALID, field, "an endpoint needs an address"));
        }
        if resolution == "STATIC" && e.address.parse::<IpAddr>().is_err() {
            return Err(problem(CODE_INVALID, field, format!("{:?} is not an IP address (resolution STATIC); use resolution: DNS for host names", e.address)));
        }
        endpoints.push(RawEndpoint {
            address: e.address.clone(),
            ports: e.ports.clone(),
            labels: e.labels.clone(),
            weight: e.weight.unwrap_or(1),
            service_account: e.service_account.clone(),
        });
    }
    Ok(spec
        .hosts
        .iter()
        .map(|h| {
            let host = expand_host(h, &se.meta.namespace);
            let endpoints = if dns && endpoints.is_empty() {
                // DNS without endpoints: the host itself is resolved at connect time.
                vec![RawEndpoint {
                    address: host.clone(),
                    ports: BTreeMap::new(),
                    labels: Labels::new(),
                    weight: 1,
                    service_account: None,
                }]
            } else {
                endpoints.clone()
            };
            Service {
                host,
                namespace: se.meta.namespace.clone(),
                ports: ports.clone(),
                endpoints,
                dns,
            }
        })
        .collect())
}

fn from_kube(svc: &Res<ServiceSpec>, eps: Option<&Res<EndpointsBody>>, host: String) -> Service {
    let ports = svc
        .spec
        .ports
        .iter()
        .map(|p| {
            let name = p.name.clone().unwrap_or_default();
            let protocol = p
                .app_protocol
                .as_deref()
                .and_then(protocol_from_keyword)
                .or_else(|| protocol_from_name(&name));
            Port {
                number: p.port,
                target_port: p
                    .target_port
                    .as_ref()
                    .and_then(|t| t.as_u64())
                    .and_then(|t| u32::try_from(t).ok()),
                name,
                protocol,
            }
        })
        .collect();
    let mut endpoints = Vec::new();
    for e in eps.into_iter() {
        for subset in &e.spec.subsets {
            let ports: BTreeMap<String, u32> = subset
                .ports
                .iter()
                .map(|p| (p.name.clone().unwrap_or_default(), p.port))
                .collect();
            for a in &subset.addresses {
                endpoints.push(RawEndpoint {
                    address: a.ip.clone(),
                    ports: ports.clone(),
                    // Endpoints addresses carry no labels of their own: the object's labels
                    // stand for its pods' (what a subset selects on).
                    labels: e.meta.labels.clone(),
                    weight: 1,
                    service_account: None,
                });
            }
        }
    }
    Service {
        host,
        namespace: svc.meta.namespace.clone(),
        ports,
        endpoints,
        dns: false,
    }
}
