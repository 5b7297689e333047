//! Which WasmPlugins apply to a proxy, following Istio: a plugin in the root namespace
//! without selector applies mesh-wide, otherwise to its own namespace; `selector`
//! narrows by workload labels; `targetRefs` of kind Gateway pick gateways by name.

use std::collections::BTreeMap;

use crate::config::{Labels, Res, WasmPluginSpec};

use super::spec::{sort_for_execution, PluginSpec};

/// Istio's default root namespace.
pub const ROOT_NAMESPACE: &str = "istio-system";

/// Labels Gateway API deployments carry naming their Gateway.
const GATEWAY_NAME_LABELS: [&str; 2] = [
    "gateway.networking.k8s.io/gateway-name",
    "istio.io/gateway-name",
];

/// The proxy asking which plugins apply to it.
#[derive(Debug, Clone, Default)]
pub struct ProxyIdentity {
    pub labels: Labels,
    pub namespace: String,
    pub is_gateway: bool,
}

/// The WasmPlugins that select this proxy, in file order.
pub fn select_plugins<'a>(
    plugins: &'a [Res<WasmPluginSpec>],
    proxy: &ProxyIdentity,
) -> Vec<&'a Res<WasmPluginSpec>> {
    plugins.iter().filter(|p| selects(p, proxy)).collect()
}

fn selects(p: &Res<WasmPluginSpec>, proxy: &ProxyIdentity) -> bool {
    let ns = p.meta.namespace.as_str();
    let refs: Vec<_> = p
        .spec
        .target_refs
        .iter()
        .chain(p.spec.target_ref.iter())
        .collect();
    if !refs.is_empty() {
        // targetRefs replace the selector; only Gateways are targets for this proxy.
        return proxy.is_gateway
            && ns == proxy.namespace
            && refs.iter().any(|r| {
                r.kind == "Gateway"
                    && r.namespace.as_deref().is_none_or(|n| n == ns)
                    && GATEWAY_NAME_LABELS
                        .iter()
                        .any(|l| proxy.labels.get(*l).is_some_and(|v| *v == r.name))
            });
    }
    if ns != ROOT_NAMESPACE && ns != proxy.namespace {
        return false;
    }
    match &p.spec.selector {
        None => true,
        Some(sel) => sel
            .match_labels
            .iter()
            .all(|(k, v)| proxy.labels.get(k).is_some_and(|pv| pv == v)),
    }
}

/// Selects, loads and orders the plugins for a proxy. Plugins that cannot be loaded
/// (unreadable url, sha256 mismatch, bad enum value) are returned as
/// `(namespace/name, error)` beside the good ones so the caller can report them.
pub fn plugins_for_proxy(
    plugins: &[Res<WasmPluginSpec>],
    proxy: &ProxyIdentity,
    node_metadata: &BTreeMap<String, serde_json::Value>,
) -> (Vec<PluginSpec>, Vec<(String, String)>) {
    let mut ok = Vec::new();
    let mut failed = Vec::new();
    for p in select_plugins(plugins, proxy) {
        match PluginSpec::from_resource(p, node_metadata) {
            Ok(spec) => ok.push(spec),
            Err(e) => failed.push((format!("{}/{}", p.meta.namespace, p.meta.name), e)),
        }
    }
    sort_for_execution(&mut ok);
    (ok, failed)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::path::PathBuf;
    use std::sync::Arc;

    use super::*;
    use crate::config::{
        FieldLines, Origin, PolicyTargetReference, ResourceMeta, WorkloadSelector,
    };

    fn plugin(ns: &str, name: &str, selector: Option<&[(&str, &str)]>) -> Res<WasmPluginSpec> {
        let file = Arc::new(PathBuf::from("t.yaml"));
        Res {
            meta: ResourceMeta {
                kind: "WasmPlugin",
                name: name.into(),
                namespace: ns.into(),
                labels: Labels::new(),
                annotations: Labels::new(),
                origin: Origin {
                    file: file.clone(),
                    line: 1,
                    column: 1,
                },
                fields: Arc::new(FieldLines {
                    file,
                    entries: vec![],
                }),
            },
            spec: WasmPluginSpec {
                selector: selector.map(|kv| WorkloadSelector {
                    match_labels: kv
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                }),
                ..Default::default()
            },
        }
    }

    fn proxy(ns: &str, labels: &[(&str, &str)], is_gateway: bool) -> ProxyIdentity {
        ProxyIdentity {
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            namespace: ns.into(),
            is_gateway,
        }
    }

    fn names(ps: &[Res<WasmPluginSpec>], p: &ProxyIdentity) -> Vec<String> {
        select_plugins(ps, p)
            .iter()
            .map(|r| r.meta.name.clone())
            .collect()
    }

    #[test]
    fn root_namespace_without_selector_applies_everywhere() {
        let ps = vec![
            plugin("istio-system", "mesh-wide", None),
            plugin("team-a", "ns-wide", None),
        ];
        assert_eq!(names(&ps, &proxy("team-b", &[], false)), ["mesh-wide"]);
        assert_eq!(
            names(&ps, &proxy("team-a", &[], false)),
            ["mesh-wide", "ns-wide"]
        );
    }

    #[test]
    fn selector_matches_all_labels_in_scope() {
        let ps = vec![
            plugin("istio-system", "gw", Some(&[("istio", "ingressgateway")])),
            plugin("team-a", "app", Some(&[("app", "web"), ("version", "v1")])),
        ];
        let gw = proxy("istio-system", &[("istio", "ingressgateway")], true);
        assert_eq!(names(&ps, &gw), ["gw"]);
        let web = proxy(
            "team-a",
            &[("app", "web"), ("version", "v1"), ("x", "y")],
            false,
        );
        assert_eq!(names(&ps, &web), ["app"]);
        let web_v2 = proxy("team-a", &[("app", "web"), ("version", "v2")], false);
        assert!(names(&ps, &web_v2).is_empty());
        // A selector in another (non-root) namespace never applies.
        let other = proxy("team-b", &[("app", "web"), ("version", "v1")], false);
        assert!(names(&ps, &other).is_empty());
    }

    #[test]
    fn target_refs_pick_gateways_by_name() {
        let mut p = plugin("edge", "by-ref", None);
        p.spec.target_refs = vec![PolicyTargetReference {
            kind: "Gateway".into(),
            name: "public".into(),
            ..Default::default()
        }];
        let ps = vec![p];
        let gw = proxy(
            "edge",
            &[("gateway.networking.k8s.io/gateway-name", "public")],
            true,
        );
        assert_eq!(names(&ps, &gw), ["by-ref"]);
        let other_gw = proxy(
            "edge",
            &[("gateway.networking.k8s.io/gateway-name", "internal")],
            true,
        );
        assert!(names(&ps, &other_gw).is_empty());
        let sidecar = proxy(
            "edge",
            &[("gateway.networking.k8s.io/gateway-name", "public")],
            false,
        );
        assert!(names(&ps, &sidecar).is_empty());
    }

    #[test]
    fn unloadable_plugins_are_reported_by_name() {
        let mut p = plugin("istio-system", "broken", None);
        p.spec.url = "file:///nonexistent/meshgate/plugin.wasm".into();
        let (ok, failed) = plugins_for_proxy(&[p], &proxy("x", &[], false), &BTreeMap::new());
        assert!(ok.is_empty());
        assert_eq!(failed[0].0, "istio-system/broken");
        assert!(failed[0].1.contains("cannot read"), "{}", failed[0].1);
    }
}
