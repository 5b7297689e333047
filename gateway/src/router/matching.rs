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
    Port { expected: u32, actual: u32 },
    SourceLabels { expected: &'r Labels },
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
                None => write!(f, "withoutHeaders {header}: a missing header matches {matcher}"),
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
    query.split('&').find_map(|pair| match pair.split_once('=') {
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
    pub fn matched_entry(&self, req: &RequestView<'_>, caller: Caller<'_>) -> Option<&RequestMatch> {
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
