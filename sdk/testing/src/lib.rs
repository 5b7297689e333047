//! Test proxy-wasm plugins without a cluster: build the plugin crate for wasm32-wasip1,
//! load the `.wasm` into Meshgate's own wasm engine (the same `PluginChain` the proxy
//! runs), feed it requests and responses, and assert on headers, bodies, local
//! responses, logs and metrics.
//!
//! ```no_run
//! use meshgate_plugin_test::{PluginHarness, Request};
//! use serde_json::json;
//!
//! let wasm = meshgate_plugin_test::this_plugin!();
//! let h = PluginHarness::load(&wasm, json!({"units": ["Celsius"]})).unwrap();
//! let out = h.request(Request::get("/convert?from=Rankine"));
//! assert_eq!(out.local().status, 400);
//! ```

mod build;
mod capture;
mod exchange;
mod harness;

pub use build::{build_plugin, try_build_plugin};
pub use capture::LogLine;
pub use exchange::{Forwarded, LocalReply, Outcome, Request, Response};
pub use harness::{HarnessBuilder, LoadError, PluginHarness};

/// Re-exported for `metric()` results and fail strategies.
pub use meshgate::wasm::{FailStrategy, MetricValue};

/// Builds the crate the calling test belongs to and returns its `.wasm` path
/// (once per test process).
#[macro_export]
macro_rules! this_plugin {
    () => {
        $crate::build_plugin(env!("CARGO_MANIFEST_DIR"))
    };
}
