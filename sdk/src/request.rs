//! The request as a plugin sees it: method, path, query parameters, headers, the client
//! address, per-stream variables, edits, and HTTP calls made on its behalf.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use proxy_wasm::types::{BufferType, MapType};

use crate::callout::{Continuation, HttpCall, Pending};
use crate::{headers, query, Decision, Error, Result};

const MAP: MapType = MapType::HttpRequestHeaders;

/// A view of the current request. Reads come from the proxy; edits go straight to it.
pub struct Request {
    method: String,
    path: String,
    authority: String,
    scheme: String,
    pub(crate) vars: BTreeMap<String, String>,
    pub(crate) pending: Option<Pending>,
    pub(crate) body_len: Option<usize>,
}

impl Request {
    pub(crate) fn from_host(vars: BTreeMap<String, String>) -> Request {
        let pseudo = |name: &str| headers::get(MAP, name).ok().flatten().unwrap_or_default();
        Request {
            method: pseudo(":method"),
            path: pseudo(":path"),
            authority: pseudo(":authority"),
            scheme: pseudo(":scheme"),
            vars,
            pending: None,
            body_len: None,
        }
    }

    /// `GET`, `POST`, ...
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The path without the query string.
    pub fn path(&self) -> &str {
        query::path_only(&self.path)
    }

    /// The path and query as sent (`/convert?from=Celsius`).
    pub fn path_and_query(&self) -> &str {
        &self.path
    }

    /// The first value of query parameter `name`, decoded.
    pub fn query(&self, name: &str) -> Option<String> {
        query::param(&self.path, name)
    }

    /// Every query parameter, decoded, in order.
    pub fn query_params(&self) -> Vec<(String, String)> {
        query::params(&self.path)
    }

    /// The host the client asked for (`:authority`).
    pub fn authority(&self) -> &str {
        &self.authority
    }

    pub fn scheme(&self) -> &str {
        &self.scheme
    }

    /// A request header (names are case-insensitive). A host failure reads as absent.
    pub fn header(&self, name: &str) -> Option<String> {
        read_or_log(headers::get(MAP, name))
    }

    /// Every request header, pseudo-headers (`:path`, ...) included.
    pub fn headers(&self) -> Vec<(String, String)> {
        read_or_log(headers::all(MAP).map(Some)).unwrap_or_default()
    }

    /// Sets (replaces) a header.
    pub fn set_header(&mut self, name: &str, value: &str) -> Result<()> {
        headers::set(MAP, name, value)
    }

    /// Adds a header value, keeping existing ones.
    pub fn add_header(&mut self, name: &str, value: &str) -> Result<()> {
        headers::add(MAP, name, value)
    }

    /// Removes a header (no error when it is absent).
    pub fn remove_header(&mut self, name: &str) -> Result<()> {
        headers::remove(MAP, name)
    }

    /// Rewrites the path (and query) sent upstream.
    pub fn set_path(&mut self, path_and_query: &str) -> Result<()> {
        headers::set(MAP, ":path", path_and_query)?;
        self.path = path_and_query.to_string();
        Ok(())
    }

    /// The client's address (`source.address`), when the proxy knows it.
    pub fn client_addr(&self) -> Option<SocketAddr> {
        self.property(&["source", "address"])?.parse().ok()
    }

    /// The client's IP (`source.address` without the port).
    pub fn client_ip(&self) -> Option<IpAddr> {
        let addr = self.property(&["source", "address"])?;
        addr.parse::<SocketAddr>()
            .map(|a| a.ip())
            .or_else(|_| addr.parse::<IpAddr>())
            .ok()
    }

    /// A host property as text (`["request", "id"]`, `["plugin_name"]`, ...).
    pub fn property(&self, path: &[&str]) -> Option<String> {
        read_or_log(headers::property(path))
    }

    /// A per-stream variable, visible to later callbacks of the same stream
    /// (`Response::var` included).
    pub fn set_var(&mut self, name: &str, value: impl Into<String>) {
        self.vars.insert(name.to_string(), value.into());
    }

    pub fn var(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }

    /// Replaces the request body. Only in `on_request_body` (the body was read).
    pub fn set_body(&mut self, body: &[u8]) -> Result<()> {
        let Some(len) = self.body_len else {
            crate::bail!("set_body outside on_request_body: return Decision::ReadBody first");
        };
        proxy_wasm::hostcalls::set_buffer(BufferType::HttpRequestBody, 0, len, body)
            .map_err(|s| Error::host("set request body", s))?;
        self.body_len = Some(body.len());
        // The length changed: let the proxy frame the new body.
        headers::remove(MAP, "content-length")
    }

    /// Sends `call` and returns [`Decision::AwaitCall`]: return that decision, and
    /// `then` decides once the response (or the failure) is in. The request waits
    /// meanwhile. `then` sees the request again, so it may edit headers or deny.
    pub fn call<F>(&mut self, call: HttpCall, then: F) -> Result<Decision>
    where
        F: FnOnce(
                &mut Request,
                std::result::Result<crate::CallResponse, crate::CallError>,
            ) -> Result<Decision>
            + 'static,
    {
        if self.pending.is_some() {
            crate::bail!(
                "one HTTP call at a time per request: the previous one is still in flight"
            );
        }
        let token = call.dispatch()?;
        let then: Continuation = Box::new(then);
        self.pending = Some(Pending { token, then });
        Ok(Decision::AwaitCall)
    }
}

pub(crate) fn read_or_log<T>(r: Result<Option<T>>) -> Option<T> {
    r.unwrap_or_else(|e| {
        log::warn!("{e}");
        None
    })
}
