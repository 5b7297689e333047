//! What one plugin needs to run: `PluginSpec`, built from a WasmPlugin resource (module
//! bytes fetched from its `url` and checked against `sha256`), and its ordering keys.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::config::{Res, WasmPluginSpec};

/// Where in the request path a plugin runs. Istio inserts AUTHN plugins before its
/// authentication filters, AUTHZ before authorization, STATS before stats, and
/// unspecified ones last, just before the router: the derived order is that order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Phase {
    Authn,
    Authz,
    Stats,
    Unspecified,
}

impl Phase {
    pub fn parse(s: Option<&str>) -> Result<Phase, String> {
        match s.unwrap_or("") {
            "AUTHN" => Ok(Phase::Authn),
            "AUTHZ" => Ok(Phase::Authz),
            "STATS" => Ok(Phase::Stats),
            "" | "UNSPECIFIED_PHASE" | "UNSPECIFIED" => Ok(Phase::Unspecified),
            other => Err(format!(
                "phase {other:?} is not one of AUTHN, AUTHZ, STATS, UNSPECIFIED_PHASE"
            )),
        }
    }
}

/// What a plugin failure (trap, runaway loop, memory cap, failed configure) does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailStrategy {
    /// The failing stream and every later one answer 503 until the plugin is reloaded
    /// by a config change (Envoy's behaviour).
    FailClose,
    /// The plugin is skipped from then on; the other plugins still run.
    FailOpen,
    /// The failing stream answers 503; the next stream gets a fresh instance.
    FailReload,
}

impl FailStrategy {
    pub fn parse(s: Option<&str>) -> Result<FailStrategy, String> {
        match s.unwrap_or("") {
            "" | "FAIL_CLOSE" => Ok(FailStrategy::FailClose),
            "FAIL_OPEN" => Ok(FailStrategy::FailOpen),
            "FAIL_RELOAD" => Ok(FailStrategy::FailReload),
            other => Err(format!(
                "failStrategy {other:?} is not one of FAIL_CLOSE, FAIL_OPEN, FAIL_RELOAD"
            )),
        }
    }
}

/// Which side of a proxy a listener serves, for `match[].mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenerClass {
    /// A gateway listener: matches CLIENT and SERVER alike, as in Istio.
    Gateway,
    SidecarInbound,
    SidecarOutbound,
}

/// One `match[]` entry: empty `ports` means every port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrafficMatch {
    /// `CLIENT`, `SERVER`, `CLIENT_AND_SERVER` or `UNDEFINED`.
    pub mode: String,
    pub ports: Vec<u32>,
}

impl TrafficMatch {
    fn matches(&self, class: ListenerClass, port: u32) -> bool {
        let mode_ok = match self.mode.as_str() {
            "CLIENT" => class != ListenerClass::SidecarInbound,
            "SERVER" => class != ListenerClass::SidecarOutbound,
            _ => true,
        };
        mode_ok && (self.ports.is_empty() || self.ports.contains(&port))
    }
}

/// Everything needed to compile, configure and run one plugin.
#[derive(Clone)]
pub struct PluginSpec {
    /// `namespace/name` of the WasmPlugin: used in logs, errors and the 503 details.
    pub name: String,
    /// `pluginName`; the root context id the SDKs look up.
    pub root_id: String,
    /// Plugins with the same vm_id share `proxy_*_shared_data` and queues.
    pub vm_id: String,
    pub wasm: Arc<[u8]>,
    /// `pluginConfig` serialized as JSON (empty when absent).
    pub config: Vec<u8>,
    /// Delivered to `proxy_on_vm_start`; empty for WasmPlugins.
    pub vm_config: Vec<u8>,
    pub phase: Phase,
    /// Higher runs first within a phase.
    pub priority: i64,
    pub fail_strategy: FailStrategy,
    /// Environment the module sees through WASI `environ_get`.
    pub vm_env: Vec<(String, String)>,
    /// Values for the `node.metadata.*` properties (`NAMESPACE`, `WORKLOAD_NAME`,
    /// `LABELS` as an object, ...).
    pub node_metadata: BTreeMap<String, serde_json::Value>,
    /// Empty: every listener.
    pub matches: Vec<TrafficMatch>,
}

impl std::fmt::Debug for PluginSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginSpec")
            .field("name", &self.name)
            .field("root_id", &self.root_id)
            .field("wasm_len", &self.wasm.len())
            .field("phase", &self.phase)
            .field("priority", &self.priority)
            .field("fail_strategy", &self.fail_strategy)
            .finish()
    }
}

impl PluginSpec {
    /// A spec with defaults (unspecified phase, priority 0, FAIL_CLOSE), for code that
    /// builds plugins without a WasmPlugin resource.
    pub fn new(name: impl Into<String>, wasm: impl Into<Arc<[u8]>>) -> PluginSpec {
        let name = name.into();
        PluginSpec {
            root_id: String::new(),
            vm_id: name.clone(),
            name,
            wasm: wasm.into(),
            config: Vec::new(),
            vm_config: Vec::new(),
            phase: Phase::Unspecified,
            priority: 0,
            fail_strategy: FailStrategy::FailClose,
            vm_env: Vec::new(),
            node_metadata: BTreeMap::new(),
            matches: Vec::new(),
        }
    }

    /// Whether this plugin runs on a listener of `class` bound to `port`.
    pub fn applies_to(&self, class: ListenerClass, port: u32) -> bool {
        self.matches.is_empty() || self.matches.iter().any(|m| m.matches(class, port))
    }

    /// Builds a spec from a WasmPlugin, reading its module. `node_metadata` is the
    /// proxy's own (shared by every plugin).
    pub fn from_resource(
        res: &Res<WasmPluginSpec>,
        node_metadata: &BTreeMap<String, serde_json::Value>,
    ) -> Result<PluginSpec, String> {
        let spec = &res.spec;
        if spec
            .plugin_type
            .as_deref()
            .is_some_and(|t| t != "HTTP" && !t.is_empty())
        {
            return Err(format!(
                "type {:?} is not supported: only HTTP plugins run here",
                spec.plugin_type.as_deref().unwrap_or_default()
            ));
        }
        let wasm = super::fetch::fetch_module(&spec.url, spec.sha256.as_deref())?;
        let config = match &spec.plugin_config {
            None => Vec::new(),
            Some(v) => serde_json::to_vec(v).map_err(|e| format!("pluginConfig: {e}"))?,
        };
        let mut vm_env = Vec::new();
        for var in spec.vm_config.iter().flat_map(|c| c.env.iter()) {
            match var.value_from.as_deref().unwrap_or("INLINE") {
                "INLINE" | "" => {
                    vm_env.push((var.name.clone(), var.value.clone().unwrap_or_default()))
                }
                // HOST: the proxy's own environment, read once at load.
                "HOST" => {
                    if let Ok(v) = std::env::var(&var.name) {
                        vm_env.push((var.name.clone(), v));
                    }
                }
                other => {
                    return Err(format!(
                        "vmConfig.env {}: valueFrom {other:?} is not INLINE or HOST",
                        var.name
                    ))
                }
            }
        }
        let name = format!("{}/{}", res.meta.namespace, res.meta.name);
        Ok(PluginSpec {
            root_id: spec.plugin_name.clone().unwrap_or_default(),
            vm_id: name.clone(),
            name,
            wasm,
            config,
            vm_config: Vec::new(),
            phase: Phase::parse(spec.phase.as_deref())?,
            priority: spec.priority.unwrap_or(0),
            fail_strategy: FailStrategy::parse(spec.fail_strategy.as_deref())?,
            vm_env,
            node_metadata: node_metadata.clone(),
            matches: spec
                .matches
                .iter()
                .map(|m| TrafficMatch {
                    mode: m.mode.clone().unwrap_or_default(),
                    ports: m.ports.iter().map(|p| p.number).collect(),
                })
                .collect(),
        })
    }
}

/// Sorts specs into execution order: phase, then priority (higher first), then name
/// for a stable order between equal priorities.
pub fn sort_for_execution(specs: &mut [PluginSpec]) {
    specs.sort_by(|a, b| {
        a.phase
            .cmp(&b.phase)
            .then(b.priority.cmp(&a.priority))
            .then(a.name.cmp(&b.name))
    });
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn execution_order_is_phase_then_priority_descending() {
        let mk = |n: &str, phase, priority| {
            let mut s = PluginSpec::new(n, Vec::<u8>::new());
            s.phase = phase;
            s.priority = priority;
            s
        };
        let mut v = vec![
            mk("a", Phase::Unspecified, 100),
            mk("b", Phase::Stats, 0),
            mk("c", Phase::Authz, 5),
            mk("d", Phase::Authn, -1),
            mk("e", Phase::Authz, 10),
        ];
        sort_for_execution(&mut v);
        let names: Vec<_> = v.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["d", "e", "c", "b", "a"]);
    }

    #[test]
    fn unknown_enum_values_are_clear_errors() {
        assert!(Phase::parse(Some("AUTH")).unwrap_err().contains("AUTHN"));
        assert!(FailStrategy::parse(Some("OPEN"))
            .unwrap_err()
            .contains("FAIL_OPEN"));
        assert_eq!(FailStrategy::parse(None), Ok(FailStrategy::FailClose));
    }

    #[test]
    fn match_modes_follow_istio() {
        let m = |mode: &str, ports: Vec<u32>| {
            let mut s = PluginSpec::new("p", Vec::<u8>::new());
            s.matches = vec![TrafficMatch {
                mode: mode.into(),
                ports,
            }];
            s
        };
        assert!(m("CLIENT", vec![]).applies_to(ListenerClass::Gateway, 80));
        assert!(m("SERVER", vec![]).applies_to(ListenerClass::Gateway, 80));
        assert!(!m("CLIENT", vec![]).applies_to(ListenerClass::SidecarInbound, 80));
        assert!(!m("SERVER", vec![]).applies_to(ListenerClass::SidecarOutbound, 80));
        assert!(m("CLIENT_AND_SERVER", vec![8080]).applies_to(ListenerClass::SidecarInbound, 8080));
        assert!(!m("", vec![8080]).applies_to(ListenerClass::Gateway, 80));
    }
}
