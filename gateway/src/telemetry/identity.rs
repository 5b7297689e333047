//! Who is on each end of a hop: a workload's peer info (derived from its pod labels the
//! way Istio derives canonical names), this proxy's own identity and reporter role, and
//! the destination service. The proxy builds these once per workload/route, not per
//! request.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::labels::{Reporter, SecurityPolicy};

/// Kiali's fallback cluster name, and Istio's default `CLUSTER_ID`.
pub const DEFAULT_CLUSTER: &str = "Kubernetes";

const CANONICAL_NAME_LABELS: [&str; 3] = [
    "service.istio.io/canonical-name",
    "app.kubernetes.io/name",
    "app",
];
const CANONICAL_REVISION_LABELS: [&str; 3] = [
    "service.istio.io/canonical-revision",
    "app.kubernetes.io/version",
    "version",
];

/// One end of a hop, as Istio labels it. Empty fields are reported as `unknown`
/// (`latest` for the canonical revision).
#[derive(Clone, Debug, Default, Hash, PartialEq, Eq)]
pub struct PeerInfo {
    pub workload: String,
    pub namespace: String,
    /// `spiffe://<trust domain>/ns/<ns>/sa/<sa>`, or empty when not known from mTLS.
    pub principal: String,
    pub app: String,
    pub version: String,
    pub canonical_service: String,
    pub canonical_revision: String,
    pub cluster: String,
}

impl PeerInfo {
    /// A workload from its pod labels. Canonical service: label
    /// `service.istio.io/canonical-name`, else `app.kubernetes.io/name`, else `app`,
    /// else the workload name. Canonical revision: `service.istio.io/canonical-revision`,
    /// else `app.kubernetes.io/version`, else `version`, else `latest`. `app`/`version`
    /// come from the `app`/`version` labels (then the `app.kubernetes.io/*` ones).
    /// The cluster is [`DEFAULT_CLUSTER`]; change it with [`PeerInfo::with_cluster`].
    pub fn from_labels(
        workload: &str,
        namespace: &str,
        labels: &BTreeMap<String, String>,
        principal: Option<&str>,
    ) -> PeerInfo {
        let first = |keys: &[&str]| -> Option<String> {
            keys.iter()
                .filter_map(|k| labels.get(*k))
                .find(|v| !v.is_empty())
                .cloned()
        };
        PeerInfo {
            workload: workload.to_string(),
            namespace: namespace.to_string(),
            principal: principal.unwrap_or_default().to_string(),
            app: first(&["app", "app.kubernetes.io/name"]).unwrap_or_default(),
            version: first(&["version", "app.kubernetes.io/version"]).unwrap_or_default(),
            canonical_service: first(&CANONICAL_NAME_LABELS)
                .unwrap_or_else(|| workload.to_string()),
            canonical_revision: first(&CANONICAL_REVISION_LABELS)
                .unwrap_or_else(|| "latest".to_string()),
            cluster: DEFAULT_CLUSTER.to_string(),
        }
    }

    /// A peer nothing is known about, in `cluster` (Kiali groups it there).
    pub fn unknown(cluster: &str) -> PeerInfo {
        PeerInfo {
            cluster: cluster.to_string(),
            ..PeerInfo::default()
        }
    }

    pub fn with_cluster(mut self, cluster: &str) -> PeerInfo {
        self.cluster = cluster.to_string();
        self
    }

    pub fn with_principal(mut self, principal: &str) -> PeerInfo {
        self.principal = principal.to_string();
        self
    }
}

/// `spiffe://<trust_domain>/ns/<namespace>/sa/<service_account>`.
pub fn spiffe_principal(trust_domain: &str, namespace: &str, service_account: &str) -> String {
    format!("spiffe://{trust_domain}/ns/{namespace}/sa/{service_account}")
}

/// The service a request was sent to: `destination_service` (FQDN),
/// `destination_service_name`, `destination_service_namespace`.
#[derive(Clone, Debug, Default, Hash, PartialEq, Eq)]
pub struct DestinationService {
    pub fqdn: String,
    pub name: String,
    pub namespace: String,
}

impl DestinationService {
    pub fn new(fqdn: &str, name: &str, namespace: &str) -> Self {
        DestinationService {
            fqdn: fqdn.to_string(),
            name: name.to_string(),
            namespace: namespace.to_string(),
        }
    }

    /// `name.ns.svc.<domain>` gives (`name`, `ns`); any other host (a ServiceEntry host
    /// such as `api.example.com`) keeps the whole host as its name, in
    /// `default_namespace`, as Istio reports it.
    pub fn from_fqdn(fqdn: &str, default_namespace: &str) -> Self {
        let mut parts = fqdn.splitn(4, '.');
        if let (Some(name), Some(ns), Some("svc")) = (parts.next(), parts.next(), parts.next()) {
            if !name.is_empty() && !ns.is_empty() {
                return DestinationService::new(fqdn, name, ns);
            }
        }
        DestinationService::new(fqdn, fqdn, default_namespace)
    }
}

/// What kind of proxy this process is, which decides who reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProxyKind {
    /// Ingress gateway: always reports as `source`.
    Gateway,
    /// Sidecar: `source` on outbound, `destination` on inbound.
    Sidecar,
}

/// This proxy's own workload and role.
#[derive(Clone, Debug)]
pub struct ProxyIdentity {
    pub peer: Arc<PeerInfo>,
    pub kind: ProxyKind,
}

impl ProxyIdentity {
    pub fn new(peer: PeerInfo, kind: ProxyKind) -> Self {
        ProxyIdentity {
            peer: Arc::new(peer),
            kind,
        }
    }

    /// Istio's ingress gateway as Kiali expects it: workload `istio-ingressgateway` in
    /// `istio-system`, app `istio-ingressgateway`.
    pub fn default_gateway() -> Self {
        let labels = BTreeMap::from([("app".to_string(), "istio-ingressgateway".to_string())]);
        let peer = PeerInfo::from_labels("istio-ingressgateway", "istio-system", &labels, None);
        ProxyIdentity::new(peer, ProxyKind::Gateway)
    }

    pub fn cluster(&self) -> &str {
        &self.peer.cluster
    }

    /// An outbound hop from this proxy (gateway or sidecar outbound): reporter `source`,
    /// `connection_security_policy="unknown"`. `destination` is the upstream workload if
    /// known (endpoint labels or the peer metadata it answered with).
    pub fn outbound_edge(
        &self,
        destination: Option<Arc<PeerInfo>>,
        service: Arc<DestinationService>,
    ) -> EdgeSpec {
        EdgeSpec {
            reporter: Reporter::Source,
            source: self.peer.clone(),
            destination: destination.unwrap_or_else(|| Arc::new(PeerInfo::unknown(self.cluster()))),
            service,
            security: SecurityPolicy::Unknown,
        }
    }

    /// An inbound hop to this sidecar: reporter `destination`; `source` is the caller
    /// learnt from peer metadata (unknown without it); `mutual_tls` when the downstream
    /// connection was mTLS. A gateway reports only outbound hops, so on a gateway this
    /// still reports as `source`.
    pub fn inbound_edge(
        &self,
        source: Option<Arc<PeerInfo>>,
        service: Arc<DestinationService>,
        mutual_tls: bool,
    ) -> EdgeSpec {
        let reporter = match self.kind {
            ProxyKind::Gateway => Reporter::Source,
            ProxyKind::Sidecar => Reporter::Destination,
        };
        EdgeSpec {
            reporter,
            source: source.unwrap_or_else(|| Arc::new(PeerInfo::unknown(self.cluster()))),
            destination: self.peer.clone(),
            service,
            security: if mutual_tls {
                SecurityPolicy::MutualTls
            } else {
                SecurityPolicy::None
            },
        }
    }
}

/// Everything fixed about one hop; the key of an [`super::EdgeHandle`].
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub struct EdgeSpec {
    pub reporter: Reporter,
    pub source: Arc<PeerInfo>,
    pub destination: Arc<PeerInfo>,
    pub service: Arc<DestinationService>,
    pub security: SecurityPolicy,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn canonical_names_follow_istio_precedence() {
        let all = labels(&[
            ("service.istio.io/canonical-name", "canon"),
            ("app.kubernetes.io/name", "k8s-name"),
            ("app", "temperature"),
            ("service.istio.io/canonical-revision", "r7"),
            ("version", "v1"),
        ]);
        let p = PeerInfo::from_labels("temperature-v1", "default", &all, None);
        assert_eq!(
            (p.canonical_service.as_str(), p.canonical_revision.as_str()),
            ("canon", "r7")
        );
        assert_eq!((p.app.as_str(), p.version.as_str()), ("temperature", "v1"));
        assert_eq!(p.cluster, "Kubernetes");

        let k8s = labels(&[
            ("app.kubernetes.io/name", "k"),
            ("app", "a"),
            ("version", "v2"),
        ]);
        let p = PeerInfo::from_labels("w", "ns", &k8s, Some("spiffe://cluster.local/ns/ns/sa/w"));
        assert_eq!(
            (p.canonical_service.as_str(), p.canonical_revision.as_str()),
            ("k", "v2")
        );
        assert_eq!(p.principal, "spiffe://cluster.local/ns/ns/sa/w");

        let none = PeerInfo::from_labels("worker", "ns", &BTreeMap::new(), None);
        assert_eq!(none.canonical_service, "worker");
        assert_eq!(none.canonical_revision, "latest");
    }

    #[test]
    fn service_names_from_fqdn() {
        let s = DestinationService::from_fqdn("temperature-service.default.svc.cluster.local", "x");
        assert_eq!(
            (s.name.as_str(), s.namespace.as_str()),
            ("temperature-service", "default")
        );
        let e = DestinationService::from_fqdn("api.example.com", "istio-system");
        assert_eq!(
            (e.name.as_str(), e.namespace.as_str()),
            ("api.example.com", "istio-system")
        );
    }

    #[test]
    fn reporter_roles() {
        let svc = Arc::new(DestinationService::from_fqdn("a.b.svc.cluster.local", "b"));
        let gw = ProxyIdentity::default_gateway();
        assert_eq!(
            gw.outbound_edge(None, svc.clone()).reporter,
            Reporter::Source
        );
        let sc = ProxyIdentity::new(PeerInfo::default(), ProxyKind::Sidecar);
        let inbound = sc.inbound_edge(None, svc.clone(), true);
        assert_eq!(inbound.reporter, Reporter::Destination);
        assert_eq!(inbound.security, SecurityPolicy::MutualTls);
        assert_eq!(sc.outbound_edge(None, svc).reporter, Reporter::Source);
    }
}
