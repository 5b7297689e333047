//! Router owns the compiled snapshot: building it from a ConfigSet and answering
//! "which rule and destination does this request take" without allocating.

pub mod actions;
pub mod compile;
pub mod explain;
pub mod lookup;
pub mod matching;
pub mod reload;
pub mod snapshot;

pub use actions::pick_weighted;
pub use compile::{compile, Compiled};
pub use matching::{Caller, Mismatch};
pub use snapshot::*;

/// Helpers for router tests: YAML in, compiled snapshot and requests out.
#[cfg(test)]
pub(crate) mod testing {
    use std::path::Path;

    use super::explain::RouteQuery;
    use super::{compile, Compiled};
    use crate::config::{load::load_str, Loaded};

    /// Compiles `yaml` (file name `test.yaml`); loader errors fail the test.
    pub fn compiled(yaml: &str) -> Compiled {
        let mut out = Loaded::default();
        load_str(yaml, Path::new("test.yaml"), &mut out);
        let errors: Vec<String> = out.errors().map(|d| d.to_string()).collect();
        assert!(errors.is_empty(), "load errors: {errors:?}");
        compile(&out.config, 1)
    }

    /// `GET http://host/path` with `name: value` headers, on the URL's port.
    pub fn request(method: &str, url: &str, headers: &[&str]) -> RouteQuery {
        let headers: Vec<String> = headers.iter().map(|h| h.to_string()).collect();
        RouteQuery::parse(method, url, &headers, None).expect("valid test request")
    }

    pub const GATEWAY: &str = "apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: ['*']
---
";
}
