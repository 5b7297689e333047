//! Building the next snapshot on reload: what failed to load or compile keeps its last
//! good version, so one bad edit never removes routes that were working.

use std::path::PathBuf;

use super::{Compiler, Snapshot};
use crate::config::watch::{keep_last_good_files, restore_resource};
use crate::config::{load_paths, ConfigSet, Diagnostic};

/// The outcome of one (re)load.
pub struct Built {
    pub snapshot: Snapshot,
    /// The config the snapshot was built from: the next reload's "last good".
    pub config: ConfigSet,
    /// Load and compile problems, plus notes on what was kept at its last good version.
    pub diagnostics: Vec<Diagnostic>,
}

/// Loads `paths` and compiles them as `version`, falling back to `last_good` for every
/// file that no longer loads and every resource that no longer compiles. `compiler`
/// keeps what the previous compile built (regexes), so reloads redo only what changed.
pub fn build(
    compiler: &mut Compiler,
    paths: &[PathBuf],
    last_good: &ConfigSet,
    version: u64,
) -> Built {
    let loaded = load_paths(paths);
    let mut diagnostics = loaded.diagnostics.clone();
    let (mut config, notes) = keep_last_good_files(loaded, last_good, paths);
    diagnostics.extend(notes);
    let mut compiled = compiler.compile(&config, version);
    if !compiled.rejected.is_empty() {
        let mut restored = false;
        // Warnings (a subset nobody defines answers 503 NC, as in Istio) are the
        // user's intent and stay; only resources that failed to compile are restored.
        for d in compiled.rejected.iter().filter(|d| d.is_error()) {
            if let Some((kind, ns, name)) = d.resource.as_deref().and_then(split_resource) {
                restored |= restore_resource(&mut config, last_good, kind, ns, name);
            }
        }
        diagnostics.extend(compiled.rejected.iter().cloned());
        if restored {
            compiled = compiler.compile(&config, version);
        }
    }
    Built {
        snapshot: compiled.snapshot,
        config,
        diagnostics,
    }
}

/// `VirtualService default/reviews` → ("VirtualService", "default", "reviews").
fn split_resource(r: &str) -> Option<(&str, &str, &str)> {
    let (kind, id) = r.split_once(' ')?;
    let (ns, name) = id.split_once('/')?;
    Some((kind, ns, name))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const VS: &str = "apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, SUBSET}
---
apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: default}
spec:
  ports: [{port: 9080, name: http}]
";

    #[test]
    fn a_reload_with_only_warnings_takes_effect() {
        let dir = std::env::temp_dir().join(format!("meshgate-reload-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("vs.yaml");
        let paths = vec![file.clone()];
        std::fs::write(&file, VS.replace(", SUBSET", "")).unwrap();
        let mut compiler = Compiler::new();
        let first = build(&mut compiler, &paths, &ConfigSet::default(), 1);
        assert!(first.diagnostics.iter().all(|d| !d.is_error()));

        // A subset no DestinationRule defines: a warning, and the route sends there (NC).
        std::fs::write(&file, VS.replace("SUBSET", "subset: v9")).unwrap();
        let second = build(&mut compiler, &paths, &first.config, 2);
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(second.diagnostics.iter().any(|d| d.message.contains("v9")));
        let v9 = second
            .snapshot
            .clusters
            .values()
            .find(|c| c.subset.as_deref() == Some("v9"))
            .expect("the edited route is live");
        assert!(v9.missing.is_some());
    }
}
