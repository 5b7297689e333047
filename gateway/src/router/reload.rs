//! Building the next snapshot on reload: what failed to load or compile keeps its last
//! good version, so one bad edit never removes routes that were working.

use std::path::PathBuf;

use super::{compile, Snapshot};
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
/// file that no longer loads and every resource that no longer compiles.
pub fn build(paths: &[PathBuf], last_good: &ConfigSet, version: u64) -> Built {
    let loaded = load_paths(paths);
    let mut diagnostics = loaded.diagnostics.clone();
    let (mut config, notes) = keep_last_good_files(loaded, last_good, paths);
    diagnostics.extend(notes);
    let mut compiled = compile(&config, version);
    if !compiled.rejected.is_empty() {
        let mut restored = false;
        for d in &compiled.rejected {
            if let Some((kind, ns, name)) = d.resource.as_deref().and_then(split_resource) {
                restored |= restore_resource(&mut config, last_good, kind, ns, name);
            }
        }
        diagnostics.extend(compiled.rejected.iter().cloned());
        if restored {
            compiled = compile(&config, version);
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
