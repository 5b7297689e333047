//! Header maps, body/config buffers, local responses and stream control.

use bytes::{Bytes, BytesMut};
use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, StatusCode};
use wasmtime::{Caller, Linker};

use super::{def, flat, give, read, read_string, write_u32, Names, Status};
use crate::wasm::abi::{buffer, map, status, stream_type, AbiVersion};
use crate::wasm::codec;
use crate::wasm::state::{HostState, HttpExchange};
use crate::wasm::types::{LocalResponse, RequestLine};

pub fn add(l: &mut Linker<HostState>, n: &mut Names) -> wasmtime::Result<()> {
    def(
        l,
        n,
        "env",
        "proxy_get_header_map_value",
        |mut c: Caller<'_, HostState>,
         map: i32,
         kp: i32,
         kl: i32,
         rp: i32,
         rl: i32|
         -> wasmtime::Result<i32> {
            let key = match read(&mut c, kp, kl) {
                Ok(k) => k,
                Err(s) => return Ok(s),
            };
            let value = match with_map(c.data_mut(), map, |m| m.get(&key)) {
                Some(Some(v)) => v,
                // ABI 0.1.0 answered an absent header with an empty value.
                _ if c.data().abi == AbiVersion::V0_1_0 => Vec::new(),
                _ => return Ok(status::NOT_FOUND),
            };
            give(&mut c, &value, rp, rl)
        },
    )?;
    def(
        l,
        n,
        "env",
        "proxy_get_header_map_pairs",
        |mut c: Caller<'_, HostState>, map: i32, rp: i32, rl: i32| -> wasmtime::Result<i32> {
            let pairs = with_map(c.data_mut(), map, |m| m.serialize())
                .unwrap_or_else(|| codec::serialize_pairs(std::iter::empty::<(&[u8], &[u8])>()));
            give(&mut c, &pairs, rp, rl)
        },
    )?;
    def(
        l,
        n,
        "env",
        "proxy_get_header_map_size",
        |mut c: Caller<'_, HostState>, map: i32, rp: i32| -> i32 {
            let size = with_map(c.data_mut(), map, |m| m.serialize().len()).unwrap_or(4);
            flat(write_u32(&mut c, rp, size as u32).map(|_| status::OK))
        },
    )?;
    def(
        l,
        n,
        "env",
        "proxy_set_header_map_pairs",
        |mut c: Caller<'_, HostState>, map: i32, p: i32, len: i32| -> i32 {
            let data = match read(&mut c, p, len) {
                Ok(d) => d,
                Err(s) => return s,
            };
            let Some(pairs) = codec::deserialize_pairs(&data) else {
                return status::BAD_ARGUMENT;
            };
            with_map(c.data_mut(), map, |m| m.set_all(&pairs)).unwrap_or(status::OK)
        },
    )?;
    def(
        l,
        n,
        "env",
        "proxy_add_header_map_value",
        |mut c: Caller<'_, HostState>, map: i32, kp: i32, kl: i32, vp: i32, vl: i32| -> i32 {
            let (key, value) = match (read(&mut c, kp, kl), read(&mut c, vp, vl)) {
                (Ok(k), Ok(v)) => (k, v),
                (Err(s), _) | (_, Err(s)) => return s,
            };
            with_map(c.data_mut(), map, |m| m.put(&key, &value, true)).unwrap_or(status::OK)
        },
    )?;
    def(
        l,
        n,
        "env",
        "proxy_replace_header_map_value",
        |mut c: Caller<'_, HostState>, map: i32, kp: i32, kl: i32, vp: i32, vl: i32| -> i32 {
            let (key, value) = match (read(&mut c, kp, kl), read(&mut c, vp, vl)) {
                (Ok(k), Ok(v)) => (k, v),
                (Err(s), _) | (_, Err(s)) => return s,
            };
            with_map(c.data_mut(), map, |m| m.put(&key, &value, false)).unwrap_or(status::OK)
        },
    )?;
    def(
        l,
        n,
        "env",
        "proxy_remove_header_map_value",
        |mut c: Caller<'_, HostState>, map: i32, kp: i32, kl: i32| -> i32 {
            let key = match read(&mut c, kp, kl) {
                Ok(k) => k,
                Err(s) => return s,
            };
            with_map(c.data_mut(), map, |m| m.remove(&key)).unwrap_or(status::OK)
        },
    )?;

    def(
        l,
        n,
        "env",
        "proxy_get_buffer_bytes",
        |mut c: Caller<'_, HostState>,
         buf: i32,
         start: i32,
         max: i32,
         rp: i32,
         rl: i32|
         -> wasmtime::Result<i32> {
            let Some(all) = buffer_of(c.data(), buf) else {
                return Ok(status::NOT_FOUND);
            };
            // Sizes are u32 in the guest; `max` is often usize::MAX: clamp, never overflow.
            let start = (start as u32 as usize).min(all.len());
            let end = start.saturating_add(max as u32 as usize).min(all.len());
            give(&mut c, &all[start..end], rp, rl)
        },
    )?;
    def(
        l,
        n,
        "env",
        "proxy_get_buffer_status",
        |mut c: Caller<'_, HostState>, buf: i32, len_out: i32, flags_out: i32| -> i32 {
            let Some(len) = buffer_of(c.data(), buf).map(|b| b.len()) else {
                return status::NOT_FOUND;
            };
            flat(
                write_u32(&mut c, len_out, len as u32)
                    .and_then(|_| write_u32(&mut c, flags_out, 0))
                    .map(|_| status::OK),
            )
        },
    )?;
    def(
        l,
        n,
        "env",
        "proxy_set_buffer_bytes",
        |mut c: Caller<'_, HostState>, buf: i32, start: i32, size: i32, dp: i32, dl: i32| -> i32 {
            let data = match read(&mut c, dp, dl) {
                Ok(d) => d,
                Err(s) => return s,
            };
            let http = &mut c.data_mut().http;
            let target = match buf {
                buffer::REQUEST_BODY => &mut http.request_body,
                buffer::RESPONSE_BODY => &mut http.response_body,
                _ => return status::BAD_ARGUMENT,
            };
            *target = splice(target, start as u32 as usize, size as u32 as usize, &data);
            status::OK
        },
    )?;

    def(
        l,
        n,
        "env",
        "proxy_send_local_response",
        |mut c: Caller<'_, HostState>,
         code: i32,
         dp: i32,
         dl: i32,
         bp: i32,
         bl: i32,
         hp: i32,
         hl: i32,
         grpc: i32|
         -> i32 {
            let (details, body, headers) = match (
                read_string(&mut c, dp, dl),
                read(&mut c, bp, bl),
                read(&mut c, hp, hl),
            ) {
                (Ok(d), Ok(b), Ok(h)) => (d, b, h),
                (Err(s), _, _) | (_, Err(s), _) | (_, _, Err(s)) => return s,
            };
            let Some(status_code) = u16::try_from(code as u32)
                .ok()
                .and_then(|c| StatusCode::from_u16(c).ok())
            else {
                return status::BAD_ARGUMENT;
            };
            let Some(pairs) = codec::deserialize_pairs(&headers) else {
                return status::BAD_ARGUMENT;
            };
            let mut map = HeaderMap::new();
            for (k, v) in pairs {
                if let (Ok(k), Ok(v)) = (HeaderName::from_bytes(k), HeaderValue::from_bytes(v)) {
                    map.append(k, v);
                }
            }
            c.data_mut().http.local_response = Some(LocalResponse {
                status: status_code,
                headers: map,
                body: Bytes::from(body),
                details: if details.is_empty() {
                    "wasm_local_reply".into()
                } else {
                    details
                },
                grpc_status: (grpc >= 0).then_some(grpc as u32),
            });
            status::OK
        },
    )?;
    def(
        l,
        n,
        "env",
        "proxy_continue_stream",
        |mut c: Caller<'_, HostState>, which: i32| -> i32 {
            match which {
                stream_type::HTTP_REQUEST | stream_type::HTTP_RESPONSE => {
                    c.data_mut().http.resumed = true;
                    status::OK
                }
                _ => status::BAD_ARGUMENT,
            }
        },
    )?;
    def(
        l,
        n,
        "env",
        "proxy_close_stream",
        |mut c: Caller<'_, HostState>, which: i32| -> i32 {
            match which {
                stream_type::HTTP_REQUEST | stream_type::HTTP_RESPONSE => {
                    close_stream(&mut c.data_mut().http);
                    status::OK
                }
                _ => status::BAD_ARGUMENT,
            }
        },
    )?;
    // ABI 0.1.0 spellings.
    def(
        l,
        n,
        "env",
        "proxy_continue_request",
        |mut c: Caller<'_, HostState>| -> i32 {
            c.data_mut().http.resumed = true;
            status::OK
        },
    )?;
    def(
        l,
        n,
        "env",
        "proxy_continue_response",
        |mut c: Caller<'_, HostState>| -> i32 {
            c.data_mut().http.resumed = true;
            status::OK
        },
    )?;
    def(
        l,
        n,
        "env",
        "proxy_get_configuration",
        |mut c: Caller<'_, HostState>, rp: i32, rl: i32| -> wasmtime::Result<i32> {
            let config = c.data().plugin.config.clone();
            give(&mut c, &config, rp, rl)
        },
    )?;
    def(
        l,
        n,
        "env",
        "proxy_clear_route_cache",
        |_: Caller<'_, HostState>| -> i32 { status::OK },
    )?;
    Ok(())
}

/// Closing an HTTP stream ends it with a 503 the proxy sends (there is no reset here).
fn close_stream(http: &mut HttpExchange) {
    if http.local_response.is_none() {
        http.local_response = Some(LocalResponse {
            status: StatusCode::SERVICE_UNAVAILABLE,
            headers: HeaderMap::new(),
            body: Bytes::new(),
            details: "wasm_close_stream".into(),
            grpc_status: None,
        });
    }
}

fn buffer_of(state: &HostState, buf: i32) -> Option<Bytes> {
    match buf {
        buffer::REQUEST_BODY => Some(state.http.request_body.clone()),
        buffer::RESPONSE_BODY => Some(state.http.response_body.clone()),
        buffer::HTTP_CALL_RESPONSE_BODY => state.call_response.as_ref().map(|r| r.body.clone()),
        buffer::VM_CONFIGURATION => Some(state.plugin.vm_config.clone()),
        buffer::PLUGIN_CONFIGURATION => Some(state.plugin.config.clone()),
        _ => None,
    }
}

/// Replaces `[start, start+size)` with `data`: (0, 0) prepends, start ≥ len appends.
pub fn splice(current: &Bytes, start: usize, size: usize, data: &[u8]) -> Bytes {
    let start = start.min(current.len());
    let end = start.saturating_add(size).min(current.len());
    if start == 0 && end == current.len() {
        return Bytes::copy_from_slice(data);
    }
    let mut out = BytesMut::with_capacity(current.len() - (end - start) + data.len());
    out.extend_from_slice(&current[..start]);
    out.extend_from_slice(data);
    out.extend_from_slice(&current[end..]);
    out.freeze()
}

/// A header map as a plugin sees it: the HTTP map plus its pseudo-headers.
enum MapView<'a> {
    Request(&'a mut HeaderMap, &'a mut RequestLine),
    Response(&'a mut HeaderMap, &'a mut Option<StatusCode>),
    Plain(&'a mut HeaderMap),
}

fn with_map<R>(
    state: &mut HostState,
    map: i32,
    f: impl FnOnce(&mut MapView<'_>) -> R,
) -> Option<R> {
    let http = &mut state.http;
    let mut view = match map {
        map::REQUEST_HEADERS if http.has_request_headers => {
            MapView::Request(&mut http.request_headers, &mut http.request_line)
        }
        map::REQUEST_TRAILERS if http.has_request_trailers => {
            MapView::Plain(&mut http.request_trailers)
        }
        map::RESPONSE_HEADERS if http.status.is_some() => {
            MapView::Response(&mut http.response_headers, &mut http.status)
        }
        map::RESPONSE_TRAILERS if http.has_response_trailers => {
            MapView::Plain(&mut http.response_trailers)
        }
        map::HTTP_CALL_RESPONSE_HEADERS | map::HTTP_CALL_RESPONSE_TRAILERS => {
            let resp = state.call_response.as_mut()?;
            if map == map::HTTP_CALL_RESPONSE_HEADERS {
                // A failed call has no `:status`: its map is empty.
                MapView::Response(&mut resp.headers, &mut resp.status)
            } else {
                MapView::Plain(&mut resp.trailers)
            }
        }
        _ => return None,
    };
    Some(f(&mut view))
}

impl MapView<'_> {
    fn pseudo(&self, key: &[u8]) -> Option<Option<Vec<u8>>> {
        if !key.starts_with(b":") {
            return None;
        }
        Some(match self {
            MapView::Request(_, line) => match key {
                b":method" => Some(line.method.as_bytes().to_vec()),
                b":path" => Some(line.path.as_bytes().to_vec()),
                b":authority" => Some(line.authority.as_bytes().to_vec()),
                b":scheme" => Some(line.scheme.as_bytes().to_vec()),
                _ => None,
            },
            MapView::Response(_, status) => match key {
                b":status" => status.map(|s| s.as_str().as_bytes().to_vec()),
                _ => None,
            },
            MapView::Plain(_) => None,
        })
    }

    fn headers(&mut self) -> &mut HeaderMap {
        match self {
            MapView::Request(h, _) | MapView::Response(h, _) | MapView::Plain(h) => h,
        }
    }

    fn get(&mut self, key: &[u8]) -> Option<Vec<u8>> {
        if let Some(p) = self.pseudo(key) {
            return p;
        }
        let name = HeaderName::from_bytes(key).ok()?;
        let mut values = self.headers().get_all(&name).iter();
        let first = values.next()?;
        let mut out = first.as_bytes().to_vec();
        // Repeated headers read as one comma-joined value.
        for v in values {
            out.push(b',');
            out.extend_from_slice(v.as_bytes());
        }
        Some(out)
    }

    fn serialize(&mut self) -> Vec<u8> {
        let mut pseudo: Vec<(&'static [u8], Vec<u8>)> = Vec::new();
        match self {
            MapView::Request(_, line) => {
                pseudo.push((b":authority", line.authority.as_bytes().to_vec()));
                pseudo.push((b":path", line.path.as_bytes().to_vec()));
                pseudo.push((b":method", line.method.as_bytes().to_vec()));
                pseudo.push((b":scheme", line.scheme.as_bytes().to_vec()));
            }
            MapView::Response(_, Some(s)) => {
                pseudo.push((b":status", s.as_str().as_bytes().to_vec()))
            }
            _ => {}
        }
        let pseudo: Vec<(&[u8], &[u8])> = pseudo.iter().map(|(k, v)| (*k, v.as_slice())).collect();
        codec::serialize_headers(&pseudo, self.headers())
    }

    fn set_pseudo(&mut self, key: &[u8], value: &[u8]) -> Status {
        let Ok(value) = std::str::from_utf8(value) else {
            return status::BAD_ARGUMENT;
        };
        match self {
            MapView::Request(_, line) => {
                let field = match key {
                    b":method" => &mut line.method,
                    b":path" => &mut line.path,
                    b":authority" => &mut line.authority,
                    b":scheme" => &mut line.scheme,
                    _ => return status::BAD_ARGUMENT,
                };
                *field = value.to_string();
                status::OK
            }
            MapView::Response(_, status_slot) if key == b":status" => {
                match value
                    .parse::<u16>()
                    .ok()
                    .and_then(|c| StatusCode::from_u16(c).ok())
                {
                    Some(s) => {
                        **status_slot = Some(s);
                        status::OK
                    }
                    None => status::BAD_ARGUMENT,
                }
            }
            _ => status::BAD_ARGUMENT,
        }
    }

    fn put(&mut self, key: &[u8], value: &[u8], append: bool) -> Status {
        if key.starts_with(b":") {
            return self.set_pseudo(key, value);
        }
        let (Ok(name), Ok(value)) = (HeaderName::from_bytes(key), HeaderValue::from_bytes(value))
        else {
            return status::BAD_ARGUMENT;
        };
        if append {
            self.headers().append(name, value);
        } else {
            self.headers().insert(name, value);
        }
        status::OK
    }

    /// Removing an absent header is OK, as both SDKs expect.
    fn remove(&mut self, key: &[u8]) -> Status {
        if key.starts_with(b":") {
            return match self {
                MapView::Request(..) => self.set_pseudo(key, b""),
                _ => status::OK,
            };
        }
        if let Ok(name) = HeaderName::from_bytes(key) {
            self.headers().remove(name);
        }
        status::OK
    }

    fn set_all(&mut self, pairs: &[(&[u8], &[u8])]) -> Status {
        self.headers().clear();
        let mut result = status::OK;
        for (k, v) in pairs {
            let s = self.put(k, v, true);
            if s != status::OK {
                result = s;
            }
        }
        result
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn splice_covers_prepend_append_and_replace() {
        let b = Bytes::from_static(b"hello");
        assert_eq!(&splice(&b, 0, 0, b">")[..], b">hello");
        assert_eq!(&splice(&b, 99, 0, b"!")[..], b"hello!");
        assert_eq!(&splice(&b, 0, usize::MAX, b"bye")[..], b"bye");
        assert_eq!(&splice(&b, 1, 3, b"ipp")[..], b"hippo");
    }

    #[test]
    fn request_view_exposes_and_edits_pseudo_headers() {
        let mut headers = HeaderMap::new();
        headers.append("x-a", HeaderValue::from_static("1"));
        headers.append("x-a", HeaderValue::from_static("2"));
        let mut line = RequestLine::new("GET", "http", "example.com", "/p?q=1");
        let mut view = MapView::Request(&mut headers, &mut line);
        assert_eq!(view.get(b":path").unwrap(), b"/p?q=1");
        assert_eq!(view.get(b"x-a").unwrap(), b"1,2");
        assert!(view.get(b"absent").is_none());
        assert_eq!(view.put(b":path", b"/new", false), status::OK);
        assert_eq!(view.remove(b"absent"), status::OK);
        let pairs = view.serialize();
        let parsed = codec::deserialize_pairs(&pairs).unwrap();
        assert_eq!(parsed[1], (&b":path"[..], &b"/new"[..]));
        assert_eq!(parsed.len(), 6);
        assert_eq!(view.put(b"bad name", b"v", true), status::BAD_ARGUMENT);
        assert_eq!(line.path, "/new");
    }
}
