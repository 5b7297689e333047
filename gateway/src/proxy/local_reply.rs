//! Responses the proxy generates itself: Envoy's status codes and response flags, a
//! one-line body that says why, and the gRPC mapping for gRPC callers.

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::{combinators::UnsyncBoxBody, BodyExt, Full};

pub type Body = UnsyncBoxBody<Bytes, BoxError>;
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Envoy's response flags, as they appear in access logs and `response_flags`.
pub mod flags {
    pub const NONE: &str = "-";
    pub const NO_ROUTE: &str = "NR";
    pub const NO_CLUSTER: &str = "NC";
    pub const NO_HEALTHY_UPSTREAM: &str = "UH";
    pub const UPSTREAM_CONNECT_FAILURE: &str = "UF";
    pub const UPSTREAM_OVERFLOW: &str = "UO";
    pub const UPSTREAM_TIMEOUT: &str = "UT";
    pub const UPSTREAM_RESET: &str = "UR";
    pub const UPSTREAM_CONNECTION_TERMINATION: &str = "UC";
    pub const FAULT_INJECTED: &str = "FI";
    pub const DELAY_INJECTED: &str = "DI";
    /// Delayed, then aborted: Envoy reports both.
    pub const DELAY_AND_FAULT_INJECTED: &str = "DI,FI";
    pub const DOWNSTREAM_CONNECTION_TERMINATION: &str = "DC";
    pub const RATE_LIMITED: &str = "RL";
    /// Denied by a filter (a wasm plugin's local reply or FAIL_CLOSE).
    pub const UNAUTHORIZED_EXTERNAL: &str = "UAEX";
}

/// A response the proxy decided on itself, before it is rendered for the caller.
#[derive(Debug, Clone)]
pub struct LocalReply {
    pub status: StatusCode,
    /// Envoy flag (`NR`, `UH`, ...), or `-`.
    pub flag: &'static str,
    /// One line, no trailing newline.
    pub body: String,
    /// Set for gRPC aborts configured with `grpcStatus`.
    pub grpc_status: Option<u32>,
    pub headers: Vec<(header::HeaderName, HeaderValue)>,
}

impl LocalReply {
    pub fn new(status: StatusCode, flag: &'static str, body: impl Into<String>) -> Self {
        LocalReply {
            status,
            flag,
            body: body.into(),
            grpc_status: None,
            headers: Vec::new(),
        }
    }

    pub fn with_header(mut self, name: header::HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    /// The gRPC status a gRPC caller gets for this reply (Envoy's HTTP→gRPC mapping).
    pub fn grpc_code(&self) -> u32 {
        if let Some(code) = self.grpc_status {
            return code;
        }
        if self.flag == flags::UPSTREAM_TIMEOUT {
            return 4; // DEADLINE_EXCEEDED
        }
        http_to_grpc(self.status.as_u16())
    }

    /// Renders the reply; gRPC callers get 200 with `grpc-status` (trailers-only).
    pub fn render(&self, grpc: bool) -> Response<Body> {
        let mut builder = Response::builder();
        let body = if grpc {
            builder = builder
                .status(StatusCode::OK)
                .header(header::CONTENT_TYPE, "application/grpc")
                .header("grpc-status", self.grpc_code().to_string())
                .header("grpc-message", percent_encode_grpc(&self.body));
            Bytes::new()
        } else {
            builder = builder
                .status(self.status)
                .header(header::CONTENT_TYPE, "text/plain");
            if self.body.is_empty() {
                Bytes::new()
            } else {
                Bytes::from(format!("{}\n", self.body))
            }
        };
        if self.flag != flags::NONE {
            builder = builder.header("x-meshgate-response-flags", self.flag);
        }
        let mut resp = builder
            .body(full(body))
            .unwrap_or_else(|_| Response::new(full(Bytes::new())));
        for (k, v) in &self.headers {
            resp.headers_mut().append(k.clone(), v.clone());
        }
        resp
    }
}

/// Envoy's mapping from HTTP status to gRPC status for locally generated replies.
pub fn http_to_grpc(status: u16) -> u32 {
    match status {
        400 => 13,
        401 => 16,
        403 => 7,
        404 => 12,
        429 | 502 | 503 | 504 => 14,
        _ => 2,
    }
}

/// grpc-message is percent-encoded (gRPC over HTTP/2 spec).
fn percent_encode_grpc(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len());
    for b in msg.bytes() {
        if (0x20..0x7f).contains(&b) && b != b'%' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

pub fn empty() -> Body {
    full(Bytes::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_callers_get_200_with_mapped_status() {
        let r = LocalReply::new(
            StatusCode::SERVICE_UNAVAILABLE,
            flags::NO_HEALTHY_UPSTREAM,
            "no healthy upstream",
        );
        let resp = r.render(true);
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()["grpc-status"], "14");
        assert_eq!(resp.headers()["grpc-message"], "no healthy upstream");
        let t = LocalReply::new(
            StatusCode::GATEWAY_TIMEOUT,
            flags::UPSTREAM_TIMEOUT,
            "upstream request timeout",
        );
        assert_eq!(t.grpc_code(), 4);
        assert_eq!(http_to_grpc(404), 12);
        assert_eq!(http_to_grpc(401), 16);
        assert_eq!(http_to_grpc(418), 2);
    }

    #[test]
    fn plain_callers_get_status_flag_and_reason() {
        let resp =
            LocalReply::new(StatusCode::NOT_FOUND, flags::NO_ROUTE, "no route").render(false);
        assert_eq!(resp.status(), 404);
        assert_eq!(resp.headers()["x-meshgate-response-flags"], "NR");
    }
}
