//! WasmPlugins on the request path: the chain selected for this proxy (rebuilt when the
//! config changes, compiled before it is used), run on request headers before routing
//! and on response headers before they go back, with plugin HTTP calls sent through
//! this proxy's clusters.

use std::collections::BTreeMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::BodyExt;

use super::local_reply::{full, Body, BoxError};
use super::{ProxyState, Role};
use crate::router::Snapshot;
use crate::upstream::SendContext;
use crate::wasm::{
    plugins_for_proxy, CalloutError, CalloutResponse, HttpCallout, ListenerClass, LocalResponse,
    PluginChain, ProxyIdentity, RequestLine, Stream, StreamInfo, Verdict, MAX_BUFFERED_BODY,
};

/// Builds the plugin chain for `snapshot` as this proxy sees it. `None` when no plugin
/// selects the proxy; plugins that fail to load are reported and left out.
pub fn build_chain(state: &Arc<ProxyState>, snapshot: &Snapshot) -> Option<Arc<PluginChain>> {
    if snapshot.wasm_plugins.is_empty() {
        return None;
    }
    let w = &state.workload;
    let identity = ProxyIdentity {
        labels: w.labels.clone(),
        namespace: w.namespace.clone(),
        is_gateway: state.role == Role::Gateway,
    };
    let mut node = BTreeMap::new();
    node.insert(
        "NAME".to_string(),
        serde_json::Value::String(format!("{}-0", w.name)),
    );
    node.insert(
        "NAMESPACE".to_string(),
        serde_json::Value::String(w.namespace.clone()),
    );
    node.insert(
        "WORKLOAD_NAME".to_string(),
        serde_json::Value::String(w.name.clone()),
    );
    node.insert(
        "LABELS".to_string(),
        serde_json::to_value(&w.labels).unwrap_or_default(),
    );
    let (specs, failed) = plugins_for_proxy(&snapshot.wasm_plugins, &identity, &node);
    for (name, e) in failed {
        eprintln!("error: WasmPlugin {name}: {e}");
    }
    if specs.is_empty() {
        return None;
    }
    let callout: Arc<dyn HttpCallout> = Arc::new(ClusterCallout(Arc::downgrade(state)));
    // A plugin that fails to compile or start is left out; the others still run.
    let mut specs = specs;
    loop {
        match PluginChain::new(specs.clone(), callout.clone()) {
            Ok(chain) => return Some(Arc::new(chain)),
            Err(errors) => {
                for (name, e) in &errors {
                    eprintln!("error: WasmPlugin {name} not loaded: {e}");
                }
                specs.retain(|s| !errors.iter().any(|(n, _)| *n == s.name));
                if specs.is_empty() {
                    return None;
                }
            }
        }
    }
}

pub fn stream_info(state: &ProxyState, conn: &super::http::ConnInfo, protocol: &str) -> StreamInfo {
    StreamInfo {
        listener: match state.role {
            Role::Gateway => ListenerClass::Gateway,
            Role::SidecarInbound => ListenerClass::SidecarInbound,
            Role::SidecarOutbound => ListenerClass::SidecarOutbound,
        },
        port: conn.port,
        protocol: protocol.to_string(),
        start_time: std::time::SystemTime::now(),
        request_id: None,
        source: Some(conn.remote),
        destination: Some(conn.local),
        mtls: conn.peer_identity.is_some(),
        sni: conn.sni.as_deref().map(str::to_string),
        peer_uri_san: conn.peer_identity.as_deref().map(str::to_string),
        local_uri_san: None,
    }
}

/// The plugin's own answer, as the response the client gets.
pub fn local_response(r: LocalResponse) -> Response<Body> {
    let mut resp = Response::new(full(r.body));
    *resp.status_mut() = r.status;
    *resp.headers_mut() = r.headers;
    resp
}

/// Runs request-phase plugins on `req`. `Err` is the response to send instead.
pub async fn on_request(
    stream: &mut Stream,
    req: Request<hyper::body::Incoming>,
) -> Result<Request<Body>, Response<Body>> {
    let (mut parts, body) = req.into_parts();
    let mut line = RequestLine::from_parts(&parts.method, &parts.uri, &parts.headers);
    let eos = http_body::Body::is_end_stream(&body);
    match stream
        .on_request_headers(&mut parts.headers, &mut line, eos)
        .await
    {
        Verdict::Continue => {
            apply_line(&mut parts, &line);
            Ok(Request::from_parts(
                parts,
                body.map_err(|e| Box::new(e) as BoxError).boxed_unsync(),
            ))
        }
        Verdict::LocalResponse(r) => Err(local_response(r)),
        Verdict::Pause => {
            // A plugin wants the body before the head moves on: buffer it (bounded).
            let body = body.map_err(|e| Box::new(e) as BoxError).boxed_unsync();
            let Some(mut bytes) = collect_limited(body).await else {
                return Err(simple(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "request body too large for the plugins that read it",
                ));
            };
            match stream.on_request_body(&mut bytes, true).await {
                Verdict::LocalResponse(r) => Err(local_response(r)),
                _ => {
                    if let Some((headers, line)) = stream.take_request_head() {
                        parts.headers = headers;
                        apply_line(&mut parts, &line);
                    }
                    parts.headers.remove(http::header::CONTENT_LENGTH);
                    Ok(Request::from_parts(parts, full(bytes)))
                }
            }
        }
    }
}

/// Runs response-phase plugins (in reverse order) on `resp`.
pub async fn on_response(stream: &mut Stream, resp: Response<Body>) -> Response<Body> {
    let (mut parts, body) = resp.into_parts();
    let eos = http_body::Body::is_end_stream(&body);
    match stream
        .on_response_headers(&mut parts.headers, &mut parts.status, eos)
        .await
    {
        Verdict::Continue => Response::from_parts(parts, body),
        Verdict::LocalResponse(r) => local_response(r),
        Verdict::Pause => {
            let Some(mut bytes) = collect_limited(body).await else {
                return simple(
                    StatusCode::BAD_GATEWAY,
                    "response body too large for the plugins that read it",
                );
            };
            match stream.on_response_body(&mut bytes, true).await {
                Verdict::LocalResponse(r) => local_response(r),
                _ => {
                    if let Some((headers, status)) = stream.take_response_head() {
                        parts.headers = headers;
                        parts.status = status;
                    }
                    parts.headers.remove(http::header::CONTENT_LENGTH);
                    Response::from_parts(parts, full(bytes))
                }
            }
        }
    }
}

/// The whole body, or None when it fails or passes the plugins' buffering limit.
async fn collect_limited(mut body: Body) -> Option<Bytes> {
    let mut buf = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.ok()?.into_data() {
            if buf.len() + data.len() > MAX_BUFFERED_BODY {
                return None;
            }
            buf.extend_from_slice(&data);
        }
    }
    Some(buf.freeze())
}

fn simple(status: StatusCode, msg: &str) -> Response<Body> {
    let mut resp = Response::new(full(format!("{msg}\n")));
    *resp.status_mut() = status;
    resp
}

/// Writes a plugin's `:method`, `:path`, `:authority` edits back into the request.
fn apply_line(parts: &mut http::request::Parts, line: &RequestLine) {
    if let Ok(m) = http::Method::from_bytes(line.method.as_bytes()) {
        parts.method = m;
    }
    let current_pq = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    let current_auth = parts.uri.authority().map(|a| a.as_str().to_string());
    if line.path != current_pq
        || (current_auth.is_some() && current_auth.as_deref() != Some(line.authority.as_str()))
    {
        let mut p = parts.uri.clone().into_parts();
        if let Ok(pq) = line.path.parse() {
            p.path_and_query = Some(pq);
        }
        if current_auth.is_some() {
            if let Ok(a) = line.authority.parse() {
                p.authority = Some(a);
            }
        }
        if let Ok(u) = http::Uri::from_parts(p) {
            parts.uri = u;
        }
    }
    if current_auth.is_none() && !line.authority.is_empty() {
        if let Ok(v) = http::HeaderValue::from_str(&line.authority) {
            parts.headers.insert(http::header::HOST, v);
        }
    }
}

/// Plugin HTTP calls go to this proxy's clusters: by cluster name
/// (`outbound|80||auth.default.svc.cluster.local`) or by a known host.
struct ClusterCallout(Weak<ProxyState>);

impl ClusterCallout {
    fn cluster(
        state: &ProxyState,
        snapshot: &Snapshot,
        upstream: &str,
    ) -> Option<Arc<crate::router::Cluster>> {
        if let Some(c) = snapshot.clusters.get(upstream) {
            return Some(c.clone());
        }
        let (host, port) = match upstream.rsplit_once(':') {
            Some((h, p)) => (h, p.parse().unwrap_or(80)),
            None => (upstream, 80),
        };
        snapshot
            .service_cluster(host, port, Some(state.workload.namespace.as_str()))
            .cloned()
    }
}

impl HttpCallout for ClusterCallout {
    fn has_upstream(&self, upstream: &str) -> bool {
        self.0
            .upgrade()
            .is_some_and(|s| Self::cluster(&s, &s.snapshot(), upstream).is_some())
    }

    fn call(
        &self,
        upstream: &str,
        request: Request<Bytes>,
        _trailers: HeaderMap,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<CalloutResponse, CalloutError>> {
        let state = self.0.upgrade();
        let upstream = upstream.to_string();
        Box::pin(async move {
            let state =
                state.ok_or_else(|| CalloutError::Failed("proxy is shutting down".into()))?;
            let cluster = Self::cluster(&state, &state.snapshot(), &upstream)
                .ok_or(CalloutError::UnknownUpstream(upstream))?;
            let ctx = SendContext {
                timeout: Some(timeout),
                ..Default::default()
            };
            let req = request.map(full);
            let call = async {
                let (resp, _) = state
                    .upstream
                    .send(&cluster, req, &ctx)
                    .await
                    .map_err(|e| CalloutError::Failed(e.to_string()))?;
                let (parts, body) = resp.into_parts();
                let collected = body
                    .collect()
                    .await
                    .map_err(|e| CalloutError::Failed(e.to_string()))?;
                let trailers = collected.trailers().cloned().unwrap_or_default();
                Ok(CalloutResponse {
                    status: parts.status,
                    headers: parts.headers,
                    body: collected.to_bytes(),
                    trailers,
                })
            };
            tokio::time::timeout(timeout, call)
                .await
                .map_err(|_| CalloutError::Timeout)?
        })
    }
}

/// Compile-time guard: the plugin phases run inside hyper's `Send` request future.
#[allow(dead_code)]
fn assert_send(stream: &mut Stream, req: Request<hyper::body::Incoming>, resp: Response<Body>) {
    fn is_send<T: Send>(_: T) {}
    is_send(on_request(stream, req));
    is_send(on_response(stream, resp));
}
