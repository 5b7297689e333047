//! How VirtualServices attach: the Gateways and delegates they name must exist, and
//! their hosts must meet the gateway's server hosts in a way clients can actually hit
//! (Istio's most common 404 NR).

use std::collections::BTreeSet;

use super::{checks::*, join_names, report};
use crate::config::hosts::{expand_host, intersect, split_gateway_host, CLUSTER_DOMAIN};
use crate::config::{ConfigSet, Diagnostic, GatewaySpec, Res, ResourceMeta, VirtualServiceSpec};

pub(super) fn check(config: &ConfigSet, out: &mut Vec<Diagnostic>) {
    let delegates: BTreeSet<(String, String)> = config
        .virtual_services
        .iter()
        .flat_map(|vs| {
            vs.spec
                .http
                .iter()
                .filter_map(|r| r.delegate.as_ref())
                .map(|d| {
                    let ns = d.namespace.clone().filter(|n| !n.is_empty());
                    (
                        ns.unwrap_or_else(|| vs.meta.namespace.clone()),
                        d.name.clone(),
                    )
                })
        })
        .collect();
    for vs in &config.virtual_services {
        let meta = &vs.meta;
        let is_delegate = delegates.contains(&(meta.namespace.clone(), meta.name.clone()));
        if vs.spec.hosts.is_empty() && !is_delegate {
            let msg = "this VirtualService has no hosts, so no request can reach it: list the hosts it serves in spec.hosts (only a delegate named by another VirtualService goes without hosts)";
            report(out, &VIRTUAL_SERVICE_WITHOUT_HOSTS, meta, "spec.hosts", msg);
        }
        for (k, name) in vs.spec.gateways.iter().enumerate() {
            let at = format!("spec.gateways[{k}]");
            if let Some(gw) = gateway_ref(config, meta, &at, name, out) {
                if !vs.spec.hosts.is_empty() {
                    host_binding(vs, gw, &at, out);
                }
            }
        }
        for (i, rule) in vs.spec.http.iter().enumerate() {
            for (m, entry) in rule.matches.iter().enumerate() {
                for (k, name) in entry.gateways.iter().enumerate() {
                    let at = format!("spec.http[{i}].match[{m}].gateways[{k}]");
                    gateway_ref(config, meta, &at, name, out);
                }
            }
            if let Some(d) = &rule.delegate {
                let ns = d.namespace.as_deref().filter(|n| !n.is_empty());
                let ns = ns.unwrap_or(&meta.namespace);
                let exists = config
                    .virtual_services
                    .iter()
                    .any(|v| v.meta.namespace == ns && v.meta.name == d.name);
                if !exists {
                    let msg = format!("delegate names VirtualService {ns}/{}, which does not exist, so requests on this rule get 404 NR: create it or correct name and namespace", d.name);
                    report(
                        out,
                        &UNKNOWN_DELEGATE,
                        meta,
                        &format!("spec.http[{i}].delegate"),
                        msg,
                    );
                }
            }
        }
    }
}

/// `ns/name`, `name.ns.svc.cluster.local` or `name` (the VirtualService's namespace), as
/// Istio resolves gateway references; `None` for the `mesh` pseudo-gateway.
pub fn resolve_gateway<'a>(name: &'a str, namespace: &'a str) -> Option<(&'a str, &'a str)> {
    let name = name.trim();
    if name == "mesh" {
        return None;
    }
    if let Some((ns, n)) = name.split_once('/') {
        return Some((ns, n));
    }
    let mut parts = name.split('.');
    match (parts.next(), parts.next()) {
        (Some(n), Some(ns)) => Some((ns, n)),
        _ => Some((namespace, name)),
    }
}

/// The Gateway `name` refers to, or a message saying it does not exist.
fn gateway_ref<'a>(
    config: &'a ConfigSet,
    meta: &ResourceMeta,
    at: &str,
    name: &str,
    out: &mut Vec<Diagnostic>,
) -> Option<&'a Res<GatewaySpec>> {
    let (ns, gw_name) = resolve_gateway(name, &meta.namespace)?;
    let found = config
        .gateways
        .iter()
        .find(|g| g.meta.namespace == ns && g.meta.name == gw_name);
    if found.is_none() {
        let all: Vec<String> = config
            .gateways
            .iter()
            .map(|g| format!("{}/{}", g.meta.namespace, g.meta.name))
            .collect();
        let here = if all.is_empty() {
            "no Gateway is defined".to_string()
        } else {
            format!("Gateways defined: {}", join_names(&all))
        };
        let msg = format!("Gateway {ns}/{gw_name} does not exist ({here}), so this VirtualService is not served there: write ns/name (a bare name means namespace {}) or \"mesh\" for sidecars", meta.namespace);
        report(out, &UNKNOWN_GATEWAY, meta, at, msg);
    }
    found
}

/// Compares the VirtualService's hosts with the server hosts of one of its gateways.
fn host_binding(
    vs: &Res<VirtualServiceSpec>,
    gw: &Res<GatewaySpec>,
    at: &str,
    out: &mut Vec<Diagnostic>,
) {
    let meta = &vs.meta;
    let gw_name = format!("{}/{}", gw.meta.namespace, gw.meta.name);
    // Server hosts whose namespace filter lets this VirtualService bind.
    let mut server_hosts: Vec<String> = Vec::new();
    for server in &gw.spec.servers {
        for h in &server.hosts {
            let (ns, host) = split_gateway_host(h);
            let allowed = ns == "*"
                || ns == meta.namespace
                || (ns == "." && gw.meta.namespace == meta.namespace);
            let host = host.trim().to_ascii_lowercase();
            if allowed && !server_hosts.contains(&host) {
                server_hosts.push(host);
            }
        }
    }
    // (index, as written, expanded, the server hosts it meets)
    let mut meeting: Vec<(usize, &str, String, Vec<&str>)> = Vec::new();
    for (i, written) in vs.spec.hosts.iter().enumerate() {
        let expanded = expand_host(written, &meta.namespace);
        let servers: Vec<&str> = server_hosts
            .iter()
            .filter(|s| intersect(s, &expanded).is_some())
            .map(String::as_str)
            .collect();
        if !servers.is_empty() {
            meeting.push((i, written.as_str(), expanded, servers));
        }
    }
    if meeting.is_empty() {
        let expanded: Vec<String> = vs
            .spec
            .hosts
            .iter()
            .map(|h| expand_host(h, &meta.namespace))
            .collect();
        let offered = if server_hosts.is_empty() {
            "none open to this namespace".to_string()
        } else {
            join_names(&server_hosts)
        };
        let msg = format!("no host of this VirtualService ({}) matches a server host of Gateway {gw_name} ({offered}), so requests through that gateway never reach it (404 NR): add one of the gateway's hosts to spec.hosts, or this host to the gateway", join_names(&expanded));
        report(out, &HOSTS_MATCH_NO_SERVER, meta, at, msg);
        return;
    }
    let cluster_suffix = format!(".{CLUSTER_DOMAIN}");
    let only_cluster_names = meeting.iter().all(|(_, _, e, servers)| {
        e.ends_with(&cluster_suffix) && servers.iter().all(|s| s.starts_with('*'))
    });
    if !only_cluster_names {
        return;
    }
    let (first, written, expanded, _) = &meeting[0];
    let names: Vec<String> = meeting
        .iter()
        .map(|(_, _, e, _)| format!("\"Host: {e}\""))
        .collect();
    let what = if written.contains('.') {
        format!("host {written:?} is an in-cluster name")
    } else {
        format!("host {written:?} means {expanded}")
    };
    let msg = format!("{what}, so on Gateway {gw_name} only requests with {} match and a request to the gateway's IP or external name gets 404 NR: add the external host name (or \"*\") to spec.hosts", names.join(" or "));
    report(
        out,
        &CLUSTER_HOST_ON_GATEWAY,
        meta,
        &format!("spec.hosts[{first}]"),
        msg,
    );
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::resolve_gateway;

    const GW: &str = "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: api-gateway}\nspec:\n  selector: {istio: ingressgateway}\n  servers:\n  - port: {number: 80, name: http, protocol: HTTP}\n    hosts: [\"*\"]\n---\napiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: shop, namespace: istio-system}\nspec:\n  selector: {istio: ingressgateway}\n  servers:\n  - port: {number: 80, name: http, protocol: HTTP}\n    hosts: [\"prod/shop.example.com\"]\n---\n";

    fn vs(name_ns: &str, hosts: &str, gateways: &str) -> String {
        format!("{SERVICES}{GW}apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name_ns}\nspec:\n  hosts: {hosts}\n  gateways: {gateways}\n  http:\n  - route: [{{destination: {{host: reviews.default.svc.cluster.local}}}}]\n")
    }

    #[test]
    fn gateway_references_resolve_like_istio() {
        assert_eq!(resolve_gateway("mesh", "default"), None);
        assert_eq!(resolve_gateway("gw", "default"), Some(("default", "gw")));
        assert_eq!(
            resolve_gateway("istio-system/gw", "x"),
            Some(("istio-system", "gw"))
        );
        assert_eq!(
            resolve_gateway("gw.istio-system.svc.cluster.local", "x"),
            Some(("istio-system", "gw"))
        );
    }

    #[test]
    fn missing_gateway_is_an_error() {
        let d = analyze_yaml(&vs(
            "{name: r}",
            "[reviews.example.com]",
            "[mesh, shop, istio-system/api-gateway]",
        ));
        assert_eq!(
            with_code(&d, "MG0105"),
            [
                "36 spec.gateways[1]: Gateway default/shop does not exist (Gateways defined: default/api-gateway and istio-system/shop), so this VirtualService is not served there: write ns/name (a bare name means namespace default) or \"mesh\" for sidecars",
                "36 spec.gateways[2]: Gateway istio-system/api-gateway does not exist (Gateways defined: default/api-gateway and istio-system/shop), so this VirtualService is not served there: write ns/name (a bare name means namespace default) or \"mesh\" for sidecars",
            ]
        );
    }

    #[test]
    fn the_seed_case_warns_about_the_host_header() {
        let d = analyze_yaml(&vs(
            "{name: temperature-api}",
            "[temperature-api]",
            "[api-gateway]",
        ));
        assert_eq!(
            with_code(&d, "MG0107"),
            ["35 spec.hosts[0]: host \"temperature-api\" means temperature-api.default.svc.cluster.local, so on Gateway default/api-gateway only requests with \"Host: temperature-api.default.svc.cluster.local\" match and a request to the gateway's IP or external name gets 404 NR: add the external host name (or \"*\") to spec.hosts"]
        );
        assert!(with_code(&d, "MG0106").is_empty());
        // An external name (or "*") beside the short name serves outside clients.
        let d = analyze_yaml(&vs(
            "{name: t}",
            "[temperature-api, temp.example.com]",
            "[api-gateway]",
        ));
        assert!(with_code(&d, "MG0107").is_empty(), "{d:#?}");
        let d = analyze_yaml(&vs("{name: t}", "[\"*\"]", "[api-gateway]"));
        assert!(d.iter().all(|d| !d.code.starts_with("MG010")), "{d:#?}");
    }

    #[test]
    fn hosts_meeting_no_server_host_warn_and_namespace_filters_apply() {
        let d = analyze_yaml(&vs(
            "{name: shop, namespace: prod}",
            "[shop.example.com]",
            "[istio-system/shop]",
        ));
        assert!(with_code(&d, "MG0106").is_empty(), "{d:#?}");
        let d = analyze_yaml(&vs(
            "{name: shop}",
            "[shop.example.com, api.example.com]",
            "[istio-system/shop]",
        ));
        assert_eq!(
            with_code(&d, "MG0106"),
            ["36 spec.gateways[0]: no host of this VirtualService (shop.example.com and api.example.com) matches a server host of Gateway istio-system/shop (none open to this namespace), so requests through that gateway never reach it (404 NR): add one of the gateway's hosts to spec.hosts, or this host to the gateway"]
        );
    }

    #[test]
    fn hostless_virtual_services_and_delegates() {
        let text = format!("{SERVICES}apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: root}}\nspec:\n  hosts: [reviews]\n  http:\n  - match: [{{uri: {{prefix: /a}}}}]\n    delegate: {{name: child}}\n  - delegate: {{name: gone, namespace: prod}}\n---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: child}}\nspec:\n  http:\n  - route: [{{destination: {{host: reviews}}}}]\n---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: lost}}\nspec:\n  http:\n  - route: [{{destination: {{host: reviews}}}}]\n");
        let d = analyze_yaml(&text);
        assert_eq!(
            with_code(&d, "MG0125"),
            ["33 spec.hosts: this VirtualService has no hosts, so no request can reach it: list the hosts it serves in spec.hosts (only a delegate named by another VirtualService goes without hosts)"]
        );
        assert_eq!(
            with_code(&d, "MG0130"),
            ["21 spec.http[1].delegate: delegate names VirtualService prod/gone, which does not exist, so requests on this rule get 404 NR: create it or correct name and namespace"]
        );
    }
}
