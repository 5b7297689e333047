//! Config owns everything between YAML on disk and validated, typed Istio resources:
//! loading (file:line errors), validation (analyzer messages) and nothing on the
//! request path.

pub mod diagnostic;
pub mod duration;
pub mod hosts;
pub mod load;
pub mod resources;
pub mod validate;
pub mod watch;
pub mod yaml;

use std::path::PathBuf;
use std::sync::Arc;

pub use diagnostic::{Diagnostic, Severity};
pub use duration::parse_duration;
pub use load::{load_paths, Loaded};
pub use resources::*;
pub use validate::analyze;

/// Where a resource (or one of its fields) was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub file: Arc<PathBuf>,
    /// 1-based.
    pub line: u32,
    /// 1-based.
    pub column: u32,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)
    }
}

/// Maps a field path inside one YAML document (`spec.http[1].route[0].weight`) to the
/// place it was written, so semantic errors found after deserializing can still name a
/// line. Filled by the loader from the YAML parser's event markers.
#[derive(Debug, Clone, Default)]
pub struct FieldLines {
    pub file: Arc<PathBuf>,
    /// Sorted by path; values are (line, column), 1-based.
    pub entries: Vec<(String, u32, u32)>,
}

impl FieldLines {
    /// The origin of `path`, or of its nearest written ancestor.
    pub fn locate(&self, path: &str) -> Option<Origin> {
        let mut p = path;
        loop {
            if let Ok(i) = self.entries.binary_search_by(|(k, _, _)| k.as_str().cmp(p)) {
                let (_, line, column) = &self.entries[i];
                return Some(Origin {
                    file: self.file.clone(),
                    line: *line,
                    column: *column,
                });
            }
            let cut = p.rfind(['.', '['])?;
            p = &p[..cut];
        }
    }
}

/// Identity and provenance of one loaded resource.
#[derive(Debug, Clone)]
pub struct ResourceMeta {
    /// `VirtualService`, `Gateway`, ...
    pub kind: &'static str,
    pub name: String,
    /// Defaults to `default`, as kubectl would.
    pub namespace: String,
    pub labels: Labels,
    pub annotations: Labels,
    /// Where the document starts.
    pub origin: Origin,
    pub fields: Arc<FieldLines>,
}

impl ResourceMeta {
    /// `VirtualService default/reviews`
    pub fn display_name(&self) -> String {
        format!("{} {}/{}", self.kind, self.namespace, self.name)
    }

    /// Where `path` (e.g. `spec.http[1].route[0].weight`) was written, falling back to
    /// the start of the document.
    pub fn locate(&self, path: &str) -> Origin {
        self.fields
            .locate(path)
            .unwrap_or_else(|| self.origin.clone())
    }
}

/// A loaded resource: who it is, where it came from, and its spec.
#[derive(Debug, Clone)]
pub struct Res<T> {
    pub meta: ResourceMeta,
    pub spec: T,
}

/// Every resource read from the `--config` paths, grouped by kind, in file order.
#[derive(Debug, Clone, Default)]
pub struct ConfigSet {
    pub gateways: Vec<Res<GatewaySpec>>,
    pub virtual_services: Vec<Res<VirtualServiceSpec>>,
    pub destination_rules: Vec<Res<DestinationRuleSpec>>,
    pub service_entries: Vec<Res<ServiceEntrySpec>>,
    pub wasm_plugins: Vec<Res<WasmPluginSpec>>,
    pub peer_authentications: Vec<Res<PeerAuthenticationSpec>>,
    pub services: Vec<Res<ServiceSpec>>,
    pub endpoints: Vec<Res<EndpointsBody>>,
}
