//! Request and response header hygiene on the way through: hop-by-hop headers removed,
//! `x-forwarded-*` and `x-request-id` set as Envoy does.

use std::net::IpAddr;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

static HOP_BY_HOP: [HeaderName; 7] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRANSFER_ENCODING,
];

pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
pub const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
pub const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
pub const X_ENVOY_ATTEMPT_COUNT: HeaderName = HeaderName::from_static("x-envoy-attempt-count");
pub const X_ENVOY_UPSTREAM_RQ_TIMEOUT_MS: HeaderName =
    HeaderName::from_static("x-envoy-upstream-rq-timeout-ms");
pub const X_ENVOY_ORIGINAL_PATH: HeaderName = HeaderName::from_static("x-envoy-original-path");
pub const X_ENVOY_OVERLOADED: HeaderName = HeaderName::from_static("x-envoy-overloaded");
pub const X_ENVOY_UPSTREAM_SERVICE_TIME: HeaderName =
    HeaderName::from_static("x-envoy-upstream-service-time");
pub const GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");
pub const GRPC_TIMEOUT: HeaderName = HeaderName::from_static("grpc-timeout");

/// Removes hop-by-hop headers, including those named in `Connection`. `keep_upgrade`
/// keeps `Connection: upgrade` + `Upgrade` for WebSocket and other upgrades.
pub fn strip_hop_by_hop(headers: &mut HeaderMap, keep_upgrade: bool) {
    // One pass over the names, comparing rather than hashing: most requests carry none
    // of these, and an HTTP/1.1 response mostly just `connection: keep-alive`.
    let mut present = 0u32;
    for name in headers.keys() {
        if let Some(i) = HOP_BY_HOP.iter().position(|h| h == name) {
            present |= 1 << i;
        } else if !keep_upgrade && name == header::UPGRADE {
            present |= 1 << HOP_BY_HOP.len();
        }
    }
    if present & 1 != 0 {
        remove_connection_named(headers, keep_upgrade);
    }
    for (i, h) in HOP_BY_HOP.iter().enumerate() {
        if present & (1 << i) == 0 {
            continue;
        }
        // TE: trailers is end-to-end for gRPC and must reach HTTP/2 upstreams.
        if h == header::TE
            && headers
                .get(h)
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"trailers"))
        {
            continue;
        }
        headers.remove(h);
    }
    if keep_upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    } else if present & (1 << HOP_BY_HOP.len()) != 0 {
        headers.remove(header::UPGRADE);
    }
}

/// Removes the headers `Connection` names (`Connection: close, x-secret`). Tokens are
/// matched against the names present, so the usual `keep-alive` / `close` cost no
/// header-name parsing.
fn remove_connection_named(headers: &mut HeaderMap, keep_upgrade: bool) {
    let mut named: Vec<HeaderName> = Vec::new();
    let tokens = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim);
    for token in tokens {
        if keep_upgrade && token.eq_ignore_ascii_case("upgrade") {
            continue;
        }
        if let Some(n) = headers
            .keys()
            .find(|n| n.as_str().eq_ignore_ascii_case(token))
        {
            named.push(n.clone());
        }
    }
    for n in named {
        headers.remove(n);
    }
}

/// Appends the client address to `x-forwarded-for`, sets `x-forwarded-proto` when
/// absent, and generates `x-request-id` when absent. Returns the request id as text
/// (`None` when the client sent one that is not visible ASCII).
pub fn set_forwarding(headers: &mut HeaderMap, client: IpAddr, scheme: &str) -> Option<String> {
    let mut ip = IpText::default();
    let ip = ip.format(client);
    let prev = headers
        .get(&X_FORWARDED_FOR)
        .filter(|v| !v.is_empty() && v.to_str().is_ok());
    let xff = match prev {
        Some(prev) => {
            let mut v = Vec::with_capacity(prev.len() + 2 + ip.len());
            v.extend_from_slice(prev.as_bytes());
            v.extend_from_slice(b", ");
            v.extend_from_slice(ip);
            HeaderValue::from_bytes(&v)
        }
        None => HeaderValue::from_bytes(ip),
    };
    if let Ok(v) = xff {
        headers.insert(X_FORWARDED_FOR, v);
    }
    if !headers.contains_key(&X_FORWARDED_PROTO) {
        headers.insert(
            X_FORWARDED_PROTO,
            HeaderValue::from_static(if scheme == "https" { "https" } else { "http" }),
        );
    }
    // Text straight from the header: cloning a freshly made HeaderValue would allocate.
    if headers.get(&X_REQUEST_ID).is_none_or(|v| v.is_empty()) {
        headers.insert(X_REQUEST_ID, new_request_id());
    }
    headers
        .get(&X_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// Small numbers (attempt counts, upstream milliseconds on a fast path) as header values
/// without allocating.
pub fn small_number(n: u64) -> HeaderValue {
    const DIGITS: [&str; 10] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];
    match DIGITS.get(n as usize) {
        Some(d) => HeaderValue::from_static(d),
        None => HeaderValue::from(n),
    }
}

/// An IP address as text without `core::fmt` (which costs more than the rest of
/// `set_forwarding` on every request).
pub struct IpText {
    buf: [u8; 48],
}

impl Default for IpText {
    fn default() -> Self {
        IpText { buf: [0; 48] }
    }
}

impl IpText {
    pub fn format(&mut self, ip: IpAddr) -> &[u8] {
        match ip {
            IpAddr::V4(v4) => {
                let mut n = 0;
                for (i, octet) in v4.octets().into_iter().enumerate() {
                    if i > 0 {
                        self.buf[n] = b'.';
                        n += 1;
                    }
                    n += write_decimal(&mut self.buf[n..], octet);
                }
                &self.buf[..n]
            }
            IpAddr::V6(v6) => {
                use std::io::Write;
                let mut cursor = std::io::Cursor::new(&mut self.buf[..]);
                let _ = write!(cursor, "{v6}");
                let n = cursor.position() as usize;
                &self.buf[..n]
            }
        }
    }
}

/// `ip:port` (`[ip]:port` for IPv6), as `SocketAddr`'s `Display` writes it.
pub fn socket_addr_string(addr: std::net::SocketAddr) -> String {
    let mut ip = IpText::default();
    let text = ip.format(addr.ip());
    let mut s = String::with_capacity(text.len() + 8);
    if addr.is_ipv6() {
        s.push('[');
    }
    s.push_str(std::str::from_utf8(text).unwrap_or_default());
    if addr.is_ipv6() {
        s.push(']');
    }
    s.push(':');
    let mut port = [0u8; 5];
    let mut n = port.len();
    let mut p = addr.port();
    loop {
        n -= 1;
        port[n] = b'0' + (p % 10) as u8;
        p /= 10;
        if p == 0 {
            break;
        }
    }
    s.push_str(std::str::from_utf8(&port[n..]).unwrap_or_default());
    s
}

fn write_decimal(out: &mut [u8], v: u8) -> usize {
    if v >= 100 {
        out[0] = b'0' + v / 100;
        out[1] = b'0' + v / 10 % 10;
        out[2] = b'0' + v % 10;
        3
    } else if v >= 10 {
        out[0] = b'0' + v / 10;
        out[1] = b'0' + v % 10;
        2
    } else {
        out[0] = b'0' + v;
        1
    }
}

/// A random UUID v4, formatted as Envoy formats request ids.
pub fn new_request_id() -> HeaderValue {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let a = fastrand::u64(..);
    let b = fastrand::u64(..);
    let b = (b & 0x3fff_ffff_ffff_ffff) | 0x8000_0000_0000_0000;
    let a = (a & 0xffff_ffff_ffff_0fff) | 0x0000_0000_0000_4000;
    // 8-4-4 hex digits of `a`, then 4-12 of `b`.
    let mut s = [0u8; 36];
    let mut n = 0;
    for (word, dashes) in [(a, [8usize, 12]), (b, [0, 4])] {
        if n > 0 {
            s[n] = b'-';
            n += 1;
        }
        for digit in 0..16 {
            if digit > 0 && dashes.contains(&digit) {
                s[n] = b'-';
                n += 1;
            }
            s[n] = HEX[((word >> (60 - 4 * digit)) & 0xf) as usize];
            n += 1;
        }
    }
    HeaderValue::from_bytes(&s).unwrap_or_else(|_| HeaderValue::from_static("0"))
}

/// Is this a gRPC request (content-type application/grpc*)?
pub fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_and_connection_named_headers_go() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, x-secret"),
        );
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert(header::TE, HeaderValue::from_static("trailers"));
        h.insert("x-keep", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut h, false);
        assert!(h.get("x-secret").is_none());
        assert!(h.get("keep-alive").is_none());
        assert!(h.get(header::CONNECTION).is_none());
        assert_eq!(h["te"], "trailers");
        assert_eq!(h["x-keep"], "1");
    }

    #[test]
    fn forwarding_headers() {
        let mut h = HeaderMap::new();
        h.insert(X_FORWARDED_FOR, HeaderValue::from_static("10.0.0.1"));
        let id = set_forwarding(&mut h, "127.0.0.1".parse().unwrap(), "http").unwrap();
        assert_eq!(h[&X_FORWARDED_FOR], "10.0.0.1, 127.0.0.1");
        assert_eq!(h[&X_FORWARDED_PROTO], "http");
        assert_eq!(id.len(), 36);
        assert_eq!(h[&X_REQUEST_ID], id.as_str());
        let again = set_forwarding(&mut h, "127.0.0.1".parse().unwrap(), "http");
        assert_eq!(again, Some(id), "an existing request id is kept");
        let mut h = HeaderMap::new();
        set_forwarding(&mut h, "::1".parse().unwrap(), "https");
        assert_eq!(h[&X_FORWARDED_FOR], "::1");
        assert_eq!(h[&X_FORWARDED_PROTO], "https");
    }

    #[test]
    fn small_numbers() {
        for n in [0u64, 1, 9, 10, 250, u64::MAX] {
            assert_eq!(small_number(n), n.to_string().as_str());
        }
    }

    #[test]
    fn ip_text_matches_display() {
        for ip in [
            "0.0.0.0",
            "9.10.99.100",
            "255.255.255.255",
            "10.1.20.255",
            "fe80::1",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(IpText::default().format(ip), ip.to_string().as_bytes());
        }
    }

    #[test]
    fn socket_addr_string_matches_display() {
        for a in [
            "127.0.0.1:0",
            "10.0.0.255:65535",
            "[::1]:8080",
            "[fe80::1:2]:9",
        ] {
            let a: std::net::SocketAddr = a.parse().unwrap();
            assert_eq!(socket_addr_string(a), a.to_string());
        }
    }

    #[test]
    fn request_ids_are_uuid_v4() {
        for _ in 0..100 {
            let id = new_request_id();
            let s = id.to_str().unwrap();
            let groups: Vec<&str> = s.split('-').collect();
            let lens: Vec<usize> = groups.iter().map(|g| g.len()).collect();
            assert_eq!(lens, [8, 4, 4, 4, 12], "{s}");
            assert!(s
                .bytes()
                .all(|c| c == b'-' || c.is_ascii_digit() || (b'a'..=b'f').contains(&c)));
            assert_eq!(&s[14..15], "4", "version nibble in {s}");
            assert!("89ab".contains(&s[19..20]), "variant nibble in {s}");
        }
    }

    #[test]
    fn upgrade_is_kept_only_when_asked() {
        let mut h = HeaderMap::new();
        h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        strip_hop_by_hop(&mut h, true);
        assert_eq!(h[header::UPGRADE], "websocket");
        assert_eq!(h[header::CONNECTION], "upgrade");
        strip_hop_by_hop(&mut h, false);
        assert!(h.get(header::UPGRADE).is_none());
        assert!(h.get(header::CONNECTION).is_none());
    }

    #[test]
    fn te_other_than_trailers_and_named_te_go() {
        let mut h = HeaderMap::new();
        h.insert(header::TE, HeaderValue::from_static("gzip"));
        h.insert("proxy-connection", HeaderValue::from_static("keep-alive"));
        h.insert(header::HOST, HeaderValue::from_static("a"));
        strip_hop_by_hop(&mut h, false);
        assert!(h.get(header::TE).is_none());
        assert!(h.get("proxy-connection").is_none());
        let mut h = HeaderMap::new();
        h.insert(header::TE, HeaderValue::from_static("trailers"));
        h.insert(header::CONNECTION, HeaderValue::from_static("close, TE"));
        strip_hop_by_hop(&mut h, false);
        assert!(h.get(header::TE).is_none(), "Connection names TE");
        assert_eq!(h.len(), 0);
    }
}
