//! `tcp[]` and `tls[]` rules: weighted destinations chosen per connection, by port
//! (TCP) or by SNI (TLS passthrough).

use super::cluster::RouteKind;
use super::http::RuleCx;
use super::matcher::gateway_ref;
use super::{problem, Checked, CODE_INVALID};
use crate::config::{ResourceMeta, TcpRoute, TlsRoute};
use crate::router::snapshot::{TcpRule, TlsRule};

/// A rule with the gateways its match entries narrow it to (empty: the VirtualService's).
pub(super) struct Narrowed<T> {
    pub rule: std::sync::Arc<T>,
    pub gateways: Vec<String>,
}

fn narrowing<'m>(
    mut per_match: impl Iterator<Item = &'m Vec<String>> + Clone,
    ns: &str,
) -> Vec<String> {
    // Only when every entry names gateways is the rule limited to them.
    if per_match.clone().next().is_none() || per_match.clone().any(|g| g.is_empty()) {
        return Vec::new();
    }
    let mut out: Vec<String> = Vec::new();
    for g in per_match.by_ref().flatten() {
        let g = gateway_ref(g, ns);
        if !out.contains(&g) {
            out.push(g);
        }
    }
    out
}

fn ports(per_match: &[Option<u32>]) -> Vec<u32> {
    if per_match.is_empty() || per_match.iter().any(Option::is_none) {
        return Vec::new();
    }
    per_match.iter().flatten().copied().collect()
}

pub(super) fn tcp_rule(
    r: &TcpRoute,
    i: usize,
    meta: &ResourceMeta,
    cx: &mut RuleCx<'_>,
) -> Checked<Narrowed<TcpRule>> {
    let ns = meta.namespace.as_str();
    let at = format!("spec.tcp[{i}].route");
    let dests = r.route.iter().map(|d| (&d.destination, d.weight, None));
    let (destinations, total_weight) = cx.weighted(dests, ns, &at, RouteKind::Tcp)?;
    let rule = TcpRule {
        virtual_service: format!("{ns}/{}", meta.name),
        index: i,
        ports: ports(&r.matches.iter().map(|m| m.port).collect::<Vec<_>>()),
        destinations,
        total_weight,
    };
    Ok(Narrowed {
        rule: rule.into(),
        gateways: narrowing(r.matches.iter().map(|m| &m.gateways), ns),
    })
}

pub(super) fn tls_rule(
    r: &TlsRoute,
    i: usize,
    meta: &ResourceMeta,
    cx: &mut RuleCx<'_>,
) -> Checked<Narrowed<TlsRule>> {
    let ns = meta.namespace.as_str();
    let at = format!("spec.tls[{i}]");
    let mut sni_hosts = Vec::new();
    for (j, m) in r.matches.iter().enumerate() {
        if m.sni_hosts.is_empty() {
            return Err(problem(
                CODE_INVALID,
                format!("{at}.match[{j}].sniHosts"),
                "a tls match needs sniHosts",
            ));
        }
        sni_hosts.extend(m.sni_hosts.iter().map(|h| h.trim().to_ascii_lowercase()));
    }
    if r.matches.is_empty() {
        return Err(problem(
            CODE_INVALID,
            format!("{at}.match"),
            "a tls rule needs a match with sniHosts",
        ));
    }
    let dests = r.route.iter().map(|d| (&d.destination, d.weight, None));
    let (destinations, total_weight) =
        cx.weighted(dests, ns, &format!("{at}.route"), RouteKind::Tls)?;
    let rule = TlsRule {
        virtual_service: format!("{ns}/{}", meta.name),
        index: i,
        sni_hosts,
        ports: ports(&r.matches.iter().map(|m| m.port).collect::<Vec<_>>()),
        destinations,
        total_weight,
    };
    Ok(Narrowed {
        rule: rule.into(),
        gateways: narrowing(r.matches.iter().map(|m| &m.gateways), ns),
    })
}
