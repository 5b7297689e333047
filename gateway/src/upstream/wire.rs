//! Requests on the wire: the URI form and headers each HTTP version needs, and how a
//! failure before response headers maps to Envoy's reset reasons.

use http::{header, HeaderValue, Request, Uri, Version};

use super::error::UpstreamError;
use super::RequestBody;

/// HTTP/1.1 sends `/path?query` with the authority in `Host`.
pub(crate) fn origin_form(req: &mut Request<RequestBody>, endpoint: &str) {
    if !req.headers().contains_key(header::HOST) {
        let host = req
            .uri()
            .authority()
            .map(|a| a.as_str().to_string())
            .unwrap_or_else(|| endpoint.to_string());
        if let Ok(v) = HeaderValue::from_str(&host) {
            req.headers_mut().insert(header::HOST, v);
        }
    }
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/")
        .to_string();
    if let Ok(uri) = path.parse::<Uri>() {
        *req.uri_mut() = uri;
    }
    *req.version_mut() = Version::HTTP_11;
}

/// Headers HTTP/2 forbids (RFC 9113 §8.2.2); h2 refuses a request carrying any.
const CONNECTION_SPECIFIC: [&str; 5] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
];

/// HTTP/2 carries the authority in `:authority` (taken from `Host`, which h2 drops),
/// and no connection-specific headers (`te` only as `trailers`).
pub(crate) fn absolute_form(req: &mut Request<RequestBody>, scheme: &str, endpoint: &str) {
    let headers = req.headers_mut();
    let named: Vec<String> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|n| n.trim().to_ascii_lowercase())
        .filter(|n| !n.is_empty())
        .collect();
    for name in CONNECTION_SPECIFIC
        .iter()
        .copied()
        .chain(named.iter().map(String::as_str))
    {
        headers.remove(name);
    }
    if headers.get(header::TE).is_some_and(|te| te != "trailers") {
        headers.remove(header::TE);
    }
    let authority = req
        .headers_mut()
        .remove(header::HOST)
        .and_then(|h| h.to_str().ok().map(str::to_string))
        .or_else(|| req.uri().authority().map(|a| a.as_str().to_string()))
        .unwrap_or_else(|| endpoint.to_string());
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let built = Uri::builder()
        .scheme(scheme)
        .authority(authority.as_str())
        .path_and_query(path)
        .build();
    if let Ok(uri) = built {
        *req.uri_mut() = uri;
    }
    *req.version_mut() = Version::HTTP_2;
}

/// Maps a failure before response headers to Envoy's reset reasons.
pub(crate) fn classify(address: &str, e: hyper::Error) -> UpstreamError {
    let mut reason = e.to_string();
    let mut source = std::error::Error::source(&e);
    let mut h2_reason = None;
    while let Some(s) = source {
        reason.push_str(": ");
        reason.push_str(&s.to_string());
        if let Some(h2e) = s.downcast_ref::<h2::Error>() {
            if h2e.is_reset() || h2e.is_remote() && !h2e.is_go_away() {
                h2_reason = h2e.reason();
            }
        }
        source = s.source();
    }
    match h2_reason {
        Some(r) => UpstreamError::Reset {
            address: address.to_string(),
            refused_stream: r == h2::Reason::REFUSED_STREAM,
            reason,
        },
        None => UpstreamError::ConnectionTermination {
            address: address.to_string(),
            reason,
        },
    }
}
