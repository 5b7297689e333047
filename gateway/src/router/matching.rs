//! Request matching with Istio's semantics. `RequestMatch::mismatch` is the one
//! implementation: the request path asks "did it match" and `meshgate route` asks
//! "why not" of the same code, so the explanation can never disagree with routing.
//! Nothing here allocates.

use std::fmt;

use super::snapshot::{HttpRule, Matcher, RequestMatch, RequestView};
use crate::config::Labels;

impl Matcher {
    /// Does `value` satisfy this matcher? Regexes are anchored at compile time, so a
    /// regex must match the whole string; prefixes are plain string prefixes.
    pub fn matches(&self, value: &str) -> bool {
        match self {
            Matcher::Exact(e) => value == e,
            Matcher::Prefix(p) => value.starts_with(p.as_str()),
            Matcher::Regex(r) => r.is_match(value),
            Matcher::Present => true,
            Matcher::ExactIgnoreCase(e) => value.eq_ignore_ascii_case(e),
            Matcher::PrefixIgnoreCase(p) => value
                .as_bytes()
                .get(..p.len())
                .is_some_and(|head| head.eq_ignore_ascii_case(p.as_bytes())),
        }
    }

    /// The prefix this matcher strips for `rewrite.uri`, if it is a prefix matcher.
    pub fn prefix(&self) -> Option<&str> {
        match self {
            Matcher::Prefix(p) | Matcher::PrefixIgnoreCase(p) => Some(p),
            _ => None,
        }
    }
}

/// `exact "jason"`, `prefix "/static"`, `regex "v[0-9]+"`, `present`.
impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Matcher::Exact(e) => write!(f, "exact {e:?}"),
            Matcher::Prefix(p) => write!(f, "prefix {p:?}"),
            Matcher::Regex(r) => write!(f, "regex {:?}", regex_source(r.as_str())),
            Matcher::Present => f.write_str("present"),
            Matcher::ExactIgnoreCase(e) => write!(f, "exact {e:?} (any case)"),
            Matcher::PrefixIgnoreCase(p) => write!(f, "prefix {p:?} (any case)"),
        }
    }
}

/// The pattern as the user wrote it, without the `^(?:...)$` anchoring added at compile.
pub fn regex_source(anchored: &str) -> &str {
    anchored
        .strip_prefix("^(?:")
        .and_then(|r| r.strip_suffix(")$"))
        .unwrap_or(anchored)
}

/// Which part of the request a condition looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject<'r> {
    Uri,
    Scheme,
    Method,
    Authority,
    Header(&'r str),
    QueryParam(&'r str),
}

/// The first condition of a `match[]` entry that a request fails.
#[derive(Debug, Clone, Copy)]
pub enum Mismatch<'r, 'q> {
    /// A string condition did not hold; `actual` is None when the request lacks it.
    Value {
        subject: Subject<'r>,
        expected: &'r Matcher,
        actual: Option<&'q str>,
    },
    /// A `withoutHeaders` condition: the header matched although it must not.
    Without {
        header: &'r str,
        matcher: &'r Matcher,
        actual: Option<&'q str>,
    },
    Port {
        expected: u32,
        actual: u32,
    },
    SourceLabels {
        expected: &'r Labels,
    },
    SourceNamespace {
        expected: &'r str,
        actual: Option<&'q str>,
    },
}

impl fmt::Display for Subject<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::Uri => f.write_str("uri"),
            Subject::Scheme => f.write_str("scheme"),
            Subject::Method => f.write_str("method"),
            Subject::Authority => f.write_str("authority"),
            Subject::Header(h) => write!(f, "header {h}"),
            Subject::QueryParam(q) => write!(f, "query parameter {q}"),
        }
    }
}

/// `header end-user: expected exact "jason", request has none`
impl fmt::Display for Mismatch<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mismatch::Value {
                subject,
                expected,
                actual,
            } => {
                write!(f, "{subject}: expected {expected}, request has ")?;
                match actual {
                    Some(v) => write!(f, "{v:?}"),
                    None => f.write_str("none"),
                }
            }
            Mismatch::Without {
                header,
                matcher,
                actual,
            } => match actual {
                Some(v) => write!(f, "withoutHeaders {header}: {v:?} matches {matcher}"),
                None => write!(
                    f,
                    "withoutHeaders {header}: a missing header matches {matcher}"
                ),
            },
            Mismatch::Port { expected, actual } => {
                write!(f, "port: expected {expected}, request is on {actual}")
            }
            Mismatch::SourceLabels { expected } => {
                f.write_str("sourceLabels: the caller lacks")?;
                for (k, v) in expected.iter() {
                    write!(f, " {k}={v}")?;
                }
                Ok(())
            }
            Mismatch::SourceNamespace { expected, actual } => match actual {
                Some(a) => write!(f, "sourceNamespace: expected {expected}, caller is in {a}"),
                None => write!(f, "sourceNamespace: expected {expected}, caller unknown"),
            },
        }
    }
}

/// Who is calling, for `sourceLabels` / `sourceNamespace`. On a gateway these are the
/// gateway workload's own labels and namespace, as Istio evaluates them there.
#[derive(Debug, Clone, Copy, Default)]
pub struct Caller<'a> {
    pub labels: Option<&'a Labels>,
    pub namespace: Option<&'a str>,
}

/// The path without its query string: uri conditions never see the query.
pub fn path_only(path_and_query: &str) -> &str {
    match path_and_query.find('?') {
        Some(i) => &path_and_query[..i],
        None => path_and_query,
    }
}

/// The first value of query parameter `key` (`?key` alone has the value "").
/// Parameters are compared as sent, without percent-decoding.
pub fn query_param<'q>(path_and_query: &'q str, key: &str) -> Option<&'q str> {
    let query = path_and_query.split_once('?')?.1;
    let query = query.split('#').next().unwrap_or(query);
    query
        .split('&')
        .find_map(|pair| match pair.split_once('=') {
            Some((k, v)) if k == key => Some(v),
            None if pair == key => Some(""),
            _ => None,
        })
}

fn header<'q>(req: &RequestView<'q>, name: &http::HeaderName) -> Option<&'q str> {
    // A value that is not visible ASCII cannot equal any configured string: treat it as "".
    req.headers
        .get(name)
        .map(|v| std::str::from_utf8(v.as_bytes()).unwrap_or(""))
}

impl RequestMatch {
    pub fn matches(&self, req: &RequestView<'_>, caller: Caller<'_>) -> bool {
        self.mismatch(req, caller).is_none()
    }

    /// The first condition `req` fails, or None when every condition holds.
    pub fn mismatch<'r, 'q>(
        &'r self,
        req: &RequestView<'q>,
        caller: Caller<'q>,
    ) -> Option<Mismatch<'r, 'q>> {
        let value = |subject, m: &'r Option<Matcher>, actual: &'q str| match m {
            Some(expected) if !expected.matches(actual) => Some(Mismatch::Value {
                subject,
                expected,
                actual: Some(actual),
            }),
            _ => None,
        };
        if let Some(m) = value(Subject::Uri, &self.uri, path_only(req.path_and_query)) {
            return Some(m);
        }
        if let Some(m) = value(Subject::Scheme, &self.scheme, req.scheme) {
            return Some(m);
        }
        if let Some(m) = value(Subject::Method, &self.method, req.method) {
            return Some(m);
        }
        if let Some(m) = value(Subject::Authority, &self.authority, req.authority) {
            return Some(m);
        }
        if let Some(expected) = self.port {
            if expected != req.port {
                return Some(Mismatch::Port {
                    expected,
                    actual: req.port,
                });
            }
        }
        for (name, expected) in &self.headers {
            let actual = header(req, name);
            if !actual.is_some_and(|a| expected.matches(a)) {
                return Some(Mismatch::Value {
                    subject: Subject::Header(name.as_str()),
                    expected,
                    actual,
                });
            }
        }
        for (name, matcher) in &self.without_headers {
            let actual = header(req, name);
            let hit = match matcher {
                Matcher::Present => actual.is_some(),
                m => m.matches(actual.unwrap_or("")),
            };
            if hit {
                return Some(Mismatch::Without {
                    header: name.as_str(),
                    matcher,
                    actual,
                });
            }
        }
        for (key, expected) in &self.query_params {
            let actual = query_param(req.path_and_query, key);
            if !actual.is_some_and(|a| expected.matches(a)) {
                return Some(Mismatch::Value {
                    subject: Subject::QueryParam(key),
                    expected,
                    actual,
                });
            }
        }
        if !self.source_labels.is_empty() {
            let has_all = caller.labels.is_some_and(|have| {
                self.source_labels
                    .iter()
                    .all(|(k, v)| have.get(k).is_some_and(|h| h == v))
            });
            if !has_all {
                return Some(Mismatch::SourceLabels {
                    expected: &self.source_labels,
                });
            }
        }
        if let Some(expected) = &self.source_namespace {
            if caller.namespace != Some(expected.as_str()) {
                return Some(Mismatch::SourceNamespace {
                    expected,
                    actual: caller.namespace,
                });
            }
        }
        None
    }
}

impl HttpRule {
    /// The first `match[]` entry `req` satisfies; for a catch-all rule, None but
    /// `applies` is true.
    pub fn matched_entry(
        &self,
        req: &RequestView<'_>,
        caller: Caller<'_>,
    ) -> Option<&RequestMatch> {
        self.matches.iter().find(|m| m.matches(req, caller))
    }

    /// First match wins: does this rule take `req`?
    pub fn applies(&self, req: &RequestView<'_>, caller: Caller<'_>) -> bool {
        self.matches.is_empty() || self.matched_entry(req, caller).is_some()
    }

    /// The uri prefix the matching entry matched on, for `rewrite.uri` and redirect
    /// `prefixRewrite` (None for exact/regex/no uri condition: the whole path is replaced).
    pub fn matched_prefix(&self, req: &RequestView<'_>, caller: Caller<'_>) -> Option<&str> {
        self.matched_entry(req, caller)?.uri.as_ref()?.prefix()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::router::testing::request;

    fn re(r: &str) -> Matcher {
        Matcher::Regex(Regex::new(&format!("^(?:{r})$")).unwrap().into())
    }
    use regex::Regex;

    #[test]
    fn prefix_is_a_plain_string_prefix() {
        let m = Matcher::Prefix("/static".into());
        assert!(m.matches("/static/app.css"));
        assert!(
            m.matches("/staticx"),
            "Istio prefixes are not path-segment aware"
        );
        assert!(!m.matches("/stati"));
    }

    #[test]
    fn regex_must_match_the_whole_string() {
        let m = re("/v[0-9]+");
        assert!(m.matches("/v12"));
        assert!(!m.matches("/v12/extra"));
        assert!(!m.matches("x/v1"));
        assert_eq!(m.to_string(), "regex \"/v[0-9]+\"");
    }

    #[test]
    fn ignore_case_only_folds_ascii_for_exact_and_prefix() {
        assert!(Matcher::ExactIgnoreCase("/login".into()).matches("/LOGIN"));
        assert!(Matcher::PrefixIgnoreCase("/api".into()).matches("/API/v1"));
        assert!(!Matcher::PrefixIgnoreCase("/api".into()).matches("/ap"));
        assert!(!Matcher::Exact("/login".into()).matches("/LOGIN"));
    }

    #[test]
    fn uri_conditions_never_see_the_query_string() {
        let q = request("GET", "http://a/productpage?u=normal", &[]);
        let m = RequestMatch {
            uri: Some(Matcher::Exact("/productpage".into())),
            ..RequestMatch::default()
        };
        assert!(m.matches(&q.view(), Caller::default()));
    }

    #[test]
    fn headers_exact_and_present_and_reason() {
        let m = RequestMatch {
            headers: vec![(
                http::HeaderName::from_static("end-user"),
                Matcher::Exact("jason".into()),
            )],
            ..RequestMatch::default()
        };
        let none = request("GET", "http://a/", &[]);
        let why = m
            .mismatch(&none.view(), Caller::default())
            .unwrap()
            .to_string();
        assert_eq!(
            why,
            "header end-user: expected exact \"jason\", request has none"
        );
        let bob = request("GET", "http://a/", &["end-user: bob"]);
        assert_eq!(
            m.mismatch(&bob.view(), Caller::default())
                .unwrap()
                .to_string(),
            "header end-user: expected exact \"jason\", request has \"bob\""
        );
        assert!(m.matches(
            &request("GET", "http://a/", &["End-User: jason"]).view(),
            Caller::default()
        ));
        let present = RequestMatch {
            headers: vec![(http::HeaderName::from_static("x-debug"), Matcher::Present)],
            ..RequestMatch::default()
        };
        assert!(present.matches(
            &request("GET", "http://a/", &["x-debug: "]).view(),
            Caller::default()
        ));
        assert!(!present.matches(&none.view(), Caller::default()));
    }

    #[test]
    fn without_headers_treats_a_missing_header_as_empty() {
        let name = http::HeaderName::from_static("x-canary");
        let exact = RequestMatch {
            without_headers: vec![(name.clone(), Matcher::Exact("true".into()))],
            ..RequestMatch::default()
        };
        assert!(exact.matches(&request("GET", "http://a/", &[]).view(), Caller::default()));
        assert!(exact.matches(
            &request("GET", "http://a/", &["x-canary: false"]).view(),
            Caller::default()
        ));
        assert!(!exact.matches(
            &request("GET", "http://a/", &["x-canary: true"]).view(),
            Caller::default()
        ));
        // A regex that accepts "" rejects requests without the header.
        let empty_ok = RequestMatch {
            without_headers: vec![(name.clone(), re(".*"))],
            ..RequestMatch::default()
        };
        assert!(!empty_ok.matches(&request("GET", "http://a/", &[]).view(), Caller::default()));
        let absent = RequestMatch {
            without_headers: vec![(name, Matcher::Present)],
            ..RequestMatch::default()
        };
        assert!(absent.matches(&request("GET", "http://a/", &[]).view(), Caller::default()));
        assert!(!absent.matches(
            &request("GET", "http://a/", &["x-canary: x"]).view(),
            Caller::default()
        ));
    }

    #[test]
    fn query_params_exact_empty_matches_a_bare_key() {
        let m = RequestMatch {
            query_params: vec![("debug".into(), Matcher::Exact(String::new()))],
            ..RequestMatch::default()
        };
        let ok = |url| m.matches(&request("GET", url, &[]).view(), Caller::default());
        assert!(ok("http://a/p?debug"));
        assert!(ok("http://a/p?x=1&debug="));
        assert!(!ok("http://a/p?debug=1"));
        assert!(!ok("http://a/p"));
        let r = RequestMatch {
            query_params: vec![("v".into(), re("[0-9]+"))],
            ..RequestMatch::default()
        };
        assert!(r.matches(
            &request("GET", "http://a/?v=42", &[]).view(),
            Caller::default()
        ));
        assert!(!r.matches(
            &request("GET", "http://a/?v=42a", &[]).view(),
            Caller::default()
        ));
        assert_eq!(query_param("/p?a=1&a=2", "a"), Some("1"));
    }

    #[test]
    fn method_scheme_authority_port_and_source() {
        let q = request("POST", "https://shop.example:8443/cart", &[]);
        let m = RequestMatch {
            method: Some(Matcher::Exact("POST".into())),
            scheme: Some(Matcher::Exact("https".into())),
            authority: Some(Matcher::Prefix("shop.".into())),
            port: Some(8443),
            ..RequestMatch::default()
        };
        assert!(m.matches(&q.view(), Caller::default()));
        let wrong_port = RequestMatch {
            port: Some(80),
            ..RequestMatch::default()
        };
        assert_eq!(
            wrong_port
                .mismatch(&q.view(), Caller::default())
                .unwrap()
                .to_string(),
            "port: expected 80, request is on 8443"
        );
        let labels: crate::config::Labels = [("app".to_string(), "reviews".to_string())].into();
        let src = RequestMatch {
            source_labels: labels.clone(),
            source_namespace: Some("prod".into()),
            ..RequestMatch::default()
        };
        assert!(
            !src.matches(&q.view(), Caller::default()),
            "unknown caller fails sourceLabels"
        );
        let caller = Caller {
            labels: Some(&labels),
            namespace: Some("prod"),
        };
        assert!(src.matches(&q.view(), caller));
        let other_ns = Caller {
            labels: Some(&labels),
            namespace: Some("dev"),
        };
        assert!(!src.matches(&q.view(), other_ns));
    }
}
