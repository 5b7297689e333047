//! `proxy_get_property` / `proxy_set_property`: request, response, connection, plugin
//! and node attributes, encoded as Envoy does (strings raw, integers 8-byte LE, bools
//! one byte, maps in the pairs format).

use std::time::UNIX_EPOCH;

use wasmtime::{Caller, Linker};

use super::{def, give, read, Names};
use crate::wasm::abi::status;
use crate::wasm::codec;
use crate::wasm::state::HostState;

pub fn add(l: &mut Linker<HostState>, n: &mut Names) -> wasmtime::Result<()> {
    def(
        l,
        n,
        "env",
        "proxy_get_property",
        |mut c: Caller<'_, HostState>,
         pp: i32,
         pl: i32,
         rp: i32,
         rl: i32|
         -> wasmtime::Result<i32> {
            let path = match read(&mut c, pp, pl) {
                Ok(p) => p,
                Err(s) => return Ok(s),
            };
            match property(c.data(), &path) {
                Some(v) => give(&mut c, &v, rp, rl),
                None => Ok(status::NOT_FOUND),
            }
        },
    )?;
    def(
        l,
        n,
        "env",
        "proxy_set_property",
        |mut c: Caller<'_, HostState>, pp: i32, pl: i32, vp: i32, vl: i32| -> i32 {
            let (path, value) = match (read(&mut c, pp, pl), read(&mut c, vp, vl)) {
                (Ok(p), Ok(v)) => (p, v),
                (Err(s), _) | (_, Err(s)) => return s,
            };
            let path = path.strip_suffix(b"\0").map(<[u8]>::to_vec).unwrap_or(path);
            let props = &mut c.data_mut().http.properties;
            match props.iter_mut().find(|(k, _)| *k == path) {
                Some(slot) => slot.1 = value,
                None => props.push((path, value)),
            }
            status::OK
        },
    )?;
    Ok(())
}

fn int(v: i64) -> Vec<u8> {
    v.to_le_bytes().to_vec()
}

fn s(v: &str) -> Vec<u8> {
    v.as_bytes().to_vec()
}

/// The value of a NUL-joined property path, or `None` (NOT_FOUND).
pub fn property(state: &HostState, path: &[u8]) -> Option<Vec<u8>> {
    let trimmed = path.strip_suffix(b"\0").unwrap_or(path);
    if let Some((_, v)) = state.http.properties.iter().find(|(k, _)| k == trimmed) {
        return Some(v.clone());
    }
    let segs: Vec<&str> = codec::split_path(path)
        .into_iter()
        .map(|p| std::str::from_utf8(p).unwrap_or(""))
        .collect();
    let http = &state.http;
    let plugin = &state.plugin;
    let info = http.info.as_deref();
    let line = &http.request_line;
    match segs.as_slice() {
        ["plugin_name"] => Some(s(&plugin.name)),
        ["plugin_root_id"] => Some(s(&plugin.root_id)),
        ["plugin_vm_id"] => Some(s(&plugin.vm_id)),
        ["node", "metadata"] => Some(json_value(&serde_json::Value::Object(
            plugin
                .node_metadata
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ))),
        ["node", "metadata", key, rest @ ..] => {
            let mut v = plugin.node_metadata.get(*key)?;
            for k in rest {
                v = v.get(*k)?;
            }
            Some(json_value(v))
        }
        ["request", field] if http.has_request_headers => match *field {
            "path" => Some(s(&line.path)),
            "url_path" => Some(s(line.path.split('?').next().unwrap_or_default())),
            "query" => Some(s(line
                .path
                .split_once('?')
                .map(|(_, q)| q)
                .unwrap_or_default())),
            "host" => Some(s(&line.authority)),
            "method" => Some(s(&line.method)),
            "scheme" => Some(s(&line.scheme)),
            "headers" => Some(codec::serialize_headers(&[], &http.request_headers)),
            "id" => info
                .and_then(|i| i.request_id.clone())
                .or_else(|| header(&http.request_headers, "x-request-id"))
                .map(|v| s(&v)),
            "protocol" => info.map(|i| s(&i.protocol)),
            "time" => info.map(|i| {
                int(i
                    .start_time
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_nanos() as i64)
                    .unwrap_or(0))
            }),
            "referer" => header(&http.request_headers, "referer").map(|v| s(&v)),
            "useragent" => header(&http.request_headers, "user-agent").map(|v| s(&v)),
            _ => None,
        },
        ["request", "headers", name] if http.has_request_headers => http
            .request_headers
            .get(*name)
            .map(|v| v.as_bytes().to_vec()),
        ["response", field] if http.status.is_some() => match *field {
            "code" => http.status.map(|c| int(c.as_u16() as i64)),
            "code_details" => Some(s(if http.response_code_details.is_empty() {
                "via_upstream"
            } else {
                &http.response_code_details
            })),
            "flags" => Some(int(0)),
            "headers" => Some(codec::serialize_headers(&[], &http.response_headers)),
            _ => None,
        },
        ["response", "headers", name] if http.status.is_some() => http
            .response_headers
            .get(*name)
            .map(|v| v.as_bytes().to_vec()),
        ["source", field] => addr(info?.source?, field),
        ["destination", field] => addr(info?.destination?, field),
        ["connection", field] => {
            let info = info?;
            match *field {
                "mtls" => Some(vec![info.mtls as u8]),
                "requested_server_name" => info.sni.as_deref().map(s),
                "uri_san_peer_certificate" => info.peer_uri_san.as_deref().map(s),
                "uri_san_local_certificate" => info.local_uri_san.as_deref().map(s),
                _ => None,
            }
        }
        _ => None,
    }
}

fn header(headers: &http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

fn addr(a: std::net::SocketAddr, field: &str) -> Option<Vec<u8>> {
    match field {
        "address" => Some(s(&a.to_string())),
        "port" => Some(int(a.port() as i64)),
        _ => None,
    }
}

/// Node metadata values: strings raw, integers 8-byte LE, bools one byte, objects as
/// pairs (nested values as JSON text), anything else as JSON text.
fn json_value(v: &serde_json::Value) -> Vec<u8> {
    match v {
        serde_json::Value::String(x) => s(x),
        serde_json::Value::Bool(b) => vec![*b as u8],
        serde_json::Value::Number(n) if n.is_i64() => int(n.as_i64().unwrap_or(0)),
        serde_json::Value::Object(m) => {
            let rendered: Vec<(String, String)> = m
                .iter()
                .map(|(k, v)| match v {
                    serde_json::Value::String(x) => (k.clone(), x.clone()),
                    other => (k.clone(), other.to_string()),
                })
                .collect();
            codec::serialize_pairs(rendered.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes())))
        }
        other => s(&other.to_string()),
    }
}
