//! Upstream owns clusters at runtime: endpoints, load balancing, connection pools, outlier detection.
//!
//! [`ClusterManager`] keeps per-cluster state (endpoint health, ejections, in-flight
//! counters, pooled connections) across snapshot swaps and sends requests or opens
//! TCP connections to a cluster, answering failures with typed [`UpstreamError`]s.

mod admin;
mod body;
mod checkout;
mod cluster;
mod connect;
mod endpoint;
mod error;
mod guards;
mod hash;
mod lb;
mod metrics;
mod outlier;
mod pool;
mod send;
mod wire;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use dashmap::DashMap;
use foldhash::fast::RandomState;
use http::{HeaderValue, Version};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::BodyExt;

use crate::router::snapshot::{Cluster, ClusterName, Endpoint, LoadBalancerPolicy};

pub use body::UpstreamBody;
pub use connect::{
    BoxFuture, BoxedIo, TlsStream, UpstreamConnection, UpstreamStream, UpstreamTlsConnector,
    DEFAULT_CONNECT_TIMEOUT,
};
pub use error::{OverflowKind, UpstreamError};
pub use guards::RetryGuard;
pub use pool::DEFAULT_IDLE_TIMEOUT;

use cluster::{limit, ClusterState};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// The request body every upstream connection carries.
pub type RequestBody = UnsyncBoxBody<Bytes, BoxError>;

/// What the upstream needs to know about the downstream side of a request.
#[derive(Debug, Clone, Default)]
pub struct SendContext {
    /// The downstream peer: `useSourceIp` hashing and generated cookie values.
    pub source_addr: Option<SocketAddr>,
    /// The downstream connection's local address (part of generated cookie values).
    pub local_addr: Option<SocketAddr>,
    /// Picks the upstream protocol for `UpstreamProtocol::Client` clusters.
    pub downstream_version: Version,
    /// Response headers must arrive within this (route or per-try timeout) or the
    /// attempt ends with `UpstreamError::Timeout` (504 UT).
    pub timeout: Option<Duration>,
    /// The destination the downstream connection was addressed to (sidecar capture's
    /// `SO_ORIGINAL_DST`): PASSTHROUGH clusters connect there.
    pub original_dst: Option<SocketAddr>,
}

/// Where a request went.
#[derive(Debug, Clone)]
pub struct UpstreamInfo {
    pub cluster: ClusterName,
    /// The chosen endpoint (address, labels, service account).
    pub endpoint: Arc<Endpoint>,
    /// The connected socket address (differs from `endpoint.address` for DNS clusters).
    pub peer_addr: Option<SocketAddr>,
    /// `%UPSTREAM_LOCAL_ADDRESS%`
    pub local_addr: Option<SocketAddr>,
    /// The protocol spoken upstream.
    pub version: Version,
    pub reused_connection: bool,
    /// Consistent hashing on a cookie the client did not send, with a TTL configured:
    /// add this `Set-Cookie` to the downstream response.
    pub set_cookie: Option<HeaderValue>,
}

/// Runtime state of every cluster, shared by all workers.
pub struct ClusterManager {
    /// Looked up on every request: foldhash rather than SipHash.
    clusters: DashMap<ClusterName, Arc<ClusterState>, RandomState>,
    tls: Arc<dyn UpstreamTlsConnector>,
}

impl ClusterManager {
    /// `tls` originates TLS where a DestinationRule asks for it (the proxies use
    /// `mesh::upstream::MeshTlsConnector`: ISTIO_MUTUAL, SIMPLE and MUTUAL).
    pub fn with_tls_connector(tls: Arc<dyn UpstreamTlsConnector>) -> ClusterManager {
        ClusterManager {
            clusters: DashMap::with_hasher(RandomState::default()),
            tls,
        }
    }

    /// Adopts a new snapshot's clusters. Clusters and endpoints (by address) that still
    /// exist keep their state and pooled connections; the rest are dropped (their
    /// in-flight requests finish on the connections they hold).
    pub fn update(&self, clusters: &HashMap<ClusterName, Arc<Cluster>>) {
        self.clusters.retain(|name, _| clusters.contains_key(name));
        for (name, cluster) in clusters {
            match self.clusters.get(name) {
                Some(state) => state.apply(cluster),
                None => {
                    self.clusters
                        .insert(name.clone(), ClusterState::new(cluster));
                }
            }
        }
    }

    /// The current config of a cluster by name (e.g. for a plugin's `http_call`).
    pub fn cluster(&self, name: &str) -> Option<Arc<Cluster>> {
        self.clusters.get(name).map(|s| s.config.load_full())
    }

    /// State for `cluster`, created on first use if `update` has not seen it yet (a
    /// request can race a snapshot swap); the next `update` settles it.
    fn state(&self, cluster: &Arc<Cluster>) -> Arc<ClusterState> {
        if let Some(s) = self.clusters.get(&cluster.name) {
            return s.clone();
        }
        self.clusters
            .entry(cluster.name.clone())
            .or_insert_with(|| ClusterState::new(cluster))
            .clone()
    }

    /// Sends `req` to one endpoint of `cluster` and returns the response once its
    /// headers arrived. The response body keeps the request counted as active until
    /// it ends or is dropped. 5xx responses and local failures feed outlier detection.
    pub async fn send<B>(
        &self,
        cluster: &Arc<Cluster>,
        req: http::Request<B>,
        ctx: &SendContext,
    ) -> Result<(http::Response<UpstreamBody>, UpstreamInfo), UpstreamError>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let req = req.map(|b| b.map_err(Into::into).boxed_unsync());
        let state = self.state(cluster);
        send::send(&state, self.tls.as_ref(), req, ctx).await
    }

    /// Opens a connection to one endpoint of `cluster` for TCP proxying (TLS
    /// passthrough included), under the load balancer and `maxConnections`. TLS is
    /// originated when the cluster's policy asks for it.
    pub async fn connect_tcp(
        &self,
        cluster: &Arc<Cluster>,
        ctx: &SendContext,
    ) -> Result<(UpstreamConnection, UpstreamInfo), UpstreamError> {
        let state = self.state(cluster);
        let cfg = state.config.load_full();
        if let Some(reason) = &cfg.missing {
            return Err(UpstreamError::NoCluster {
                cluster: cfg.name.clone(),
                reason: reason.clone(),
            });
        }
        let hash = match &cfg.policy.lb {
            LoadBalancerPolicy::ConsistentHash(_) => ctx
                .source_addr
                .map(|a| hash::stable_hash(&[a.ip().to_string().as_bytes()])),
            _ => None,
        };
        let ep = state.choose(&cfg, hash, ctx.original_dst)?;
        let max = limit(cfg.policy.max_connections);
        let Some(slot) = state.reserve_connection(&ep, max) else {
            return Err(state.overflow(OverflowKind::MaxConnections, max));
        };
        match connect::open(&cfg, slot, self.tls.as_ref(), &[]).await {
            Ok(conn) => {
                state.record(&ep, outlier::Outcome::Status(200));
                let info = UpstreamInfo {
                    cluster: cfg.name.clone(),
                    endpoint: ep.endpoint.load_full(),
                    peer_addr: conn.peer_addr(),
                    local_addr: conn.local_addr(),
                    version: Version::HTTP_11,
                    reused_connection: false,
                    set_cookie: None,
                };
                Ok((conn, info))
            }
            Err(e) => {
                state.record(&ep, outlier::Outcome::LocalFailure);
                Err(e)
            }
        }
    }

    /// Admits one retry under `maxRetries` (concurrent retries per cluster); `None`
    /// means the retry budget overflowed and the caller should not retry.
    pub fn try_retry(&self, cluster: &Arc<Cluster>) -> Option<RetryGuard> {
        self.state(cluster).try_retry()
    }

    /// Requests in flight to `cluster` (all endpoints).
    pub fn active_requests(&self, cluster: &str) -> u32 {
        self.clusters
            .get(cluster)
            .map_or(0, |s| s.rq_active.load(Ordering::Relaxed))
    }

    /// Envoy's `/clusters` text, clusters sorted by name.
    pub fn clusters_text(&self) -> String {
        let mut states: Vec<Arc<ClusterState>> =
            self.clusters.iter().map(|e| e.value().clone()).collect();
        states.sort_by(|a, b| a.name.cmp(&b.name));
        let mut out = String::new();
        for s in states {
            admin::write_cluster(&mut out, &s);
        }
        out
    }
}
