//! The proxy's side of telemetry: peer metadata exchange on the way through, and one
//! Istio metric record plus one access-log line per finished request. Parsed peers and
//! metric edges are cached so a request costs a couple of hash lookups.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

use dashmap::DashMap;
use foldhash::fast::RandomState;
use http::{HeaderMap, HeaderValue};

use super::{Completed, Observer, Role, Workload};
use crate::telemetry::{
    strip_peer_headers, AccessLog, AccessLogEntry, DestinationService, EdgeHandle, HttpRecord,
    Metrics, PeerInfo, PeerMetadata, PeerNodeId, ProxyIdentity, ProxyKind, RequestProtocol,
    ResponseFlags, PEER_METADATA, PEER_METADATA_HEADER, PEER_METADATA_ID,
};

/// Bound on cached peers and edges: peer metadata comes from the network.
const MAX_CACHED: usize = 10_000;

pub struct ProxyTelemetry {
    pub metrics: Arc<Metrics>,
    identity: ProxyIdentity,
    role: Role,
    /// This proxy's own metadata headers, encoded once.
    own_metadata: HeaderValue,
    own_id: HeaderValue,
    /// The service an inbound sidecar fronts.
    inbound_service: Arc<DestinationService>,
    namespace: String,
    // foldhash, not SipHash: both are looked up on every request (randomly seeded,
    // and the peer cache is bounded by MAX_CACHED).
    peers: DashMap<(HeaderValue, Option<Arc<str>>), Arc<PeerInfo>, RandomState>,
    edges: DashMap<(Arc<str>, usize, bool), Arc<EdgeHandle>, RandomState>,
    access_log: Option<AccessLog>,
}

impl ProxyTelemetry {
    pub fn new(
        metrics: Arc<Metrics>,
        role: Role,
        workload: &Workload,
        service: &str,
        access_log: Option<AccessLog>,
    ) -> Self {
        let kind = if role == Role::Gateway {
            ProxyKind::Gateway
        } else {
            ProxyKind::Sidecar
        };
        let principal = format!(
            "spiffe://cluster.local/ns/{}/sa/{}",
            workload.namespace, workload.service_account
        );
        let peer = PeerInfo::from_labels(
            &workload.name,
            &workload.namespace,
            &workload.labels,
            Some(&principal),
        );
        let meta = PeerMetadata {
            name: format!("{}-0", workload.name),
            namespace: workload.namespace.clone(),
            workload_name: workload.name.clone(),
            cluster_id: crate::telemetry::DEFAULT_CLUSTER.to_string(),
            service_account: workload.service_account.clone(),
            owner: format!(
                "kubernetes://apis/apps/v1/namespaces/{}/deployments/{}",
                workload.namespace, workload.name
            ),
            app_containers: workload.name.clone(),
            instance_ips: "127.0.0.1".into(),
            labels: workload.labels.clone(),
        };
        let id = PeerNodeId::sidecar("127.0.0.1", &meta.name, &workload.namespace);
        let mut h = HeaderMap::new();
        meta.insert_headers(&id, &mut h);
        let fqdn = format!("{service}.{}.svc.cluster.local", workload.namespace);
        ProxyTelemetry {
            metrics,
            identity: ProxyIdentity::new(peer, kind),
            role,
            own_metadata: h
                .get(PEER_METADATA_HEADER)
                .cloned()
                .unwrap_or(HeaderValue::from_static("")),
            own_id: h
                .get(crate::telemetry::PEER_METADATA_ID_HEADER)
                .cloned()
                .unwrap_or(HeaderValue::from_static("")),
            inbound_service: Arc::new(DestinationService::new(&fqdn, service, &workload.namespace)),
            namespace: workload.namespace.clone(),
            peers: DashMap::with_hasher(RandomState::default()),
            edges: DashMap::with_hasher(RandomState::default()),
            access_log,
        }
    }

    /// Adds this proxy's metadata to a message leaving it (requests upstream from a
    /// gateway or outbound sidecar; responses from an inbound sidecar).
    pub fn insert_own(&self, headers: &mut HeaderMap) {
        if !self.own_metadata.is_empty() {
            headers.insert(PEER_METADATA, self.own_metadata.clone());
            headers.insert(PEER_METADATA_ID, self.own_id.clone());
        }
    }

    /// Takes the other side's metadata off a message (so the app never sees it) and
    /// returns who it says it is, with `principal` from mTLS when there was one (alone,
    /// when the caller sent no metadata).
    pub fn take_peer(
        &self,
        headers: &mut HeaderMap,
        principal: Option<&Arc<str>>,
    ) -> Option<Arc<PeerInfo>> {
        let raw = headers.get(PEER_METADATA).cloned();
        strip_peer_headers(headers);
        if raw.is_none() && principal.is_none() {
            return None;
        }
        let key = (
            raw.unwrap_or_else(|| HeaderValue::from_static("")),
            principal.cloned(),
        );
        if let Some(p) = self.peers.get(&key) {
            return Some(p.clone());
        }
        let info = match (PeerMetadata::from_header_value(key.0.as_bytes()), principal) {
            (Ok(meta), _) => meta.to_peer_info(principal.map(|p| p.as_ref())),
            // No (usable) metadata: an mTLS caller is still known by its principal.
            (Err(_), Some(p)) => PeerInfo::unknown(self.identity.cluster()).with_principal(p),
            (Err(_), None) => return None,
        };
        let info = Arc::new(info);
        if self.peers.len() < MAX_CACHED {
            self.peers.insert(key, info.clone());
        }
        Some(info)
    }

    fn edge(&self, done: &Completed) -> Arc<EdgeHandle> {
        let peer = done.log.peer.clone();
        let mtls = done.conn.peer_identity.is_some();
        let (service_key, service): (Arc<str>, Option<&str>) = match self.role {
            Role::SidecarInbound => (Arc::from("inbound"), None),
            _ => match &done.log.destination_host {
                Some(h) => (Arc::from(h.as_str()), Some(h.as_str())),
                None => (Arc::from(""), None),
            },
        };
        let key = (
            service_key,
            peer.as_ref().map_or(0, |p| Arc::as_ptr(p) as usize),
            mtls,
        );
        if let Some(e) = self.edges.get(&key) {
            return e.clone();
        }
        let spec = match self.role {
            Role::SidecarInbound => {
                self.identity
                    .inbound_edge(peer, self.inbound_service.clone(), mtls)
            }
            _ => {
                let svc = match service {
                    Some(h) if !h.is_empty() => DestinationService::from_fqdn(h, &self.namespace),
                    _ => DestinationService::new("unknown", "unknown", "unknown"),
                };
                self.identity.outbound_edge(peer, Arc::new(svc))
            }
        };
        let edge = self.metrics.istio.edge(&spec);
        if self.edges.len() < MAX_CACHED {
            self.edges.insert(key, edge.clone());
        }
        edge
    }
}

impl Observer for ProxyTelemetry {
    fn on_complete(&self, done: &Completed) {
        let flags = done
            .log
            .flag
            .split(',')
            .filter_map(ResponseFlags::from_short_name)
            .fold(ResponseFlags::default(), |a, f| ResponseFlags(a.0 | f.0));
        let edge = self.edge(done);
        let record = HttpRecord {
            protocol: if done.facts.grpc {
                RequestProtocol::Grpc
            } else {
                RequestProtocol::Http
            },
            response_code: if done.completed || done.status != 0 {
                done.status
            } else {
                0
            },
            grpc_status: done.log.grpc_status.or(if done.facts.grpc {
                done.grpc_status
            } else {
                None
            }),
            flags,
            duration: done.duration,
            request_bytes: done.facts.request_bytes,
            response_bytes: done.response_bytes,
        };
        self.metrics.istio.record_http(&edge, &record);
        if let Some(log) = &self.access_log {
            let mut e = AccessLogEntry::new(done.facts.start.unwrap_or_else(SystemTime::now));
            e.method = Some(done.facts.method.clone());
            e.path = HeaderValue::from_str(&done.facts.path).ok();
            e.protocol = Some(done.facts.protocol);
            e.response_code = done.status;
            e.response_flags = flags;
            e.bytes_received = done.facts.request_bytes;
            e.bytes_sent = done.response_bytes;
            e.duration = done.duration;
            e.x_forwarded_for = done
                .facts
                .forwarded_for
                .as_deref()
                .and_then(|v| HeaderValue::from_str(v).ok());
            e.user_agent = done
                .facts
                .user_agent
                .as_deref()
                .and_then(|v| HeaderValue::from_str(v).ok());
            e.request_id = done
                .log
                .request_id
                .as_deref()
                .and_then(|v| HeaderValue::from_str(v).ok());
            e.authority = HeaderValue::from_str(&done.facts.authority).ok();
            e.upstream_host = done
                .log
                .upstream_host
                .as_deref()
                .and_then(|h| h.parse::<SocketAddr>().ok());
            e.upstream_cluster = done.log.cluster.clone();
            e.downstream_local_address = Some(done.conn.local);
            e.downstream_remote_address = Some(done.conn.remote);
            e.requested_server_name = done.conn.sni.clone();
            e.route_name = done.log.route_name.as_deref().map(Arc::from);
            log.log(e);
        }
    }
}

/// Metrics that WasmPlugins define (`proxy_define_metric`), summed over every VM of
/// the process, exported under the plugins' own names at each scrape.
pub struct WasmPluginMetrics;

impl crate::telemetry::ExtraMetrics for WasmPluginMetrics {
    fn collect(&self, out: &mut Vec<crate::telemetry::ExtraMetric>) {
        use crate::telemetry::{ExtraMetric, ExtraValue};
        use crate::wasm::MetricValue;
        for m in crate::wasm::plugin_metrics() {
            let value = match m.value {
                MetricValue::Counter(v) => ExtraValue::Counter(v),
                MetricValue::Gauge(v) => ExtraValue::Gauge(v),
                MetricValue::Histogram {
                    count,
                    sum,
                    buckets,
                } => {
                    // The host keeps cumulative counts; the exporter wants each bucket alone.
                    let mut prev = 0;
                    let buckets = buckets
                        .into_iter()
                        .map(|(bound, cumulative)| {
                            let own = cumulative.saturating_sub(prev);
                            prev = cumulative;
                            (bound, own)
                        })
                        .collect();
                    ExtraValue::Histogram {
                        buckets,
                        count,
                        sum: sum as f64,
                    }
                }
            };
            out.push(ExtraMetric {
                name: m.name,
                help: "Defined by a WasmPlugin.".into(),
                labels: Vec::new(),
                value,
            });
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn inbound() -> ProxyTelemetry {
        let workload = Workload {
            name: "temperature-service".into(),
            namespace: "default".into(),
            labels: Default::default(),
            service_account: "temperature-service".into(),
        };
        let metrics = Arc::new(Metrics::new("test"));
        ProxyTelemetry::new(
            metrics,
            Role::SidecarInbound,
            &workload,
            "temperature-service",
            None,
        )
    }

    #[test]
    fn an_mtls_caller_without_metadata_keeps_its_principal() {
        let t = inbound();
        let principal: Arc<str> = Arc::from("spiffe://cluster.local/ns/default/sa/temperature-api");
        let first = t
            .take_peer(&mut HeaderMap::new(), Some(&principal))
            .unwrap();
        assert_eq!(first.principal, principal.as_ref());
        assert!(first.workload.is_empty(), "the workload stays unknown");
        // Cached: the same peer (and so the same metric edge) every time.
        let again = t
            .take_peer(&mut HeaderMap::new(), Some(&principal))
            .unwrap();
        assert!(Arc::ptr_eq(&first, &again));
        // Garbage metadata is no better than none.
        let mut bad = HeaderMap::new();
        bad.insert(
            PEER_METADATA_HEADER,
            HeaderValue::from_static("not-base64!"),
        );
        let p = t.take_peer(&mut bad, Some(&principal)).unwrap();
        assert_eq!(p.principal, principal.as_ref());
        assert!(bad.is_empty(), "exchange headers never reach the app");
        // A plaintext caller without metadata is unknown.
        assert!(t.take_peer(&mut HeaderMap::new(), None).is_none());
    }
}
