//! The response as a plugin sees it: status, headers, the request's headers, body edits.

use std::collections::BTreeMap;

use proxy_wasm::types::{BufferType, MapType};

use crate::request::read_or_log;
use crate::{headers, Error, Result};

const MAP: MapType = MapType::HttpResponseHeaders;

/// A view of the current response. Reads come from the proxy; edits go straight to it.
pub struct Response {
    status: u16,
    pub(crate) vars: BTreeMap<String, String>,
    pub(crate) body_len: Option<usize>,
}

impl Response {
    pub(crate) fn from_host(vars: BTreeMap<String, String>) -> Response {
        let status = read_or_log(headers::get(MAP, ":status"))
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        Response {
            status,
            vars,
            body_len: None,
        }
    }

    /// The status code (0 if the proxy gave none).
    pub fn status(&self) -> u16 {
        self.status
    }

    /// Changes the status sent to the client.
    pub fn set_status(&mut self, status: u16) -> Result<()> {
        headers::set(MAP, ":status", &status.to_string())?;
        self.status = status;
        Ok(())
    }

    pub fn header(&self, name: &str) -> Option<String> {
        read_or_log(headers::get(MAP, name))
    }

    pub fn headers(&self) -> Vec<(String, String)> {
        read_or_log(headers::all(MAP).map(Some)).unwrap_or_default()
    }

    pub fn set_header(&mut self, name: &str, value: &str) -> Result<()> {
        headers::set(MAP, name, value)
    }

    pub fn add_header(&mut self, name: &str, value: &str) -> Result<()> {
        headers::add(MAP, name, value)
    }

    pub fn remove_header(&mut self, name: &str) -> Result<()> {
        headers::remove(MAP, name)
    }

    /// A header of the request this response answers.
    pub fn request_header(&self, name: &str) -> Option<String> {
        read_or_log(headers::get(MapType::HttpRequestHeaders, name))
    }

    /// A per-stream variable set earlier (`Request::set_var`).
    pub fn var(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }

    pub fn set_var(&mut self, name: &str, value: impl Into<String>) {
        self.vars.insert(name.to_string(), value.into());
    }

    /// Replaces the response body. Only in `on_response_body` (the body was read).
    pub fn set_body(&mut self, body: &[u8]) -> Result<()> {
        let Some(len) = self.body_len else {
            crate::bail!("set_body outside on_response_body: return Decision::ReadBody first");
        };
        proxy_wasm::hostcalls::set_buffer(BufferType::HttpResponseBody, 0, len, body)
            .map_err(|s| Error::host("set response body", s))?;
        self.body_len = Some(body.len());
        headers::remove(MAP, "content-length")
    }
}
