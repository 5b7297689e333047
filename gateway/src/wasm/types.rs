//! Values exchanged between the proxy and the plugin chain: the request line, facts
//! about the connection, local responses and verdicts.

use std::net::SocketAddr;
use std::time::SystemTime;

use bytes::Bytes;
use http::{HeaderMap, StatusCode};

use super::spec::ListenerClass;

/// The request's pseudo-headers, which plugins see and may edit as `:method`, `:scheme`,
/// `:authority` and `:path`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestLine {
    pub method: String,
    pub scheme: String,
    pub authority: String,
    /// Path and query, as sent.
    pub path: String,
}

impl RequestLine {
    pub fn new(
        method: impl Into<String>,
        scheme: impl Into<String>,
        authority: impl Into<String>,
        path: impl Into<String>,
    ) -> RequestLine {
        RequestLine {
            method: method.into(),
            scheme: scheme.into(),
            authority: authority.into(),
            path: path.into(),
        }
    }

    /// From a request's parts: authority from the URI, else the `host` header.
    pub fn from_parts(method: &http::Method, uri: &http::Uri, headers: &HeaderMap) -> RequestLine {
        let authority = match uri.authority() {
            Some(a) => a.as_str().to_string(),
            None => headers
                .get(http::header::HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or_default()
                .to_string(),
        };
        RequestLine {
            method: method.as_str().to_string(),
            scheme: uri.scheme_str().unwrap_or("http").to_string(),
            authority,
            path: uri
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("/")
                .to_string(),
        }
    }
}

/// Facts about a stream that plugins read as properties (`source.address`,
/// `connection.mtls`, `request.id`, ...). Fields the proxy does not know stay `None`.
#[derive(Debug, Clone)]
pub struct StreamInfo {
    pub listener: ListenerClass,
    /// The listener's port, for WasmPlugin `match[].ports`.
    pub port: u32,
    /// `HTTP/1.1`, `HTTP/2`, ...
    pub protocol: String,
    pub start_time: SystemTime,
    /// Defaults to the `x-request-id` header when `None`.
    pub request_id: Option<String>,
    pub source: Option<SocketAddr>,
    pub destination: Option<SocketAddr>,
    pub mtls: bool,
    pub sni: Option<String>,
    pub peer_uri_san: Option<String>,
    pub local_uri_san: Option<String>,
}

impl Default for StreamInfo {
    fn default() -> Self {
        StreamInfo {
            listener: ListenerClass::Gateway,
            port: 0,
            protocol: "HTTP/1.1".into(),
            start_time: SystemTime::now(),
            request_id: None,
            source: None,
            destination: None,
            mtls: false,
            sni: None,
            peer_uri_san: None,
            local_uri_san: None,
        }
    }
}

/// A response a plugin sent instead of letting the stream continue.
#[derive(Debug, Clone)]
pub struct LocalResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// Envoy's response code details (`wasm_fail_stream`, or what the plugin gave).
    pub details: String,
    /// Set when the plugin answered as gRPC.
    pub grpc_status: Option<u32>,
}

/// What the proxy does after a chain callback.
#[derive(Debug, Clone)]
pub enum Verdict {
    /// Go on: the (possibly edited) headers or body are ready to forward.
    Continue,
    /// A plugin holds the stream until it sees more of the body. After headers: the
    /// head now lives in the stream (the caller's map and line are left empty); feed
    /// the body through the body callback and take the head back with
    /// `Stream::take_request_head` / `take_response_head` once a body call returns
    /// `Continue`. After a body chunk: the chunk was buffered (the caller's `Bytes` is
    /// left empty); forward nothing and call again with the next chunk.
    Pause,
    /// End the stream with this response instead.
    LocalResponse(LocalResponse),
}

impl Verdict {
    pub fn is_continue(&self) -> bool {
        matches!(self, Verdict::Continue)
    }
}
