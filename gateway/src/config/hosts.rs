//! Host names as Istio reads them: short-name expansion, `ns/host` gateway hosts and
//! wildcard matching. Shared by compile, analyze and `meshgate route`.

use std::net::IpAddr;

pub const CLUSTER_DOMAIN: &str = "svc.cluster.local";

/// `reviews` in namespace `default` → `reviews.default.svc.cluster.local`. Hosts with
/// a dot, `*`-wildcards and IPs stay as written (lower-cased).
pub fn expand_host(host: &str, namespace: &str) -> String {
    let h = host.trim().to_ascii_lowercase();
    if h.contains('.') || h.starts_with('*') || h.parse::<IpAddr>().is_ok() || h.is_empty() {
        h
    } else {
        format!("{h}.{namespace}.{CLUSTER_DOMAIN}")
    }
}

/// The short name of an in-cluster FQDN (`reviews.default.svc.cluster.local` → `reviews`).
pub fn short_name(fqdn: &str) -> &str {
    fqdn.split('.').next().unwrap_or(fqdn)
}

/// The namespace of an in-cluster FQDN, if it is one.
pub fn fqdn_namespace(fqdn: &str) -> Option<&str> {
    let rest = fqdn.strip_suffix(CLUSTER_DOMAIN)?.strip_suffix('.')?;
    let mut parts = rest.split('.');
    let _name = parts.next()?;
    let ns = parts.next()?;
    parts.next().is_none().then_some(ns)
}

/// Splits a Gateway server host `ns/dnsName` into (namespace filter, host). No prefix
/// means `*/`.
pub fn split_gateway_host(h: &str) -> (&str, &str) {
    match h.split_once('/') {
        Some((ns, host)) => (ns, host),
        None => ("*", h),
    }
}

/// Does `pattern` (exact, `*.suffix` or `*`) match the concrete `host`? Both lower-case.
/// `*.example.com` matches `a.example.com` and `a.b.example.com`, not `example.com`.
pub fn wildcard_matches(pattern: &str, host: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    match pattern.strip_prefix('*') {
        Some(suffix) => host.len() > suffix.len() && host.ends_with(suffix),
        None => pattern == host,
    }
}

/// The intersection of two host patterns, as Istio computes route domains from server
/// hosts and VirtualService hosts: the more specific one when one covers the other.
pub fn intersect(a: &str, b: &str) -> Option<String> {
    if wildcard_matches(a, b)
        || (a.starts_with('*') && b.starts_with('*') && b.ends_with(a.trim_start_matches('*')))
    {
        Some(b.to_string())
    } else if wildcard_matches(b, a)
        || (a.starts_with('*') && b.starts_with('*') && a.ends_with(b.trim_start_matches('*')))
    {
        Some(a.to_string())
    } else {
        None
    }
}

/// Lower-cases a Host header and drops its port (`[::1]:80` → `[::1]`).
pub fn normalize_authority(authority: &str) -> String {
    let a = authority.trim();
    let no_port = if a.starts_with('[') {
        match a.find(']') {
            Some(end) => &a[..=end],
            None => a,
        }
    } else {
        match a.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') && p.bytes().all(|b| b.is_ascii_digit()) => h,
            _ => a,
        }
    };
    no_port.to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expansion() {
        assert_eq!(
            expand_host("Reviews", "default"),
            "reviews.default.svc.cluster.local"
        );
        assert_eq!(
            expand_host("httpbin.example.com", "x"),
            "httpbin.example.com"
        );
        assert_eq!(expand_host("*", "x"), "*");
        assert_eq!(expand_host("10.0.0.1", "x"), "10.0.0.1");
        assert_eq!(short_name("reviews.default.svc.cluster.local"), "reviews");
        assert_eq!(
            fqdn_namespace("reviews.bookinfo.svc.cluster.local"),
            Some("bookinfo")
        );
        assert_eq!(fqdn_namespace("example.com"), None);
    }

    #[test]
    fn wildcards_and_intersection() {
        assert!(wildcard_matches("*.example.com", "dev.example.com"));
        assert!(!wildcard_matches("*.example.com", "example.com"));
        assert_eq!(intersect("*", "a.b"), Some("a.b".into()));
        assert_eq!(intersect("*.b.com", "*.a.b.com"), Some("*.a.b.com".into()));
        assert_eq!(intersect("a.com", "b.com"), None);
        assert_eq!(split_gateway_host("prod/*.x.com"), ("prod", "*.x.com"));
    }

    #[test]
    fn authority_normalization() {
        assert_eq!(normalize_authority("Shop.Example:8080"), "shop.example");
        assert_eq!(normalize_authority("[::1]:80"), "[::1]");
        assert_eq!(normalize_authority("10.0.0.1"), "10.0.0.1");
    }
}
