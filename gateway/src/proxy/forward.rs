//! Sending a routed request upstream: destination pick, rewrite and header operations,
//! mirrors, then attempts under the route timeout and retry policy; the upstream's
//! response (or the reason there is none) comes back as a response or a LocalReply.

use std::sync::Arc;
use std::time::{Duration, Instant};

use http::header::{self, HeaderValue};
use http::request::Parts;
use http::{Request, Response, StatusCode, Uri};
use http_body_util::BodyExt;
use hyper::upgrade::OnUpgrade;

use super::body::RequestBody;
use super::http::{ConnInfo, RequestLog};
use super::local_reply::{flags, Body, BoxError, LocalReply};
use super::retry::{self, Outcome};
use super::{headers as hdr, ProxyState};
use crate::router::{pick_weighted, Cluster, RouteAction, Snapshot};
use crate::upstream::{SendContext, UpstreamError};

pub struct Forward<'a> {
    pub state: &'a Arc<ProxyState>,
    pub snapshot: &'a Arc<Snapshot>,
    pub conn: &'a Arc<ConnInfo>,
    pub action: &'a RouteAction,
    pub log: &'a mut RequestLog,
    pub grpc: bool,
    pub timeout: Option<Duration>,
    pub upgrade: Option<OnUpgrade>,
    /// The uri prefix the rule matched on, for `rewrite.uri`.
    pub matched_prefix: Option<&'a str>,
}

pub async fn forward(
    ctx: Forward<'_>,
    mut parts: Parts,
    mut body: RequestBody,
    authority: &str,
) -> Result<Response<Body>, LocalReply> {
    let Forward {
        state,
        snapshot,
        conn,
        action,
        log,
        timeout,
        upgrade,
        matched_prefix,
        ..
    } = ctx;
    let dest = pick_weighted(
        &action.destinations,
        action.total_weight,
        fastrand::u32(0..action.total_weight.max(1)),
    );
    log.cluster = Some(dest.cluster.clone());
    log.destination_host = Some(dest.host.clone());
    let cluster = lookup_cluster(state, snapshot, &dest.cluster)?;

    if let Some(rw) = &action.rewrite {
        let original = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_default();
        let new_path = rw.apply(&original, matched_prefix);
        if new_path != original {
            if let Ok(v) = HeaderValue::from_str(&original) {
                parts.headers.insert(hdr::X_ENVOY_ORIGINAL_PATH, v);
            }
            set_path(&mut parts.uri, &new_path);
        }
        if let Some(a) = &rw.authority {
            if let Ok(v) = HeaderValue::from_str(a) {
                parts.headers.insert(header::HOST, v);
            }
            set_authority(&mut parts.uri, a);
        }
    } else if parts.uri.authority().is_none() && !authority.is_empty() {
        set_authority(&mut parts.uri, authority);
    }
    action.headers.request.apply(&mut parts.headers);
    dest.headers.request.apply(&mut parts.headers);

    for mirror in &action.mirrors {
        if fastrand::f64() < mirror.fraction {
            if let (Some(bytes), Ok(mc)) = (
                body.replayable(),
                lookup_cluster(state, snapshot, &mirror.cluster),
            ) {
                spawn_mirror(state.clone(), mc, &parts, bytes.clone());
            }
        }
    }

    let mut send_ctx = SendContext {
        source_addr: Some(conn.remote),
        local_addr: Some(conn.local),
        downstream_version: parts.version,
        timeout: None,
        original_dst: None,
    };
    let retries = if body.replayable().is_some() {
        action.retries.attempts
    } else {
        0
    };
    let deadline = timeout.map(|t| Instant::now() + t);
    let started = Instant::now();
    let mut attempt = 0u32;
    let mut upgrade = upgrade;
    loop {
        attempt += 1;
        log.attempts = attempt;
        let mut req = Request::builder()
            .method(parts.method.clone())
            .uri(parts.uri.clone())
            .version(parts.version)
            .body(body.take_for_attempt())
            .map_err(|e| {
                LocalReply::new(
                    StatusCode::BAD_REQUEST,
                    flags::NONE,
                    format!("bad request: {e}"),
                )
            })?;
        *req.headers_mut() = parts.headers.clone();
        if attempt > 1 || retries > 0 {
            req.headers_mut().insert(
                hdr::X_ENVOY_ATTEMPT_COUNT,
                hdr::small_number(attempt.into()),
            );
        }
        let per_try = action.retries.per_try_timeout;
        let remaining = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        let limit = match (per_try, remaining) {
            (Some(p), Some(r)) => Some(p.min(r)),
            (a, b) => a.or(b),
        };
        send_ctx.timeout = limit;
        let (outcome, ready) = match state.upstream.send(&cluster, req, &send_ctx).await {
            Err(e) => (classify(&e), Err(error_reply(&e))),
            Ok((resp, info)) => {
                log.upstream_host = Some(
                    info.peer_addr
                        .map(hdr::socket_addr_string)
                        .unwrap_or_else(|| info.endpoint.address.clone()),
                );
                let status = resp.status();
                let grpc_status = retry::grpc_status_of(resp.headers());
                (
                    Outcome::Response {
                        status,
                        grpc_status,
                    },
                    Ok(resp),
                )
            }
        };
        let out_of_time = deadline.is_some_and(|d| Instant::now() >= d);
        let may_retry = attempt <= retries
            && !out_of_time
            && retry::should_retry(&action.retries.retry_on, outcome, &parts.method);
        // `maxRetries` bounds retries in flight per cluster; over it, the answer stands.
        let budget = if may_retry {
            state.upstream.try_retry(&cluster)
        } else {
            None
        };
        if let Some(_retry) = budget {
            if let Ok(resp) = ready {
                // Drain the response we are discarding so its connection can be reused.
                tokio::spawn(async move {
                    let _ = resp.into_body().collect().await;
                });
            }
            let backoff = Duration::from_millis(25 * (1 << (attempt - 1).min(4)) as u64);
            tokio::time::sleep(backoff.mul_f64(0.5 + fastrand::f64())).await;
            continue;
        }
        return match ready {
            Ok(mut resp) => {
                if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
                    if let Some(down) = upgrade.take() {
                        splice_upgrade(down, hyper::upgrade::on(&mut resp));
                    }
                }
                // The downstream hears the protocol it spoke, whatever the upstream spoke.
                *resp.version_mut() = parts.version;
                let upgraded = resp.status() == StatusCode::SWITCHING_PROTOCOLS;
                hdr::strip_hop_by_hop(resp.headers_mut(), upgraded);
                state.on_upstream_response(resp.headers_mut(), log);
                action.headers.response.apply(resp.headers_mut());
                dest.headers.response.apply(resp.headers_mut());
                let upstream_ms = started.elapsed().as_millis() as u64;
                resp.headers_mut().insert(
                    hdr::X_ENVOY_UPSTREAM_SERVICE_TIME,
                    hdr::small_number(upstream_ms),
                );
                Ok(resp.map(|b| b.map_err(|e| Box::new(e) as BoxError).boxed_unsync()))
            }
            Err(mut reply) => {
                if attempt > 1 {
                    reply.body = format!("{} (after {attempt} attempts)", reply.body);
                }
                Err(reply)
            }
        };
    }
}

fn lookup_cluster(
    state: &ProxyState,
    snapshot: &Snapshot,
    name: &str,
) -> Result<Arc<Cluster>, LocalReply> {
    let cluster = snapshot
        .clusters
        .get(name)
        .or_else(|| state.local_clusters.get(name))
        .cloned()
        .ok_or_else(|| {
            LocalReply::new(
                StatusCode::SERVICE_UNAVAILABLE,
                flags::NO_CLUSTER,
                format!("no cluster {name}"),
            )
        })?;
    if let Some(reason) = &cluster.missing {
        return Err(LocalReply::new(
            StatusCode::SERVICE_UNAVAILABLE,
            flags::NO_CLUSTER,
            reason.clone(),
        ));
    }
    Ok(cluster)
}

fn classify(e: &UpstreamError) -> Outcome {
    match e {
        UpstreamError::ConnectFailure { .. } => Outcome::ConnectFailure,
        UpstreamError::Reset {
            refused_stream: true,
            ..
        } => Outcome::RefusedStream,
        UpstreamError::Reset { .. } | UpstreamError::ConnectionTermination { .. } => Outcome::Reset,
        UpstreamError::Timeout { .. } => Outcome::Timeout,
        // NC, UH and UO are answers, not accidents: retrying would not change them.
        _ => Outcome::Local,
    }
}

fn error_reply(e: &UpstreamError) -> LocalReply {
    let mut reply = LocalReply::new(e.status(), e.flag(), e.body());
    if e.overloaded() {
        reply = reply.with_header(hdr::X_ENVOY_OVERLOADED, HeaderValue::from_static("true"));
    }
    reply
}

fn set_path(uri: &mut Uri, path_and_query: &str) {
    let mut p = uri.clone().into_parts();
    if let Ok(pq) = path_and_query.parse() {
        p.path_and_query = Some(pq);
    }
    if let Ok(u) = Uri::from_parts(p) {
        *uri = u;
    }
}

fn set_authority(uri: &mut Uri, authority: &str) {
    let mut p = uri.clone().into_parts();
    let Ok(a) = authority.parse() else { return };
    p.authority = Some(a);
    if p.scheme.is_none() {
        p.scheme = Some(http::uri::Scheme::HTTP);
    }
    if p.path_and_query.is_none() {
        p.path_and_query = Some(http::uri::PathAndQuery::from_static("/"));
    }
    if let Ok(u) = Uri::from_parts(p) {
        *uri = u;
    }
}

/// `host:port` → `host-shadow:port`, as Envoy names mirrored requests.
pub fn shadow_authority(authority: &str) -> String {
    match authority.rsplit_once(':') {
        Some((h, p))
            if !p.is_empty()
                && p.bytes().all(|b| b.is_ascii_digit())
                && (!h.contains(':') || h.ends_with(']')) =>
        {
            format!("{h}-shadow:{p}")
        }
        _ => format!("{authority}-shadow"),
    }
}

/// Fire-and-forget copy of the request; its response is read and discarded, and it
/// never delays the main request.
fn spawn_mirror(state: Arc<ProxyState>, cluster: Arc<Cluster>, parts: &Parts, body: bytes::Bytes) {
    let authority = parts
        .uri
        .authority()
        .map(|a| a.as_str().to_string())
        .or_else(|| {
            parts
                .headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_string)
        })
        .unwrap_or_default();
    let shadow = shadow_authority(&authority);
    let mut uri = parts.uri.clone();
    set_authority(&mut uri, &shadow);
    let mut headers = parts.headers.clone();
    if let Ok(v) = HeaderValue::from_str(&shadow) {
        headers.insert(header::HOST, v);
    }
    let method = parts.method.clone();
    let version = parts.version;
    tokio::spawn(async move {
        let Ok(mut req) = Request::builder()
            .method(method)
            .uri(uri)
            .version(version)
            .body(super::local_reply::full(body))
        else {
            return;
        };
        *req.headers_mut() = headers;
        let ctx = SendContext {
            downstream_version: version,
            ..Default::default()
        };
        if let Ok(Ok((resp, _))) = tokio::time::timeout(
            Duration::from_secs(30),
            state.upstream.send(&cluster, req, &ctx),
        )
        .await
        {
            let _ = resp.into_body().collect().await;
        }
    });
}

/// Joins the downstream and upstream halves of an upgraded connection (WebSocket, ...).
fn splice_upgrade(down: OnUpgrade, up: OnUpgrade) {
    tokio::spawn(async move {
        let (Ok(d), Ok(u)) = (down.await, up.await) else {
            return;
        };
        let mut d = hyper_util::rt::TokioIo::new(d);
        let mut u = hyper_util::rt::TokioIo::new(u);
        let _ = tokio::io::copy_bidirectional(&mut d, &mut u).await;
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shadow_host_keeps_the_port() {
        assert_eq!(shadow_authority("httpbin:8000"), "httpbin-shadow:8000");
        assert_eq!(
            shadow_authority("httpbin.example.com"),
            "httpbin.example.com-shadow"
        );
    }
}
