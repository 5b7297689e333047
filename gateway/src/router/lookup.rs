//! Route lookup on the request path: listener port → server (SNI / Host) → virtual
//! host (exact, longest wildcard, `*`) → first matching rule. No allocation: the Host
//! is lower-cased into a stack buffer for the hash lookup.

use std::sync::Arc;

use super::matching::Caller;
use super::snapshot::*;
use crate::config::hosts::CLUSTER_DOMAIN;

/// DNS names are at most 253 characters; anything longer cannot name a virtual host.
const HOST_BUF: usize = 256;

/// How specifically a virtual host matched: exact beats any wildcard, a longer
/// wildcard suffix beats a shorter one, `*` comes last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Specificity {
    CatchAll,
    Suffix(usize),
    Exact,
}

/// The host part of an authority (`Shop.Example:8080` → `Shop.Example`, `[::1]:80` → `[::1]`).
pub fn strip_port(authority: &str) -> &str {
    let a = authority.trim();
    if a.starts_with('[') {
        return match a.find(']') {
            Some(end) => &a[..=end],
            None => a,
        };
    }
    match a.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') && p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => a,
    }
}

/// Lower-cases `host` (port stripped, trailing dot dropped) into `buf`; None when it
/// does not fit or is not ASCII (no configured host can match it then).
pub fn host_key<'b>(authority: &str, buf: &'b mut [u8; HOST_BUF]) -> Option<&'b str> {
    let host = strip_port(authority);
    let host = host.strip_suffix('.').unwrap_or(host);
    let n = host.len();
    if n > buf.len() || !host.is_ascii() {
        return None;
    }
    for (dst, src) in buf.iter_mut().zip(host.bytes()) {
        *dst = src.to_ascii_lowercase();
    }
    std::str::from_utf8(&buf[..n]).ok()
}

impl VirtualHostTable {
    /// The virtual host for a lower-cased host without port.
    pub fn find(&self, host: &str) -> Option<(&Arc<VirtualHost>, Specificity)> {
        if let Some(&i) = self.exact.get(host) {
            return self.vhosts.get(i).map(|v| (v, Specificity::Exact));
        }
        // `suffix` is sorted longest first, so the first hit is the most specific.
        for (suffix, i) in &self.suffix {
            if host.len() > suffix.len() && host.ends_with(suffix.as_str()) {
                return self
                    .vhosts
                    .get(*i)
                    .map(|v| (v, Specificity::Suffix(suffix.len())));
            }
        }
        self.catch_all
            .and_then(|i| self.vhosts.get(i))
            .map(|v| (v, Specificity::CatchAll))
    }

    /// Every domain served, in table order (for explanations and 404 bodies).
    pub fn domains(&self) -> impl Iterator<Item = &str> {
        self.vhosts.iter().map(|v| v.domain.as_str())
    }
}

/// How well a server's `hosts` cover a concrete host (SNI or Host header).
fn server_host_specificity(server: &GatewayServer, host: &str) -> Option<Specificity> {
    server
        .hosts
        .iter()
        .filter_map(|pattern| {
            if pattern == "*" {
                Some(Specificity::CatchAll)
            } else if let Some(suffix) = pattern.strip_prefix('*') {
                (host.len() > suffix.len() && host.ends_with(suffix))
                    .then_some(Specificity::Suffix(suffix.len()))
            } else {
                (pattern == host).then_some(Specificity::Exact)
            }
        })
        .max()
}

fn first_rule<'s>(
    vhost: &'s Arc<VirtualHost>,
    req: &RequestView<'_>,
    caller: Caller<'_>,
) -> Option<&'s Arc<HttpRule>> {
    vhost.rules.iter().find(|r| r.applies(req, caller))
}

/// Gateway rules see the gateway workload as the caller unless the view says otherwise.
pub fn gateway_caller<'a>(server: &'a GatewayServer, req: &RequestView<'a>) -> Caller<'a> {
    Caller {
        labels: req.source_labels.or(Some(&server.selector)),
        namespace: req
            .source_namespace
            .or_else(|| server.gateway.split_once('/').map(|(ns, _)| ns)),
    }
}

impl Snapshot {
    /// Routes an HTTP request that arrived on Gateway port `listener_port` (80, 443...).
    pub fn route<'s>(
        &'s self,
        listener_port: u32,
        sni: Option<&str>,
        req: &RequestView<'_>,
    ) -> RouteDecision<'s> {
        let Some(listener) = self.listeners.get(&listener_port) else {
            return RouteDecision::NoRoute(NoRoute {
                server: None,
                vhost: None,
            });
        };
        let mut buf = [0u8; HOST_BUF];
        let host = host_key(req.authority, &mut buf).unwrap_or("");
        let (server, found) = self.choose_server(listener, sni, host);
        let Some(server) = server else {
            return RouteDecision::NoRoute(NoRoute {
                server: None,
                vhost: None,
            });
        };
        if server.https_redirect {
            return RouteDecision::HttpsRedirect { server };
        }
        let Some(vhost) = found else {
            return RouteDecision::NoRoute(NoRoute {
                server: Some(server),
                vhost: None,
            });
        };
        match first_rule(vhost, req, gateway_caller(server, req)) {
            Some(rule) => RouteDecision::Matched {
                server: Some(server),
                vhost,
                rule,
            },
            None => RouteDecision::NoRoute(NoRoute {
                server: Some(server),
                vhost: Some(vhost),
            }),
        }
    }

    /// Picks the server on a port: by SNI among TLS-terminating servers when there are
    /// several, else (HTTP ports may carry several servers whose routes Istio merges
    /// per port) the server holding the most specific virtual host for `host`.
    pub fn choose_server<'s>(
        &'s self,
        listener: &'s Listener,
        sni: Option<&str>,
        host: &str,
    ) -> (Option<&'s Arc<GatewayServer>>, Option<&'s Arc<VirtualHost>>) {
        let candidates = &listener.servers;
        if candidates.len() > 1 && candidates.iter().any(|s| s.tls.is_some()) {
            let mut sni_buf = [0u8; HOST_BUF];
            let sni = sni.and_then(|s| host_key(s, &mut sni_buf));
            let by_sni = candidates
                .iter()
                .filter_map(|s| {
                    let spec = match sni {
                        Some(name) => server_host_specificity(s, name)?,
                        // No SNI: only a server that answers every name can take it.
                        None => s
                            .hosts
                            .iter()
                            .any(|h| h == "*")
                            .then_some(Specificity::CatchAll)?,
                    };
                    Some((s, spec))
                })
                .fold(
                    None::<(&Arc<GatewayServer>, Specificity)>,
                    |best, (s, spec)| match best {
                        Some((_, b)) if b >= spec => best,
                        _ => Some((s, spec)),
                    },
                );
            if let Some((server, _)) = by_sni {
                return (Some(server), server.vhosts.find(host).map(|(v, _)| v));
            }
            return (None, None);
        }
        let mut best: Option<(&Arc<GatewayServer>, &Arc<VirtualHost>, Specificity)> = None;
        for s in candidates {
            if let Some((v, spec)) = s.vhosts.find(host) {
                if best.is_none_or(|(_, _, b)| spec > b) {
                    best = Some((s, v, spec));
                }
            }
        }
        if let Some((s, v, _)) = best {
            return (Some(s), Some(v));
        }
        // No virtual host anywhere: report the server whose hosts cover the Host best
        // (an httpsRedirect server redirects even without a bound VirtualService).
        let server = candidates
            .iter()
            .filter_map(|s| server_host_specificity(s, host).map(|spec| (s, spec)))
            .fold(
                None::<(&Arc<GatewayServer>, Specificity)>,
                |best, (s, spec)| match best {
                    Some((_, b)) if b >= spec => best,
                    _ => Some((s, spec)),
                },
            )
            .map(|(s, _)| s)
            .or(candidates.first());
        (server, None)
    }

    /// Routes a sidecar's outbound request by authority among `mesh` VirtualServices.
    /// The authority may be a short name (`reviews`, in the caller's namespace or
    /// `default`), `reviews.default`, `reviews.default.svc`, the FQDN, each with `:port`.
    pub fn route_mesh<'s>(&'s self, req: &RequestView<'_>) -> RouteDecision<'s> {
        let Some(vhost) = self.mesh_vhost(req.authority, req.source_namespace) else {
            return RouteDecision::NoRoute(NoRoute {
                server: None,
                vhost: None,
            });
        };
        let caller = Caller {
            labels: req.source_labels,
            namespace: req.source_namespace,
        };
        match first_rule(vhost, req, caller) {
            Some(rule) => RouteDecision::Matched {
                server: None,
                vhost,
                rule,
            },
            None => RouteDecision::NoRoute(NoRoute {
                server: None,
                vhost: Some(vhost),
            }),
        }
    }

    /// The mesh virtual host an authority names, trying the forms a sidecar accepts.
    pub fn mesh_vhost(
        &self,
        authority: &str,
        namespace: Option<&str>,
    ) -> Option<&Arc<VirtualHost>> {
        let mut buf = [0u8; HOST_BUF];
        let host = host_key(authority, &mut buf)?;
        if let Some(&i) = self.mesh.exact.get(host) {
            return self.mesh.vhosts.get(i);
        }
        let mut fq = [0u8; HOST_BUF];
        if let Some(fqdn) = qualify(host, namespace.unwrap_or("default"), &mut fq) {
            if let Some(&i) = self.mesh.exact.get(fqdn) {
                return self.mesh.vhosts.get(i);
            }
        }
        self.mesh.find(host).map(|(v, _)| v)
    }

    /// The cluster a sidecar uses for a service with no VirtualService:
    /// `outbound|PORT||HOST`, the host given in any form `mesh_vhost` accepts.
    pub fn service_cluster(
        &self,
        authority: &str,
        port: u32,
        namespace: Option<&str>,
    ) -> Option<&Arc<Cluster>> {
        let mut buf = [0u8; HOST_BUF];
        let host = host_key(authority, &mut buf)?;
        let mut fq = [0u8; HOST_BUF];
        let fqdn = if self.services.contains_key(host) {
            host
        } else {
            qualify(host, namespace.unwrap_or("default"), &mut fq)?
        };
        let svc = self.services.get(fqdn)?;
        let port = if svc.ports.iter().any(|(p, _, _)| *p == port) {
            port
        } else if svc.ports.len() == 1 {
            svc.ports[0].0
        } else {
            return None;
        };
        let mut name = [0u8; HOST_BUF * 2];
        let key = cluster_key(port, fqdn, &mut name)?;
        self.clusters.get(key)
    }

    /// TCP routing on a Gateway port: the first `tcp[]` rule whose ports allow it.
    pub fn route_tcp(
        &self,
        listener_port: u32,
        sni: Option<&str>,
    ) -> Option<(&Arc<GatewayServer>, &Arc<TcpRule>)> {
        let listener = self.listeners.get(&listener_port)?;
        let (server, _) = self.choose_server(listener, sni, "");
        let server = server?;
        let rule = server
            .tcp_rules
            .iter()
            .find(|r| r.ports.is_empty() || r.ports.contains(&listener_port))?;
        Some((server, rule))
    }

    /// TLS passthrough routing: the first `tls[]` rule whose `sniHosts` cover the SNI.
    pub fn route_tls(
        &self,
        listener_port: u32,
        sni: &str,
    ) -> Option<(&Arc<GatewayServer>, &Arc<TlsRule>)> {
        let listener = self.listeners.get(&listener_port)?;
        let mut buf = [0u8; HOST_BUF];
        let sni = host_key(sni, &mut buf)?;
        listener.servers.iter().find_map(|server| {
            server_host_specificity(server, sni)?;
            let rule = server.tls_rules.iter().find(|r| {
                (r.ports.is_empty() || r.ports.contains(&listener_port))
                    && r.sni_hosts
                        .iter()
                        .any(|h| crate::config::hosts::wildcard_matches(h, sni))
            })?;
            Some((server, rule))
        })
    }
}

/// `reviews` → `reviews.<ns>.svc.cluster.local`, `reviews.ns` → `reviews.ns.svc.cluster.local`,
/// `reviews.ns.svc` → `reviews.ns.svc.cluster.local`, written into `buf`.
fn qualify<'b>(host: &str, namespace: &str, buf: &'b mut [u8; HOST_BUF]) -> Option<&'b str> {
    let dots = host.bytes().filter(|b| *b == b'.').count();
    let parts: [&str; 4] = match dots {
        0 => [host, ".", namespace, ".svc.cluster.local"],
        1 => [host, ".svc.", "cluster.local", ""],
        2 if host.ends_with(".svc") => [host, ".", "cluster.local", ""],
        _ => return None,
    };
    debug_assert!(CLUSTER_DOMAIN == "svc.cluster.local");
    let mut n = 0;
    for p in parts {
        let end = n + p.len();
        buf.get_mut(n..end)?.copy_from_slice(p.as_bytes());
        n = end;
    }
    std::str::from_utf8(&buf[..n]).ok()
}

/// `outbound|PORT||HOST` written into `buf`.
fn cluster_key<'b>(port: u32, host: &str, buf: &'b mut [u8; HOST_BUF * 2]) -> Option<&'b str> {
    use std::io::Write;
    let mut cursor = std::io::Cursor::new(&mut buf[..]);
    write!(cursor, "outbound|{port}||{host}").ok()?;
    let n = cursor.position() as usize;
    std::str::from_utf8(&buf[..n]).ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::router::testing::{compiled, request, GATEWAY};

    fn vs(name: &str, host: &str, dest: &str) -> String {
        format!(
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: {name}}}\nspec:\n  hosts: ['{host}']\n  gateways: [gw]\n  http:\n  - route:\n    - destination: {{host: {dest}}}\n---\n"
        )
    }

    fn routed_to(s: &Snapshot, url: &str) -> Option<String> {
        let q = request("GET", url, &[]);
        match s.route(q.port, None, &q.view()) {
            RouteDecision::Matched { rule, .. } => Some(rule.virtual_service.clone()),
            _ => None,
        }
    }

    #[test]
    fn exact_beats_wildcard_beats_catch_all() {
        let yaml = format!(
            "{GATEWAY}{}{}{}{}",
            vs("exact", "api.example.com", "a"),
            vs("wild", "*.example.com", "b"),
            vs("longer", "*.eu.example.com", "b"),
            vs("all", "*", "c")
        );
        let c = compiled(&yaml);
        assert!(c.rejected.iter().all(|d| !d.is_error()), "{:?}", c.rejected);
        let s = &c.snapshot;
        assert_eq!(
            routed_to(s, "http://api.example.com/").as_deref(),
            Some("default/exact")
        );
        assert_eq!(
            routed_to(s, "http://web.example.com/").as_deref(),
            Some("default/wild")
        );
        assert_eq!(
            routed_to(s, "http://a.eu.example.com/").as_deref(),
            Some("default/longer")
        );
        assert_eq!(
            routed_to(s, "http://example.com/").as_deref(),
            Some("default/all")
        );
        assert_eq!(
            routed_to(s, "http://10.0.0.1/").as_deref(),
            Some("default/all")
        );
    }

    #[test]
    fn host_is_case_insensitive_and_port_is_ignored() {
        let c = compiled(&format!("{GATEWAY}{}", vs("shop", "shop.example", "a")));
        let s = &c.snapshot;
        for authority in [
            "Shop.Example",
            "SHOP.example:8080",
            "shop.example.",
            "shop.example:80",
        ] {
            let mut q = request("GET", "http://x/", &[]);
            q.authority = authority.into();
            assert!(
                matches!(s.route(80, None, &q.view()), RouteDecision::Matched { .. }),
                "{authority}"
            );
        }
        let q = request("GET", "http://shop.example.org/", &[]);
        let RouteDecision::NoRoute(nr) = s.route(80, None, &q.view()) else {
            panic!("expected 404")
        };
        assert_eq!(
            nr.message(&q.authority, 80),
            "no route: host 'shop.example.org' on gateway default/gw port 80; hosts here: shop.example"
        );
        assert!(matches!(
            s.route(81, None, &q.view()),
            RouteDecision::NoRoute(NoRoute { server: None, .. })
        ));
    }

    #[test]
    fn mesh_accepts_short_names_namespaced_names_and_ports() {
        let c = compiled("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: reviews, namespace: shop}\nspec:\n  hosts: [reviews]\n  http:\n  - route:\n    - destination: {host: reviews}\n");
        let s = &c.snapshot;
        for (authority, ns) in [
            ("reviews", Some("shop")),
            ("reviews:9080", Some("shop")),
            ("reviews.shop", None),
            ("reviews.shop:9080", None),
            ("reviews.shop.svc", None),
            ("Reviews.Shop.svc.cluster.local:9080", None),
        ] {
            let mut q = request("GET", "http://x/", &[]);
            q.authority = authority.into();
            q.source_namespace = ns.map(str::to_string);
            assert!(
                matches!(s.route_mesh(&q.view()), RouteDecision::Matched { .. }),
                "{authority}"
            );
        }
        let mut q = request("GET", "http://reviews/", &[]);
        q.source_namespace = Some("other".into());
        assert!(
            matches!(s.route_mesh(&q.view()), RouteDecision::NoRoute(_)),
            "short names resolve in the caller's namespace"
        );
    }

    #[test]
    fn several_virtual_services_merge_on_a_gateway_with_catch_alls_last() {
        let a = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: a}\nspec:\n  hosts: [shop.example]\n  gateways: [gw]\n  http:\n  - route:\n    - destination: {host: a}\n---\n";
        let b = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: b}\nspec:\n  hosts: [shop.example]\n  gateways: [gw]\n  http:\n  - match: [{uri: {prefix: /b}}]\n    route:\n    - destination: {host: b}\n---\n";
        let c = compiled(&format!("{GATEWAY}{a}{b}"));
        let s = &c.snapshot;
        assert_eq!(
            routed_to(s, "http://shop.example/b/1").as_deref(),
            Some("default/b")
        );
        assert_eq!(
            routed_to(s, "http://shop.example/other").as_deref(),
            Some("default/a")
        );
    }

    #[test]
    fn rules_after_a_catch_all_are_unreachable_first_match_wins() {
        let yaml = format!("{GATEWAY}apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: v}}\nspec:\n  hosts: ['*']\n  gateways: [gw]\n  http:\n  - match: [{{uri: {{prefix: /a}}}}]\n    directResponse: {{status: 201}}\n  - match: [{{uri: {{prefix: /}}}}]\n    directResponse: {{status: 202}}\n  - match: [{{uri: {{prefix: /a}}}}]\n    directResponse: {{status: 203}}\n");
        let c = compiled(&yaml);
        let s = &c.snapshot;
        let status = |url| {
            let q = request("GET", url, &[]);
            match s.route(80, None, &q.view()) {
                RouteDecision::Matched { rule, .. } => match &rule.action {
                    RuleAction::DirectResponse(d) => d.status,
                    _ => 0,
                },
                _ => 404,
            }
        };
        assert_eq!(status("http://h/a"), 201);
        assert_eq!(status("http://h/b"), 202);
        let vhost = &s.listeners[&80].servers[0].vhosts.vhosts[0];
        assert_eq!(
            vhost.rules.len(),
            2,
            "the rule after the catch-all is dropped"
        );
    }

    #[test]
    fn https_servers_on_one_port_are_chosen_by_sni() {
        let yaml = "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: gw}\nspec:\n  servers:\n  - port: {number: 443, name: https-a, protocol: HTTPS}\n    hosts: [a.example]\n    tls: {mode: SIMPLE, credentialName: a}\n  - port: {number: 443, name: https-b, protocol: HTTPS}\n    hosts: [b.example]\n    tls: {mode: SIMPLE, credentialName: b}\n---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v}\nspec:\n  hosts: [a.example, b.example]\n  gateways: [gw]\n  http:\n  - route:\n    - destination: {host: x}\n";
        let c = compiled(yaml);
        let s = &c.snapshot;
        let q = request("GET", "https://b.example/", &[]);
        match s.route(443, Some("b.example"), &q.view()) {
            RouteDecision::Matched {
                server: Some(sv), ..
            } => assert_eq!(sv.port_name, "https-b"),
            other => panic!("{other:?}"),
        }
        let (server, _) = s.choose_server(&s.listeners[&443], Some("A.EXAMPLE"), "a.example");
        assert_eq!(server.map(|s| s.port_name.as_str()), Some("https-a"));
        let (none, _) = s.choose_server(&s.listeners[&443], Some("c.example"), "c.example");
        assert!(none.is_none());
    }

    #[test]
    fn https_redirect_server_redirects() {
        let yaml = "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: gw}\nspec:\n  servers:\n  - port: {number: 80, name: http, protocol: HTTP}\n    hosts: ['*']\n    tls: {httpsRedirect: true}\n";
        let c = compiled(yaml);
        let q = request("GET", "http://shop.example/cart?id=1", &[]);
        match c.snapshot.route(80, None, &q.view()) {
            RouteDecision::HttpsRedirect { .. } => {
                assert_eq!(
                    Redirect::https_upgrade().location(&q.view(), None),
                    "https://shop.example/cart?id=1"
                )
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn host_key_lowercases_without_allocating_and_strips_port() {
        let mut buf = [0u8; HOST_BUF];
        assert_eq!(
            host_key("WWW.Example.COM:8443", &mut buf),
            Some("www.example.com")
        );
        assert_eq!(host_key("[::1]:80", &mut buf), Some("[::1]"));
        let long = "a".repeat(300);
        assert_eq!(host_key(&long, &mut buf), None);
    }
}
