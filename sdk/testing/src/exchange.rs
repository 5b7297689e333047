//! What a test feeds the plugin (a request, an upstream response) and what comes out.

use std::net::SocketAddr;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};

use crate::LogLine;

/// A request from a client. Headers are added as given; invalid names or values panic
/// (they are test input).
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub authority: String,
    pub scheme: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// The body is delivered in chunks of this size (all at once when `None`).
    pub chunk_size: Option<usize>,
    /// The client's address (`source.address`); the harness default when `None`.
    pub client: Option<SocketAddr>,
}

impl Request {
    pub fn new(method: &str, path: &str) -> Request {
        Request {
            method: method.to_string(),
            path: path.to_string(),
            authority: "example.com".into(),
            scheme: "http".into(),
            headers: HeaderMap::new(),
            body: Bytes::new(),
            chunk_size: None,
            client: None,
        }
    }

    pub fn get(path: &str) -> Request {
        Request::new("GET", path)
    }

    pub fn post(path: &str, body: impl Into<Bytes>) -> Request {
        Request::new("POST", path).body(body)
    }

    pub fn header(mut self, name: &str, value: &str) -> Request {
        append(&mut self.headers, name, value);
        self
    }

    /// A header with a raw value (e.g. not UTF-8, which HTTP allows).
    pub fn header_bytes(mut self, name: &str, value: &[u8]) -> Request {
        let n = HeaderName::from_bytes(name.as_bytes())
            .unwrap_or_else(|e| panic!("header name {name:?}: {e}"));
        let v =
            HeaderValue::from_bytes(value).unwrap_or_else(|e| panic!("header {name} value: {e}"));
        self.headers.append(n, v);
        self
    }

    pub fn body(mut self, body: impl Into<Bytes>) -> Request {
        self.body = body.into();
        self
    }

    pub fn authority(mut self, authority: &str) -> Request {
        self.authority = authority.to_string();
        self
    }

    /// The client address, e.g. `"10.0.0.7:51000"`. Panics when it does not parse.
    pub fn client(mut self, addr: &str) -> Request {
        self.client = Some(
            addr.parse()
                .unwrap_or_else(|e| panic!("client address {addr:?}: {e}")),
        );
        self
    }

    pub fn chunked(mut self, chunk_size: usize) -> Request {
        self.chunk_size = Some(chunk_size.max(1));
        self
    }
}

/// The upstream's response, fed to the plugin's response callbacks.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Response {
    /// Panics on a status outside 100..=999 (test input).
    pub fn new(status: u16) -> Response {
        Response {
            status: StatusCode::from_u16(status).unwrap_or_else(|e| panic!("status {status}: {e}")),
            headers: HeaderMap::new(),
            body: Bytes::new(),
        }
    }

    pub fn ok() -> Response {
        Response::new(200)
    }

    pub fn header(mut self, name: &str, value: &str) -> Response {
        append(&mut self.headers, name, value);
        self
    }

    pub fn body(mut self, body: impl Into<Bytes>) -> Response {
        self.body = body.into();
        self
    }
}

fn append(headers: &mut HeaderMap, name: &str, value: &str) {
    let n = HeaderName::from_bytes(name.as_bytes())
        .unwrap_or_else(|e| panic!("header name {name:?}: {e}"));
    let v = HeaderValue::from_str(value).unwrap_or_else(|e| panic!("header {name} value: {e}"));
    headers.append(n, v);
}

/// A response the chain produced itself: a plugin's local reply, or the host's 503
/// when a plugin failed (`details` is `wasm_fail_stream` then).
#[derive(Debug, Clone)]
pub struct LocalReply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub details: String,
}

/// The request as it would be sent upstream, or the response as the client gets it.
#[derive(Debug, Clone)]
pub struct Forwarded {
    pub method: String,
    pub path: String,
    pub authority: String,
    /// The response status (0 for a request).
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

macro_rules! accessors {
    ($t:ty) => {
        impl $t {
            /// A header as text (`None` when absent or not UTF-8).
            pub fn header(&self, name: &str) -> Option<&str> {
                self.headers.get(name).and_then(|v| v.to_str().ok())
            }

            /// Every value of a header, as text.
            pub fn header_all(&self, name: &str) -> Vec<&str> {
                self.headers
                    .get_all(name)
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .collect()
            }

            pub fn body_text(&self) -> String {
                String::from_utf8_lossy(&self.body).into_owned()
            }

            /// The body as JSON; panics when it is not JSON (test helper).
            pub fn json(&self) -> serde_json::Value {
                serde_json::from_slice(&self.body)
                    .unwrap_or_else(|e| panic!("body is not JSON ({e}): {:?}", self.body_text()))
            }
        }
    };
}
accessors!(LocalReply);
accessors!(Forwarded);

/// Everything one exchange produced.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Set when the chain answered instead of the upstream (deny, redirect, 503...).
    pub local_response: Option<LocalReply>,
    /// The request as the upstream would get it (`None` when answered locally).
    pub upstream_request: Option<Forwarded>,
    /// The upstream response after the plugins (when one was given and not replaced).
    pub response: Option<Forwarded>,
    /// A plugin held the stream and nothing would ever resume it.
    pub stalled: bool,
    /// Lines logged during this exchange (plugin and host).
    pub logs: Vec<LogLine>,
}

impl Outcome {
    /// The local response; panics (showing the outcome) when the request went on.
    pub fn local(&self) -> &LocalReply {
        match &self.local_response {
            Some(r) => r,
            None => panic!("expected a local response, got {self:#?}"),
        }
    }

    /// The request as forwarded upstream; panics when there was none.
    pub fn forwarded(&self) -> &Forwarded {
        match &self.upstream_request {
            Some(r) => r,
            None => panic!("expected the request to be forwarded, got {self:#?}"),
        }
    }

    /// The response the client gets; panics when there was none.
    pub fn client_response(&self) -> &Forwarded {
        match &self.response {
            Some(r) => r,
            None => panic!("expected an upstream response, got {self:#?}"),
        }
    }

    /// Messages the plugin itself logged.
    pub fn plugin_logs(&self) -> Vec<&str> {
        self.logs
            .iter()
            .filter(|l| l.from_plugin())
            .map(|l| l.message.as_str())
            .collect()
    }
}
