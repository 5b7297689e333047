//! PeerAuthentication: which mTLS mode applies to a workload's inbound port.
//!
//! Istio's precedence: a policy selecting the workload (same namespace, matching labels)
//! over the namespace's policy (no selector) over the mesh-wide policy (no selector, root
//! namespace); `UNSET` inherits from the next level; a port-level mode of the workload
//! policy overrides for that port; PERMISSIVE when nothing says otherwise. When several
//! policies compete at one level, the first in config order wins (Istio: the oldest).

use crate::config::Labels;
use crate::router::snapshot::PeerAuthPolicy;

/// Istio's root namespace, whose selector-less policy is mesh-wide.
pub const ROOT_NAMESPACE: &str = "istio-system";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MtlsMode {
    Strict,
    Permissive,
    Disable,
}

impl MtlsMode {
    /// `None` for `UNSET`, empty, or an unknown value (inherit).
    pub fn parse(mode: &str) -> Option<MtlsMode> {
        match mode.trim().to_ascii_uppercase().as_str() {
            "STRICT" => Some(MtlsMode::Strict),
            "PERMISSIVE" => Some(MtlsMode::Permissive),
            "DISABLE" => Some(MtlsMode::Disable),
            _ => None,
        }
    }
}

/// The mode for `port` of a workload in `namespace` with `labels` (root namespace `istio-system`).
pub fn effective_mtls_mode(
    policies: &[PeerAuthPolicy],
    namespace: &str,
    labels: &Labels,
    port: u32,
) -> MtlsMode {
    effective_mtls_mode_in(ROOT_NAMESPACE, policies, namespace, labels, port)
}

/// Like [`effective_mtls_mode`] with another root namespace.
pub fn effective_mtls_mode_in(
    root_namespace: &str,
    policies: &[PeerAuthPolicy],
    namespace: &str,
    labels: &Labels,
    port: u32,
) -> MtlsMode {
    let selects_all = |p: &PeerAuthPolicy| p.selector.as_ref().is_none_or(|s| s.is_empty());
    let mesh = policies
        .iter()
        .find(|p| p.namespace == root_namespace && selects_all(p));
    let ns = policies
        .iter()
        .find(|p| p.namespace == namespace && selects_all(p));
    let workload = policies.iter().find(|p| {
        p.namespace == namespace
            && p.selector
                .as_ref()
                .is_some_and(|s| !s.is_empty() && s.iter().all(|(k, v)| labels.get(k) == Some(v)))
    });
    let mut mode = MtlsMode::Permissive;
    for level in [mesh, ns, workload].into_iter().flatten() {
        if let Some(m) = MtlsMode::parse(&level.mode) {
            mode = m;
        }
    }
    // Port-level modes only count on workload policies (Istio ignores them elsewhere).
    if let Some(m) = workload
        .and_then(|w| w.port_modes.iter().find(|(p, _)| *p == port))
        .and_then(|(_, m)| MtlsMode::parse(m))
    {
        mode = m;
    }
    mode
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn policy(
        ns: &str,
        selector: Option<&[(&str, &str)]>,
        mode: &str,
        ports: &[(u32, &str)],
    ) -> PeerAuthPolicy {
        PeerAuthPolicy {
            namespace: ns.into(),
            selector: selector.map(|s| {
                s.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect()
            }),
            mode: mode.into(),
            port_modes: ports.iter().map(|(p, m)| (*p, m.to_string())).collect(),
        }
    }

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn default_is_permissive() {
        assert_eq!(
            effective_mtls_mode(&[], "default", &Labels::new(), 8080),
            MtlsMode::Permissive
        );
    }

    #[test]
    fn workload_over_namespace_over_mesh() {
        let app = labels(&[("app", "reviews"), ("version", "v1")]);
        let mut policies = vec![policy("istio-system", None, "STRICT", &[])];
        assert_eq!(
            effective_mtls_mode(&policies, "default", &app, 9080),
            MtlsMode::Strict
        );
        policies.push(policy("default", None, "PERMISSIVE", &[]));
        assert_eq!(
            effective_mtls_mode(&policies, "default", &app, 9080),
            MtlsMode::Permissive
        );
        // Another namespace still follows the mesh-wide policy.
        assert_eq!(
            effective_mtls_mode(&policies, "shop", &app, 9080),
            MtlsMode::Strict
        );
        policies.push(policy(
            "default",
            Some(&[("app", "reviews")]),
            "DISABLE",
            &[],
        ));
        assert_eq!(
            effective_mtls_mode(&policies, "default", &app, 9080),
            MtlsMode::Disable
        );
        // The selector must match every label it names.
        let other = labels(&[("app", "ratings")]);
        assert_eq!(
            effective_mtls_mode(&policies, "default", &other, 9080),
            MtlsMode::Permissive
        );
        // A selector policy in the root namespace is not mesh-wide.
        let only_root = vec![policy(
            "istio-system",
            Some(&[("app", "reviews")]),
            "STRICT",
            &[],
        )];
        assert_eq!(
            effective_mtls_mode(&only_root, "default", &app, 9080),
            MtlsMode::Permissive
        );
    }

    #[test]
    fn unset_inherits_and_ports_override() {
        let app = labels(&[("app", "reviews")]);
        let policies = vec![
            policy("istio-system", None, "STRICT", &[]),
            policy("default", None, "UNSET", &[]),
            policy(
                "default",
                Some(&[("app", "reviews")]),
                "",
                &[(8080, "DISABLE"), (9090, "UNSET")],
            ),
        ];
        assert_eq!(
            effective_mtls_mode(&policies, "default", &app, 9080),
            MtlsMode::Strict
        );
        assert_eq!(
            effective_mtls_mode(&policies, "default", &app, 8080),
            MtlsMode::Disable
        );
        assert_eq!(
            effective_mtls_mode(&policies, "default", &app, 9090),
            MtlsMode::Strict
        );
    }

    #[test]
    fn port_modes_on_namespace_policies_are_ignored() {
        let policies = vec![policy("default", None, "STRICT", &[(8080, "DISABLE")])];
        assert_eq!(
            effective_mtls_mode(&policies, "default", &Labels::new(), 8080),
            MtlsMode::Strict
        );
    }

    #[test]
    fn first_policy_wins_within_a_level() {
        let policies = vec![
            policy("default", None, "DISABLE", &[]),
            policy("default", None, "STRICT", &[]),
        ];
        assert_eq!(
            effective_mtls_mode(&policies, "default", &Labels::new(), 80),
            MtlsMode::Disable
        );
    }
}
