//! Getting a connection for a request: a pooled one, a new one under
//! `maxConnections`, or a wait as a pending request (`http1MaxPendingRequests`).

use std::sync::atomic::Ordering;

use super::cluster::{limit, CxGuard, PendingGuard};
use super::connect;
use super::error::UpstreamError;
use super::pool::{self, H1Conn, H2Conn};
use super::send::Exchange;

impl Exchange<'_> {
    /// Counts this request as pending once (it stays so until a connection is had).
    fn ensure_pending(&self, pending: &mut Option<PendingGuard>) -> Result<(), UpstreamError> {
        if pending.is_none() {
            let max = limit(self.cluster.policy.max_pending_requests);
            *pending = Some(self.state.start_pending(max)?);
        }
        Ok(())
    }

    // Opening a connection is boxed: its futures (connect, TLS, handshake) are the
    // largest part of a request's state machine, and every request future is sized for
    // its largest path — while pooled requests never take this one. Smaller request
    // futures are cheaper to move and to keep per idle downstream connection.
    async fn open_h1(&self, slot: CxGuard) -> Result<H1Conn, UpstreamError> {
        let conn = connect::open(self.cluster, slot, self.tls, &[b"http/1.1"]).await?;
        pool::handshake_h1(conn, &self.ep.address, self.idle_timeout()).await
    }

    async fn open_h2(&self, slot: CxGuard) -> Result<H2Conn, UpstreamError> {
        let conn = connect::open(self.cluster, slot, self.tls, &[b"h2"]).await?;
        pool::handshake_h2(conn, &self.ep.address, self.idle_timeout()).await
    }

    pub(crate) async fn acquire_h1(&self) -> Result<(H1Conn, bool), UpstreamError> {
        let policy = &self.cluster.policy;
        let mut pending: Option<PendingGuard> = None;
        loop {
            let released = self.state.released.notified();
            tokio::pin!(released);
            released.as_mut().enable();
            if let Some(conn) = self.ep.pool.take_idle_h1().await {
                return Ok((conn, true));
            }
            if let Some(slot) = self
                .state
                .reserve_connection(self.ep, limit(policy.max_connections))
            {
                // Envoy counts a request as pending while its connection is set up.
                self.ensure_pending(&mut pending)?;
                let conn = Box::pin(self.open_h1(slot)).await?;
                return Ok((conn, false));
            }
            self.ensure_pending(&mut pending)?;
            self.state.evict_idle_elsewhere(self.ep);
            released.await;
        }
    }

    /// The endpoint's shared HTTP/2 connection, opening it if needed. Requests that
    /// queue while it is being opened are pending.
    pub(crate) async fn acquire_h2(&self) -> Result<(H2Conn, bool), UpstreamError> {
        let policy = &self.cluster.policy;
        let max_per_conn = limit(policy.max_requests_per_connection);
        let mut pending: Option<PendingGuard> = None;
        loop {
            let released = self.state.released.notified();
            tokio::pin!(released);
            released.as_mut().enable();
            let seen_failures = self.ep.pool.h2_failures.load(Ordering::Acquire);
            let mut slot = match self.ep.pool.h2.try_lock() {
                Ok(slot) => slot,
                Err(_) => {
                    self.ensure_pending(&mut pending)?;
                    self.ep.pool.h2.lock().await
                }
            };
            let open = slot
                .conn
                .as_ref()
                .filter(|c| !c.sender.is_closed() && !c.shared.retired.load(Ordering::Acquire))
                .cloned();
            if let Some(conn) = open {
                if conn.shared.take_request(max_per_conn) {
                    slot.conn = None;
                }
                return Ok((conn, true));
            }
            slot.conn = None;
            if self.ep.pool.h2_failures.load(Ordering::Acquire) > seen_failures {
                if let Some(e) = slot.last_error.clone() {
                    return Err(e);
                }
            }
            if let Some(cx) = self
                .state
                .reserve_connection(self.ep, limit(policy.max_connections))
            {
                self.ensure_pending(&mut pending)?;
                let opened = Box::pin(self.open_h2(cx)).await;
                return match opened {
                    Ok(conn) => {
                        if !conn.shared.take_request(max_per_conn) {
                            slot.conn = Some(conn.clone());
                        }
                        Ok((conn, false))
                    }
                    Err(e) => {
                        slot.last_error = Some(e.clone());
                        self.ep.pool.h2_failures.fetch_add(1, Ordering::AcqRel);
                        Err(e)
                    }
                };
            }
            drop(slot);
            self.ensure_pending(&mut pending)?;
            self.state.evict_idle_elsewhere(self.ep);
            released.await;
        }
    }
}
