//! Proxy owns the listeners and the HTTP/TCP request path from accept to response.

pub mod admin_state;
pub mod body;
pub mod forward;
pub mod headers;
pub mod http;
pub mod inbound;
pub mod listener;
pub mod local_reply;
pub mod port;
pub mod retry;
pub mod server;
pub mod tcp;
pub mod telemetry;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;

use self::body::ObservedBody;
use self::http::{ConnInfo, RequestLog};
use self::local_reply::Body;
use self::telemetry::ProxyTelemetry;
use crate::config::Labels;
use crate::router::{Cluster, ClusterName, RouteAction, Snapshot, WeightedDestination};
use crate::upstream::ClusterManager;

/// Which side of the mesh this proxy sits on; decides route tables and reporter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Ingress gateway: Gateway servers and their bound VirtualServices.
    Gateway,
    /// Sidecar outbound: `mesh` VirtualServices, then the service's default route.
    SidecarOutbound,
    /// Sidecar inbound: everything goes to the local app.
    SidecarInbound,
}

/// This proxy's own workload, for `sourceLabels` matching and telemetry.
#[derive(Debug, Clone, Default)]
pub struct Workload {
    pub name: String,
    pub namespace: String,
    pub labels: Labels,
    pub service_account: String,
}

/// One finished request, handed to observers (metrics, access log).
#[derive(Debug, Clone)]
pub struct Completed {
    pub facts: RequestFacts,
    pub log: RequestLog,
    pub status: u16,
    pub response_bytes: u64,
    pub duration: Duration,
    pub completed: bool,
    /// `grpc-status` the client received (trailers, or headers when trailers-only).
    pub grpc_status: Option<u32>,
    pub conn: Arc<ConnInfo>,
}

/// What was asked, captured before the request moves on.
#[derive(Debug, Clone, Default)]
pub struct RequestFacts {
    pub method: ::http::Method,
    pub path: String,
    pub authority: String,
    pub protocol: &'static str,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    pub forwarded_for: Option<String>,
    pub request_bytes: u64,
    pub grpc: bool,
    pub start: Option<std::time::SystemTime>,
}

/// Receives every finished request (telemetry, access log). Must not block.
pub trait Observer: Send + Sync {
    fn on_complete(&self, done: &Completed);
}

/// A sidecar's inbound route: every request goes to the local app.
pub struct InboundRoute {
    pub action: RouteAction,
}

/// Everything the request path shares: the live snapshot and the runtime around it.
pub struct ProxyState {
    /// Shared by the states of one process (a sidecar's inbound and outbound sides).
    snapshot: Arc<ArcSwap<Snapshot>>,
    pub upstream: Arc<ClusterManager>,
    pub role: Role,
    pub workload: Workload,
    pub observers: Vec<Arc<dyn Observer>>,
    /// Set on a sidecar's inbound side.
    pub inbound: Option<InboundRoute>,
    /// Clusters that come from the proxy's own flags rather than config (the local app).
    pub local_clusters: HashMap<ClusterName, Arc<Cluster>>,
    /// Istio metrics and peer metadata exchange (also listed in `observers`).
    pub telemetry: Option<Arc<ProxyTelemetry>>,
}

impl ProxyState {
    pub fn new(
        snapshot: Snapshot,
        upstream: Arc<ClusterManager>,
        role: Role,
        workload: Workload,
    ) -> Self {
        ProxyState::with_parts(
            snapshot,
            upstream,
            role,
            workload,
            Vec::new(),
            None,
            HashMap::new(),
        )
    }

    pub fn with_parts(
        snapshot: Snapshot,
        upstream: Arc<ClusterManager>,
        role: Role,
        workload: Workload,
        observers: Vec<Arc<dyn Observer>>,
        inbound: Option<InboundRoute>,
        local_clusters: HashMap<ClusterName, Arc<Cluster>>,
    ) -> Self {
        let state = ProxyState {
            snapshot: Arc::new(ArcSwap::from_pointee(Snapshot::default())),
            upstream,
            role,
            workload,
            observers,
            inbound,
            local_clusters,
            telemetry: None,
        };
        state.publish(snapshot);
        state
    }

    /// Another role over the same snapshot and upstreams (a sidecar's outbound side
    /// beside its inbound one): a publish through either is seen by both.
    pub fn sibling(&self, role: Role) -> ProxyState {
        ProxyState {
            snapshot: self.snapshot.clone(),
            upstream: self.upstream.clone(),
            role,
            workload: self.workload.clone(),
            observers: self.observers.clone(),
            inbound: None,
            local_clusters: HashMap::new(),
            telemetry: self.telemetry.clone(),
        }
    }

    /// Like `sibling`, with its own telemetry (its own reporter role).
    pub fn sibling_with(&self, role: Role, telemetry: Arc<ProxyTelemetry>) -> ProxyState {
        let mut s = self.sibling(role);
        s.observers.clear();
        s.telemetry = None;
        s.with_telemetry(telemetry)
    }

    /// Turns on Istio metrics, peer metadata exchange and (optionally) the access log.
    pub fn with_telemetry(mut self, telemetry: Arc<ProxyTelemetry>) -> Self {
        self.observers.push(telemetry.clone());
        self.telemetry = Some(telemetry);
        self
    }

    /// The live snapshot; a request keeps the one it started with until it ends.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.load_full()
    }

    /// Swaps in a new snapshot atomically (its clusters first, so no route is ever
    /// published before its cluster).
    pub fn publish(&self, snapshot: Snapshot) {
        if self.local_clusters.is_empty() {
            self.upstream.update(&snapshot.clusters);
        } else {
            let mut all = snapshot.clusters.clone();
            all.extend(
                self.local_clusters
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone())),
            );
            self.upstream.update(&all);
        }
        self.snapshot.store(Arc::new(snapshot));
    }

    /// The route a sidecar takes to a known service that no VirtualService covers:
    /// all of its endpoints, default load balancing and retries.
    fn default_route(
        &self,
        snapshot: &Snapshot,
        authority: &str,
        port: u32,
    ) -> Option<RouteAction> {
        let ns = Some(self.workload.namespace.as_str()).filter(|n| !n.is_empty());
        let cluster = snapshot.service_cluster(authority, port, ns)?;
        Some(RouteAction {
            destinations: vec![WeightedDestination {
                cluster: cluster.name.clone(),
                host: cluster.host.clone(),
                subset: None,
                port: Some(cluster.port),
                weight: 1,
                headers: Default::default(),
            }],
            total_weight: 1,
            ..Default::default()
        })
    }

    fn source_labels(&self) -> Option<&Labels> {
        (self.role == Role::SidecarOutbound).then_some(&self.workload.labels)
    }

    fn source_namespace(&self) -> Option<&str> {
        (self.role == Role::SidecarOutbound).then_some(self.workload.namespace.as_str())
    }

    /// Peer metadata on a request going upstream: a sidecar's inbound side learns (and
    /// removes) who called; gateways and outbound sidecars say who they are.
    fn on_upstream_request(
        &self,
        headers: &mut ::http::HeaderMap,
        conn: &ConnInfo,
        log: &mut RequestLog,
    ) {
        let Some(t) = &self.telemetry else { return };
        match self.role {
            Role::SidecarInbound => log.peer = t.take_peer(headers, conn.peer_identity.as_ref()),
            Role::Gateway | Role::SidecarOutbound => t.insert_own(headers),
        }
    }

    /// Peer metadata on the upstream's response: the inbound side answers with its own;
    /// the other side learns (and removes) who answered.
    fn on_upstream_response(&self, headers: &mut ::http::HeaderMap, log: &mut RequestLog) {
        let Some(t) = &self.telemetry else { return };
        match self.role {
            Role::SidecarInbound => t.insert_own(headers),
            Role::Gateway | Role::SidecarOutbound => {
                if let Some(p) = t.take_peer(headers, None) {
                    log.peer = Some(p);
                }
            }
        }
    }

    /// Wraps the response so observers hear about it when its body ends.
    fn observe(
        self: &Arc<Self>,
        resp: ::http::Response<Body>,
        facts: RequestFacts,
        start: Instant,
        conn: &Arc<ConnInfo>,
        log: RequestLog,
    ) -> ::http::Response<Body> {
        if self.observers.is_empty() {
            return resp;
        }
        let status = resp.status().as_u16();
        let header_grpc = retry::grpc_status_of(resp.headers());
        let state = self.clone();
        let conn = conn.clone();
        resp.map(move |b| {
            let done = move |bytes: u64, completed: bool, trailer_grpc: Option<u32>| {
                let c = Completed {
                    facts,
                    log,
                    status,
                    response_bytes: bytes,
                    duration: start.elapsed(),
                    completed,
                    grpc_status: trailer_grpc.or(header_grpc),
                    conn,
                };
                for o in &state.observers {
                    o.on_complete(&c);
                }
            };
            http_body_util::BodyExt::boxed_unsync(ObservedBody::new(b, done))
        })
    }
}
