//! Meshgate's plugin SDK: write proxy-wasm HTTP plugins as a typed config plus two
//! functions returning `Result<Decision>`, on top of the crates.io `proxy-wasm` crate.
//!
//! ```ignore
//! use meshgate_sdk::prelude::*;
//!
//! #[derive(Deserialize)]
//! struct Config { header: String }
//!
//! struct Tag { header: String }
//!
//! impl Plugin for Tag {
//!     type Config = Config;
//!     fn configure(config: Config) -> Result<Self> {
//!         Ok(Tag { header: config.header })
//!     }
//!     fn on_request(&self, req: &mut Request) -> Result<Decision> {
//!         req.set_header(&self.header, "seen")?;
//!         Ok(Decision::Continue)
//!     }
//! }
//!
//! meshgate_sdk::plugin!(Tag);
//! ```
//!
//! Why nothing here panics: a wasm plugin is built with `panic = "abort"`, so a panic
//! traps the whole module and the proxy applies the WasmPlugin's `failStrategy`
//! to every stream. User code returns `Result`s instead; the SDK logs an `Err` with the
//! plugin's name and answers 500 or lets the request through (see [`OnError`]). Host
//! calls go through `proxy_wasm::hostcalls`, which return `Result`s, and header values
//! are read as bytes so a non-UTF-8 header never aborts the plugin.

mod callout;
mod config;
mod context;
mod decision;
mod error;
mod headers;
pub mod metrics;
pub mod query;
mod request;
mod response;
pub mod shared;

pub use callout::{CallError, CallResponse, HttpCall};
pub use config::OnError;
pub use decision::{Decision, Reply};
pub use error::{Error, Result};
pub use request::Request;
pub use response::Response;

/// Re-exported so plugins need no direct dependency on them (and use the same versions).
pub use log;
pub use proxy_wasm;
pub use serde;
pub use serde_json;

/// Everything a plugin usually needs: `use meshgate_sdk::prelude::*;`.
pub mod prelude {
    pub use crate::{
        CallError, CallResponse, Decision, Error, HttpCall, OnError, Plugin, Reply, Request,
        Response, Result,
    };
    pub use serde::Deserialize;
    pub use serde_json::json;
}

/// A plugin: built once per configuration (one root context), then asked about every
/// request and response. Every method returns `Result`: an `Err` is logged and answered
/// per [`Plugin::ON_ERROR`] (overridable with `"onError"` in `pluginConfig`).
pub trait Plugin: Sized + 'static {
    /// The WasmPlugin's `pluginConfig`, deserialized from JSON. An empty config is
    /// read as `{}` (then `null`), so a config struct with defaults works without one.
    type Config: serde::de::DeserializeOwned;

    /// What an `Err` from a callback does by default.
    const ON_ERROR: OnError = OnError::Deny;

    /// Validates the config and builds the plugin. `Err` rejects the config: it is
    /// logged and the host applies the WasmPlugin's `failStrategy`.
    fn configure(config: Self::Config) -> Result<Self>;

    /// Request headers arrived. Return [`Decision::ReadBody`] to see the whole body in
    /// [`Plugin::on_request_body`] before deciding.
    fn on_request(&self, req: &mut Request) -> Result<Decision> {
        let _ = req;
        Ok(Decision::Continue)
    }

    /// The whole request body, when `on_request` asked for it. `req.set_body` replaces it.
    fn on_request_body(&self, req: &mut Request, body: &[u8]) -> Result<Decision> {
        let _ = (req, body);
        Ok(Decision::Continue)
    }

    /// Response headers arrived (request headers remain readable through
    /// [`Response::request_header`]).
    fn on_response(&self, resp: &mut Response) -> Result<Decision> {
        let _ = resp;
        Ok(Decision::Continue)
    }

    /// The whole response body, when `on_response` asked for it.
    fn on_response_body(&self, resp: &mut Response, body: &[u8]) -> Result<Decision> {
        let _ = (resp, body);
        Ok(Decision::Continue)
    }
}

/// The proxy's clock (`proxy_get_current_time_nanoseconds`): the same for every
/// instance, unlike WASI clocks some hosts stub out.
pub fn now() -> Result<std::time::SystemTime> {
    proxy_wasm::hostcalls::get_current_time().map_err(|s| Error::host("get current time", s))
}

/// Registers `P` as the module's plugin. Called by [`plugin!`]; call it yourself from
/// a `proxy_wasm::main!` block when the module sets up more than one thing.
pub fn register<P: Plugin>() {
    // The host's level, so debug logs cost nothing unless the proxy wants them.
    let level = proxy_wasm::hostcalls::get_log_level().unwrap_or(proxy_wasm::types::LogLevel::Info);
    proxy_wasm::set_log_level(level);
    proxy_wasm::set_root_context(|id| -> Box<dyn proxy_wasm::traits::RootContext> {
        Box::new(context::Root::<P>::new(id))
    });
}

/// Declares the module's entry point for a [`Plugin`] type: `meshgate_sdk::plugin!(MyPlugin);`.
#[macro_export]
macro_rules! plugin {
    ($plugin:ty) => {
        $crate::proxy_wasm::main! {{
            $crate::register::<$plugin>();
        }}
    };
}
