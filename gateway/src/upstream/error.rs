//! The typed failures of an upstream attempt, each carrying Envoy's response flag, the
//! status the proxy answers with and a body that says what happened and why.

use http::StatusCode;

use crate::router::snapshot::{ClusterName, RetryOn};

/// Envoy's body prefix for everything that failed before response headers arrived.
const BEFORE_HEADERS: &str = "upstream connect error or disconnect/reset before headers";

/// Which circuit breaker refused the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverflowKind {
    /// `connectionPool.tcp.maxConnections`
    MaxConnections,
    /// `connectionPool.http.http1MaxPendingRequests`
    MaxPendingRequests,
    /// `connectionPool.http.http2MaxRequests`
    MaxRequests,
}

impl OverflowKind {
    fn describe(self) -> &'static str {
        match self {
            OverflowKind::MaxConnections => "tcp.maxConnections",
            OverflowKind::MaxPendingRequests => "http.http1MaxPendingRequests",
            OverflowKind::MaxRequests => "http.http2MaxRequests",
        }
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum UpstreamError {
    /// 503 NC: the cluster (or subset) does not exist.
    #[error("no cluster {cluster}: {reason}")]
    NoCluster {
        cluster: ClusterName,
        reason: String,
    },
    /// 503 UH: no endpoints, or all of them ejected.
    #[error("no healthy upstream in {cluster} ({endpoints} endpoints, {ejected} ejected)")]
    NoHealthyUpstream {
        cluster: ClusterName,
        endpoints: usize,
        ejected: usize,
    },
    /// 503 UF: TCP connect (or DNS, or TLS handshake) failed or timed out.
    #[error("connect to {address} failed: {reason}")]
    ConnectFailure { address: String, reason: String },
    /// 503 UO with `x-envoy-overloaded: true`: a circuit breaker is full.
    #[error("circuit breaker {} ({limit}) reached for {cluster}", kind.describe())]
    Overflow {
        cluster: ClusterName,
        kind: OverflowKind,
        limit: u32,
    },
    /// 503 UR: the upstream reset the stream before response headers.
    #[error("{address} reset the stream: {reason}")]
    Reset {
        address: String,
        reason: String,
        /// HTTP/2 REFUSED_STREAM: the upstream never processed the request.
        refused_stream: bool,
    },
    /// 503 UC: the connection ended before response headers.
    #[error("{address} closed the connection: {reason}")]
    ConnectionTermination { address: String, reason: String },
    /// 504 UT: no response headers within `SendContext::timeout`.
    #[error("{address} sent no response headers within {timeout:?}")]
    Timeout {
        address: String,
        timeout: std::time::Duration,
    },
}

impl UpstreamError {
    /// Envoy's `%RESPONSE_FLAGS%` value.
    pub fn flag(&self) -> &'static str {
        match self {
            UpstreamError::NoCluster { .. } => "NC",
            UpstreamError::NoHealthyUpstream { .. } => "UH",
            UpstreamError::ConnectFailure { .. } => "UF",
            UpstreamError::Overflow { .. } => "UO",
            UpstreamError::Reset { .. } => "UR",
            UpstreamError::ConnectionTermination { .. } => "UC",
            UpstreamError::Timeout { .. } => "UT",
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            UpstreamError::Timeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            _ => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The local reply body: Envoy's recognisable text followed by the reason.
    pub fn body(&self) -> String {
        match self {
            UpstreamError::NoCluster { cluster, reason } => {
                format!("no cluster {cluster}: {reason}")
            }
            UpstreamError::NoHealthyUpstream { .. } => "no healthy upstream".to_string(),
            UpstreamError::ConnectFailure { reason, .. } => format!(
                "{BEFORE_HEADERS}. reset reason: connection failure, transport failure reason: {reason}"
            ),
            UpstreamError::Overflow {
                cluster,
                kind,
                limit,
            } => format!(
                "{BEFORE_HEADERS}. reset reason: overflow ({} = {limit} reached for {cluster})",
                kind.describe()
            ),
            UpstreamError::Reset {
                refused_stream: true,
                ..
            } => format!("{BEFORE_HEADERS}. reset reason: remote refused stream reset"),
            UpstreamError::Reset { reason, .. } => {
                format!("{BEFORE_HEADERS}. reset reason: remote reset ({reason})")
            }
            UpstreamError::ConnectionTermination { reason, .. } => {
                format!("{BEFORE_HEADERS}. reset reason: connection termination ({reason})")
            }
            UpstreamError::Timeout { .. } => "upstream request timeout".to_string(),
        }
    }

    /// Overflow replies carry `x-envoy-overloaded: true`.
    pub fn overloaded(&self) -> bool {
        matches!(self, UpstreamError::Overflow { .. })
    }

    /// The endpoint the failure happened on, for `%UPSTREAM_HOST%`.
    pub fn upstream_address(&self) -> Option<&str> {
        match self {
            UpstreamError::ConnectFailure { address, .. }
            | UpstreamError::Reset { address, .. }
            | UpstreamError::ConnectionTermination { address, .. }
            | UpstreamError::Timeout { address, .. } => Some(address),
            _ => None,
        }
    }

    /// Whether a route's `retryOn` allows another attempt after this failure, following
    /// Envoy: overflow and routing failures are never retried; any reset-class failure
    /// is retried under `reset`, `5xx` and `gateway-error`; `connect-failure` and
    /// `refused-stream` cover only their own cause.
    pub fn retriable(&self, retry_on: &[RetryOn]) -> bool {
        let reset_class = matches!(
            self,
            UpstreamError::ConnectFailure { .. }
                | UpstreamError::Reset { .. }
                | UpstreamError::ConnectionTermination { .. }
                | UpstreamError::Timeout { .. }
        );
        retry_on.iter().any(|on| match on {
            RetryOn::Reset | RetryOn::FiveXx | RetryOn::GatewayError => reset_class,
            RetryOn::ConnectFailure => matches!(self, UpstreamError::ConnectFailure { .. }),
            RetryOn::RefusedStream => matches!(
                self,
                UpstreamError::Reset {
                    refused_stream: true,
                    ..
                }
            ),
            RetryOn::Status(code) => {
                reset_class && *code == self.status().as_u16() && !self.is_timeout()
            }
            _ => false,
        })
    }

    fn is_timeout(&self) -> bool {
        matches!(self, UpstreamError::Timeout { .. })
    }

    /// A ready-made local reply: status, `text/plain` body and, for overflow,
    /// `x-envoy-overloaded: true`.
    pub fn local_reply(&self) -> http::Response<String> {
        let mut resp = http::Response::new(self.body());
        *resp.status_mut() = self.status();
        let headers = resp.headers_mut();
        headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("text/plain"),
        );
        if self.overloaded() {
            headers.insert("x-envoy-overloaded", http::HeaderValue::from_static("true"));
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_status_and_retry_classes_follow_envoy() {
        let uf = UpstreamError::ConnectFailure {
            address: "127.0.0.1:1".into(),
            reason: "Connection refused".into(),
        };
        assert_eq!(uf.flag(), "UF");
        assert_eq!(uf.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(uf.body().starts_with(
            "upstream connect error or disconnect/reset before headers. reset reason: connection failure"
        ));
        assert!(uf.retriable(&[RetryOn::ConnectFailure]));
        assert!(!uf.retriable(&[RetryOn::RefusedStream]));

        let uo = UpstreamError::Overflow {
            cluster: "outbound|80||a".into(),
            kind: OverflowKind::MaxPendingRequests,
            limit: 1,
        };
        assert!(uo.body().contains("reset reason: overflow"));
        assert!(!uo.retriable(&[RetryOn::Reset, RetryOn::FiveXx]));
        assert_eq!(
            uo.local_reply().headers()["x-envoy-overloaded"],
            http::HeaderValue::from_static("true")
        );

        let refused = UpstreamError::Reset {
            address: "a".into(),
            reason: "REFUSED_STREAM".into(),
            refused_stream: true,
        };
        assert_eq!(refused.flag(), "UR");
        assert!(refused.retriable(&[RetryOn::RefusedStream]));
        let uh = UpstreamError::NoHealthyUpstream {
            cluster: "c".into(),
            endpoints: 0,
            ejected: 0,
        };
        assert_eq!(uh.body(), "no healthy upstream");
        assert!(!uh.retriable(&[RetryOn::FiveXx]));
        let ut = UpstreamError::Timeout {
            address: "a".into(),
            timeout: std::time::Duration::from_millis(5),
        };
        assert_eq!(ut.status(), StatusCode::GATEWAY_TIMEOUT);
        assert_eq!(ut.flag(), "UT");
    }
}
