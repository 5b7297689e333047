//! The HTTP request path, as an ordered stack: route lookup → route-level actions
//! (redirect, direct response, CORS, fault) → destination pick → upstream call with
//! timeouts and retries (mirrors beside it) → response headers → telemetry.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;

use super::body::RequestBody;
use super::local_reply::{flags, Body, LocalReply};
use super::{forward, headers as hdr, ProxyState, RequestFacts, Role};
use crate::router::lookup::gateway_caller;
use crate::router::{
    pick_weighted, Caller, Cors, Redirect, RequestView, RouteAction, RouteDecision, RuleAction,
    Snapshot,
};

/// What the proxy knows about the downstream connection a request arrived on.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    pub remote: SocketAddr,
    pub local: SocketAddr,
    /// Gateway server port (80, 443) or, for sidecars, the service port.
    pub port: u32,
    pub scheme: &'static str,
    pub sni: Option<Arc<str>>,
    /// SPIFFE identity of a mesh mTLS peer.
    pub peer_identity: Option<Arc<str>>,
    /// The Gateway server whose TLS settings the handshake used
    /// ([`super::port::tls_server_id`]); requests on the connection may only take its routes.
    pub tls_server: Option<Arc<str>>,
}

/// Facts gathered along the request path, for metrics and the access log.
#[derive(Debug, Default, Clone)]
pub struct RequestLog {
    pub flag: &'static str,
    pub cluster: Option<Arc<str>>,
    pub upstream_host: Option<String>,
    pub route_name: Option<String>,
    pub destination_host: Option<String>,
    pub details: &'static str,
    pub grpc_status: Option<u32>,
    pub attempts: u32,
    pub request_id: Option<String>,
    /// The workload on the other side of this hop, from peer metadata.
    pub peer: Option<Arc<crate::telemetry::PeerInfo>>,
}

pub async fn handle(
    state: Arc<ProxyState>,
    conn: Arc<ConnInfo>,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let start = Instant::now();
    let snapshot = state.snapshot();
    let grpc = hdr::is_grpc(req.headers());
    let facts = facts_of(&req, grpc);
    let mut log = RequestLog {
        flag: flags::NONE,
        ..Default::default()
    };
    // WasmPlugins see the request first, as Envoy's HTTP filters run before its router.
    let mut plugin_stream = state
        .plugins()
        .map(|chain| chain.new_stream(super::plugins::stream_info(&state, &conn, facts.protocol)));
    let req = match plugin_stream.as_mut() {
        Some(stream) => match super::plugins::on_request(stream, req).await {
            Ok(req) => req,
            Err(resp) => return Ok(state.observe(resp, facts, start, &conn, log)),
        },
        None => req.map(|b| {
            http_body_util::BodyExt::boxed_unsync(http_body_util::BodyExt::map_err(b, |e| {
                Box::new(e) as super::local_reply::BoxError
            }))
        }),
    };
    let routed = route_and_forward(&state, &snapshot, &conn, req, &facts, &mut log, grpc).await;
    let resp = match routed {
        Ok(resp) => resp,
        Err(reply) => {
            log.flag = reply.flag;
            if grpc {
                log.grpc_status = Some(reply.grpc_code());
            }
            reply.render(grpc)
        }
    };
    let resp = match plugin_stream.as_mut() {
        Some(stream) => super::plugins::on_response(stream, resp).await,
        None => resp,
    };
    Ok(state.observe(resp, facts, start, &conn, log))
}

async fn route_and_forward(
    state: &Arc<ProxyState>,
    snapshot: &Arc<Snapshot>,
    conn: &Arc<ConnInfo>,
    req: Request<Body>,
    facts: &RequestFacts,
    log: &mut RequestLog,
    grpc: bool,
) -> Result<Response<Body>, LocalReply> {
    // Authority and path were read once for telemetry; routing reads the same text.
    let authority = facts.authority.as_str();
    let path_and_query = match facts.path.as_str() {
        "" => "/",
        p => p,
    };
    let method = req.method().clone();
    let view = RequestView {
        method: method.as_str(),
        scheme: conn.scheme,
        authority,
        path_and_query,
        headers: req.headers(),
        port: conn.port,
        source_labels: state.source_labels(),
        source_namespace: state.source_namespace(),
    };
    // The inbound side of a sidecar sends everything to its local app.
    if let Some(inbound) = &state.inbound {
        return send_routed(
            state,
            snapshot,
            conn,
            req,
            log,
            grpc,
            &inbound.action,
            None,
            authority,
        )
        .await;
    }
    let decision = match state.role {
        Role::Gateway => snapshot.route(conn.port, conn.sni.as_deref(), &view),
        Role::SidecarOutbound | Role::SidecarInbound => snapshot.route_mesh(&view),
    };
    let (rule, caller) = match decision {
        RouteDecision::Matched {
            server: Some(s), ..
        } if conn
            .tls_server
            .as_deref()
            .is_some_and(|id| id != super::port::tls_server_id(s)) =>
        {
            // The Host picked a server other than the one whose TLS (and client
            // authentication) this connection went through: the client must connect again.
            return Err(LocalReply::new(
                StatusCode::MISDIRECTED_REQUEST,
                flags::NO_ROUTE,
                format!(
                    "misdirected request: host '{authority}' is served by another server on port {} than the one this TLS connection (SNI {}) was made for",
                    conn.port,
                    conn.sni.as_deref().unwrap_or("none")
                ),
            ));
        }
        RouteDecision::Matched { rule, server, .. } => {
            let caller = match server {
                Some(s) => gateway_caller(s, &view),
                None => Caller {
                    labels: view.source_labels,
                    namespace: view.source_namespace,
                },
            };
            (rule.clone(), caller)
        }
        RouteDecision::HttpsRedirect { .. } => {
            let location = Redirect::https_upgrade().location(&view, None);
            return Err(redirect_reply(StatusCode::MOVED_PERMANENTLY, &location));
        }
        RouteDecision::NoRoute(nr) => {
            // A sidecar reaches a known service with no VirtualService by its default
            // route. The RouteAction is built in the statement that boxes its future, so
            // it never sits in this (every request's) future across the await.
            let sent = match (nr.vhost.is_none() && state.role == Role::SidecarOutbound)
                .then(|| state.default_route(snapshot, authority, conn.port))
                .flatten()
            {
                Some(action) => {
                    send_default_route(state, snapshot, conn, req, log, grpc, action, authority)
                }
                None => {
                    return Err(LocalReply::new(
                        StatusCode::NOT_FOUND,
                        flags::NO_ROUTE,
                        nr.message(authority, conn.port),
                    ))
                }
            };
            return sent.await;
        }
    };
    log.route_name = Some(
        rule.name
            .clone()
            .unwrap_or_else(|| format!("{}.{}", rule.virtual_service, rule.index)),
    );
    let matched_prefix = rule.matched_prefix(&view, caller).map(str::to_string);
    let action: &RouteAction = match &rule.action {
        RuleAction::Redirect(r) => {
            let location = r.location(&view, matched_prefix.as_deref());
            let status = StatusCode::from_u16(r.code).unwrap_or(StatusCode::MOVED_PERMANENTLY);
            return Err(redirect_reply(status, &location));
        }
        RuleAction::DirectResponse(d) => {
            let status = StatusCode::from_u16(d.status).unwrap_or(StatusCode::OK);
            return Ok(Response::builder()
                .status(status)
                .body(super::local_reply::full(d.body.clone()))
                .unwrap_or_else(|_| Response::new(super::local_reply::empty())));
        }
        RuleAction::Route(a) => a,
    };

    // CORS preflight is answered here, before faults and upstreams (Envoy's filter order).
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok())
        .map(str::to_string);
    if let (Some(policy), Some(origin)) = (&action.cors, &origin) {
        if Cors::is_preflight(method.as_str(), req.headers()) {
            let mut resp = Response::new(super::local_reply::empty());
            if policy.apply_preflight(origin, resp.headers_mut()) {
                return Ok(resp);
            }
        }
    }

    // Fault injection: the delay first, then the abort (an aborted request never
    // reaches the upstream).
    if let Some(fault) = &action.fault {
        if let Some((delay, fraction)) = fault.delay {
            if fastrand::f64() < fraction {
                tokio::time::sleep(delay).await;
                log.flag = flags::DELAY_INJECTED;
            }
        }
        if let Some(abort) = &fault.abort {
            if fastrand::f64() < abort.fraction {
                note_destination(log, action);
                let status = StatusCode::from_u16(abort.http_status)
                    .unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
                let flag = if log.flag == flags::DELAY_INJECTED {
                    flags::DELAY_AND_FAULT_INJECTED
                } else {
                    flags::FAULT_INJECTED
                };
                let mut reply = LocalReply::new(status, flag, "fault filter abort");
                reply.grpc_status = abort.grpc_status;
                return Err(reply);
            }
        }
    }

    let mut resp = send_routed(
        state,
        snapshot,
        conn,
        req,
        log,
        grpc,
        action,
        matched_prefix.as_deref(),
        authority,
    )
    .await?;
    if let (Some(policy), Some(origin)) = (&action.cors, &origin) {
        policy.apply_response(origin, resp.headers_mut());
    }
    Ok(resp)
}

type Sent<'a> = std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<Response<Body>, LocalReply>> + Send + 'a>,
>;

/// `send_routed` with an action of its own, boxed.
#[allow(clippy::too_many_arguments)]
fn send_default_route<'a>(
    state: &'a Arc<ProxyState>,
    snapshot: &'a Arc<Snapshot>,
    conn: &'a Arc<ConnInfo>,
    req: Request<Body>,
    log: &'a mut RequestLog,
    grpc: bool,
    action: RouteAction,
    authority: &'a str,
) -> Sent<'a> {
    Box::pin(async move {
        send_routed(
            state, snapshot, conn, req, log, grpc, &action, None, authority,
        )
        .await
    })
}

/// Hands a routed request to the upstream stage: header hygiene, timeout, then
/// `forward` (destination pick, retries, mirrors).
#[allow(clippy::too_many_arguments)]
async fn send_routed(
    state: &Arc<ProxyState>,
    snapshot: &Arc<Snapshot>,
    conn: &Arc<ConnInfo>,
    mut req: Request<Body>,
    log: &mut RequestLog,
    grpc: bool,
    action: &RouteAction,
    matched_prefix: Option<&str>,
    authority: &str,
) -> Result<Response<Body>, LocalReply> {
    let is_upgrade = req.headers().contains_key(header::UPGRADE);
    let upgrade = is_upgrade.then(|| hyper::upgrade::on(&mut req));
    let (mut parts, body) = req.into_parts();
    let want_replay = action.retries.attempts > 0 || !action.mirrors.is_empty();
    let body = RequestBody::prepare(body, want_replay && !is_upgrade)
        .await
        .map_err(|e| {
            LocalReply::new(
                StatusCode::BAD_REQUEST,
                flags::DOWNSTREAM_CONNECTION_TERMINATION,
                format!("downstream body error: {e}"),
            )
        })?;
    hdr::strip_hop_by_hop(&mut parts.headers, is_upgrade);
    log.request_id = hdr::set_forwarding(&mut parts.headers, conn.remote.ip(), conn.scheme);
    state.on_upstream_request(&mut parts.headers, conn, log);
    let timeout = effective_timeout(action.timeout, &parts.headers);
    parts.headers.remove(hdr::X_ENVOY_UPSTREAM_RQ_TIMEOUT_MS);
    let ctx = forward::Forward {
        state,
        snapshot,
        conn,
        action,
        log,
        grpc,
        timeout,
        upgrade,
        matched_prefix,
    };
    forward::forward(ctx, parts, body, authority).await
}

/// An aborted request never reaches `forward`, but it was routed: telemetry names the
/// service it was sent to (Envoy picks the weighted cluster when the route matches).
fn note_destination(log: &mut RequestLog, action: &RouteAction) {
    if action.destinations.is_empty() {
        return;
    }
    let dest = pick_weighted(
        &action.destinations,
        action.total_weight,
        fastrand::u32(0..action.total_weight.max(1)),
    );
    log.cluster = Some(dest.cluster.clone());
    log.destination_host = Some(dest.host.clone());
}

fn redirect_reply(status: StatusCode, location: &str) -> LocalReply {
    let mut reply = LocalReply::new(status, flags::NONE, "");
    if let Ok(v) = HeaderValue::from_str(location) {
        reply = reply.with_header(header::LOCATION, v);
    }
    reply
}

fn facts_of<B: hyper::body::Body>(req: &Request<B>, grpc: bool) -> RequestFacts {
    let text = |name: http::HeaderName| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    RequestFacts {
        method: req.method().clone(),
        path: req
            .uri()
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_default(),
        authority: request_authority(req),
        protocol: match req.version() {
            http::Version::HTTP_2 => "HTTP/2",
            http::Version::HTTP_10 => "HTTP/1.0",
            _ => "HTTP/1.1",
        },
        user_agent: text(header::USER_AGENT),
        request_id: text(hdr::X_REQUEST_ID),
        forwarded_for: text(hdr::X_FORWARDED_FOR),
        request_bytes: req.body().size_hint().exact().unwrap_or(0),
        grpc,
        start: Some(std::time::SystemTime::now()),
    }
}

/// Host header (HTTP/1.1) or :authority (HTTP/2).
pub fn request_authority<B>(req: &Request<B>) -> String {
    req.uri()
        .authority()
        .map(|a| a.as_str().to_string())
        .or_else(|| {
            req.headers()
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_string)
        })
        .unwrap_or_default()
}

/// The route timeout, overridden by `x-envoy-upstream-rq-timeout-ms` and capped by the
/// caller's `grpc-timeout`.
fn effective_timeout(route: Option<Duration>, headers: &http::HeaderMap) -> Option<Duration> {
    let mut t = route;
    if let Some(ms) = headers
        .get(&hdr::X_ENVOY_UPSTREAM_RQ_TIMEOUT_MS)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
    {
        t = if ms == 0 {
            None
        } else {
            Some(Duration::from_millis(ms))
        };
    }
    if let Some(g) = headers
        .get(hdr::GRPC_TIMEOUT)
        .and_then(|v| parse_grpc_timeout(v.to_str().ok()?))
    {
        t = Some(t.map_or(g, |r| r.min(g)));
    }
    t
}

/// `grpc-timeout: 100m` (value + unit H M S m u n).
pub fn parse_grpc_timeout(v: &str) -> Option<Duration> {
    if v.len() < 2 || v.len() > 9 {
        return None;
    }
    let (num, unit) = v.split_at(v.len() - 1);
    let n: u64 = num.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.saturating_mul(3600)),
        "M" => Duration::from_secs(n.saturating_mul(60)),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// Compile-time guard: hyper's executor needs the request future to be `Send`.
#[allow(dead_code)]
fn assert_handle_is_send(state: Arc<ProxyState>, conn: Arc<ConnInfo>, req: Request<Incoming>) {
    fn is_send<T: Send>(_: T) {}
    is_send(handle(state, conn, req));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeout_units() {
        assert_eq!(parse_grpc_timeout("100m"), Some(Duration::from_millis(100)));
        assert_eq!(parse_grpc_timeout("2S"), Some(Duration::from_secs(2)));
        assert_eq!(parse_grpc_timeout("1x"), None);
        assert_eq!(parse_grpc_timeout("m"), None);
    }

    #[test]
    fn header_overrides_route_timeout_and_grpc_caps_it() {
        let mut h = http::HeaderMap::new();
        h.insert(
            hdr::X_ENVOY_UPSTREAM_RQ_TIMEOUT_MS,
            HeaderValue::from_static("250"),
        );
        assert_eq!(
            effective_timeout(Some(Duration::from_secs(3)), &h),
            Some(Duration::from_millis(250))
        );
        h.insert("grpc-timeout", HeaderValue::from_static("100m"));
        assert_eq!(
            effective_timeout(None, &h),
            Some(Duration::from_millis(100))
        );
    }
}
