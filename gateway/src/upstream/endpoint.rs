//! Runtime state of one endpoint of one cluster: in-flight counters, statistics,
//! outlier-ejection state and its connection pool. Kept across snapshot swaps while
//! the endpoint keeps its address.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use arc_swap::ArcSwap;

use crate::router::snapshot::Endpoint;

use super::pool::EndpointPool;

/// Milliseconds on a monotonic clock local to this process; never 0, so 0 can mean
/// "not set" in atomics.
pub(crate) fn now_ms() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    let epoch = EPOCH.get_or_init(Instant::now);
    epoch.elapsed().as_millis() as u64 + 1
}

#[derive(Default)]
pub(crate) struct EndpointStats {
    pub rq_total: AtomicU64,
    pub rq_success: AtomicU64,
    pub rq_error: AtomicU64,
    pub rq_timeout: AtomicU64,
    pub cx_total: AtomicU64,
    pub cx_connect_fail: AtomicU64,
}

/// Consecutive-error counters and ejection state (Envoy's per-host outlier monitor).
#[derive(Default)]
pub(crate) struct OutlierHost {
    pub consecutive_5xx: AtomicU32,
    pub consecutive_gateway: AtomicU32,
    /// `now_ms()` at which an ejection ends; 0 while in service.
    pub ejected_until: AtomicU64,
    /// Multiplier of `baseEjectionTime` for the next ejection; decays while healthy.
    pub backoff: AtomicU32,
    pub last_unejected: AtomicU64,
    pub ejections_total: AtomicU64,
}

pub(crate) struct EndpointState {
    pub address: String,
    pub endpoint: ArcSwap<Endpoint>,
    /// Load-balancing weight (at least 1).
    pub weight: AtomicU32,
    pub rq_active: AtomicU32,
    pub cx_active: AtomicU32,
    pub stats: EndpointStats,
    pub outlier: OutlierHost,
    pub pool: EndpointPool,
}

impl EndpointState {
    pub fn new(endpoint: &Endpoint) -> Arc<EndpointState> {
        Arc::new(EndpointState {
            address: endpoint.address.clone(),
            endpoint: ArcSwap::from_pointee(endpoint.clone()),
            weight: AtomicU32::new(endpoint.weight.max(1)),
            rq_active: AtomicU32::new(0),
            cx_active: AtomicU32::new(0),
            stats: EndpointStats::default(),
            outlier: OutlierHost::default(),
            pool: EndpointPool::default(),
        })
    }

    /// Takes new labels/weight from a snapshot that kept this address.
    pub fn refresh(&self, endpoint: &Endpoint) {
        self.endpoint.store(Arc::new(endpoint.clone()));
        self.weight.store(endpoint.weight.max(1), Ordering::Relaxed);
    }

    pub fn weight(&self) -> u64 {
        u64::from(self.weight.load(Ordering::Relaxed).max(1))
    }

    pub fn rq_active(&self) -> u64 {
        u64::from(self.rq_active.load(Ordering::Relaxed))
    }

    /// True unless ejected; an ejection whose time has passed ends here (lazily, so no
    /// timer task is needed), resetting the consecutive counters as Envoy does.
    pub fn in_service(&self, now: u64) -> bool {
        let until = self.outlier.ejected_until.load(Ordering::Acquire);
        if until == 0 {
            return true;
        }
        if now < until {
            return false;
        }
        if self
            .outlier
            .ejected_until
            .compare_exchange(until, 0, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            self.outlier.consecutive_5xx.store(0, Ordering::Relaxed);
            self.outlier.consecutive_gateway.store(0, Ordering::Relaxed);
            self.outlier.last_unejected.store(now, Ordering::Relaxed);
        }
        true
    }

    pub fn is_ejected(&self, now: u64) -> bool {
        !self.in_service(now)
    }
}
