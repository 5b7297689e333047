//! HTTP calls a plugin makes while a request waits (auth checks, lookups): a builder,
//! the response, and the continuation that decides once it is in.

use std::time::Duration;

use proxy_wasm::hostcalls;
use proxy_wasm::types::{BufferType, MapType};

use crate::{Decision, Error, Request, Result};

/// An HTTP call to a cluster the proxy knows (Meshgate also accepts a `host[:port]` of
/// a known service).
#[derive(Debug, Clone)]
pub struct HttpCall {
    upstream: String,
    method: String,
    path: String,
    authority: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    timeout: Duration,
}

impl HttpCall {
    /// A GET of `path` on `upstream`; `:authority` defaults to the upstream name.
    pub fn get(upstream: impl Into<String>, path: impl Into<String>) -> HttpCall {
        let upstream = upstream.into();
        HttpCall {
            authority: upstream.clone(),
            upstream,
            method: "GET".into(),
            path: path.into(),
            headers: Vec::new(),
            body: Vec::new(),
            timeout: Duration::from_secs(5),
        }
    }

    pub fn post(
        upstream: impl Into<String>,
        path: impl Into<String>,
        body: impl Into<Vec<u8>>,
    ) -> HttpCall {
        let mut c = HttpCall::get(upstream, path);
        c.method = "POST".into();
        c.body = body.into();
        c
    }

    pub fn method(mut self, method: impl Into<String>) -> HttpCall {
        self.method = method.into();
        self
    }

    pub fn authority(mut self, authority: impl Into<String>) -> HttpCall {
        self.authority = authority.into();
        self
    }

    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> HttpCall {
        self.headers
            .push((name.into().to_ascii_lowercase(), value.into()));
        self
    }

    pub fn timeout(mut self, timeout: Duration) -> HttpCall {
        self.timeout = timeout;
        self
    }

    pub(crate) fn dispatch(&self) -> Result<u32> {
        let mut headers: Vec<(&str, &str)> = vec![
            (":method", &self.method),
            (":path", &self.path),
            (":authority", &self.authority),
        ];
        headers.extend(self.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let body = (!self.body.is_empty()).then_some(self.body.as_slice());
        hostcalls::dispatch_http_call(&self.upstream, headers, body, Vec::new(), self.timeout)
            .map_err(|s| Error::host(&format!("HTTP call to {:?}", self.upstream), s))
    }
}

/// The answer to an [`HttpCall`].
#[derive(Debug, Clone)]
pub struct CallResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl CallResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body parsed as JSON.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_slice(&self.body)
            .map_err(|e| Error::new(format_args!("HTTP call response body: {e}")))
    }
}

/// Why an [`HttpCall`] has no response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    /// The upstream could not be reached, reset the stream, or timed out.
    Failed,
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the HTTP call failed (unreachable, reset or timed out)")
    }
}

impl std::error::Error for CallError {}

pub(crate) type Continuation =
    Box<dyn FnOnce(&mut Request, std::result::Result<CallResponse, CallError>) -> Result<Decision>>;

pub(crate) struct Pending {
    pub token: u32,
    pub then: Continuation,
}

/// Reads the call's response from the host; no `:status` means the call failed.
pub(crate) fn read_response(body_size: usize) -> std::result::Result<CallResponse, CallError> {
    let pairs = hostcalls::get_map_bytes(MapType::HttpCallResponseHeaders).unwrap_or_default();
    let mut status = None;
    let mut headers = Vec::with_capacity(pairs.len());
    for (k, v) in pairs {
        let v = String::from_utf8_lossy(&v).into_owned();
        if k == ":status" {
            status = v.parse::<u16>().ok();
        } else {
            headers.push((k, v));
        }
    }
    let status = status.ok_or(CallError::Failed)?;
    let body = if body_size == 0 {
        Vec::new()
    } else {
        hostcalls::get_buffer(BufferType::HttpCallResponseBody, 0, body_size)
            .ok()
            .flatten()
            .unwrap_or_default()
    };
    Ok(CallResponse {
        status,
        headers,
        body,
    })
}
