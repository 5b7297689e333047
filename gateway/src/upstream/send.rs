//! One HTTP exchange with a cluster: circuit breakers, endpoint pick, a pooled or new
//! connection, the request on the wire, and the outcome fed to outlier detection.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http::{header, HeaderValue, Request, Response, Uri, Version};

use crate::router::snapshot::{Cluster, LoadBalancerPolicy, UpstreamProtocol, UpstreamTlsMode};

use super::body::UpstreamBody;
use super::cluster::{limit, ActiveRequest, ClusterState, PendingGuard};
use super::connect::{self, UpstreamTlsConnector};
use super::endpoint::EndpointState;
use super::error::UpstreamError;
use super::hash::{hash_key, HashKey};
use super::lb;
use super::outlier::Outcome;
use super::pool::{self, H1Conn, H2Conn, DEFAULT_IDLE_TIMEOUT};
use super::{RequestBody, SendContext, UpstreamInfo};

/// Stale keep-alive connections are retried on another connection this many times.
const MAX_UNSENT_RETRIES: usize = 2;

pub(crate) async fn send(
    state: &Arc<ClusterState>,
    tls: &dyn UpstreamTlsConnector,
    req: Request<RequestBody>,
    ctx: &SendContext,
) -> Result<(Response<UpstreamBody>, UpstreamInfo), UpstreamError> {
    let cluster = state.config.load_full();
    if let Some(reason) = &cluster.missing {
        return Err(UpstreamError::NoCluster {
            cluster: cluster.name.clone(),
            reason: reason.clone(),
        });
    }
    let policy = &cluster.policy;
    let mut active = state.start_request(limit(policy.max_requests))?;
    let set = state.endpoints.load_full();
    let key = match &policy.lb {
        LoadBalancerPolicy::ConsistentHash(hp) => hash_key(hp, req.headers(), req.uri(), ctx),
        _ => HashKey::default(),
    };
    let min_health = policy.outlier.as_ref().map_or(0, |o| o.min_health_percent);
    let idx = lb::pick(state, &set, &policy.lb, min_health, key.hash)?;
    let ep = set.list[idx].clone();
    active.bind_endpoint(&ep);

    let want_h2 = match cluster.protocol {
        UpstreamProtocol::Http2 => true,
        UpstreamProtocol::Client => ctx.downstream_version == Version::HTTP_2,
        _ => false,
    };
    let exchange = Exchange {
        state,
        cluster: &cluster,
        ep: &ep,
        tls,
        dispatched: AtomicBool::new(false),
        caller_fault: AtomicBool::new(false),
    };
    let attempt = async {
        if want_h2 {
            exchange.h2(req, active).await
        } else {
            exchange.h1(req, active).await
        }
    };
    let result = match ctx.timeout {
        Some(t) => match tokio::time::timeout(t, attempt).await {
            Ok(r) => r,
            Err(_) => {
                // Only a request the endpoint actually received counts against it.
                if exchange.dispatched.load(Ordering::Acquire) {
                    state.record(&ep, Outcome::Timeout);
                }
                return Err(UpstreamError::Timeout {
                    address: ep.address.clone(),
                    timeout: t,
                });
            }
        },
        None => attempt.await,
    };
    match result {
        Ok((resp, mut info)) => {
            state.record(&ep, Outcome::Status(resp.status().as_u16()));
            info.set_cookie = key.set_cookie;
            Ok((resp, info))
        }
        Err(e) => {
            let upstream_failed = matches!(
                e,
                UpstreamError::ConnectFailure { .. }
                    | UpstreamError::Reset { .. }
                    | UpstreamError::ConnectionTermination { .. }
            );
            if upstream_failed && !exchange.caller_fault.load(Ordering::Acquire) {
                state.record(&ep, Outcome::LocalFailure);
            }
            Err(e)
        }
    }
}

struct Exchange<'a> {
    state: &'a Arc<ClusterState>,
    cluster: &'a Arc<Cluster>,
    ep: &'a Arc<EndpointState>,
    tls: &'a dyn UpstreamTlsConnector,
    dispatched: AtomicBool,
    /// The request body failed (the downstream client went away mid-upload): not the
    /// endpoint's fault, so outlier detection does not hear of it.
    caller_fault: AtomicBool,
}

type Exchanged = (Response<UpstreamBody>, UpstreamInfo);

impl Exchange<'_> {
    fn idle_timeout(&self) -> Duration {
        self.cluster
            .policy
            .idle_timeout
            .filter(|d| !d.is_zero())
            .unwrap_or(DEFAULT_IDLE_TIMEOUT)
    }

    fn failed(&self, e: hyper::Error) -> UpstreamError {
        if e.is_user() {
            self.caller_fault.store(true, Ordering::Release);
        }
        classify(&self.ep.address, e)
    }

    /// Counts this request as pending once (it stays so until a connection is had).
    fn ensure_pending(&self, pending: &mut Option<PendingGuard>) -> Result<(), UpstreamError> {
        if pending.is_none() {
            let max = limit(self.cluster.policy.max_pending_requests);
            *pending = Some(self.state.start_pending(max)?);
        }
        Ok(())
    }

    fn uses_tls(&self) -> bool {
        self.cluster
            .policy
            .tls
            .as_ref()
            .is_some_and(|t| t.mode != UpstreamTlsMode::Disable)
    }

    fn info(&self, shared: &pool::ConnShared, version: Version, reused: bool) -> UpstreamInfo {
        UpstreamInfo {
            cluster: self.cluster.name.clone(),
            endpoint: self.ep.endpoint.load_full(),
            peer_addr: shared.peer,
            local_addr: shared.local,
            version,
            reused_connection: reused,
            set_cookie: None,
        }
    }

    async fn h1(
        &self,
        mut req: Request<RequestBody>,
        mut active: ActiveRequest,
    ) -> Result<Exchanged, UpstreamError> {
        origin_form(&mut req, &self.ep.address);
        let max_per_conn = limit(self.cluster.policy.max_requests_per_connection);
        for _ in 0..=MAX_UNSENT_RETRIES {
            let (mut conn, reused) = self.acquire_h1().await?;
            let retire = conn.shared.take_request(max_per_conn);
            active.bind_conn(&conn.shared);
            self.dispatched.store(true, Ordering::Release);
            match conn.sender.try_send_request(req).await {
                Ok(resp) => {
                    let info = self.info(&conn.shared, Version::HTTP_11, reused);
                    active.h1 = Some((conn, retire));
                    return Ok((resp.map(|b| UpstreamBody::new(b, active)), info));
                }
                Err(mut e) => match e.take_message() {
                    // Never written: the server had closed the idle connection.
                    Some(unsent) => req = unsent,
                    None => return Err(self.failed(e.into_error())),
                },
            }
        }
        Err(UpstreamError::ConnectionTermination {
            address: self.ep.address.clone(),
            reason: "every pooled connection closed before the request was written".into(),
        })
    }

    async fn acquire_h1(&self) -> Result<(H1Conn, bool), UpstreamError> {
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
                let conn = connect::open(self.cluster, slot, self.tls, &[b"http/1.1"]).await?;
                let conn = pool::handshake_h1(conn, &self.ep.address, self.idle_timeout()).await?;
                return Ok((conn, false));
            }
            self.ensure_pending(&mut pending)?;
            self.state.evict_idle_elsewhere(self.ep);
            released.await;
        }
    }

    async fn h2(
        &self,
        mut req: Request<RequestBody>,
        mut active: ActiveRequest,
    ) -> Result<Exchanged, UpstreamError> {
        let scheme = if self.uses_tls() { "https" } else { "http" };
        absolute_form(&mut req, scheme, &self.ep.address);
        for _ in 0..=MAX_UNSENT_RETRIES {
            let (mut conn, reused) = self.acquire_h2().await?;
            active.bind_conn(&conn.shared);
            self.dispatched.store(true, Ordering::Release);
            match conn.sender.try_send_request(req).await {
                Ok(resp) => {
                    let info = self.info(&conn.shared, Version::HTTP_2, reused);
                    return Ok((resp.map(|b| UpstreamBody::new(b, active)), info));
                }
                Err(mut e) => match e.take_message() {
                    Some(unsent) => {
                        conn.shared.retired.store(true, Ordering::Release);
                        req = unsent;
                    }
                    None => return Err(self.failed(e.into_error())),
                },
            }
        }
        Err(UpstreamError::ConnectionTermination {
            address: self.ep.address.clone(),
            reason: "the HTTP/2 connection closed before the request was written".into(),
        })
    }

    /// The endpoint's shared HTTP/2 connection, opening it if needed. Requests that
    /// queue while it is being opened are pending.
    async fn acquire_h2(&self) -> Result<(H2Conn, bool), UpstreamError> {
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
                let opened = match connect::open(self.cluster, cx, self.tls, &[b"h2"]).await {
                    Ok(c) => pool::handshake_h2(c, &self.ep.address, self.idle_timeout()).await,
                    Err(e) => Err(e),
                };
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

/// HTTP/1.1 sends `/path?query` with the authority in `Host`.
fn origin_form(req: &mut Request<RequestBody>, endpoint: &str) {
    if !req.headers().contains_key(header::HOST) {
        let host = req
            .uri()
            .authority()
            .map(|a| a.as_str().to_string())
            .unwrap_or_else(|| endpoint.to_string());
        if let Ok(v) = HeaderValue::from_str(&host) {
            req.headers_mut().insert(header::HOST, v);
        }
    }
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/")
        .to_string();
    if let Ok(uri) = path.parse::<Uri>() {
        *req.uri_mut() = uri;
    }
    *req.version_mut() = Version::HTTP_11;
}

/// Headers HTTP/2 forbids (RFC 9113 §8.2.2); h2 refuses a request carrying any.
const CONNECTION_SPECIFIC: [&str; 5] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
];

/// HTTP/2 carries the authority in `:authority` (taken from `Host`, which h2 drops),
/// and no connection-specific headers (`te` only as `trailers`).
fn absolute_form(req: &mut Request<RequestBody>, scheme: &str, endpoint: &str) {
    let headers = req.headers_mut();
    let named: Vec<String> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|n| n.trim().to_ascii_lowercase())
        .filter(|n| !n.is_empty())
        .collect();
    for name in CONNECTION_SPECIFIC
        .iter()
        .copied()
        .chain(named.iter().map(String::as_str))
    {
        headers.remove(name);
    }
    if headers.get(header::TE).is_some_and(|te| te != "trailers") {
        headers.remove(header::TE);
    }
    let authority = req
        .headers_mut()
        .remove(header::HOST)
        .and_then(|h| h.to_str().ok().map(str::to_string))
        .or_else(|| req.uri().authority().map(|a| a.as_str().to_string()))
        .unwrap_or_else(|| endpoint.to_string());
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let built = Uri::builder()
        .scheme(scheme)
        .authority(authority.as_str())
        .path_and_query(path)
        .build();
    if let Ok(uri) = built {
        *req.uri_mut() = uri;
    }
    *req.version_mut() = Version::HTTP_2;
}

/// Maps a failure before response headers to Envoy's reset reasons.
fn classify(address: &str, e: hyper::Error) -> UpstreamError {
    let mut reason = e.to_string();
    let mut source = std::error::Error::source(&e);
    let mut h2_reason = None;
    while let Some(s) = source {
        reason.push_str(": ");
        reason.push_str(&s.to_string());
        if let Some(h2e) = s.downcast_ref::<h2::Error>() {
            if h2e.is_reset() || h2e.is_remote() && !h2e.is_go_away() {
                h2_reason = h2e.reason();
            }
        }
        source = s.source();
    }
    match h2_reason {
        Some(r) => UpstreamError::Reset {
            address: address.to_string(),
            refused_stream: r == h2::Reason::REFUSED_STREAM,
            reason,
        },
        None => UpstreamError::ConnectionTermination {
            address: address.to_string(),
            reason,
        },
    }
}
