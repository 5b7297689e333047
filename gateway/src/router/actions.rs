//! What a matched rule does to a request, as plain functions the proxy calls:
//! weighted choice, path rewrite, redirect `Location`, CORS and header operations.

use std::fmt::Write;

use http::header::{self, HeaderMap, HeaderValue};

use super::matching::path_only;
use super::snapshot::*;

/// The destination for a random `r` (any u32; taken modulo `total`): destination i
/// gets `weight_i / total` of the draws. `dests` must be non-empty, which compile
/// guarantees for every route.
pub fn pick_weighted(dests: &[WeightedDestination], total: u32, r: u32) -> &WeightedDestination {
    let mut left = r % total.max(1);
    for d in dests {
        if left < d.weight {
            return d;
        }
        left -= d.weight;
    }
    // Only reachable if `total` disagrees with the weights: fall back to the last one.
    &dests[dests.len() - 1]
}

impl Rewrite {
    /// The new path+query. `matched_prefix` is the uri prefix the rule matched on
    /// (`HttpRule::matched_prefix`); without one, `uri` replaces the whole path.
    /// The query string is kept.
    pub fn apply(&self, path_and_query: &str, matched_prefix: Option<&str>) -> String {
        let path = path_only(path_and_query);
        let query = &path_and_query[path.len()..];
        let new_path = if let Some((re, template)) = &self.uri_regex {
            re.replace_all(path, template.as_str()).into_owned()
        } else if let Some(uri) = &self.uri {
            match matched_prefix {
                Some(p) if path.len() >= p.len() && path.is_char_boundary(p.len()) => {
                    join_prefix(uri, &path[p.len()..])
                }
                _ => uri.clone(),
            }
        } else {
            path.to_string()
        };
        new_path + query
    }
}

/// Envoy's prefix rewrite: replacing prefix `/v1/` with `/` must not yield `//x`.
fn join_prefix(replacement: &str, rest: &str) -> String {
    if replacement.ends_with('/') && rest.starts_with('/') {
        format!("{replacement}{}", &rest[1..])
    } else if replacement.is_empty() && !rest.starts_with('/') {
        format!("/{rest}")
    } else {
        format!("{replacement}{rest}")
    }
}

fn default_port(scheme: &str) -> u32 {
    if scheme.eq_ignore_ascii_case("https") {
        443
    } else {
        80
    }
}

fn authority_port(authority: &str) -> Option<u32> {
    let host = super::lookup::strip_port(authority);
    authority
        .trim()
        .get(host.len()..)?
        .strip_prefix(':')?
        .parse()
        .ok()
}

impl Redirect {
    /// The absolute `Location` for `req`. No port is added when the request's Host had
    /// none (unless `port` or `derivePort: FROM_REQUEST_PORT` says so); a default port
    /// for the scheme is never written.
    pub fn location(&self, req: &RequestView<'_>, matched_prefix: Option<&str>) -> String {
        let scheme = self.scheme.as_deref().unwrap_or(req.scheme);
        let scheme_changed = !scheme.eq_ignore_ascii_case(req.scheme);
        let (host, mut port) = match &self.authority {
            Some(a) => (super::lookup::strip_port(a).to_string(), authority_port(a)),
            None => (
                super::lookup::strip_port(req.authority).to_string(),
                authority_port(req.authority).filter(|_| !scheme_changed),
            ),
        };
        if let Some(p) = self.port {
            port = Some(p);
        } else if self.derive_port_from_request {
            port = Some(authority_port(req.authority).unwrap_or(req.port));
        }
        let path = path_only(req.path_and_query);
        let query = &req.path_and_query[path.len()..];
        let path_and_query = if let Some(uri) = &self.uri {
            if uri.contains('?') {
                uri.clone()
            } else {
                format!("{uri}{query}")
            }
        } else if let Some(rewrite) = &self.prefix_rewrite {
            match matched_prefix {
                Some(p) if path.len() >= p.len() && path.is_char_boundary(p.len()) => {
                    join_prefix(rewrite, &path[p.len()..]) + query
                }
                _ => format!("{rewrite}{query}"),
            }
        } else {
            req.path_and_query.to_string()
        };
        let mut out = format!("{scheme}://{host}");
        if let Some(p) = port.filter(|p| *p != default_port(scheme)) {
            let _ = write!(out, ":{p}");
        }
        if !path_and_query.starts_with('/') {
            out.push('/');
        }
        out.push_str(&path_and_query);
        out
    }

    /// The redirect a `tls.httpsRedirect` server answers every request with.
    pub fn https_upgrade() -> Redirect {
        Redirect {
            uri: None,
            prefix_rewrite: None,
            authority: None,
            port: None,
            derive_port_from_request: false,
            scheme: Some("https".into()),
            code: 301,
        }
    }
}

impl Cors {
    /// Does `origin` match one of `allowOrigins`?
    pub fn allows_origin(&self, origin: &str) -> bool {
        self.allow_origins.iter().any(|m| m.matches(origin))
    }

    /// A CORS preflight: OPTIONS with `Origin` and `Access-Control-Request-Method`.
    pub fn is_preflight(method: &str, headers: &HeaderMap) -> bool {
        method == "OPTIONS"
            && headers.contains_key(header::ORIGIN)
            && headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
    }

    /// Headers of the answer to an allowed preflight (the origin echoed). Returns false,
    /// adding nothing, when the origin is not allowed: the request then goes upstream
    /// as Envoy does.
    pub fn apply_preflight(&self, origin: &str, out: &mut HeaderMap) -> bool {
        if !self.apply_origin(origin, out) {
            return false;
        }
        let mut put = |name, value: &str| {
            if let Ok(v) = HeaderValue::from_str(value) {
                out.insert(name, v);
            }
        };
        if !self.allow_methods.is_empty() {
            put(header::ACCESS_CONTROL_ALLOW_METHODS, &self.allow_methods);
        }
        if !self.allow_headers.is_empty() {
            put(header::ACCESS_CONTROL_ALLOW_HEADERS, &self.allow_headers);
        }
        if let Some(age) = self.max_age {
            put(header::ACCESS_CONTROL_MAX_AGE, &age.as_secs().to_string());
        }
        true
    }

    /// Headers added to an ordinary response to a request from an allowed origin.
    pub fn apply_response(&self, origin: &str, out: &mut HeaderMap) -> bool {
        if !self.apply_origin(origin, out) {
            return false;
        }
        if !self.expose_headers.is_empty() {
            if let Ok(v) = HeaderValue::from_str(&self.expose_headers) {
                out.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, v);
            }
        }
        true
    }

    fn apply_origin(&self, origin: &str, out: &mut HeaderMap) -> bool {
        if !self.allows_origin(origin) {
            return false;
        }
        let Ok(v) = HeaderValue::from_str(origin) else {
            return false;
        };
        out.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
        if self.allow_credentials {
            out.insert(
                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
        true
    }
}

impl HeaderOperations {
    /// Envoy's order: remove, then set (replace), then add (append).
    pub fn apply(&self, headers: &mut HeaderMap) {
        for name in &self.remove {
            headers.remove(name);
        }
        for (name, value) in &self.set {
            headers.insert(name.clone(), value.clone());
        }
        for (name, value) in &self.add {
            headers.append(name.clone(), value.clone());
        }
    }

    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.add.is_empty() && self.remove.is_empty()
    }
}

impl NoRoute<'_> {
    /// The one-line 404 body: `no route: host 'h' on gateway ns/name port 80; hosts here: a, b`.
    pub fn message(&self, host: &str, port: u32) -> String {
        let host = super::lookup::strip_port(host);
        match self.server {
            Some(server) => {
                let hosts: Vec<&str> = server.vhosts.domains().collect();
                let listed = if hosts.is_empty() {
                    "none (no VirtualService is bound to this server)".to_string()
                } else {
                    hosts.join(", ")
                };
                match self.vhost {
                    Some(v) => format!(
                        "no route: no rule of host '{}' on gateway {} port {port} matched the request",
                        v.domain, server.gateway
                    ),
                    None => format!(
                        "no route: host '{host}' on gateway {} port {port}; hosts here: {listed}",
                        server.gateway
                    ),
                }
            }
            None => match self.vhost {
                Some(v) => format!(
                    "no route: no rule of host '{}' matched the request",
                    v.domain
                ),
                None => format!(
                    "no route: host '{host}' port {port}: no gateway server or mesh host serves it"
                ),
            },
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::router::testing::request;

    fn dest(name: &str, weight: u32) -> WeightedDestination {
        WeightedDestination {
            cluster: name.into(),
            host: name.into(),
            subset: None,
            port: Some(80),
            weight,
            headers: HeaderOps::default(),
        }
    }

    #[test]
    fn weights_are_relative_shares_and_zero_gets_nothing() {
        let d = [dest("a", 1), dest("zero", 0), dest("b", 3)];
        let mut counts = [0u32; 2];
        for r in 0..4000u32 {
            match pick_weighted(&d, 4, r).cluster.as_ref() {
                "a" => counts[0] += 1,
                "b" => counts[1] += 1,
                other => panic!("picked {other}"),
            }
        }
        assert_eq!(counts, [1000, 3000]);
        // Any u32 works: it is taken modulo the total.
        assert_eq!(&*pick_weighted(&d, 4, u32::MAX).cluster, "b");
    }

    #[test]
    fn rewrite_replaces_the_matched_prefix_and_keeps_the_query() {
        let rw = Rewrite {
            uri: Some("/v2".into()),
            authority: None,
            uri_regex: None,
        };
        assert_eq!(rw.apply("/v1/items?id=3", Some("/v1")), "/v2/items?id=3");
        assert_eq!(rw.apply("/exact?q", None), "/v2?q");
        let slash = Rewrite {
            uri: Some("/".into()),
            authority: None,
            uri_regex: None,
        };
        assert_eq!(slash.apply("/api/users", Some("/api/")), "/users");
        assert_eq!(slash.apply("/api/users", Some("/api")), "/users");
        let re = Rewrite {
            uri: None,
            authority: None,
            uri_regex: Some((
                regex::Regex::new("^/service/([^/]+)(/.*)$").unwrap().into(),
                "${2}/instance/${1}".into(),
            )),
        };
        assert_eq!(
            re.apply("/service/foo/v1/api?x=1", None),
            "/v1/api/instance/foo?x=1"
        );
    }

    fn redirect() -> Redirect {
        Redirect {
            uri: None,
            prefix_rewrite: None,
            authority: None,
            port: None,
            derive_port_from_request: false,
            scheme: None,
            code: 301,
        }
    }

    #[test]
    fn redirect_location_is_absolute_without_an_invented_port() {
        let q = request("GET", "http://shop.example/old?x=1", &[]);
        let to_home = Redirect {
            uri: Some("/home".into()),
            ..redirect()
        };
        assert_eq!(
            to_home.location(&q.view(), None),
            "http://shop.example/home?x=1"
        );
        let with_port = request("GET", "http://shop.example:8080/old", &[]);
        assert_eq!(
            to_home.location(&with_port.view(), None),
            "http://shop.example:8080/home"
        );
        let other = Redirect {
            authority: Some("new.example".into()),
            scheme: Some("https".into()),
            ..redirect()
        };
        assert_eq!(
            other.location(&with_port.view(), None),
            "https://new.example/old"
        );
        let derive = Redirect {
            derive_port_from_request: true,
            ..redirect()
        };
        let mut on_8080 = request("GET", "http://shop.example/a", &[]);
        on_8080.port = 8080;
        assert_eq!(
            derive.location(&on_8080.view(), None),
            "http://shop.example:8080/a"
        );
        assert_eq!(
            derive.location(&q.view(), None),
            "http://shop.example/old?x=1"
        );
        let explicit = Redirect {
            port: Some(9000),
            ..redirect()
        };
        assert_eq!(
            explicit.location(&q.view(), None),
            "http://shop.example:9000/old?x=1"
        );
        let prefix = Redirect {
            prefix_rewrite: Some("/new".into()),
            ..redirect()
        };
        assert_eq!(
            prefix.location(&q.view(), Some("/old")),
            "http://shop.example/new?x=1"
        );
    }

    #[test]
    fn cors_echoes_an_allowed_origin_and_adds_nothing_otherwise() {
        let cors = Cors {
            allow_origins: vec![Matcher::Exact("https://app.example".into())],
            allow_methods: "GET,POST".into(),
            allow_headers: "x-token".into(),
            expose_headers: "x-trace".into(),
            max_age: Some(std::time::Duration::from_secs(600)),
            allow_credentials: true,
        };
        let mut req = HeaderMap::new();
        req.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://app.example"),
        );
        req.insert(
            header::ACCESS_CONTROL_REQUEST_METHOD,
            HeaderValue::from_static("POST"),
        );
        assert!(Cors::is_preflight("OPTIONS", &req));
        assert!(!Cors::is_preflight("GET", &req));
        let mut out = HeaderMap::new();
        assert!(cors.apply_preflight("https://app.example", &mut out));
        assert_eq!(out["access-control-allow-origin"], "https://app.example");
        assert_eq!(out["access-control-allow-methods"], "GET,POST");
        assert_eq!(out["access-control-max-age"], "600");
        assert_eq!(out["access-control-allow-credentials"], "true");
        let mut none = HeaderMap::new();
        assert!(!cors.apply_response("https://evil.example", &mut none));
        assert!(none.is_empty());
        assert!(cors.apply_response("https://app.example", &mut none));
        assert_eq!(none["access-control-expose-headers"], "x-trace");
    }

    #[test]
    fn header_operations_remove_then_set_then_add() {
        let ops = HeaderOperations {
            set: vec![(
                header::HeaderName::from_static("x-env"),
                HeaderValue::from_static("prod"),
            )],
            add: vec![(
                header::HeaderName::from_static("x-tag"),
                HeaderValue::from_static("b"),
            )],
            remove: vec![
                header::HeaderName::from_static("x-secret"),
                header::HeaderName::from_static("x-tag"),
            ],
        };
        let mut h = HeaderMap::new();
        h.insert("x-env", HeaderValue::from_static("dev"));
        h.insert("x-secret", HeaderValue::from_static("s"));
        h.insert("x-tag", HeaderValue::from_static("a"));
        ops.apply(&mut h);
        assert_eq!(h["x-env"], "prod");
        assert!(!h.contains_key("x-secret"));
        let tags: Vec<_> = h.get_all("x-tag").iter().collect();
        assert_eq!(tags, ["b"]);
    }
}
