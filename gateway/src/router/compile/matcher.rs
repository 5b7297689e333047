//! `match[]` entries and string matchers, compiled once: regexes anchored to the
//! whole string (RE2 syntax), header names validated, ignoreUriCase folded in.

use std::collections::HashMap;

use regex::Regex;

use super::{problem, Checked, CODE_INVALID, CODE_REGEX};
use crate::config::{HttpMatchRequest, StringMatch};
use crate::router::snapshot::{Matcher, RequestMatch};

/// Many VirtualServices repeat the same patterns: compile each distinct one once.
#[derive(Default)]
pub(super) struct RegexCache {
    compiled: HashMap<String, Regex>,
}

/// Bounds what one user pattern may cost in memory (the regex crate's own limit is 10x).
const REGEX_SIZE_LIMIT: usize = 1 << 20;

impl RegexCache {
    /// `re` anchored as `^(?:re)$`, so it must match the whole string as in Istio.
    pub fn anchored(&mut self, re: &str, field: &str) -> Checked<Regex> {
        self.get(&format!("^(?:{re})$"), re, field)
    }

    /// `re` as written (for `uriRegexRewrite`, which replaces every match).
    pub fn unanchored(&mut self, re: &str, field: &str) -> Checked<Regex> {
        self.get(re, re, field)
    }

    fn get(&mut self, pattern: &str, written: &str, field: &str) -> Checked<Regex> {
        if let Some(r) = self.compiled.get(pattern) {
            return Ok(r.clone());
        }
        let r = regex::RegexBuilder::new(pattern)
            .size_limit(REGEX_SIZE_LIMIT)
            .build()
            .map_err(|e| {
                problem(
                    CODE_REGEX,
                    field,
                    format!("invalid regex {written:?}: {}", first_line(&e.to_string())),
                )
            })?;
        self.compiled.insert(pattern.to_string(), r.clone());
        Ok(r)
    }
}

/// The regex crate's errors draw the pattern over several lines; the last line says why.
fn first_line(msg: &str) -> String {
    msg.lines()
        .rev()
        .find(|l| l.starts_with("error:"))
        .map(|l| l.trim_start_matches("error:").trim().to_string())
        .unwrap_or_else(|| msg.lines().last().unwrap_or(msg).trim().to_string())
}

/// Where a string matcher is used: headers and query parameters accept `{}` (present).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Use {
    Uri { ignore_case: bool },
    Value,
    Header,
}

/// Compiles one `{exact|prefix|regex}`; None when it sets nothing and `usage` gives
/// that no meaning (a uri `{}` adds no condition).
pub(super) fn string_match(
    m: &StringMatch,
    usage: Use,
    field: &str,
    re: &mut RegexCache,
) -> Checked<Option<Matcher>> {
    let set = [m.exact.is_some(), m.prefix.is_some(), m.regex.is_some()]
        .iter()
        .filter(|b| **b)
        .count();
    if set > 1 {
        return Err(problem(
            CODE_INVALID,
            field,
            "set only one of exact, prefix, regex",
        ));
    }
    let ignore_case = matches!(usage, Use::Uri { ignore_case: true });
    Ok(Some(if let Some(e) = &m.exact {
        if ignore_case {
            Matcher::ExactIgnoreCase(e.to_ascii_lowercase())
        } else {
            Matcher::Exact(e.clone())
        }
    } else if let Some(p) = &m.prefix {
        match usage {
            // Istio reads an empty header prefix as "present".
            Use::Header if p.is_empty() => Matcher::Present,
            _ if ignore_case => Matcher::PrefixIgnoreCase(p.to_ascii_lowercase()),
            _ => Matcher::Prefix(p.clone()),
        }
    } else if let Some(r) = &m.regex {
        if usage == Use::Header && (r == "*" || r == ".*") {
            Matcher::Present
        } else {
            Matcher::Regex(re.anchored(r, &format!("{field}.regex"))?)
        }
    } else {
        match usage {
            Use::Header => Matcher::Present,
            _ => return Ok(None),
        }
    }))
}

fn header_name(name: &str, field: &str) -> Checked<http::HeaderName> {
    http::HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes()).map_err(|_| {
        problem(
            CODE_INVALID,
            field,
            format!("{name:?} is not a valid header name"),
        )
    })
}

/// `[ns/]name` → `ns/name`; `mesh` stays `mesh`.
pub(super) fn gateway_ref(g: &str, namespace: &str) -> String {
    if g == "mesh" || g.contains('/') {
        g.to_string()
    } else {
        format!("{namespace}/{g}")
    }
}

pub(super) fn request_match(
    m: &HttpMatchRequest,
    at: &str,
    namespace: &str,
    re: &mut RegexCache,
) -> Checked<RequestMatch> {
    let f = |s: &str| format!("{at}.{s}");
    let value = |sm: &Option<StringMatch>,
                 usage,
                 name: &str,
                 re: &mut RegexCache|
     -> Checked<Option<Matcher>> {
        match sm {
            Some(sm) => string_match(sm, usage, &f(name), re),
            None => Ok(None),
        }
    };
    let mut out = RequestMatch {
        name: m.name.clone(),
        uri: value(
            &m.uri,
            Use::Uri {
                ignore_case: m.ignore_uri_case,
            },
            "uri",
            re,
        )?,
        scheme: value(&m.scheme, Use::Value, "scheme", re)?,
        method: value(&m.method, Use::Value, "method", re)?,
        authority: value(&m.authority, Use::Value, "authority", re)?,
        port: m.port,
        gateways: m
            .gateways
            .iter()
            .map(|g| gateway_ref(g, namespace))
            .collect(),
        source_labels: m.source_labels.clone(),
        source_namespace: m.source_namespace.clone(),
        ..RequestMatch::default()
    };
    for (k, sm) in &m.headers {
        let field = f(&format!("headers.{k}"));
        let name = header_name(k, &field)?;
        if let Some(matcher) = string_match(sm, Use::Header, &field, re)? {
            out.headers.push((name, matcher));
        }
    }
    for (k, sm) in &m.without_headers {
        let field = f(&format!("withoutHeaders.{k}"));
        let name = header_name(k, &field)?;
        if let Some(matcher) = string_match(sm, Use::Header, &field, re)? {
            out.without_headers.push((name, matcher));
        }
    }
    for (k, sm) in &m.query_params {
        let field = f(&format!("queryParams.{k}"));
        if let Some(matcher) = string_match(sm, Use::Header, &field, re)? {
            out.query_params.push((k.clone(), matcher));
        }
    }
    Ok(out)
}

/// A delegate's match entry within its parent's: parent conditions AND'ed in. None when
/// the two cannot both hold (a child uri outside the parent's prefix, other ports).
pub(super) fn merge_delegate(parent: &RequestMatch, child: &RequestMatch) -> Option<RequestMatch> {
    let mut out = child.clone();
    out.uri = match (&parent.uri, &child.uri) {
        (p, None) => p.clone(),
        (None, c) => c.clone(),
        (Some(p), Some(c)) => {
            let within = match (p, c) {
                (Matcher::Prefix(pp), Matcher::Prefix(cp) | Matcher::Exact(cp)) => {
                    cp.starts_with(pp.as_str())
                }
                (Matcher::Exact(pe), Matcher::Exact(ce)) => pe == ce,
                (Matcher::Exact(_), Matcher::Prefix(_)) => false,
                _ => true,
            };
            if !within {
                return None;
            }
            Some(c.clone())
        }
    };
    out.scheme = child.scheme.clone().or_else(|| parent.scheme.clone());
    out.method = child.method.clone().or_else(|| parent.method.clone());
    out.authority = child.authority.clone().or_else(|| parent.authority.clone());
    out.port = match (parent.port, child.port) {
        (Some(a), Some(b)) if a != b => return None,
        (a, b) => b.or(a),
    };
    let union = |p: &[(http::HeaderName, Matcher)], c: &[(http::HeaderName, Matcher)]| {
        let mut v: Vec<_> = p
            .iter()
            .filter(|(k, _)| !c.iter().any(|(ck, _)| ck == k))
            .cloned()
            .collect();
        v.extend(c.iter().cloned());
        v
    };
    out.headers = union(&parent.headers, &child.headers);
    out.without_headers = union(&parent.without_headers, &child.without_headers);
    let mut q: Vec<_> = parent
        .query_params
        .iter()
        .filter(|(k, _)| !child.query_params.iter().any(|(ck, _)| ck == k))
        .cloned()
        .collect();
    q.extend(child.query_params.iter().cloned());
    out.query_params = q;
    out.gateways = parent.gateways.clone();
    let mut labels = parent.source_labels.clone();
    labels.extend(child.source_labels.clone());
    out.source_labels = labels;
    out.source_namespace = child
        .source_namespace
        .clone()
        .or_else(|| parent.source_namespace.clone());
    out.name = child.name.clone().or_else(|| parent.name.clone());
    Some(out)
}
