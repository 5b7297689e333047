//! Meshgate: an ingress gateway and service-mesh sidecar that reads Istio's resources,
//! runs proxy-wasm plugins and emits Istio's standard telemetry.
//!
//! Data flow, one module per stage:
//! config → router (compiled Snapshot) → proxy (listeners, HTTP) → upstream (clusters,
//! pools) with tls, wasm, telemetry, admin and mesh (sidecar identity) beside them.

pub mod admin;
pub mod cli;
pub mod config;
pub mod mesh;
pub mod proxy;
pub mod router;
pub mod telemetry;
pub mod tls;
pub mod upstream;
pub mod wasm;
