//! The data a plugin instance's store carries: the plugin's static context, the guest's
//! allocator, and the per-stream exchange area that host calls read and write while a
//! callback runs.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use wasmtime::{Memory, StoreLimits, TypedFunc};

use super::abi::AbiVersion;
use super::callout::HttpCallout;
use super::metrics::Metric;
use super::shared::PluginEvents;
use super::types::{LocalResponse, RequestLine, StreamInfo};

/// Per plugin, shared by all its instances.
pub struct PluginContext {
    pub name: String,
    pub root_id: String,
    pub vm_id: String,
    pub config: Bytes,
    pub vm_config: Bytes,
    pub env: Vec<(String, String)>,
    pub node_metadata: BTreeMap<String, serde_json::Value>,
    pub callout: Arc<dyn HttpCallout>,
    pub events: Arc<PluginEvents>,
    /// Unsupported calls are logged once per plugin, not per request.
    pub warned_grpc: AtomicBool,
    pub warned_unsupported: AtomicBool,
}

/// An HTTP call's outcome as the plugin reads it: `status` is `None` (and the maps
/// empty) when the call failed.
#[derive(Default)]
pub struct CallResult {
    pub status: Option<StatusCode>,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub trailers: HeaderMap,
}

/// A `proxy_http_call` not yet started: the stream (or the root driver) starts it once
/// the guest call that dispatched it returns.
pub struct PendingCallout {
    pub token: u32,
    pub context_id: u32,
    pub upstream: String,
    pub request: http::Request<Bytes>,
    pub trailers: HeaderMap,
    pub timeout: Duration,
}

/// Everything a stream lends to the instance for one callback. The stream owns one of
/// these and swaps it into the store around each guest call.
#[derive(Default)]
pub struct HttpExchange {
    /// 0 outside a stream (root callbacks).
    pub context_id: u32,
    pub info: Option<Arc<StreamInfo>>,
    pub request_headers: HeaderMap,
    pub request_line: RequestLine,
    pub has_request_headers: bool,
    pub request_trailers: HeaderMap,
    pub has_request_trailers: bool,
    pub response_headers: HeaderMap,
    pub status: Option<StatusCode>,
    pub response_trailers: HeaderMap,
    pub has_response_trailers: bool,
    pub request_body: Bytes,
    pub response_body: Bytes,
    /// `proxy_set_property` values, shared by the stream's plugins (filter state).
    pub properties: Vec<(Vec<u8>, Vec<u8>)>,
    pub response_code_details: String,
    /// Set by `proxy_continue_stream` during the current callback.
    pub resumed: bool,
    /// Set by `proxy_send_local_response`.
    pub local_response: Option<LocalResponse>,
}

pub struct HostState {
    pub limits: StoreLimits,
    pub plugin: Arc<PluginContext>,
    pub memory: Option<Memory>,
    /// `proxy_on_memory_allocate` or `malloc`.
    pub alloc: Option<TypedFunc<i32, i32>>,
    pub root_context_id: u32,
    pub effective_context: u32,
    pub tick_period: Option<Duration>,
    /// Metric ids handed to this instance index this list.
    pub metrics: Vec<Arc<Metric>>,
    pub http: Box<HttpExchange>,
    pub callouts: Vec<PendingCallout>,
    pub next_token: u32,
    /// The response being delivered to `proxy_on_http_call_response`.
    pub call_response: Option<CallResult>,
    /// `proc_exit` code, when the guest called it.
    pub exit_code: Option<i32>,
    pub abi: AbiVersion,
}

impl HostState {
    pub fn new(plugin: Arc<PluginContext>, limits: StoreLimits) -> HostState {
        HostState {
            limits,
            plugin,
            memory: None,
            alloc: None,
            root_context_id: 1,
            effective_context: 1,
            tick_period: None,
            metrics: Vec::new(),
            http: Box::default(),
            callouts: Vec::new(),
            next_token: 1,
            call_response: None,
            exit_code: None,
            abi: AbiVersion::V0_2,
        }
    }
}
