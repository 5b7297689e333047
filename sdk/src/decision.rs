//! What a plugin decides about a request or response: go on, read the body first, or
//! answer right here with a [`Reply`] (deny, redirect, JSON error...).

use serde::Serialize;

/// The outcome of a plugin callback.
#[derive(Debug)]
#[must_use]
pub enum Decision {
    /// Let the request (or response) go on, with any edits made.
    Continue,
    /// Hold the headers until the whole body has arrived, then call the body callback.
    ReadBody,
    /// Answer the client with this instead of going on.
    Respond(Reply),
    /// An HTTP call is in flight ([`crate::Request::call`]); its continuation decides.
    AwaitCall,
}

impl Decision {
    /// Answers `status` with a plain-text body.
    pub fn deny(status: u16, body: impl Into<String>) -> Decision {
        Decision::Respond(Reply::text(status, body))
    }

    /// A `302 Found` to `location`.
    pub fn redirect(location: impl Into<String>) -> Decision {
        Decision::Respond(Reply::redirect(302, location))
    }
}

impl From<Reply> for Decision {
    fn from(r: Reply) -> Decision {
        Decision::Respond(r)
    }
}

/// A response the plugin sends itself (the upstream is never asked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    /// An empty response with `status`.
    pub fn new(status: u16) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    pub fn text(status: u16, body: impl Into<String>) -> Reply {
        Reply::new(status)
            .header("content-type", "text/plain; charset=utf-8")
            .body(body.into())
    }

    /// `value` as a JSON body. A value that cannot be serialized (a map with non-string
    /// keys, say) becomes a 500 rather than a panic.
    pub fn json<T: Serialize + ?Sized>(status: u16, value: &T) -> Reply {
        match serde_json::to_vec(value) {
            Ok(body) => Reply::new(status)
                .header("content-type", "application/json")
                .body(body),
            Err(e) => {
                log::error!("cannot serialize a JSON reply: {e}");
                Reply::new(500)
            }
        }
    }

    /// A redirect (`301`, `302`, `303`, `307` or `308`) to `location`.
    pub fn redirect(status: u16, location: impl Into<String>) -> Reply {
        Reply::new(status).header("location", location)
    }

    /// Adds a header (repeatable).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Reply {
        self.headers
            .push((name.into().to_ascii_lowercase(), value.into()));
        self
    }

    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Reply {
        self.body = body.into();
        self
    }

    /// Sends it through the host. The stream ends with this response.
    pub(crate) fn send(&self) -> crate::Result<()> {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let body = (!self.body.is_empty()).then_some(self.body.as_slice());
        proxy_wasm::hostcalls::send_http_response(u32::from(self.status), headers, body)
            .map_err(|s| crate::Error::host("send_local_response", s))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn json_replies_carry_content_type_and_body() {
        let r = Reply::json(400, &serde_json::json!({"error": "unsupported unit 'X'"}));
        assert_eq!(r.status, 400);
        assert_eq!(
            r.headers,
            vec![("content-type".to_string(), "application/json".to_string())]
        );
        assert_eq!(r.body, br#"{"error":"unsupported unit 'X'"}"#);
    }

    #[test]
    fn unserializable_json_is_a_500_not_a_panic() {
        let mut m = std::collections::BTreeMap::new();
        m.insert(vec![1u8], 1);
        assert_eq!(Reply::json(200, &m).status, 500);
    }

    #[test]
    fn redirects_and_header_names_are_normalized() {
        let Decision::Respond(r) = Decision::redirect("/login") else {
            panic!("a redirect responds");
        };
        assert_eq!(r.status, 302);
        assert_eq!(r.headers, vec![("location".into(), "/login".into())]);
        let r = Reply::new(401).header("WWW-Authenticate", "ApiKey");
        assert_eq!(r.headers[0].0, "www-authenticate");
    }
}
