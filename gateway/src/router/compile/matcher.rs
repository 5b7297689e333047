//! `match[]` entries and string matchers, compiled once: regexes anchored to the
//! whole string (RE2 syntax), header names validated, ignoreUriCase folded in.

use std::collections::HashMap;

use super::{problem, Checked, CODE_INVALID, CODE_REGEX};
use crate::config::{HttpMatchRequest, StringMatch};
use crate::router::snapshot::{Matcher, RequestMatch, SharedRegex};

/// Regexes by pattern. Many VirtualServices repeat patterns, and a reload mostly
/// repeats the previous config's: each distinct pattern is built once and kept while
/// the latest compile still uses it. `prebuild` fills it before rules are compiled,
/// so compiling rules only reads it (and can run on several threads).
#[derive(Default)]
pub(super) struct RegexCache {
    /// Patterns the compile in progress uses.
    current: HashMap<String, SharedRegex>,
}

/// Bounds what one user pattern may cost in memory (the regex crate's own limit is 10x).
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// Below this many new patterns, threads cost more than they save.
const PARALLEL_MIN: usize = 64;

fn build(pattern: &str) -> Result<SharedRegex, regex::Error> {
    regex::RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map(SharedRegex::new)
}

pub(super) fn anchor(re: &str) -> String {
    format!("^(?:{re})$")
}

impl RegexCache {
    /// Makes exactly `patterns` available: kept from the last compile when it used them,
    /// else built (on all cores when there are many; a big config has thousands).
    /// Invalid patterns are left out for `anchored`/`unanchored` to report.
    pub fn prebuild(&mut self, patterns: Vec<String>) {
        let mut previous = std::mem::take(&mut self.current);
        let mut todo: Vec<String> = Vec::new();
        for p in patterns {
            if self.current.contains_key(&p) {
                continue;
            }
            match previous.remove(&p) {
                Some(r) => {
                    self.current.insert(p, r);
                }
                None => todo.push(p),
            }
        }
        drop(previous);
        todo.sort_unstable();
        todo.dedup();
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(8);
        if todo.len() < PARALLEL_MIN || threads < 2 {
            for p in todo {
                if let Ok(r) = build(&p) {
                    self.current.insert(p, r);
                }
            }
            return;
        }
        let chunk = todo.len().div_ceil(threads);
        let built: Vec<Vec<(String, SharedRegex)>> = std::thread::scope(|scope| {
            let handles: Vec<_> = todo
                .chunks(chunk)
                .map(|part| {
                    scope.spawn(move || {
                        part.iter()
                            .filter_map(|p| build(p).ok().map(|r| (p.clone(), r)))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles.into_iter().filter_map(|h| h.join().ok()).collect()
        });
        self.current.extend(built.into_iter().flatten());
    }

    /// `re` anchored as `^(?:re)$`, so it must match the whole string as in Istio.
    pub fn anchored(&self, re: &str, field: &dyn Fn() -> String) -> Checked<SharedRegex> {
        self.get(&anchor(re), re, field)
    }

    /// `re` as written (for `uriRegexRewrite`, which replaces every match).
    pub fn unanchored(&self, re: &str, field: &dyn Fn() -> String) -> Checked<SharedRegex> {
        self.get(re, re, field)
    }

    fn get(
        &self,
        pattern: &str,
        written: &str,
        field: &dyn Fn() -> String,
    ) -> Checked<SharedRegex> {
        if let Some(r) = self.current.get(pattern) {
            return Ok(r.clone());
        }
        // Not prebuilt: invalid (or not announced by `patterns_of`); build to say why.
        build(pattern).map_err(|e| {
            problem(
                CODE_REGEX,
                field(),
                format!("invalid regex {written:?}: {}", first_line(&e.to_string())),
            )
        })
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
    field: &dyn Fn() -> String,
    re: &RegexCache,
) -> Checked<Option<Matcher>> {
    let set = [m.exact.is_some(), m.prefix.is_some(), m.regex.is_some()]
        .iter()
        .filter(|b| **b)
        .count();
    if set > 1 {
        return Err(problem(
            CODE_INVALID,
            field(),
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
            Matcher::Regex(re.anchored(r, &|| format!("{}.regex", field()))?)
        }
    } else {
        match usage {
            Use::Header => Matcher::Present,
            _ => return Ok(None),
        }
    }))
}

fn header_name(name: &str, field: &dyn Fn() -> String) -> Checked<http::HeaderName> {
    // Istio requires lower-case keys; the common case needs no copy.
    let parsed = if name.bytes().any(|b| b.is_ascii_uppercase()) {
        http::HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes())
    } else {
        http::HeaderName::from_bytes(name.as_bytes())
    };
    parsed.map_err(|_| {
        problem(
            CODE_INVALID,
            field(),
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

/// Compiles one `match[]` entry; `at` names it (`spec.http[0].match[1]`) and is only
/// formatted when something is wrong.
pub(super) fn request_match(
    m: &HttpMatchRequest,
    at: &dyn Fn() -> String,
    namespace: &str,
    re: &RegexCache,
) -> Checked<RequestMatch> {
    let value = |sm: &Option<StringMatch>,
                 usage,
                 name: &'static str,
                 re: &RegexCache|
     -> Checked<Option<Matcher>> {
        match sm {
            Some(sm) => string_match(sm, usage, &|| format!("{}.{name}", at()), re),
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
        let field = || format!("{}.headers.{k}", at());
        let name = header_name(k, &field)?;
        if let Some(matcher) = string_match(sm, Use::Header, &field, re)? {
            out.headers.push((name, matcher));
        }
    }
    for (k, sm) in &m.without_headers {
        let field = || format!("{}.withoutHeaders.{k}", at());
        let name = header_name(k, &field)?;
        if let Some(matcher) = string_match(sm, Use::Header, &field, re)? {
            out.without_headers.push((name, matcher));
        }
    }
    for (k, sm) in &m.query_params {
        let field = || format!("{}.queryParams.{k}", at());
        if let Some(matcher) = string_match(sm, Use::Header, &field, re)? {
            out.query_params.push((k.clone(), matcher));
        }
    }
    Ok(out)
}

/// Every regex `vs` will ask for, keyed as the cache keys them (for `prebuild`).
pub(super) fn patterns_of(vs: &crate::config::VirtualServiceSpec, out: &mut Vec<String>) {
    let mut add = |m: &StringMatch| {
        if let Some(r) = &m.regex {
            out.push(anchor(r));
        }
    };
    for rule in &vs.http {
        for m in &rule.matches {
            for sm in [&m.uri, &m.scheme, &m.method, &m.authority]
                .into_iter()
                .flatten()
            {
                add(sm);
            }
            m.headers
                .values()
                .chain(m.without_headers.values())
                .chain(m.query_params.values())
                .for_each(&mut add);
        }
        if let Some(c) = &rule.cors_policy {
            c.allow_origins.iter().for_each(&mut add);
        }
    }
    // Rewrite patterns are used as written, not anchored.
    for rule in &vs.http {
        if let Some(rr) = rule
            .rewrite
            .as_ref()
            .and_then(|r| r.uri_regex_rewrite.as_ref())
        {
            out.push(rr.pattern.clone());
        }
    }
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
