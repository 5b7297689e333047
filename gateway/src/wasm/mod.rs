//! Wasm owns the proxy-wasm host: loading plugins into wasmtime and running them in the request path.
//!
//! # Using it from the proxy
//!
//! ```text
//! // Config time (per listener, before accepting):
//! let (specs, load_errors) = wasm::plugins_for_proxy(&snapshot.wasm_plugins, &identity, &node_metadata);
//! let chain = wasm::PluginChain::new(specs, Arc::new(MyCallouts))?;   // compiles + starts
//!
//! // Per request:
//! let mut stream = chain.new_stream(StreamInfo { listener, port, source, .. });
//! let mut line = RequestLine::from_parts(&parts.method, &parts.uri, &parts.headers);
//! match stream.on_request_headers(&mut parts.headers, &mut line, body_is_empty).await {
//!     Verdict::Continue => {}                        // apply `line` back to the request
//!     Verdict::LocalResponse(r) => return reply(r),  // the plugin answered (or 503 on failure)
//!     Verdict::Pause => { /* a plugin wants the body first: feed chunks to
//!                            on_request_body, then take_request_head() */ }
//! }
//! // ... on_request_body per chunk, on_response_headers(&mut headers, &mut status, eos),
//! // on_response_body, then stream.on_log() (or drop the stream) when done.
//! ```
//!
//! * Plugins run in Istio's order: AUTHN, AUTHZ, STATS, then unspecified; higher
//!   `priority` first within a phase. Response callbacks run in reverse.
//! * Every module compiles once per content (sha256) for the whole process; every
//!   plugin keeps a lock-free pool of started instances, each serving one stream at a
//!   time, so a request never waits for another.
//! * A guest call is bounded by an epoch deadline (≈100 ms), memory by a 64 MiB cap;
//!   any trap becomes a `PluginFailure` handled by the plugin's `failStrategy`.
//! * `proxy_http_call` goes through the [`HttpCallout`] the proxy provides; the stream
//!   stays paused until the plugin resumes it or answers.
//! * Metrics plugins define are process-wide and summed over instances:
//!   [`plugin_metrics`].

mod abi;
pub mod authoring;
mod callout;
mod chain;
mod codec;
mod engine;
mod fetch;
mod host;
mod instance;
mod metrics;
mod plugin;
mod select;
mod shared;
mod spec;
mod state;
mod stream;
mod types;

pub use callout::{CalloutError, CalloutResponse, HttpCallout, NoCallouts};
pub use chain::PluginChain;
pub use engine::{host_imports, precompile, PrecompiledModule};
pub use fetch::{fetch_module, sha256_hex};
pub use instance::{PluginFailure, MEMORY_LIMIT};
pub use metrics::{plugin_metrics, MetricKind, MetricValue, PluginMetric, HISTOGRAM_BOUNDS};
pub use select::{plugins_for_proxy, select_plugins, ProxyIdentity, ROOT_NAMESPACE};
pub use spec::{FailStrategy, ListenerClass, Phase, PluginSpec, TrafficMatch};
pub use stream::{Stream, MAX_BUFFERED_BODY};
pub use types::{LocalResponse, RequestLine, StreamInfo, Verdict};
