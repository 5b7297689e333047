//! What the admin port shows about a running proxy: the active snapshot and its
//! version, the last rejected change with its reasons, and the clusters' endpoints.

use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

use super::ProxyState;
use crate::admin::AdminState;
use crate::config::{Diagnostic, Severity};
use crate::router::Snapshot;

/// The outcome of the latest (re)load, kept for `/config_dump` and `/reload_status`.
#[derive(Debug, Default, Clone)]
pub struct ReloadStatus {
    pub version: u64,
    /// Errors of the latest load, with what was kept at its last good version.
    pub rejected: Vec<String>,
    pub warnings: Vec<String>,
}

impl ReloadStatus {
    pub fn from_diagnostics(version: u64, diags: &[Diagnostic]) -> Self {
        let pick = |sev: Severity| {
            diags
                .iter()
                .filter(|d| d.severity == sev)
                .map(|d| d.to_string())
                .collect()
        };
        ReloadStatus {
            version,
            rejected: pick(Severity::Error),
            warnings: pick(Severity::Warning),
        }
    }
}

pub struct ProxyAdmin {
    pub state: Arc<ProxyState>,
    /// Short critical sections only, never across an await.
    pub reload: Arc<Mutex<ReloadStatus>>,
}

fn dump(s: &Snapshot) -> Value {
    let listeners: Vec<Value> = s
        .listeners
        .iter()
        .map(|(port, l)| {
            let servers: Vec<Value> = l
                .servers
                .iter()
                .map(|srv| {
                    json!({
                        "gateway": srv.gateway,
                        "port_name": srv.port_name,
                        "protocol": format!("{:?}", srv.protocol),
                        "hosts": srv.hosts,
                        "tls": srv.tls.as_ref().map(|t| format!("{:?}", t.mode)),
                        "virtual_hosts": srv.vhosts.vhosts.iter().map(|v| json!({
                            "domain": v.domain,
                            "rules": v.rules.iter().map(|r| format!("{} http[{}]{}", r.virtual_service, r.index, r.name.as_deref().map(|n| format!(" ({n})")).unwrap_or_default())).collect::<Vec<_>>(),
                        })).collect::<Vec<_>>(),
                    })
                })
                .collect();
            json!({ "port": port, "servers": servers })
        })
        .collect();
    let mut clusters: Vec<&str> = s.clusters.keys().map(|k| k.as_ref()).collect();
    clusters.sort_unstable();
    let mesh: Vec<&str> = s.mesh.vhosts.iter().map(|v| v.domain.as_str()).collect();
    json!({
        "version": s.version,
        "listeners": listeners,
        "mesh_virtual_hosts": mesh,
        "clusters": clusters,
        "wasm_plugins": s.wasm_plugins.iter().map(|p| p.meta.display_name()).collect::<Vec<_>>(),
    })
}

impl AdminState for ProxyAdmin {
    fn config_dump(&self) -> Value {
        let snapshot = self.state.snapshot();
        let mut v = dump(&snapshot);
        if let Ok(r) = self.reload.lock() {
            v["last_load"] =
                json!({ "version": r.version, "rejected": r.rejected, "warnings": r.warnings });
        }
        v
    }

    fn clusters(&self) -> String {
        self.state.upstream.clusters_text()
    }

    fn reload_status(&self) -> Option<Value> {
        let r = self.reload.lock().ok()?;
        Some(json!({ "version": r.version, "rejected": r.rejected, "warnings": r.warnings }))
    }
}
