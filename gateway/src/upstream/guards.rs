//! Guards that keep a cluster's counters exact however a request or connection ends:
//! each counter is taken by constructing a guard and given back by dropping it.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::cluster::ClusterState;
use super::endpoint::{now_ms, EndpointState};
use super::pool::{ConnShared, H1Conn};

/// One request in flight: counted in the cluster, its endpoint (least-request) and its
/// connection (idle timeout) until the response body ends or is dropped.
pub(crate) struct ActiveRequest {
    pub cluster: Arc<ClusterState>,
    pub endpoint: Option<Arc<EndpointState>>,
    pub conn: Option<Arc<ConnShared>>,
    /// The HTTP/1.1 connection carrying the response, with whether it must retire.
    pub h1: Option<(H1Conn, bool)>,
}

impl ActiveRequest {
    pub fn bind_endpoint(&mut self, ep: &Arc<EndpointState>) {
        ep.rq_active.fetch_add(1, Ordering::Relaxed);
        ep.stats.rq_total.fetch_add(1, Ordering::Relaxed);
        self.endpoint = Some(ep.clone());
    }

    /// Counts the request on `conn` (replacing a connection it was counted on before).
    pub fn bind_conn(&mut self, conn: &Arc<ConnShared>) {
        conn.active.fetch_add(1, Ordering::Relaxed);
        if let Some(old) = self.conn.replace(conn.clone()) {
            release_conn(&old);
        }
    }

    /// The response was read to the end: its HTTP/1.1 connection goes back to the pool
    /// now, so the caller's next request finds it. Otherwise (body dropped early) the
    /// connection is dropped with the request and hyper closes it.
    pub fn complete(mut self) {
        if let (Some((conn, false)), Some(ep)) = (self.h1.take(), self.endpoint.as_ref()) {
            ep.pool.put_idle_h1(conn);
            self.cluster.released.notify_waiters();
        }
    }
}

fn release_conn(conn: &ConnShared) {
    conn.last_idle.store(now_ms(), Ordering::Relaxed);
    conn.active.fetch_sub(1, Ordering::AcqRel);
}

impl Drop for ActiveRequest {
    fn drop(&mut self) {
        self.cluster.rq_active.fetch_sub(1, Ordering::AcqRel);
        if let Some(ep) = &self.endpoint {
            ep.rq_active.fetch_sub(1, Ordering::Relaxed);
        }
        if let Some(conn) = &self.conn {
            release_conn(conn);
        }
    }
}

pub(crate) struct PendingGuard(pub(crate) Arc<ClusterState>);

impl Drop for PendingGuard {
    fn drop(&mut self) {
        self.0.rq_pending.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Owned by the connection's IO: the counters drop when the socket does.
pub(crate) struct CxGuard {
    pub cluster: Arc<ClusterState>,
    pub endpoint: Arc<EndpointState>,
}

impl Drop for CxGuard {
    fn drop(&mut self) {
        self.endpoint.cx_active.fetch_sub(1, Ordering::Relaxed);
        self.cluster.cx_active.fetch_sub(1, Ordering::AcqRel);
        self.cluster.released.notify_waiters();
    }
}

/// A retry admitted under `maxRetries`; hold it for the duration of the retry.
pub struct RetryGuard(pub(crate) Arc<ClusterState>);

impl Drop for RetryGuard {
    fn drop(&mut self) {
        self.0.retries_active.fetch_sub(1, Ordering::AcqRel);
    }
}
