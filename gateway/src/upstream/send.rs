//! One HTTP exchange with a cluster: circuit breakers, endpoint pick, a pooled or new
//! connection, the request on the wire, and the outcome fed to outlier detection.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response, Version};

use crate::router::snapshot::{Cluster, LoadBalancerPolicy, UpstreamProtocol, UpstreamTlsMode};

use super::body::UpstreamBody;
use super::cluster::{limit, ActiveRequest, ClusterState};
use super::connect::UpstreamTlsConnector;
use super::endpoint::EndpointState;
use super::error::UpstreamError;
use super::hash::{hash_key, HashKey};
use super::outlier::Outcome;
use super::pool::{self, DEFAULT_IDLE_TIMEOUT};
use super::wire::{absolute_form, classify, origin_form};
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
    let key = match &policy.lb {
        LoadBalancerPolicy::ConsistentHash(hp) => hash_key(hp, req.headers(), req.uri(), ctx),
        _ => HashKey::default(),
    };
    let ep = state.choose(&cluster, key.hash, ctx.original_dst)?;
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

pub(crate) struct Exchange<'a> {
    pub state: &'a Arc<ClusterState>,
    pub cluster: &'a Arc<Cluster>,
    pub ep: &'a Arc<EndpointState>,
    pub tls: &'a dyn UpstreamTlsConnector,
    dispatched: AtomicBool,
    /// The request body failed (the downstream client went away mid-upload): not the
    /// endpoint's fault, so outlier detection does not hear of it.
    caller_fault: AtomicBool,
}

type Exchanged = (Response<UpstreamBody>, UpstreamInfo);

impl Exchange<'_> {
    pub fn idle_timeout(&self) -> Duration {
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
}
