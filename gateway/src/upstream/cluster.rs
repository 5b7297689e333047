//! Runtime state of one cluster: its current config, endpoint set (with the round-robin
//! schedule and hash ring built once per update), circuit-breaker counters, and the
//! guards that keep those counters exact whichever way a request ends.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use dashmap::DashMap;
use tokio::sync::Notify;

use crate::router::snapshot::{Cluster, ClusterName, LoadBalancerPolicy};

use super::endpoint::{now_ms, EndpointState};
use super::error::{OverflowKind, UpstreamError};
pub(crate) use super::guards::{ActiveRequest, CxGuard, PendingGuard, RetryGuard};
use super::hash::Ring;

/// Endpoints in snapshot order plus the structures derived from them.
pub(crate) struct EndpointSet {
    pub list: Vec<Arc<EndpointState>>,
    /// Smooth weighted round-robin order (indices into `list`).
    pub rr_schedule: Vec<u32>,
    /// Built only for consistent-hash clusters.
    pub ring: Option<Ring>,
}

impl EndpointSet {
    fn build(list: Vec<Arc<EndpointState>>, lb: &LoadBalancerPolicy) -> EndpointSet {
        let ring = matches!(lb, LoadBalancerPolicy::ConsistentHash(_)).then(|| Ring::build(&list));
        EndpointSet {
            rr_schedule: smooth_wrr(&list),
            list,
            ring,
        }
    }
}

/// nginx's smooth weighted round robin unrolled into one period, so equal weights give
/// plain rotation and unequal ones interleave instead of bursting. Weights are scaled
/// down if the period would exceed 4096 picks.
fn smooth_wrr(list: &[Arc<EndpointState>]) -> Vec<u32> {
    let mut weights: Vec<u64> = list.iter().map(|e| e.weight()).collect();
    let g = weights.iter().copied().fold(0, gcd);
    if g > 1 {
        weights.iter_mut().for_each(|w| *w /= g);
    }
    let total: u64 = weights.iter().sum();
    if total > 4096 {
        weights
            .iter_mut()
            .for_each(|w| *w = (*w * 4096 / total).max(1));
    }
    let total: i64 = weights.iter().sum::<u64>() as i64;
    let mut current = vec![0i64; weights.len()];
    let mut order = Vec::with_capacity(total as usize);
    for _ in 0..total {
        let mut best = 0;
        for (i, w) in weights.iter().enumerate() {
            current[i] += *w as i64;
            if current[i] > current[best] {
                best = i;
            }
        }
        current[best] -= total;
        order.push(best as u32);
    }
    order
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// Envoy's circuit-breaker and outlier statistics for one cluster.
#[derive(Default)]
pub(crate) struct ClusterStats {
    pub cx_overflow: AtomicU64,
    pub rq_pending_overflow: AtomicU64,
    pub rq_overflow: AtomicU64,
    pub retry_overflow: AtomicU64,
    pub ejections_enforced_total: AtomicU64,
    pub ejections_overflow: AtomicU64,
}

pub(crate) struct ClusterState {
    pub name: ClusterName,
    pub config: ArcSwap<Cluster>,
    pub endpoints: ArcSwap<EndpointSet>,
    pub rr_next: AtomicUsize,
    pub rq_active: AtomicU32,
    pub rq_pending: AtomicU32,
    pub cx_active: AtomicU32,
    pub retries_active: AtomicU32,
    /// Signalled whenever a connection becomes idle or closes: pending requests retry.
    pub released: Notify,
    /// Serialises ejection decisions so `maxEjectionPercent` holds under concurrency.
    pub eject_lock: Mutex<()>,
    pub stats: ClusterStats,
    /// PASSTHROUGH clusters: endpoints made on demand per original destination.
    pub original_dst: DashMap<SocketAddr, Arc<EndpointState>>,
}

/// Istio treats 0 as "not set" for every connection-pool limit.
pub(crate) fn limit(v: Option<u32>) -> u32 {
    match v {
        None | Some(0) => u32::MAX,
        Some(n) => n,
    }
}

impl ClusterState {
    pub fn new(cluster: &Arc<Cluster>) -> Arc<ClusterState> {
        let list = cluster.endpoints.iter().map(EndpointState::new).collect();
        Arc::new(ClusterState {
            name: cluster.name.clone(),
            endpoints: ArcSwap::from_pointee(EndpointSet::build(list, &cluster.policy.lb)),
            config: ArcSwap::new(cluster.clone()),
            rr_next: AtomicUsize::new(0),
            rq_active: AtomicU32::new(0),
            rq_pending: AtomicU32::new(0),
            cx_active: AtomicU32::new(0),
            retries_active: AtomicU32::new(0),
            released: Notify::new(),
            eject_lock: Mutex::new(()),
            stats: ClusterStats::default(),
            original_dst: DashMap::new(),
        })
    }

    /// Applies a new compile of this cluster: endpoints that kept their address keep
    /// their counters, ejection state and pooled connections.
    pub fn apply(&self, cluster: &Arc<Cluster>) {
        let old_cfg = self.config.load_full();
        let reset_pools = old_cfg.protocol != cluster.protocol
            || old_cfg.policy.tls != cluster.policy.tls
            || old_cfg.dns != cluster.dns;
        let old = self.endpoints.load_full();
        let list: Vec<Arc<EndpointState>> = cluster
            .endpoints
            .iter()
            .map(
                |ep| match old.list.iter().find(|s| s.address == ep.address) {
                    Some(kept) => {
                        kept.refresh(ep);
                        if reset_pools {
                            kept.pool.clear();
                        }
                        kept.clone()
                    }
                    None => EndpointState::new(ep),
                },
            )
            .collect();
        self.config.store(cluster.clone());
        if reset_pools {
            self.original_dst.clear();
        } else {
            self.forget_idle_original_dst();
        }
        self.endpoints
            .store(Arc::new(EndpointSet::build(list, &cluster.policy.lb)));
        self.released.notify_waiters();
    }

    /// Counts a request against `http2MaxRequests` (Envoy applies it to every protocol).
    pub fn start_request(self: &Arc<Self>, max: u32) -> Result<ActiveRequest, UpstreamError> {
        if !try_inc(&self.rq_active, max) {
            self.stats.rq_overflow.fetch_add(1, Ordering::Relaxed);
            return Err(self.overflow(OverflowKind::MaxRequests, max));
        }
        Ok(ActiveRequest {
            cluster: self.clone(),
            endpoint: None,
            conn: None,
            h1: None,
        })
    }

    /// A request waits for a connection (queued, or while its connection is set up).
    pub fn start_pending(self: &Arc<Self>, max: u32) -> Result<PendingGuard, UpstreamError> {
        if !try_inc(&self.rq_pending, max) {
            self.stats
                .rq_pending_overflow
                .fetch_add(1, Ordering::Relaxed);
            return Err(self.overflow(OverflowKind::MaxPendingRequests, max));
        }
        Ok(PendingGuard(self.clone()))
    }

    /// Reserves one connection under `maxConnections`; `None` when the cluster is full.
    pub fn reserve_connection(
        self: &Arc<Self>,
        ep: &Arc<EndpointState>,
        max: u32,
    ) -> Option<CxGuard> {
        if !try_inc(&self.cx_active, max) {
            self.stats.cx_overflow.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        ep.cx_active.fetch_add(1, Ordering::Relaxed);
        ep.stats.cx_total.fetch_add(1, Ordering::Relaxed);
        Some(CxGuard {
            cluster: self.clone(),
            endpoint: ep.clone(),
        })
    }

    pub fn overflow(&self, kind: OverflowKind, limit: u32) -> UpstreamError {
        UpstreamError::Overflow {
            cluster: self.name.clone(),
            kind,
            limit,
        }
    }

    /// Closes one idle connection of another endpoint so a request stuck behind
    /// `maxConnections` can open its own.
    pub fn evict_idle_elsewhere(&self, keep: &Arc<EndpointState>) {
        let set = self.endpoints.load();
        for ep in set.list.iter().filter(|e| !Arc::ptr_eq(e, keep)) {
            if ep.pool.evict_one_idle() {
                return;
            }
        }
    }

    pub fn ejected_count(&self, now: u64) -> usize {
        self.endpoints
            .load()
            .list
            .iter()
            .filter(|e| e.is_ejected(now))
            .count()
    }

    pub fn no_healthy(&self) -> UpstreamError {
        let set = self.endpoints.load();
        UpstreamError::NoHealthyUpstream {
            cluster: self.name.clone(),
            endpoints: set.list.len(),
            ejected: self.ejected_count(now_ms()),
        }
    }
}

pub(crate) fn try_inc(counter: &AtomicU32, max: u32) -> bool {
    counter
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| {
            (v < max).then_some(v + 1)
        })
        .is_ok()
}

impl ClusterState {
    pub fn try_retry(self: &Arc<Self>) -> Option<RetryGuard> {
        let max = limit(self.config.load().policy.max_retries);
        if try_inc(&self.retries_active, max) {
            Some(RetryGuard(self.clone()))
        } else {
            self.stats.retry_overflow.fetch_add(1, Ordering::Relaxed);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::router::snapshot::Endpoint;

    #[test]
    fn smooth_wrr_interleaves_by_weight() {
        let eps: Vec<_> = [("a", 1), ("b", 1), ("c", 1)]
            .iter()
            .chain([("d", 0)].iter())
            .map(|(a, w)| {
                EndpointState::new(&Endpoint {
                    address: a.to_string(),
                    labels: Default::default(),
                    weight: *w,
                    service_account: None,
                })
            })
            .collect();
        assert_eq!(smooth_wrr(&eps), vec![0, 1, 2, 3]);
        let weighted: Vec<_> = [("a", 5), ("b", 1), ("c", 1)]
            .iter()
            .map(|(a, w)| {
                EndpointState::new(&Endpoint {
                    address: a.to_string(),
                    labels: Default::default(),
                    weight: *w,
                    service_account: None,
                })
            })
            .collect();
        let order = smooth_wrr(&weighted);
        assert_eq!(order, vec![0, 0, 1, 0, 2, 0, 0]);
    }
}
