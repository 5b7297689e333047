//! Logging, time, ticks, contexts, metrics, HTTP calls, and the calls this host answers
//! with a handled status (gRPC, foreign functions).

use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http::HeaderMap;
use tracing::level_filters::LevelFilter;
use wasmtime::{Caller, Linker};

use super::{def, flat, read, read_string, write_u32, write_u64, Names};
use crate::wasm::abi::status;
use crate::wasm::codec;
use crate::wasm::metrics::{self, MetricKind};
use crate::wasm::state::{HostState, PendingCallout};

/// Longest timeout a plugin may ask for an HTTP call; 0 means this default.
const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// Calls one instance may have in flight.
const MAX_PENDING_CALLS: usize = 64;

pub fn add(l: &mut Linker<HostState>, n: &mut Names) -> wasmtime::Result<()> {
    def(
        l,
        n,
        "env",
        "proxy_log",
        |mut c: Caller<'_, HostState>, level: i32, mp: i32, ml: i32| -> i32 {
            let msg = match read_string(&mut c, mp, ml) {
                Ok(m) => m,
                Err(s) => return s,
            };
            let plugin = c.data().plugin.name.as_str();
            match level {
                0 => tracing::trace!(target: "meshgate::wasm::plugin", plugin, "{msg}"),
                1 => tracing::debug!(target: "meshgate::wasm::plugin", plugin, "{msg}"),
                2 => tracing::info!(target: "meshgate::wasm::plugin", plugin, "{msg}"),
                3 => tracing::warn!(target: "meshgate::wasm::plugin", plugin, "{msg}"),
                _ => tracing::error!(target: "meshgate::wasm::plugin", plugin, "{msg}"),
            }
            status::OK
        },
    )?;
    def(
        l,
        n,
        "env",
        "proxy_get_log_level",
        |mut c: Caller<'_, HostState>, out: i32| -> i32 {
            let level = match LevelFilter::current() {
                LevelFilter::TRACE => 0,
                LevelFilter::DEBUG => 1,
                LevelFilter::INFO => 2,
                LevelFilter::WARN => 3,
                LevelFilter::ERROR => 4,
                _ => 5,
            };
            flat(write_u32(&mut c, out, level).map(|_| status::OK))
        },
    )?;
    def(
        l,
        n,
        "env",
        "proxy_get_current_time_nanoseconds",
        |mut c: Caller<'_, HostState>, out: i32| -> i32 {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0);
            flat(write_u64(&mut c, out, now).map(|_| status::OK))
        },
    )?;
    def(
        l,
        n,
        "env",
        "proxy_set_tick_period_milliseconds",
        |mut c: Caller<'_, HostState>, ms: i32| -> i32 {
            let ms = ms as u32;
            c.data_mut().tick_period = (ms > 0).then(|| Duration::from_millis(ms.max(1) as u64));
            status::OK
        },
    )?;
    def(
        l,
        n,
        "env",
        "proxy_set_effective_context",
        |mut c: Caller<'_, HostState>, ctx: i32| -> i32 {
            let ctx = ctx as u32;
            let state = c.data_mut();
            if ctx == state.root_context_id || (ctx != 0 && ctx == state.http.context_id) {
                state.effective_context = ctx;
                status::OK
            } else {
                status::BAD_ARGUMENT
            }
        },
    )?;
    def(
        l,
        n,
        "env",
        "proxy_done",
        |_: Caller<'_, HostState>| -> i32 { status::OK },
    )?;

    def(
        l,
        n,
        "env",
        "proxy_define_metric",
        |mut c: Caller<'_, HostState>, kind: i32, np: i32, nl: i32, out: i32| -> i32 {
            let name = match read_string(&mut c, np, nl) {
                Ok(n) => n,
                Err(s) => return s,
            };
            let Some(kind) = MetricKind::from_abi(kind) else {
                return status::BAD_ARGUMENT;
            };
            let Some(metric) = metrics::define(kind, &name) else {
                return status::BAD_ARGUMENT;
            };
            let metrics = &mut c.data_mut().metrics;
            let id = match metrics
                .iter()
                .position(|m| std::sync::Arc::ptr_eq(m, &metric))
            {
                Some(i) => i,
                None => {
                    metrics.push(metric);
                    metrics.len() - 1
                }
            };
            flat(write_u32(&mut c, out, id as u32).map(|_| status::OK))
        },
    )?;
    def(
        l,
        n,
        "env",
        "proxy_increment_metric",
        |c: Caller<'_, HostState>, id: i32, by: i64| -> i32 {
            match c.data().metrics.get(id as u32 as usize) {
                Some(m) if m.increment(by) => status::OK,
                Some(_) => status::BAD_ARGUMENT,
                None => status::NOT_FOUND,
            }
        },
    )?;
    def(
        l,
        n,
        "env",
        "proxy_record_metric",
        |c: Caller<'_, HostState>, id: i32, v: i64| -> i32 {
            match c.data().metrics.get(id as u32 as usize) {
                Some(m) => {
                    m.record(v as u64);
                    status::OK
                }
                None => status::NOT_FOUND,
            }
        },
    )?;
    def(
        l,
        n,
        "env",
        "proxy_get_metric",
        |mut c: Caller<'_, HostState>, id: i32, out: i32| -> i32 {
            let Some(v) = c.data().metrics.get(id as u32 as usize).map(|m| m.get()) else {
                return status::NOT_FOUND;
            };
            flat(write_u64(&mut c, out, v).map(|_| status::OK))
        },
    )?;

    for name in ["proxy_http_call", "proxy_dispatch_http_call"] {
        def(l, n, "env", name, http_call)?;
    }

    // gRPC calls are not offered: answer statuses the SDKs handle (never UNIMPLEMENTED,
    // on which the Rust SDK panics) and say so once per plugin.
    def(
        l,
        n,
        "env",
        "proxy_grpc_call",
        |c: Caller<'_, HostState>,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32|
         -> i32 {
            warn_grpc(&c);
            status::INTERNAL_FAILURE
        },
    )?;
    def(
        l,
        n,
        "env",
        "proxy_grpc_stream",
        |c: Caller<'_, HostState>,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32|
         -> i32 {
            warn_grpc(&c);
            status::INTERNAL_FAILURE
        },
    )?;
    def(
        l,
        n,
        "env",
        "proxy_grpc_send",
        |_: Caller<'_, HostState>, _: i32, _: i32, _: i32, _: i32| -> i32 { status::NOT_FOUND },
    )?;
    def(
        l,
        n,
        "env",
        "proxy_grpc_cancel",
        |_: Caller<'_, HostState>, _: i32| -> i32 { status::NOT_FOUND },
    )?;
    def(
        l,
        n,
        "env",
        "proxy_grpc_close",
        |_: Caller<'_, HostState>, _: i32| -> i32 { status::NOT_FOUND },
    )?;
    def(
        l,
        n,
        "env",
        "proxy_get_status",
        |_: Caller<'_, HostState>, _: i32, _: i32, _: i32| -> i32 { status::NOT_FOUND },
    )?;
    def(
        l,
        n,
        "env",
        "proxy_call_foreign_function",
        |c: Caller<'_, HostState>, _: i32, _: i32, _: i32, _: i32, _: i32, _: i32| -> i32 {
            if !c
                .data()
                .plugin
                .warned_unsupported
                .swap(true, Ordering::Relaxed)
            {
                tracing::warn!(plugin = %c.data().plugin.name, "plugin called a foreign function; none are provided");
            }
            status::NOT_FOUND
        },
    )?;
    Ok(())
}

fn warn_grpc(c: &Caller<'_, HostState>) {
    if !c.data().plugin.warned_grpc.swap(true, Ordering::Relaxed) {
        tracing::warn!(plugin = %c.data().plugin.name, "plugin tried a gRPC call; gRPC calls are not supported, the plugin gets INTERNAL_FAILURE");
    }
}

fn to_header_map(pairs: &[(&[u8], &[u8])]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (k, v) in pairs {
        if k.starts_with(b":") {
            continue;
        }
        if let (Ok(k), Ok(v)) = (HeaderName::from_bytes(k), HeaderValue::from_bytes(v)) {
            map.append(k, v);
        }
    }
    map
}

/// The call's request from its serialized headers: `:method`, `:path` and `:authority`
/// are required (BAD_ARGUMENT otherwise, as in Envoy).
fn build_request(headers: &[u8], body: Vec<u8>) -> Option<http::Request<Bytes>> {
    let pairs = codec::deserialize_pairs(headers)?;
    let pseudo = |name: &[u8]| {
        pairs
            .iter()
            .find(|(k, _)| *k == name)
            .and_then(|(_, v)| std::str::from_utf8(v).ok())
    };
    let method = http::Method::from_bytes(pseudo(b":method")?.as_bytes()).ok()?;
    let path = pseudo(b":path")?;
    let authority = pseudo(b":authority")?;
    let scheme = pseudo(b":scheme").unwrap_or("http");
    let uri = http::Uri::builder()
        .scheme(scheme)
        .authority(authority)
        .path_and_query(if path.is_empty() { "/" } else { path })
        .build()
        .ok()?;
    let mut request = http::Request::new(Bytes::from(body));
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    *request.headers_mut() = to_header_map(&pairs);
    Some(request)
}

/// `proxy_http_call` (also linked as `proxy_dispatch_http_call`): queues the call; the
/// stream starts it once the dispatching callback returns.
#[allow(clippy::too_many_arguments)]
fn http_call(
    mut c: Caller<'_, HostState>,
    up: i32,
    ul: i32,
    hp: i32,
    hl: i32,
    bp: i32,
    bl: i32,
    tp: i32,
    tl: i32,
    timeout_ms: i32,
    token_out: i32,
) -> i32 {
    let parts = (
        read_string(&mut c, up, ul),
        read(&mut c, hp, hl),
        read(&mut c, bp, bl),
        read(&mut c, tp, tl),
    );
    let (upstream, headers, body, trailers) = match parts {
        (Ok(u), Ok(h), Ok(b), Ok(t)) => (u, h, b, t),
        (Err(s), ..) | (_, Err(s), ..) | (_, _, Err(s), _) | (.., Err(s)) => return s,
    };
    let state = c.data_mut();
    if state.callouts.len() >= MAX_PENDING_CALLS || !state.plugin.callout.has_upstream(&upstream) {
        return status::BAD_ARGUMENT;
    }
    let Some(request) = build_request(&headers, body) else {
        return status::BAD_ARGUMENT;
    };
    let trailers = codec::deserialize_pairs(&trailers)
        .map(|p| to_header_map(&p))
        .unwrap_or_default();
    let timeout = match timeout_ms as u32 {
        0 => DEFAULT_CALL_TIMEOUT,
        ms => Duration::from_millis(ms as u64).min(MAX_CALL_TIMEOUT),
    };
    let token = state.next_token;
    state.next_token = state.next_token.wrapping_add(1).max(1);
    let context_id = state.effective_context;
    state.callouts.push(PendingCallout {
        token,
        context_id,
        upstream,
        request,
        trailers,
        timeout,
    });
    flat(write_u32(&mut c, token_out, token).map(|_| status::OK))
}
