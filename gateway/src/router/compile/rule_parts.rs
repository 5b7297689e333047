//! The policy parts of an HTTP rule: retries, fault, CORS, header operations,
//! rewrite, redirect and direct response, each checked with its field named.

use std::time::Duration;

use super::matcher::{string_match, RegexCache, Use};
use super::{problem, Checked, CODE_DURATION, CODE_INVALID};
use crate::config::{self, parse_duration, Percent};
use crate::router::snapshot::*;

pub(super) fn duration(text: &str, field: &str) -> Checked<Duration> {
    parse_duration(text).map_err(|e| problem(CODE_DURATION, field, e))
}

/// `percentage.value` (0-100) → fraction; absent means 0%, as Istio's fault filter does.
fn fraction(p: Option<Percent>, legacy: Option<u32>, field: &str) -> Checked<f64> {
    let value = match (p, legacy) {
        (Some(p), _) => p.value,
        (None, Some(v)) => f64::from(v),
        (None, None) => 0.0,
    };
    if !(0.0..=100.0).contains(&value) {
        return Err(problem(
            CODE_INVALID,
            field,
            format!("percentage {value} is outside 0-100"),
        ));
    }
    Ok(value / 100.0)
}

pub(super) fn retries(r: &config::HttpRetry, at: &str) -> Checked<RetryPolicy> {
    if r.attempts < 0 {
        return Err(problem(
            CODE_INVALID,
            format!("{at}.attempts"),
            "attempts cannot be negative",
        ));
    }
    if r.attempts == 0 {
        return Ok(RetryPolicy {
            attempts: 0,
            per_try_timeout: None,
            retry_on: Vec::new(),
        });
    }
    let mut out = RetryPolicy {
        attempts: u32::try_from(r.attempts).unwrap_or(u32::MAX),
        ..RetryPolicy::default()
    };
    if let Some(t) = &r.per_try_timeout {
        out.per_try_timeout = Some(duration(t, &format!("{at}.perTryTimeout"))?);
    }
    if let Some(on) = &r.retry_on {
        out.retry_on = Vec::new();
        for cond in on.split(',').map(str::trim).filter(|c| !c.is_empty()) {
            let c = match cond {
                "5xx" => RetryOn::FiveXx,
                "gateway-error" => RetryOn::GatewayError,
                "reset" | "reset-before-request" => RetryOn::Reset,
                "connect-failure" => RetryOn::ConnectFailure,
                "refused-stream" => RetryOn::RefusedStream,
                "retriable-4xx" => RetryOn::Retriable4xx,
                "retriable-status-codes" => RetryOn::RetriableStatusCodes,
                "cancelled" => RetryOn::Cancelled,
                "deadline-exceeded" => RetryOn::DeadlineExceeded,
                "resource-exhausted" => RetryOn::ResourceExhausted,
                "unavailable" => RetryOn::Unavailable,
                "internal" => RetryOn::Internal,
                code => match code.parse::<u16>() {
                    Ok(s) if (100..=599).contains(&s) => RetryOn::Status(s),
                    _ => return Err(problem(CODE_INVALID, format!("{at}.retryOn"), format!("{code:?} is not a retry condition: expected 5xx, gateway-error, reset, connect-failure, refused-stream, retriable-4xx, retriable-status-codes, cancelled, deadline-exceeded, resource-exhausted, unavailable, internal or an HTTP status"))),
                },
            };
            if !out.retry_on.contains(&c) {
                out.retry_on.push(c);
            }
        }
    }
    Ok(out)
}

const GRPC_CODES: [&str; 17] = [
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
];

pub(super) fn fault(f: &config::HttpFault, at: &str) -> Checked<Fault> {
    let delay = match &f.delay {
        Some(d) => {
            let Some(fixed) = &d.fixed_delay else {
                return Err(problem(
                    CODE_INVALID,
                    format!("{at}.delay"),
                    "a delay needs fixedDelay",
                ));
            };
            let how_long = duration(fixed, &format!("{at}.delay.fixedDelay"))?;
            Some((
                how_long,
                fraction(d.percentage, d.percent, &format!("{at}.delay.percentage"))?,
            ))
        }
        None => None,
    };
    let abort = match &f.abort {
        Some(a) => {
            let f = |s: &str| format!("{at}.abort.{s}");
            let (http_status, grpc_status) =
                match (&a.http_status, &a.grpc_status) {
                    (Some(s), None) if (200..=599).contains(s) => (*s as u16, None),
                    (Some(s), None) => {
                        return Err(problem(
                            CODE_INVALID,
                            f("httpStatus"),
                            format!("httpStatus {s} is outside 200-599"),
                        ))
                    }
                    (None, Some(g)) => {
                        let code = match g {
                            serde_yaml::Value::Number(n) => {
                                n.as_u64().filter(|c| *c <= 16).map(|c| c as u32)
                            }
                            serde_yaml::Value::String(s) => GRPC_CODES
                                .iter()
                                .position(|c| c.eq_ignore_ascii_case(s))
                                .map(|c| c as u32),
                            _ => None,
                        };
                        match code {
                            Some(c) => (200, Some(c)),
                            None => return Err(problem(
                                CODE_INVALID,
                                f("grpcStatus"),
                                "grpcStatus must be a gRPC code name (UNAVAILABLE) or number 0-16",
                            )),
                        }
                    }
                    _ => {
                        return Err(problem(
                            CODE_INVALID,
                            at.to_string() + ".abort",
                            "an abort needs exactly one of httpStatus, grpcStatus",
                        ))
                    }
                };
            Some(FaultAbort {
                http_status,
                grpc_status,
                fraction: fraction(a.percentage, None, &f("percentage"))?,
            })
        }
        None => None,
    };
    Ok(Fault { delay, abort })
}

pub(super) fn cors(c: &config::CorsPolicy, at: &str, re: &mut RegexCache) -> Checked<Cors> {
    let mut allow_origins = Vec::new();
    for (i, o) in c.allow_origins.iter().enumerate() {
        let field = format!("{at}.allowOrigins[{i}]");
        match string_match(o, Use::Value, &field, re)? {
            Some(m) => allow_origins.push(m),
            None => {
                return Err(problem(
                    CODE_INVALID,
                    field,
                    "set one of exact, prefix, regex",
                ))
            }
        }
    }
    for o in &c.allow_origin {
        allow_origins.push(if o == "*" {
            Matcher::Prefix(String::new())
        } else {
            Matcher::Exact(o.clone())
        });
    }
    Ok(Cors {
        allow_origins,
        allow_methods: c.allow_methods.join(","),
        allow_headers: c.allow_headers.join(","),
        expose_headers: c.expose_headers.join(","),
        max_age: c
            .max_age
            .as_deref()
            .map(|t| duration(t, &format!("{at}.maxAge")))
            .transpose()?,
        allow_credentials: c.allow_credentials.unwrap_or(false),
    })
}

fn header_ops(o: &config::HeaderOperations, at: &str) -> Checked<HeaderOperations> {
    let name = |k: &str, field: String| {
        http::HeaderName::from_bytes(k.to_ascii_lowercase().as_bytes()).map_err(|_| {
            problem(
                CODE_INVALID,
                field,
                format!("{k:?} is not a valid header name"),
            )
        })
    };
    let pairs = |m: &std::collections::BTreeMap<String, String>,
                 kind: &str|
     -> Checked<Vec<(http::HeaderName, http::HeaderValue)>> {
        m.iter()
            .map(|(k, v)| {
                let field = format!("{at}.{kind}.{k}");
                let value = http::HeaderValue::from_str(v).map_err(|_| {
                    problem(
                        CODE_INVALID,
                        field.clone(),
                        format!("{v:?} is not a valid header value"),
                    )
                })?;
                Ok((name(k, field)?, value))
            })
            .collect()
    };
    Ok(HeaderOperations {
        set: pairs(&o.set, "set")?,
        add: pairs(&o.add, "add")?,
        remove: o
            .remove
            .iter()
            .enumerate()
            .map(|(i, k)| name(k, format!("{at}.remove[{i}]")))
            .collect::<Checked<_>>()?,
    })
}

pub(super) fn headers(h: &Option<config::Headers>, at: &str) -> Checked<HeaderOps> {
    let Some(h) = h else {
        return Ok(HeaderOps::default());
    };
    Ok(HeaderOps {
        request: h
            .request
            .as_ref()
            .map(|o| header_ops(o, &format!("{at}.request")))
            .transpose()?
            .unwrap_or_default(),
        response: h
            .response
            .as_ref()
            .map(|o| header_ops(o, &format!("{at}.response")))
            .transpose()?
            .unwrap_or_default(),
    })
}

/// Istio writes regex rewrite groups as `\1`; the regex crate wants `${1}`.
fn rewrite_template(t: &str) -> String {
    let mut out = String::with_capacity(t.len());
    let mut chars = t.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek().is_some_and(|d| d.is_ascii_digit()) => {
                out.push_str("${");
                while let Some(d) = chars.peek().copied().filter(char::is_ascii_digit) {
                    out.push(d);
                    chars.next();
                }
                out.push('}');
            }
            '$' => out.push_str("$$"),
            c => out.push(c),
        }
    }
    out
}

pub(super) fn rewrite(r: &config::HttpRewrite, at: &str, re: &mut RegexCache) -> Checked<Rewrite> {
    if r.uri.is_some() && r.uri_regex_rewrite.is_some() {
        return Err(problem(
            CODE_INVALID,
            at,
            "set only one of uri, uriRegexRewrite",
        ));
    }
    let uri_regex = match &r.uri_regex_rewrite {
        Some(rr) => Some((
            re.unanchored(&rr.pattern, &format!("{at}.uriRegexRewrite.match"))?,
            rewrite_template(&rr.rewrite),
        )),
        None => None,
    };
    Ok(Rewrite {
        uri: r.uri.clone(),
        authority: r.authority.clone(),
        uri_regex,
    })
}

pub(super) fn redirect(r: &config::HttpRedirect, at: &str) -> Checked<Redirect> {
    let code = r.redirect_code.unwrap_or(301);
    if ![301, 302, 303, 307, 308].contains(&code) {
        return Err(problem(
            CODE_INVALID,
            format!("{at}.redirectCode"),
            format!("redirectCode {code} is not one of 301, 302, 303, 307, 308"),
        ));
    }
    let derive = match r.derive_port.as_deref() {
        None | Some("FROM_PROTOCOL_DEFAULT") => false,
        Some("FROM_REQUEST_PORT") => true,
        Some(other) => {
            return Err(problem(
                CODE_INVALID,
                format!("{at}.derivePort"),
                format!(
                "unknown derivePort {other:?}: expected FROM_PROTOCOL_DEFAULT or FROM_REQUEST_PORT"
            ),
            ))
        }
    };
    if derive && r.port.is_some() {
        return Err(problem(
            CODE_INVALID,
            at,
            "set only one of port, derivePort",
        ));
    }
    if r.uri.is_some() && r.prefix_rewrite.is_some() {
        return Err(problem(
            CODE_INVALID,
            at,
            "set only one of uri, prefixRewrite",
        ));
    }
    Ok(Redirect {
        uri: r.uri.clone(),
        prefix_rewrite: r.prefix_rewrite.clone(),
        authority: r.authority.clone(),
        port: r.port,
        derive_port_from_request: derive,
        scheme: r.scheme.clone(),
        code: code as u16,
    })
}

pub(super) fn direct_response(d: &config::HttpDirectResponse, at: &str) -> Checked<DirectResponse> {
    if !(200..=599).contains(&d.status) {
        return Err(problem(
            CODE_INVALID,
            format!("{at}.status"),
            format!("status {} is outside 200-599", d.status),
        ));
    }
    let body = match &d.body {
        Some(b) => match (&b.string, &b.bytes) {
            (Some(s), None) => bytes::Bytes::from(s.clone()),
            (None, Some(b64)) => {
                use base64::Engine;
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(b64.trim())
                    .map_err(|e| {
                        problem(
                            CODE_INVALID,
                            format!("{at}.body.bytes"),
                            format!("not base64: {e}"),
                        )
                    })?;
                bytes::Bytes::from(raw)
            }
            (None, None) => bytes::Bytes::new(),
            _ => {
                return Err(problem(
                    CODE_INVALID,
                    format!("{at}.body"),
                    "set only one of string, bytes",
                ))
            }
        },
        None => bytes::Bytes::new(),
    };
    Ok(DirectResponse {
        status: d.status as u16,
        body,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn rewrite_template_converts_groups_and_escapes_dollars() {
        assert_eq!(rewrite_template(r"/v2/\1/x$"), "/v2/${1}/x$$");
    }
}
