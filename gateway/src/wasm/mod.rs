//! Wasm owns the proxy-wasm host: loading plugins into wasmtime and running them in the request path.
