//! `meshgate route`: which server, virtual host, rule and destination a request
//! takes and why, in words. Uses the same lookup and matching code as the proxy, then
//! re-asks the rules before the chosen one why they did not match.

use std::fmt::Write;

use http::{HeaderMap, HeaderName, HeaderValue};

use super::lookup::{gateway_caller, strip_port};
use super::matching::Caller;
use super::snapshot::*;
use crate::config::hosts::expand_host;
use crate::config::ConfigSet;

/// One request as `meshgate route` was asked about it.
#[derive(Debug, Clone)]
pub struct RouteQuery {
    pub method: String,
    pub scheme: String,
    /// The Host header: the URL's authority unless `-H 'Host: ...'` overrides it.
    pub authority: String,
    pub path_and_query: String,
    pub headers: HeaderMap,
    /// The Gateway server port (from the URL, default 80 / 443).
    pub port: u32,
    pub sni: Option<String>,
    /// Route as a sidecar would (mesh VirtualServices) instead of as a gateway.
    pub mesh: bool,
    pub source_namespace: Option<String>,
}

impl RouteQuery {
    /// Reads `METHOD URL` and `-H 'name: value'` arguments. `port` overrides the URL's.
    pub fn parse(
        method: &str,
        url: &str,
        headers: &[String],
        port: Option<u32>,
    ) -> Result<RouteQuery, String> {
        let (scheme, rest) = url.split_once("://").ok_or_else(|| {
            format!("{url:?} is not an absolute URL: expected http://host[:port]/path")
        })?;
        let scheme = scheme.to_ascii_lowercase();
        if scheme != "http" && scheme != "https" {
            return Err(format!(
                "unsupported scheme {scheme:?}: expected http or https"
            ));
        }
        let split = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(split);
        if authority.is_empty() {
            return Err(format!("{url:?} has no host"));
        }
        let path_and_query = match path {
            "" => "/".to_string(),
            p if p.starts_with('?') => format!("/{p}"),
            p => p.to_string(),
        };
        let host = strip_port(authority);
        let url_port = match authority[host.len()..].strip_prefix(':') {
            Some(p) => Some(
                p.parse::<u32>()
                    .map_err(|_| format!("{p:?} is not a port number"))?,
            ),
            None => None,
        };
        let mut map = HeaderMap::new();
        let mut host_header = None;
        for h in headers {
            let (name, value) = h
                .split_once(':')
                .ok_or_else(|| format!("header {h:?} is not 'name: value'"))?;
            let name = HeaderName::from_bytes(name.trim().to_ascii_lowercase().as_bytes())
                .map_err(|_| format!("{:?} is not a valid header name", name.trim()))?;
            let value = HeaderValue::from_str(value.trim())
                .map_err(|_| format!("{:?} is not a valid header value", value.trim()))?;
            if name == http::header::HOST {
                host_header = Some(value.to_str().unwrap_or_default().to_string());
            }
            map.append(name, value);
        }
        let default_port = if scheme == "https" { 443 } else { 80 };
        Ok(RouteQuery {
            method: method.to_string(),
            sni: (scheme == "https").then(|| host.to_string()),
            scheme,
            authority: host_header.unwrap_or_else(|| authority.to_string()),
            path_and_query,
            headers: map,
            port: port.or(url_port).unwrap_or(default_port),
            mesh: false,
            source_namespace: None,
        })
    }

    pub fn view(&self) -> RequestView<'_> {
        RequestView {
            method: &self.method,
            scheme: &self.scheme,
            authority: &self.authority,
            path_and_query: &self.path_and_query,
            headers: &self.headers,
            port: self.port,
            source_labels: None,
            source_namespace: self.source_namespace.as_deref(),
        }
    }
}

/// The explanation and whether the request was routed (anything but 404 NR).
#[derive(Debug)]
pub struct Explanation {
    pub text: String,
    pub routed: bool,
}

/// Explains how `snapshot` routes `q`. `config` is only read for hints about
/// VirtualServices that name a gateway yet bind none of its hosts.
pub fn explain(snapshot: &Snapshot, config: &ConfigSet, q: &RouteQuery) -> Explanation {
    let mut out = String::new();
    let req = q.view();
    let _ = writeln!(
        out,
        "request: {} {}://{}{}",
        q.method, q.scheme, q.authority, q.path_and_query
    );
    let decision = if q.mesh {
        snapshot.route_mesh(&req)
    } else {
        snapshot.route(q.port, q.sni.as_deref(), &req)
    };
    let server = match &decision {
        RouteDecision::Matched { server, .. } => *server,
        RouteDecision::HttpsRedirect { server } => Some(*server),
        RouteDecision::NoRoute(nr) => nr.server,
    };
    if let Some(s) = server {
        describe_server(&mut out, s);
    } else if q.mesh {
        let _ = writeln!(
            out,
            "mesh: sidecar outbound routing (VirtualServices bound to mesh)"
        );
    }
    let caller = match server {
        Some(s) => gateway_caller(s, &req),
        None => Caller {
            labels: None,
            namespace: req.source_namespace,
        },
    };
    match decision {
        RouteDecision::Matched { vhost, rule, .. } => {
            let _ = writeln!(out, "virtual host: {}", vhost.domain);
            skipped_rules(&mut out, vhost, Some(rule), &req, caller);
            describe_rule(&mut out, rule, &req, caller);
            describe_action(&mut out, snapshot, rule, &req, caller);
            Explanation {
                text: out,
                routed: true,
            }
        }
        RouteDecision::HttpsRedirect { .. } => {
            let location = Redirect::https_upgrade().location(&req, None);
            let _ = writeln!(
                out,
                "result: 301 to {location} (the server sets tls.httpsRedirect)"
            );
            Explanation {
                text: out,
                routed: true,
            }
        }
        RouteDecision::NoRoute(nr) => {
            if let Some(v) = nr.vhost {
                let _ = writeln!(out, "virtual host: {}", v.domain);
                skipped_rules(&mut out, v, None, &req, caller);
            }
            let _ = writeln!(out, "result: 404 NR");
            let _ = writeln!(out, "why: {}", nr.message(&q.authority, q.port));
            if nr.server.is_some() && nr.vhost.is_none() {
                let _ = writeln!(out, "hosts here:");
            }
            if nr.vhost.is_none() {
                no_host_hints(&mut out, snapshot, config, q, nr.server);
            }
            Explanation {
                text: out,
                routed: false,
            }
        }
    }
}

fn protocol_name(p: ServerProtocol) -> &'static str {
    match p {
        ServerProtocol::Http => "HTTP",
        ServerProtocol::Https => "HTTPS",
        ServerProtocol::Http2 => "HTTP2",
        ServerProtocol::Grpc => "GRPC",
        ServerProtocol::Tcp => "TCP",
        ServerProtocol::Tls => "TLS",
    }
}

fn describe_server(out: &mut String, s: &GatewayServer) {
    let _ = write!(
        out,
        "server: Gateway {} port {} {}",
        s.gateway,
        s.port,
        protocol_name(s.protocol)
    );
    if !s.port_name.is_empty() {
        let _ = write!(out, " ({})", s.port_name);
    }
    let _ = writeln!(out, ", hosts: {}", s.hosts.join(", "));
    if let Some(tls) = &s.tls {
        let _ = write!(out, "tls: {:?}", tls.mode);
        if let Some(c) = &tls.credential_name {
            let _ = write!(out, ", credentialName {c}");
        }
        let _ = writeln!(
            out,
            ", minimum TLS {}",
            if tls.min_tls13 { "1.3" } else { "1.2" }
        );
    }
}

fn rule_label(rule: &HttpRule) -> String {
    let mut s = match &rule.delegate {
        Some(child) => {
            let (parent, own) = rule.index.split_once('/').unwrap_or((&rule.index, ""));
            format!(
                "http[{parent}] of VirtualService {} → delegate {child} http[{own}]",
                rule.virtual_service
            )
        }
        None => format!(
            "http[{}] of VirtualService {}",
            rule.index, rule.virtual_service
        ),
    };
    if let Some(n) = &rule.name {
        let _ = write!(s, " \"{n}\"");
    }
    s
}

fn skipped_rules(
    out: &mut String,
    vhost: &VirtualHost,
    stop: Option<&std::sync::Arc<HttpRule>>,
    req: &RequestView<'_>,
    caller: Caller<'_>,
) {
    for rule in &vhost.rules {
        if stop.is_some_and(|s| std::sync::Arc::ptr_eq(s, rule)) {
            break;
        }
        let reasons: Vec<String> = rule
            .matches
            .iter()
            .enumerate()
            .filter_map(|(i, m)| Some(format!("match[{i}] {}", m.mismatch(req, caller)?)))
            .collect();
        match reasons.as_slice() {
            [one] => {
                let why = one.split_once(' ').map(|(_, w)| w).unwrap_or(one);
                let _ = writeln!(
                    out,
                    "not matched: {} at {}: {why}",
                    rule_label(rule),
                    rule.origin
                );
            }
            many => {
                let _ = writeln!(out, "not matched: {} at {}:", rule_label(rule), rule.origin);
                for r in many {
                    let _ = writeln!(out, "  {r}");
                }
            }
        }
    }
}

fn describe_rule(out: &mut String, rule: &HttpRule, req: &RequestView<'_>, caller: Caller<'_>) {
    let _ = writeln!(out, "rule: {} at {}", rule_label(rule), rule.origin);
    if rule.matches.is_empty() {
        let _ = writeln!(out, "matched: catch-all (no match conditions)");
    } else if let Some(i) = rule.matches.iter().position(|m| m.matches(req, caller)) {
        let _ = writeln!(out, "matched: match[{i}]");
    }
}

fn percent(weight: u32, total: u32) -> String {
    let p = f64::from(weight) * 100.0 / f64::from(total.max(1));
    if (p - p.round()).abs() < 1e-9 {
        format!("{p:.0}%")
    } else {
        format!("{p:.1}%")
    }
}

fn describe_cluster(out: &mut String, snapshot: &Snapshot, name: &str) {
    let Some(c) = snapshot.clusters.get(name) else {
        let _ = writeln!(out, "  503 NC: cluster {name} does not exist");
        return;
    };
    if let Some(why) = &c.missing {
        let _ = writeln!(out, "  503 NC: {why}");
        return;
    }
    let addrs: Vec<&str> = c.endpoints.iter().map(|e| e.address.as_str()).collect();
    let protocol = match c.protocol {
        UpstreamProtocol::Http1 => "HTTP/1.1",
        UpstreamProtocol::Http2 => "HTTP/2",
        UpstreamProtocol::Tcp => "TCP",
        UpstreamProtocol::Tls => "TLS",
        UpstreamProtocol::Client => "the client's protocol",
    };
    if addrs.is_empty() {
        let _ = writeln!(out, "  endpoints: none (503 UH: no healthy upstream)");
    } else {
        let dns = if c.dns { " (resolved by DNS)" } else { "" };
        let _ = writeln!(out, "  endpoints: {}{dns}, {protocol}", addrs.join(", "));
    }
}

fn ops(out: &mut String, label: &str, h: &HeaderOps) {
    for (dir, o) in [("request", &h.request), ("response", &h.response)] {
        if o.is_empty() {
            continue;
        }
        let mut parts = Vec::new();
        parts.extend(
            o.set
                .iter()
                .map(|(k, v)| format!("set {k}: {}", v.to_str().unwrap_or("?"))),
        );
        parts.extend(
            o.add
                .iter()
                .map(|(k, v)| format!("add {k}: {}", v.to_str().unwrap_or("?"))),
        );
        parts.extend(o.remove.iter().map(|k| format!("remove {k}")));
        let _ = writeln!(out, "{label}{dir} headers: {}", parts.join(", "));
    }
}

fn describe_action(
    out: &mut String,
    snapshot: &Snapshot,
    rule: &HttpRule,
    req: &RequestView<'_>,
    caller: Caller<'_>,
) {
    let prefix = rule.matched_prefix(req, caller);
    let action = match &rule.action {
        RuleAction::Redirect(r) => {
            let _ = writeln!(out, "result: {} to {}", r.code, r.location(req, prefix));
            return;
        }
        RuleAction::DirectResponse(d) => {
            let body = String::from_utf8_lossy(&d.body);
            let _ = writeln!(out, "result: direct response {} {body:?}", d.status);
            return;
        }
        RuleAction::Route(a) => a,
    };
    for d in &action.destinations {
        let _ = writeln!(
            out,
            "destination: {} weight {} ({})",
            d.cluster,
            d.weight,
            percent(d.weight, action.total_weight)
        );
        describe_cluster(out, snapshot, &d.cluster);
        ops(out, "  ", &d.headers);
    }
    match action.timeout {
        Some(t) => {
            let _ = writeln!(out, "timeout: {t:?}");
        }
        None => {
            let _ = writeln!(out, "timeout: none");
        }
    }
    let r = &action.retries;
    if r.attempts == 0 {
        let _ = writeln!(out, "retries: off");
    } else {
        let on: Vec<String> = r.retry_on.iter().map(retry_on_name).collect();
        let _ = write!(out, "retries: {} on {}", r.attempts, on.join(","));
        if let Some(t) = r.per_try_timeout {
            let _ = write!(out, ", {t:?} per try");
        }
        out.push('\n');
    }
    if let Some(f) = &action.fault {
        if let Some((d, frac)) = f.delay {
            let _ = writeln!(out, "fault: delay {d:?} for {} of requests", fraction(frac));
        }
        if let Some(a) = &f.abort {
            match a.grpc_status {
                Some(g) => {
                    let _ = writeln!(
                        out,
                        "fault: abort with grpc-status {g} for {} of requests",
                        fraction(a.fraction)
                    );
                }
                None => {
                    let _ = writeln!(
                        out,
                        "fault: abort {} for {} of requests",
                        a.http_status,
                        fraction(a.fraction)
                    );
                }
            }
        }
    }
    for m in &action.mirrors {
        let _ = writeln!(
            out,
            "mirror: {} for {} of requests (Host gets -shadow, response discarded)",
            m.cluster,
            fraction(m.fraction)
        );
        describe_cluster(out, snapshot, &m.cluster);
    }
    if let Some(rw) = &action.rewrite {
        if rw.uri.is_some() || rw.uri_regex.is_some() {
            let _ = writeln!(
                out,
                "rewrite: path {} → {}",
                req.path_and_query,
                rw.apply(req.path_and_query, prefix)
            );
        }
        if let Some(a) = &rw.authority {
            let _ = writeln!(out, "rewrite: authority → {a}");
        }
    }
    if let Some(c) = &action.cors {
        let origins: Vec<String> = c.allow_origins.iter().map(|m| m.to_string()).collect();
        let _ = writeln!(
            out,
            "cors: origins {}; methods {}",
            origins.join(", "),
            if c.allow_methods.is_empty() {
                "-"
            } else {
                &c.allow_methods
            }
        );
    }
    ops(out, "", &action.headers);
}

fn fraction(f: f64) -> String {
    let p = f * 100.0;
    if (p - p.round()).abs() < 1e-9 {
        format!("{p:.0}%")
    } else {
        format!("{p}%")
    }
}

fn retry_on_name(r: &RetryOn) -> String {
    match r {
        RetryOn::FiveXx => "5xx".into(),
        RetryOn::GatewayError => "gateway-error".into(),
        RetryOn::Reset => "reset".into(),
        RetryOn::ConnectFailure => "connect-failure".into(),
        RetryOn::RefusedStream => "refused-stream".into(),
        RetryOn::Retriable4xx => "retriable-4xx".into(),
        RetryOn::RetriableStatusCodes => "retriable-status-codes".into(),
        RetryOn::Cancelled => "cancelled".into(),
        RetryOn::DeadlineExceeded => "deadline-exceeded".into(),
        RetryOn::ResourceExhausted => "resource-exhausted".into(),
        RetryOn::Unavailable => "unavailable".into(),
        RetryOn::Internal => "internal".into(),
        RetryOn::Status(s) => s.to_string(),
    }
}

/// For a Host that matched no virtual host: who serves which domain here, which Host
/// would have matched, and VirtualServices that name this gateway but bind no host.
fn no_host_hints(
    out: &mut String,
    snapshot: &Snapshot,
    config: &ConfigSet,
    q: &RouteQuery,
    server: Option<&std::sync::Arc<GatewayServer>>,
) {
    let Some(server) = server else {
        if q.mesh {
            let hosts: Vec<&str> = snapshot.mesh.domains().collect();
            let _ = writeln!(
                out,
                "mesh hosts: {}",
                if hosts.is_empty() {
                    "none".to_string()
                } else {
                    hosts.join(", ")
                }
            );
        } else {
            let ports: Vec<String> = snapshot.listeners.keys().map(|p| p.to_string()).collect();
            let _ = writeln!(
                out,
                "gateway ports: {}",
                if ports.is_empty() {
                    "none (no Gateway loaded)".to_string()
                } else {
                    ports.join(", ")
                }
            );
        }
        return;
    };
    let bound = |name: &str| {
        server
            .vhosts
            .vhosts
            .iter()
            .any(|v| v.rules.iter().any(|r| r.virtual_service == name))
    };
    for v in &server.vhosts.vhosts {
        let mut owners: Vec<&str> = v.rules.iter().map(|r| r.virtual_service.as_str()).collect();
        owners.dedup();
        let _ = writeln!(out, "  {}: VirtualService {}", v.domain, owners.join(", "));
    }
    for vs in &config.virtual_services {
        let ns = vs.meta.namespace.as_str();
        let name = format!("{ns}/{}", vs.meta.name);
        let names_gateway = vs.spec.gateways.iter().any(|g| {
            if g.contains('/') {
                *g == server.gateway
            } else {
                format!("{ns}/{g}") == server.gateway
            }
        });
        if !names_gateway {
            continue;
        }
        if !bound(&name) {
            let _ = writeln!(
                out,
                "hint: VirtualService {name} names gateway {} but none of its hosts ({}) is within the server hosts ({})",
                server.gateway,
                vs.spec.hosts.join(", "),
                server.hosts.join(", ")
            );
            continue;
        }
        for h in &vs.spec.hosts {
            let full = expand_host(h, ns);
            let Some((vhost, _)) = server.vhosts.find(&full).filter(|(v, _)| v.domain == full)
            else {
                continue;
            };
            if full != h.trim().to_ascii_lowercase() {
                let _ = writeln!(
                    out,
                    "hint: host {h:?} of VirtualService {name} is a short name for {full}: only a request with Host: {} matches it",
                    vhost.domain
                );
            } else if let Some(suffix) = full.strip_prefix('*') {
                if !suffix.is_empty() {
                    let _ = writeln!(out, "hint: a request whose Host ends in {suffix} would match VirtualService {name}");
                }
            } else {
                let _ = writeln!(
                    out,
                    "hint: a request with Host: {full} would match VirtualService {name}"
                );
            }
        }
    }
}
