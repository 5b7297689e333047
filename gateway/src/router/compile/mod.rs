//! Compile: a ConfigSet in, an immutable Snapshot out. Every resource is checked on
//! its own; a bad one is left out with a Diagnostic that names the field and line,
//! and everything else still compiles.

mod cluster;
mod gateway;
mod http;
mod l4;
mod matcher;
mod policy;
mod rule_parts;
mod services;
mod virtual_service;

use std::collections::HashMap;
use std::sync::Arc;

use super::snapshot::*;
use crate::config::{ConfigSet, Diagnostic, ResourceMeta, Severity};

/// A value that cannot be compiled (the resource is rejected).
pub const CODE_INVALID: &str = "MG0201";
/// A regex that does not compile under RE2 syntax.
pub const CODE_REGEX: &str = "MG0202";
/// A duration that does not parse.
pub const CODE_DURATION: &str = "MG0203";
/// Route weights that are negative or add up to 0.
pub const CODE_WEIGHT: &str = "MG0204";
/// A VirtualService names a Gateway that does not exist.
pub const CODE_GATEWAY_NOT_FOUND: &str = "MG0205";
/// A delegate that does not exist, has hosts, or delegates again.
pub const CODE_DELEGATE: &str = "MG0206";
/// A route names a subset no DestinationRule defines (503 NC at runtime).
pub const CODE_SUBSET_MISSING: &str = "MG0207";
/// A route names a host no ServiceEntry or Service defines (503 NC at runtime).
pub const CODE_HOST_UNKNOWN: &str = "MG0208";
/// A mesh host routed by two VirtualServices: the first one wins.
pub const CODE_MESH_CONFLICT: &str = "MG0209";
/// A destination without a port on a service with several ports.
pub const CODE_PORT_AMBIGUOUS: &str = "MG0210";

/// The snapshot plus everything said while building it: errors for rejected
/// resources, warnings for what will fail at runtime (missing subsets, unknown hosts).
#[derive(Debug)]
pub struct Compiled {
    pub snapshot: Snapshot,
    pub rejected: Vec<Diagnostic>,
}

/// Why a resource (or one of its parts) cannot be compiled, with the field it concerns.
#[derive(Debug, Clone)]
pub(crate) struct Problem {
    pub code: &'static str,
    pub field: String,
    pub message: String,
}

pub(crate) type Checked<T> = Result<T, Problem>;

pub(crate) fn problem(
    code: &'static str,
    field: impl Into<String>,
    message: impl Into<String>,
) -> Problem {
    Problem {
        code,
        field: field.into(),
        message: message.into(),
    }
}

impl Problem {
    pub fn diagnostic(self, meta: &ResourceMeta, severity: Severity) -> Diagnostic {
        Diagnostic::new(self.code, severity, self.message)
            .at(meta.locate(&self.field))
            .resource(meta.display_name())
            .field(self.field)
    }
}

/// Builds the snapshot for `config`. `version` is stamped into it.
pub fn compile(config: &ConfigSet, version: u64) -> Compiled {
    let mut diags = Vec::new();
    let services = services::Services::build(config, &mut diags);
    let rules = policy::DestinationRules::build(config, &mut diags);
    let mut regexes = matcher::RegexCache::default();
    let vss = virtual_service::compile_all(config, &services, &mut regexes, &mut diags);
    let servers = gateway::compile_all(config, &mut diags);
    gateway::warn_unknown_gateways(&vss, &servers, &mut diags);

    let mut clusters = cluster::ClusterSet::new(&services, &rules);
    for vs in &vss {
        for t in &vs.targets {
            if let Some(p) = clusters.ensure(&t.target) {
                let severity = Severity::Warning;
                diags.push(problem(p.0, &t.field, p.1).diagnostic(&vs.res.meta, severity));
            }
        }
    }
    clusters.add_service_defaults();

    let mut snapshot = Snapshot {
        version,
        ..Snapshot::default()
    };
    for draft in &servers {
        let server = gateway::bind(draft, &vss);
        snapshot
            .listeners
            .entry(server.port)
            .or_insert_with(|| Listener {
                port: server.port,
                servers: Vec::new(),
            })
            .servers
            .push(Arc::new(server));
    }
    snapshot.mesh = gateway::mesh_table(&vss, &mut diags);
    snapshot.clusters = clusters.finish();
    snapshot.services = services
        .infos()
        .map(|i| (i.host.clone(), i))
        .collect::<HashMap<_, _>>();
    snapshot.wasm_plugins = config.wasm_plugins.clone();
    snapshot.peer_authentications = config
        .peer_authentications
        .iter()
        .map(|pa| PeerAuthPolicy {
            namespace: pa.meta.namespace.clone(),
            selector: pa.spec.selector.as_ref().map(|s| s.match_labels.clone()),
            mode: pa
                .spec
                .mtls
                .as_ref()
                .and_then(|m| m.mode.clone())
                .unwrap_or_else(|| "UNSET".into()),
            port_modes: pa
                .spec
                .port_level_mtls
                .iter()
                .map(|(p, m)| (*p, m.mode.clone().unwrap_or_else(|| "UNSET".into())))
                .collect(),
        })
        .collect();
    Compiled {
        snapshot,
        rejected: diags,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
