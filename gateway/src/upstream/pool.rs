//! Per-endpoint connection pools shared by all worker threads: idle HTTP/1.1
//! keep-alive connections and one multiplexed HTTP/2 connection. Each connection's
//! task also closes it after `idleTimeout` without requests.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};

use super::connect::UpstreamConnection;
use super::endpoint::now_ms;
use super::error::UpstreamError;
use super::RequestBody;

/// Istio's default `idleTimeout`.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(3600);

/// How long a checkout waits for a just-released HTTP/1.1 connection to take requests.
const READY_GRACE: Duration = Duration::from_millis(50);

/// What requests on one connection share.
pub(crate) struct ConnShared {
    /// Requests ever sent on it (for `maxRequestsPerConnection`).
    pub requests: AtomicU32,
    /// Requests whose response has not ended yet.
    pub active: AtomicU32,
    pub last_idle: AtomicU64,
    pub peer: Option<SocketAddr>,
    pub local: Option<SocketAddr>,
    /// No new requests: reached `maxRequestsPerConnection` or the pool was cleared.
    pub retired: AtomicBool,
}

impl ConnShared {
    /// Counts one more request; true when that reaches `max` and the connection must
    /// take no more.
    pub fn take_request(&self, max: u32) -> bool {
        let n = self.requests.fetch_add(1, Ordering::AcqRel) + 1;
        if n >= max {
            self.retired.store(true, Ordering::Release);
        }
        self.retired.load(Ordering::Acquire)
    }
}

pub(crate) struct H1Conn {
    pub sender: http1::SendRequest<RequestBody>,
    pub shared: Arc<ConnShared>,
}

#[derive(Clone)]
pub(crate) struct H2Conn {
    pub sender: http2::SendRequest<RequestBody>,
    pub shared: Arc<ConnShared>,
}

#[derive(Default)]
pub(crate) struct H2Slot {
    pub conn: Option<H2Conn>,
    /// The last failed connect: requests that queued behind a failing attempt share its
    /// error (counted in `EndpointPool::h2_failures`) instead of each waiting out a timeout.
    pub last_error: Option<UpstreamError>,
}

#[derive(Default)]
pub(crate) struct EndpointPool {
    idle_h1: Mutex<Vec<H1Conn>>,
    pub h2: tokio::sync::Mutex<H2Slot>,
    pub h2_failures: AtomicU64,
}

impl EndpointPool {
    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<H1Conn>> {
        match self.idle_h1.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// The most recently used idle connection that is still open (LIFO keeps the
    /// working set small so the rest can time out). A connection whose response just
    /// ended may need a moment before hyper takes the next request: wait for that.
    pub async fn take_idle_h1(&self) -> Option<H1Conn> {
        loop {
            let mut conn = self.idle().pop()?;
            if conn.sender.is_closed() || conn.shared.retired.load(Ordering::Acquire) {
                continue;
            }
            if conn.sender.is_ready() {
                return Some(conn);
            }
            // Normally a matter of hyper's connection task running once; a connection
            // still busy (its request body outlived the response) is let go instead.
            if let Ok(Ok(())) = tokio::time::timeout(READY_GRACE, conn.sender.ready()).await {
                return Some(conn);
            }
        }
    }

    pub fn put_idle_h1(&self, conn: H1Conn) {
        if !conn.shared.retired.load(Ordering::Acquire) {
            self.idle().push(conn);
        }
    }

    /// Drops one idle connection (HTTP/1.1, else an HTTP/2 one without streams).
    pub fn evict_one_idle(&self) -> bool {
        if self.idle().pop().is_some() {
            return true;
        }
        if let Ok(mut slot) = self.h2.try_lock() {
            let idle = slot
                .conn
                .as_ref()
                .is_some_and(|c| c.shared.active.load(Ordering::Acquire) == 0);
            if idle {
                slot.conn = None;
                return true;
            }
        }
        false
    }

    /// Forgets every pooled connection (settings changed); busy ones finish first.
    pub fn clear(&self) {
        for conn in self.idle().drain(..) {
            conn.shared.retired.store(true, Ordering::Release);
        }
        if let Ok(mut slot) = self.h2.try_lock() {
            if let Some(c) = slot.conn.take() {
                c.shared.retired.store(true, Ordering::Release);
            }
        }
    }
}

fn shared_for(conn: &UpstreamConnection) -> Arc<ConnShared> {
    Arc::new(ConnShared {
        requests: AtomicU32::new(0),
        active: AtomicU32::new(0),
        last_idle: AtomicU64::new(now_ms()),
        peer: conn.peer,
        local: conn.local,
        retired: AtomicBool::new(false),
    })
}

fn handshake_error(address: &str, e: hyper::Error) -> UpstreamError {
    UpstreamError::ConnectFailure {
        address: address.to_string(),
        reason: format!("HTTP handshake: {e}"),
    }
}

pub(crate) async fn handshake_h1(
    conn: UpstreamConnection,
    address: &str,
    idle_timeout: Duration,
) -> Result<H1Conn, UpstreamError> {
    let shared = shared_for(&conn);
    let (sender, connection) = http1::Builder::new()
        .handshake(TokioIo::new(conn))
        .await
        .map_err(|e| handshake_error(address, e))?;
    spawn_connection(connection, shared.clone(), idle_timeout);
    Ok(H1Conn { sender, shared })
}

pub(crate) async fn handshake_h2(
    conn: UpstreamConnection,
    address: &str,
    idle_timeout: Duration,
) -> Result<H2Conn, UpstreamError> {
    let shared = shared_for(&conn);
    let (sender, connection) = http2::Builder::new(TokioExecutor::new())
        .handshake(TokioIo::new(conn))
        .await
        .map_err(|e| handshake_error(address, e))?;
    spawn_connection(connection, shared.clone(), idle_timeout);
    Ok(H2Conn { sender, shared })
}

/// Drives the connection until it ends, or until it has had no request for
/// `idle_timeout` (dropping it closes the socket and frees its `maxConnections` slot).
fn spawn_connection<F>(connection: F, shared: Arc<ConnShared>, idle_timeout: Duration)
where
    F: std::future::Future<Output = hyper::Result<()>> + Send + 'static,
{
    tokio::spawn(async move {
        tokio::select! {
            result = connection => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "upstream connection ended with an error");
                }
            }
            () = idle_expired(&shared, idle_timeout) => {
                tracing::debug!(peer = ?shared.peer, "closing idle upstream connection");
            }
        }
    });
}

async fn idle_expired(shared: &ConnShared, idle_timeout: Duration) {
    let timeout_ms = idle_timeout.as_millis().max(1) as u64;
    loop {
        let idle_since = shared.last_idle.load(Ordering::Acquire);
        let idle_for = now_ms().saturating_sub(idle_since);
        let busy = shared.active.load(Ordering::Acquire) > 0;
        if !busy && idle_for >= timeout_ms {
            return;
        }
        // A request ending restarts the idle clock, so a busy connection is looked
        // at again one full timeout later.
        let wait = if busy {
            timeout_ms
        } else {
            (timeout_ms - idle_for).max(1)
        };
        tokio::time::sleep(Duration::from_millis(wait)).await;
    }
}
