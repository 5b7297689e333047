//! `proxy_http_call`: the trait through which the proxy performs a plugin's HTTP call to
//! a named cluster, and the request/response values it carries.

use std::time::Duration;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::{HeaderMap, StatusCode};

/// A response to a plugin's HTTP call.
#[derive(Debug, Clone, Default)]
pub struct CalloutResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub trailers: HeaderMap,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum CalloutError {
    #[error("no cluster named {0:?}")]
    UnknownUpstream(String),
    #[error("timed out")]
    Timeout,
    #[error("{0}")]
    Failed(String),
}

/// Performs plugin HTTP calls. The proxy implements this over its clusters; the wasm
/// host never opens connections itself.
pub trait HttpCallout: Send + Sync + 'static {
    /// Whether `upstream` names a cluster (or a `host[:port]` of a known service). An
    /// unknown name makes `proxy_http_call` return BAD_ARGUMENT at once, as in Envoy.
    fn has_upstream(&self, upstream: &str) -> bool {
        let _ = upstream;
        true
    }

    /// Sends `request` (method, URI with the plugin's `:path` and `:authority`,
    /// headers without pseudo-headers) to `upstream`. The host also enforces `timeout`.
    fn call(
        &self,
        upstream: &str,
        request: http::Request<Bytes>,
        trailers: HeaderMap,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<CalloutResponse, CalloutError>>;
}

/// An `HttpCallout` that knows no upstream: every `proxy_http_call` returns
/// BAD_ARGUMENT. For chains that must not make calls.
pub struct NoCallouts;

impl HttpCallout for NoCallouts {
    fn has_upstream(&self, _: &str) -> bool {
        false
    }

    fn call(
        &self,
        upstream: &str,
        _: http::Request<Bytes>,
        _: HeaderMap,
        _: Duration,
    ) -> BoxFuture<'static, Result<CalloutResponse, CalloutError>> {
        let upstream = upstream.to_string();
        Box::pin(async move { Err(CalloutError::UnknownUpstream(upstream)) })
    }
}
