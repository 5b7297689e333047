//! One access-log entry per request or TCP connection, formatted as Istio's default
//! text line or as Istio's JSON encoding. The proxy fills an [`AccessLogEntry`] (cheap:
//! header values are shared `Bytes`), and the writer thread formats it off the data path.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{HeaderMap, HeaderValue, Method};

use super::labels::ResponseFlags;

/// Fields of Istio's default access log format, named after its `%COMMAND%`s.
#[derive(Clone, Debug)]
pub struct AccessLogEntry {
    /// `%START_TIME%`
    pub start_time: SystemTime,
    /// `%REQ(:METHOD)%`; `None` for TCP.
    pub method: Option<Method>,
    /// `%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%`: the path before any rewrite.
    pub path: Option<HeaderValue>,
    /// `%PROTOCOL%`: `HTTP/1.1`, `HTTP/2`; `None` for TCP.
    pub protocol: Option<&'static str>,
    /// `%RESPONSE_CODE%`; 0 when no response was sent.
    pub response_code: u16,
    /// `%RESPONSE_FLAGS%`
    pub response_flags: ResponseFlags,
    /// `%RESPONSE_CODE_DETAILS%`, e.g. `via_upstream`, `route_not_found`.
    pub response_code_details: Option<Arc<str>>,
    /// `%CONNECTION_TERMINATION_DETAILS%`
    pub connection_termination_details: Option<Arc<str>>,
    /// `%UPSTREAM_TRANSPORT_FAILURE_REASON%`
    pub upstream_transport_failure_reason: Option<Arc<str>>,
    /// `%BYTES_RECEIVED%`: body bytes from downstream.
    pub bytes_received: u64,
    /// `%BYTES_SENT%`: body bytes to downstream.
    pub bytes_sent: u64,
    /// `%DURATION%`
    pub duration: Duration,
    /// `%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%`: upstream time in ms.
    pub upstream_service_time: Option<u64>,
    /// `%REQ(X-FORWARDED-FOR)%`
    pub x_forwarded_for: Option<HeaderValue>,
    /// `%REQ(USER-AGENT)%`
    pub user_agent: Option<HeaderValue>,
    /// `%REQ(X-REQUEST-ID)%`
    pub request_id: Option<HeaderValue>,
    /// `%REQ(:AUTHORITY)%`
    pub authority: Option<HeaderValue>,
    /// `%UPSTREAM_HOST%`
    pub upstream_host: Option<SocketAddr>,
    /// `%UPSTREAM_CLUSTER%`
    pub upstream_cluster: Option<Arc<str>>,
    /// `%UPSTREAM_LOCAL_ADDRESS%`
    pub upstream_local_address: Option<SocketAddr>,
    /// `%DOWNSTREAM_LOCAL_ADDRESS%`
    pub downstream_local_address: Option<SocketAddr>,
    /// `%DOWNSTREAM_REMOTE_ADDRESS%`
    pub downstream_remote_address: Option<SocketAddr>,
    /// `%REQUESTED_SERVER_NAME%`: TLS SNI.
    pub requested_server_name: Option<Arc<str>>,
    /// `%ROUTE_NAME%`
    pub route_name: Option<Arc<str>>,
}

impl AccessLogEntry {
    /// An entry started now with every optional field empty.
    pub fn new(start_time: SystemTime) -> Self {
        AccessLogEntry {
            start_time,
            method: None,
            path: None,
            protocol: None,
            response_code: 0,
            response_flags: ResponseFlags::NONE,
            response_code_details: None,
            connection_termination_details: None,
            upstream_transport_failure_reason: None,
            bytes_received: 0,
            bytes_sent: 0,
            duration: Duration::ZERO,
            upstream_service_time: None,
            x_forwarded_for: None,
            user_agent: None,
            request_id: None,
            authority: None,
            upstream_host: None,
            upstream_cluster: None,
            upstream_local_address: None,
            downstream_local_address: None,
            downstream_remote_address: None,
            requested_server_name: None,
            route_name: None,
        }
    }

    /// Copies the request-header fields (`x-forwarded-for`, `user-agent`,
    /// `x-request-id`, and `host` as the authority when none was set from the URI).
    pub fn set_request_headers(&mut self, headers: &HeaderMap) {
        self.x_forwarded_for = headers.get("x-forwarded-for").cloned();
        self.user_agent = headers.get(http::header::USER_AGENT).cloned();
        self.request_id = headers.get("x-request-id").cloned();
        if self.authority.is_none() {
            self.authority = headers.get(http::header::HOST).cloned();
        }
    }
}

/// Which encoding the writer produces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccessLogFormat {
    /// Istio's default `[%START_TIME%] "%REQ(:METHOD)% ..."` line.
    Text,
    /// One JSON object per line with Istio's JSON keys.
    Json,
}

/// `2024-05-01T12:34:56.789Z`, as Envoy prints `%START_TIME%`.
pub fn format_start_time(out: &mut String, t: SystemTime) {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    let _ = write!(
        out,
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        since.subsec_millis()
    );
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Header bytes as text: invalid UTF-8 replaced, control characters (never valid in a
/// header, but a log line must stay one line) replaced by `?`.
fn header_text(v: &HeaderValue) -> String {
    String::from_utf8_lossy(v.as_bytes())
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

fn push_opt(out: &mut String, value: Option<impl std::fmt::Display>) {
    match value {
        Some(v) => {
            let _ = write!(out, "{v}");
        }
        None => out.push('-'),
    }
}

fn push_header(out: &mut String, value: &Option<HeaderValue>) {
    push_opt(out, value.as_ref().map(header_text));
}

/// Appends Istio's default text line (with the trailing newline).
pub fn format_text(out: &mut String, e: &AccessLogEntry) {
    out.push('[');
    format_start_time(out, e.start_time);
    out.push_str("] \"");
    push_opt(out, e.method.as_ref());
    out.push(' ');
    push_header(out, &e.path);
    out.push(' ');
    push_opt(out, e.protocol);
    let _ = write!(out, "\" {} {} ", e.response_code, e.response_flags);
    push_opt(out, e.response_code_details.as_deref());
    out.push(' ');
    push_opt(out, e.connection_termination_details.as_deref());
    out.push_str(" \"");
    push_opt(out, e.upstream_transport_failure_reason.as_deref());
    let _ = write!(
        out,
        "\" {} {} {} ",
        e.bytes_received,
        e.bytes_sent,
        e.duration.as_millis()
    );
    push_opt(out, e.upstream_service_time);
    for h in [
        &e.x_forwarded_for,
        &e.user_agent,
        &e.request_id,
        &e.authority,
    ] {
        out.push_str(" \"");
        push_header(out, h);
        out.push('"');
    }
    out.push_str(" \"");
    push_opt(out, e.upstream_host);
    out.push_str("\" ");
    push_opt(out, e.upstream_cluster.as_deref());
    out.push(' ');
    push_opt(out, e.upstream_local_address);
    out.push(' ');
    push_opt(out, e.downstream_local_address);
    out.push(' ');
    push_opt(out, e.downstream_remote_address);
    out.push(' ');
    push_opt(out, e.requested_server_name.as_deref());
    out.push(' ');
    push_opt(out, e.route_name.as_deref());
    out.push('\n');
}

/// Appends one JSON object (and a newline) with Istio's JSON access-log keys; absent
/// values are `null`, numbers are numbers.
pub fn format_json(out: &mut String, e: &AccessLogEntry) {
    use serde_json::{json, Value};
    let s = |v: Option<String>| v.map(Value::String).unwrap_or(Value::Null);
    let h = |v: &Option<HeaderValue>| s(v.as_ref().map(header_text));
    let a = |v: Option<SocketAddr>| s(v.map(|a| a.to_string()));
    let t = |v: &Option<Arc<str>>| s(v.as_deref().map(str::to_string));
    let mut start = String::new();
    format_start_time(&mut start, e.start_time);
    let flags = e.response_flags.to_string();
    let line = json!({
        "start_time": start,
        "method": s(e.method.as_ref().map(|m| m.to_string())),
        "path": h(&e.path),
        "protocol": s(e.protocol.map(str::to_string)),
        "response_code": e.response_code,
        "response_flags": flags,
        "response_code_details": t(&e.response_code_details),
        "connection_termination_details": t(&e.connection_termination_details),
        "upstream_transport_failure_reason": t(&e.upstream_transport_failure_reason),
        "bytes_received": e.bytes_received,
        "bytes_sent": e.bytes_sent,
        "duration": u64::try_from(e.duration.as_millis()).unwrap_or(u64::MAX),
        "upstream_service_time": e.upstream_service_time,
        "x_forwarded_for": h(&e.x_forwarded_for),
        "user_agent": h(&e.user_agent),
        "request_id": h(&e.request_id),
        "authority": h(&e.authority),
        "upstream_host": a(e.upstream_host),
        "upstream_cluster": t(&e.upstream_cluster),
        "upstream_local_address": a(e.upstream_local_address),
        "downstream_local_address": a(e.downstream_local_address),
        "downstream_remote_address": a(e.downstream_remote_address),
        "requested_server_name": t(&e.requested_server_name),
        "route_name": t(&e.route_name),
    });
    let _ = write!(out, "{line}");
    out.push('\n');
}

#[cfg(test)]
#[path = "access_log_tests.rs"]
mod tests;
