//! Gateway servers, and binding VirtualServices to them: route domains are the
//! intersection of server hosts (filtered by their `ns/` part) and VirtualService
//! hosts; several VirtualServices for one domain merge, catch-all rules last.

use std::collections::HashMap;
use std::sync::Arc;

use super::l4::Narrowed;
use super::virtual_service::CompiledVs;
use super::{problem, Checked, CODE_GATEWAY_NOT_FOUND, CODE_INVALID, CODE_MESH_CONFLICT};
use crate::config::hosts::{intersect, split_gateway_host};
use crate::config::*;
use crate::router::snapshot::*;

pub(super) struct ServerDraft<'c> {
    pub res: &'c Res<GatewaySpec>,
    /// `ns/name`
    pub gateway: String,
    pub port_name: String,
    pub port: u32,
    pub protocol: ServerProtocol,
    /// (namespace filter, host), host lower-cased.
    pub hosts: Vec<(String, String)>,
    pub tls: Option<ServerTlsPolicy>,
    pub https_redirect: bool,
}

pub(super) fn compile_all<'c>(
    config: &'c ConfigSet,
    diags: &mut Vec<Diagnostic>,
) -> Vec<ServerDraft<'c>> {
    let mut out = Vec::new();
    for res in &config.gateways {
        match servers(res) {
            Ok(list) => out.extend(list),
            Err(p) => diags.push(p.diagnostic(&res.meta, Severity::Error)),
        }
    }
    out
}

fn servers(res: &Res<GatewaySpec>) -> Checked<Vec<ServerDraft<'_>>> {
    let gateway = format!("{}/{}", res.meta.namespace, res.meta.name);
    let mut out = Vec::new();
    for (i, s) in res.spec.servers.iter().enumerate() {
        let at = |f: &str| format!("spec.servers[{i}].{f}");
        if s.port.number == 0 || s.port.number > 65535 {
            return Err(problem(
                CODE_INVALID,
                at("port.number"),
                format!("port {} is outside 1-65535", s.port.number),
            ));
        }
        let protocol = match s.port.protocol.to_ascii_uppercase().as_str() {
            "HTTP" => ServerProtocol::Http,
            "HTTPS" => ServerProtocol::Https,
            "HTTP2" => ServerProtocol::Http2,
            "GRPC" => ServerProtocol::Grpc,
            "TCP" | "MONGO" | "REDIS" | "MYSQL" => ServerProtocol::Tcp,
            "TLS" => ServerProtocol::Tls,
            other => {
                return Err(problem(
                    CODE_INVALID,
                    at("port.protocol"),
                    format!(
                        "unknown protocol {other:?}: expected HTTP, HTTPS, HTTP2, GRPC, TCP or TLS"
                    ),
                ))
            }
        };
        if s.hosts.is_empty() {
            return Err(problem(
                CODE_INVALID,
                at("hosts"),
                "a server needs at least one host",
            ));
        }
        let mut hosts = Vec::new();
        for (j, h) in s.hosts.iter().enumerate() {
            let (ns, host) = split_gateway_host(h.trim());
            if host.is_empty() || ns.is_empty() {
                return Err(problem(
                    CODE_INVALID,
                    at(&format!("hosts[{j}]")),
                    format!("{h:?} is not [namespace/]host"),
                ));
            }
            hosts.push((ns.to_string(), host.to_ascii_lowercase()));
        }
        let https_redirect = s.tls.as_ref().is_some_and(|t| t.https_redirect);
        let tls = match (&s.tls, protocol) {
            (Some(t), ServerProtocol::Https | ServerProtocol::Tls) => {
                Some(tls_policy(t, &at("tls"))?)
            }
            (None, ServerProtocol::Https | ServerProtocol::Tls) => {
                return Err(problem(
                    CODE_INVALID,
                    at("tls"),
                    format!(
                        "a {} server needs tls settings",
                        s.port.protocol.to_ascii_uppercase()
                    ),
                ))
            }
            (Some(t), _) if t.mode.is_some() => {
                return Err(problem(
                    CODE_INVALID,
                    at("tls.mode"),
                    "a plain-text server may only set tls.httpsRedirect",
                ))
            }
            _ => None,
        };
        out.push(ServerDraft {
            res,
            gateway: gateway.clone(),
            port_name: s.port.name.clone(),
            port: s.port.number,
            protocol,
            hosts,
            tls,
            https_redirect,
        });
    }
    Ok(out)
}

fn tls_policy(t: &ServerTls, at: &str) -> Checked<ServerTlsPolicy> {
    let mode = match t.mode.as_deref().unwrap_or("SIMPLE").to_ascii_uppercase().as_str() {
        "PASSTHROUGH" => ServerTlsMode::Passthrough,
        "SIMPLE" => ServerTlsMode::Simple,
        "MUTUAL" => ServerTlsMode::Mutual,
        "OPTIONAL_MUTUAL" => ServerTlsMode::OptionalMutual,
        "ISTIO_MUTUAL" => ServerTlsMode::IstioMutual,
        "AUTO_PASSTHROUGH" => ServerTlsMode::AutoPassthrough,
        other => return Err(problem(CODE_INVALID, format!("{at}.mode"), format!("unknown tls mode {other:?}: expected PASSTHROUGH, SIMPLE, MUTUAL, OPTIONAL_MUTUAL, ISTIO_MUTUAL or AUTO_PASSTHROUGH"))),
    };
    let terminates = matches!(
        mode,
        ServerTlsMode::Simple | ServerTlsMode::Mutual | ServerTlsMode::OptionalMutual
    );
    let has_files = t.server_certificate.is_some() && t.private_key.is_some();
    if terminates && t.credential_name.is_none() && !has_files {
        return Err(problem(
            CODE_INVALID,
            at,
            "SIMPLE and MUTUAL need credentialName, or serverCertificate and privateKey",
        ));
    }
    if matches!(mode, ServerTlsMode::Mutual)
        && t.credential_name.is_none()
        && t.ca_certificates.is_none()
    {
        return Err(problem(
            CODE_INVALID,
            at,
            "MUTUAL needs credentialName (with ca.crt) or caCertificates",
        ));
    }
    let min_tls13 = match t
        .min_protocol_version
        .as_deref()
        .map(str::to_ascii_uppercase)
        .as_deref()
    {
        None | Some("TLS_AUTO") | Some("TLSV1_0") | Some("TLSV1_1") | Some("TLSV1_2") => false,
        Some("TLSV1_3") => true,
        Some(other) => {
            return Err(problem(
                CODE_INVALID,
                format!("{at}.minProtocolVersion"),
                format!("unknown TLS version {other:?}: expected TLSV1_2 or TLSV1_3"),
            ))
        }
    };
    Ok(ServerTlsPolicy {
        mode,
        credential_name: t.credential_name.clone(),
        server_certificate: t.server_certificate.clone(),
        private_key: t.private_key.clone(),
        ca_certificates: t.ca_certificates.clone(),
        subject_alt_names: t.subject_alt_names.clone(),
        min_tls13,
    })
}

/// A VirtualService naming a Gateway that does not exist is served nowhere: say so.
pub(super) fn warn_unknown_gateways(
    vss: &[CompiledVs<'_>],
    servers: &[ServerDraft<'_>],
    diags: &mut Vec<Diagnostic>,
) {
    for vs in vss.iter().filter(|v| !v.hosts.is_empty()) {
        for (i, g) in vs.gateways.iter().enumerate() {
            if g != "mesh" && !servers.iter().any(|s| &s.gateway == g) {
                let field = if vs.res.spec.gateways.is_empty() {
                    "spec.gateways".to_string()
                } else {
                    format!("spec.gateways[{i}]")
                };
                let p = problem(
                    CODE_GATEWAY_NOT_FOUND,
                    field,
                    format!("gateway {g} is not defined: this VirtualService is not served there"),
                );
                diags.push(p.diagnostic(&vs.res.meta, Severity::Warning));
            }
        }
    }
}

/// The rule as seen from `gateway`: match entries limited to other gateways dropped;
/// None when no entry is left.
fn for_gateway(rule: &Arc<HttpRule>, gateway: &str) -> Option<Arc<HttpRule>> {
    if rule.matches.iter().all(|m| m.gateways.is_empty()) {
        return Some(rule.clone());
    }
    let kept: Vec<RequestMatch> = rule
        .matches
        .iter()
        .filter(|m| m.gateways.is_empty() || m.gateways.iter().any(|g| g == gateway))
        .cloned()
        .collect();
    if kept.is_empty() {
        return None;
    }
    Some(Arc::new(HttpRule {
        virtual_service: rule.virtual_service.clone(),
        index: rule.index.clone(),
        name: rule.name.clone(),
        matches: kept,
        action: rule.action.clone(),
        origin: rule.origin.clone(),
        delegate: rule.delegate.clone(),
    }))
}

fn narrowed_to<T>(rules: &[Narrowed<T>], gateway: &str) -> Vec<Arc<T>> {
    rules
        .iter()
        .filter(|n| n.gateways.is_empty() || n.gateways.iter().any(|g| g == gateway))
        .map(|n| n.rule.clone())
        .collect()
}

/// A rule that takes every request: no match entries, or an entry whose only
/// condition is `uri: {prefix: /}` (Istio's definition).
fn is_catch_all(rule: &HttpRule) -> bool {
    rule.matches.is_empty()
        || rule.matches.iter().any(|m| {
            let uri_all = match &m.uri {
                None => true,
                Some(Matcher::Prefix(p)) | Some(Matcher::PrefixIgnoreCase(p)) => {
                    p.is_empty() || p == "/"
                }
                Some(_) => false,
            };
            uri_all
                && m.scheme.is_none()
                && m.method.is_none()
                && m.authority.is_none()
                && m.headers.is_empty()
                && m.without_headers.is_empty()
                && m.query_params.is_empty()
                && m.port.is_none()
                && m.source_labels.is_empty()
                && m.source_namespace.is_none()
        })
}

/// A VirtualService's rules as seen from `gateway`: entries for other gateways dropped,
/// and nothing after the first catch-all (it could never be reached).
fn rules_for(vs: &CompiledVs<'_>, gateway: &str) -> Vec<Arc<HttpRule>> {
    let mut out = Vec::new();
    for r in vs.http.iter().filter_map(|r| for_gateway(r, gateway)) {
        let last = is_catch_all(&r);
        out.push(r);
        if last {
            break;
        }
    }
    out
}

/// Builds a host table from (domain, rules) in VirtualService order: rules of several
/// VirtualServices for one domain are concatenated, catch-all rules moved last.
fn table(domains: Vec<(String, Vec<Arc<HttpRule>>)>) -> VirtualHostTable {
    let mut order: Vec<String> = Vec::new();
    // domain → (rules with conditions, catch-all rules)
    type Split = (Vec<Arc<HttpRule>>, Vec<Arc<HttpRule>>);
    let mut merged: HashMap<String, Split> = HashMap::new();
    for (domain, rules) in domains {
        let entry = merged.entry(domain.clone()).or_insert_with(|| {
            order.push(domain);
            Default::default()
        });
        for r in rules {
            if is_catch_all(&r) {
                entry.1.push(r);
            } else {
                entry.0.push(r);
            }
        }
    }
    let mut t = VirtualHostTable::default();
    for domain in order {
        let Some((mut rules, catch_alls)) = merged.remove(&domain) else {
            continue;
        };
        rules.extend(catch_alls);
        let i = t.vhosts.len();
        if domain == "*" {
            t.catch_all = Some(i);
        } else if let Some(suffix) = domain.strip_prefix('*') {
            t.suffix.push((suffix.to_string(), i));
        } else {
            t.exact.insert(domain.clone(), i);
        }
        t.vhosts.push(Arc::new(VirtualHost { domain, rules }));
    }
    t.suffix.sort_by_key(|(s, _)| std::cmp::Reverse(s.len()));
    t
}

/// Does a server host's `ns/` part let a VirtualService from `vs_ns` bind?
fn namespace_allows(filter: &str, gateway_ns: &str, vs_ns: &str) -> bool {
    filter == "*" || (filter == "." && vs_ns == gateway_ns) || filter == vs_ns
}

/// The server with every VirtualService bound to it.
pub(super) fn bind(s: &ServerDraft<'_>, vss: &[CompiledVs<'_>]) -> GatewayServer {
    let gw_ns = s.res.meta.namespace.as_str();
    let mut domains = Vec::new();
    let mut tcp_rules = Vec::new();
    let mut tls_rules = Vec::new();
    for vs in vss
        .iter()
        .filter(|v| !v.hosts.is_empty() && v.gateways.contains(&s.gateway))
    {
        let mut mine: Vec<String> = Vec::new();
        for (filter, server_host) in &s.hosts {
            if !namespace_allows(filter, gw_ns, vs.namespace()) {
                continue;
            }
            for h in &vs.hosts {
                if let Some(d) = intersect(server_host, h) {
                    if !mine.contains(&d) {
                        mine.push(d);
                    }
                }
            }
        }
        if mine.is_empty() {
            continue;
        }
        let rules = rules_for(vs, &s.gateway);
        for d in mine {
            domains.push((d, rules.clone()));
        }
        tcp_rules.extend(narrowed_to(&vs.tcp, &s.gateway));
        tls_rules.extend(narrowed_to(&vs.tls, &s.gateway));
    }
    GatewayServer {
        gateway: s.gateway.clone(),
        selector: s.res.spec.selector.clone(),
        port_name: s.port_name.clone(),
        port: s.port,
        protocol: s.protocol,
        hosts: s.hosts.iter().map(|(_, h)| h.clone()).collect(),
        tls: s.tls.clone(),
        https_redirect: s.https_redirect,
        vhosts: table(domains),
        tcp_rules,
        tls_rules,
    }
}

/// VirtualServices bound to `mesh`, by host. Unlike gateways, the mesh does not merge:
/// the first VirtualService for a host wins and later ones are reported.
pub(super) fn mesh_table(vss: &[CompiledVs<'_>], diags: &mut Vec<Diagnostic>) -> VirtualHostTable {
    let mut owner: HashMap<String, String> = HashMap::new();
    let mut domains = Vec::new();
    for vs in vss
        .iter()
        .filter(|v| v.gateways.iter().any(|g| g == "mesh"))
    {
        let rules = rules_for(vs, "mesh");
        for (i, h) in vs.hosts.iter().enumerate() {
            if let Some(first) = owner.get(h) {
                let p = problem(CODE_MESH_CONFLICT, format!("spec.hosts[{i}]"), format!("host {h} is already routed in the mesh by VirtualService {first}; this one is ignored for it"));
                diags.push(p.diagnostic(&vs.res.meta, Severity::Warning));
                continue;
            }
            owner.insert(h.clone(), vs.name.clone());
            domains.push((h.clone(), rules.clone()));
        }
    }
    table(domains)
}
