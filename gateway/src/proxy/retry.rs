//! When to try an upstream request again: Envoy's retry-on conditions, evaluated on
//! a failed attempt or a response, with Istio's rule that requests whose bytes may
//! have reached the upstream are retried only when the method is idempotent.

use http::{HeaderMap, Method, StatusCode};

use crate::router::RetryOn;

/// What one attempt produced, as far as retry policy is concerned.
#[derive(Debug, Clone, Copy)]
pub enum Outcome {
    /// The connection could not be made (nothing reached the upstream).
    ConnectFailure,
    /// The upstream refused the stream (HTTP/2 REFUSED_STREAM; nothing processed).
    RefusedStream,
    /// The connection was reset or closed after the request was (maybe) sent.
    Reset,
    /// The per-try timeout fired.
    Timeout,
    /// The proxy answered itself (no cluster, no healthy host, overflow).
    Local,
    /// A response arrived.
    Response {
        status: StatusCode,
        grpc_status: Option<u32>,
    },
}

/// gRPC status in a (trailers-only) response's headers.
pub fn grpc_status_of(headers: &HeaderMap) -> Option<u32> {
    headers
        .get(super::headers::GRPC_STATUS)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

pub fn is_idempotent(m: &Method) -> bool {
    matches!(
        *m,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE | Method::TRACE
    )
}

/// Should `outcome` be retried under `conditions`?
pub fn should_retry(conditions: &[RetryOn], outcome: Outcome, method: &Method) -> bool {
    // Bytes may have reached the upstream: only idempotent requests go again.
    if matches!(outcome, Outcome::Local) {
        return false;
    }
    let sent = !matches!(outcome, Outcome::ConnectFailure | Outcome::RefusedStream);
    if sent && !is_idempotent(method) {
        return false;
    }
    conditions.iter().any(|c| matches_condition(c, outcome))
}

fn matches_condition(c: &RetryOn, outcome: Outcome) -> bool {
    use Outcome::*;
    match (c, outcome) {
        (RetryOn::ConnectFailure, ConnectFailure) => true,
        (RetryOn::RefusedStream, RefusedStream) => true,
        (RetryOn::Reset, Reset | ConnectFailure | Timeout) => true,
        (RetryOn::FiveXx, ConnectFailure | RefusedStream | Reset | Timeout) => true,
        (RetryOn::FiveXx, Response { status, .. }) => status.is_server_error(),
        (RetryOn::GatewayError, ConnectFailure | Reset | Timeout) => true,
        (RetryOn::GatewayError, Response { status, .. }) => matches!(status.as_u16(), 502..=504),
        (RetryOn::Retriable4xx, Response { status, .. }) => status.as_u16() == 409,
        (RetryOn::Status(code), Response { status, .. }) => status.as_u16() == *code,
        (
            RetryOn::Cancelled,
            Response {
                grpc_status: Some(1),
                ..
            },
        ) => true,
        (
            RetryOn::DeadlineExceeded,
            Response {
                grpc_status: Some(4),
                ..
            },
        ) => true,
        (
            RetryOn::ResourceExhausted,
            Response {
                grpc_status: Some(8),
                ..
            },
        ) => true,
        (
            RetryOn::Internal,
            Response {
                grpc_status: Some(13),
                ..
            },
        ) => true,
        (
            RetryOn::Unavailable,
            Response {
                grpc_status: Some(14),
                ..
            },
        ) => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resp(code: u16) -> Outcome {
        Outcome::Response {
            status: StatusCode::from_u16(code).unwrap(),
            grpc_status: None,
        }
    }

    #[test]
    fn istio_defaults_never_retry_a_503() {
        let defaults = crate::router::RetryPolicy::default().retry_on;
        assert!(!should_retry(&defaults, resp(503), &Method::GET));
        assert!(should_retry(
            &defaults,
            Outcome::ConnectFailure,
            &Method::GET
        ));
        assert!(should_retry(
            &defaults,
            Outcome::ConnectFailure,
            &Method::POST
        ));
        let unavailable = Outcome::Response {
            status: StatusCode::OK,
            grpc_status: Some(14),
        };
        assert!(should_retry(&defaults, unavailable, &Method::GET));
    }

    #[test]
    fn post_is_not_retried_once_sent() {
        let c = [RetryOn::FiveXx];
        assert!(should_retry(&c, resp(503), &Method::GET));
        assert!(!should_retry(&c, resp(503), &Method::POST));
        assert!(!should_retry(&c, resp(404), &Method::GET));
        assert!(should_retry(
            &[RetryOn::GatewayError],
            resp(502),
            &Method::GET
        ));
        assert!(!should_retry(
            &[RetryOn::GatewayError],
            resp(500),
            &Method::GET
        ));
        assert!(should_retry(
            &[RetryOn::Status(418)],
            resp(418),
            &Method::GET
        ));
    }
}
