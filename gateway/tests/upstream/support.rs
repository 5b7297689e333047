//! Real backends on 127.0.0.1 and cluster builders for the upstream tests.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode, Version};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use meshgate::mesh::upstream::MeshTlsConnector;
use meshgate::router::snapshot::{Cluster, ClusterPolicy, Endpoint, UpstreamProtocol};
use meshgate::tls::CredentialStore;
use meshgate::upstream::{ClusterManager, SendContext, UpstreamError, UpstreamInfo};
use tokio::net::TcpListener;
use tokio::sync::Notify;

/// An HTTP/1.1 + h2c (prior knowledge) server. Paths:
/// `/slow?ms=N` answers after N ms; `/block` waits for `release()`; anything else
/// answers at once. Every response has `x-version` (the request's HTTP version) and
/// `x-authority` (Host or :authority) headers and the status set by `set_status`.
pub struct Backend {
    pub addr: SocketAddr,
    pub accepts: Arc<AtomicUsize>,
    pub requests: Arc<AtomicUsize>,
    pub in_flight: Arc<AtomicUsize>,
    status: Arc<AtomicU16>,
    gate: Arc<Notify>,
}

impl Backend {
    pub async fn start() -> Backend {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Backend::serve(listener, None).await
    }

    /// Serves TLS with `acceptor` (ALPN decides h2 or HTTP/1.1).
    pub async fn start_tls(acceptor: tokio_rustls::TlsAcceptor) -> Backend {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Backend::serve(listener, Some(acceptor)).await
    }

    async fn serve(listener: TcpListener, tls: Option<tokio_rustls::TlsAcceptor>) -> Backend {
        let addr = listener.local_addr().unwrap();
        let b = Backend {
            addr,
            accepts: Arc::default(),
            requests: Arc::default(),
            in_flight: Arc::default(),
            status: Arc::new(AtomicU16::new(200)),
            gate: Arc::new(Notify::new()),
        };
        let (accepts, requests, in_flight, status, gate) = (
            b.accepts.clone(),
            b.requests.clone(),
            b.in_flight.clone(),
            b.status.clone(),
            b.gate.clone(),
        );
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                accepts.fetch_add(1, Ordering::SeqCst);
                let (requests, in_flight, status, gate) = (
                    requests.clone(),
                    in_flight.clone(),
                    status.clone(),
                    gate.clone(),
                );
                let svc = service_fn(move |req: Request<Incoming>| {
                    let (requests, in_flight, status, gate) = (
                        requests.clone(),
                        in_flight.clone(),
                        status.clone(),
                        gate.clone(),
                    );
                    async move {
                        requests.fetch_add(1, Ordering::SeqCst);
                        in_flight.fetch_add(1, Ordering::SeqCst);
                        let path = req.uri().path().to_string();
                        if path == "/block" {
                            gate.notified().await;
                        } else if path == "/slow" {
                            let ms: u64 = req
                                .uri()
                                .query()
                                .and_then(|q| q.strip_prefix("ms="))
                                .and_then(|v| v.parse().ok())
                                .unwrap_or(100);
                            tokio::time::sleep(Duration::from_millis(ms)).await;
                        }
                        let authority = req
                            .headers()
                            .get("host")
                            .and_then(|h| h.to_str().ok())
                            .map(str::to_string)
                            .or_else(|| req.uri().authority().map(|a| a.to_string()))
                            .unwrap_or_default();
                        in_flight.fetch_sub(1, Ordering::SeqCst);
                        let resp = Response::builder()
                            .status(status.load(Ordering::SeqCst))
                            .header("x-version", format!("{:?}", req.version()))
                            .header("x-authority", authority)
                            .body(Full::new(Bytes::from_static(b"hello")))
                            .unwrap();
                        Ok::<_, Infallible>(resp)
                    }
                });
                let tls = tls.clone();
                tokio::spawn(async move {
                    let builder = auto::Builder::new(TokioExecutor::new());
                    match tls {
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(tcp).await {
                                let _ = builder.serve_connection(TokioIo::new(stream), svc).await;
                            }
                        }
                        None => {
                            let _ = builder.serve_connection(TokioIo::new(tcp), svc).await;
                        }
                    }
                });
            }
        });
        b
    }

    pub fn set_status(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
    }

    /// Lets every request waiting on `/block` answer.
    pub fn release(&self) {
        self.gate.notify_waiters();
    }

    pub fn accepts(&self) -> usize {
        self.accepts.load(Ordering::SeqCst)
    }

    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

pub fn endpoint(address: impl Into<String>) -> Endpoint {
    Endpoint {
        address: address.into(),
        labels: Default::default(),
        weight: 1,
        service_account: None,
    }
}

pub fn cluster(
    name: &str,
    endpoints: Vec<Endpoint>,
    protocol: UpstreamProtocol,
    policy: ClusterPolicy,
) -> Arc<Cluster> {
    Arc::new(Cluster {
        name: name.into(),
        host: "httpbin.default.svc.cluster.local".into(),
        port: 80,
        subset: None,
        protocol,
        endpoints,
        dns: false,
        policy,
        missing: None,
    })
}

pub fn http1(endpoints: &[SocketAddr], policy: ClusterPolicy) -> Arc<Cluster> {
    let eps = endpoints.iter().map(|a| endpoint(a.to_string())).collect();
    cluster(
        "outbound|80||httpbin.default.svc.cluster.local",
        eps,
        UpstreamProtocol::Http1,
        policy,
    )
}

pub fn manager_with(clusters: &[&Arc<Cluster>]) -> ClusterManager {
    // The connector the gateway and sidecars use (SIMPLE/MUTUAL from files here).
    let mgr = ClusterManager::with_tls_connector(Arc::new(MeshTlsConnector::new(
        None,
        CredentialStore::without_root(),
    )));
    let map: HashMap<_, _> = clusters
        .iter()
        .map(|c| (c.name.clone(), Arc::clone(c)))
        .collect();
    mgr.update(&map);
    mgr
}

/// One finished exchange: status, the backend's `x-version`, body and where it went.
pub struct Answer {
    pub status: StatusCode,
    pub version: String,
    pub authority: String,
    pub info: UpstreamInfo,
}

pub async fn get_with(
    mgr: &ClusterManager,
    cluster: &Arc<Cluster>,
    path: &str,
    headers: &[(&str, &str)],
    ctx: &SendContext,
) -> Result<Answer, UpstreamError> {
    let mut req = Request::builder()
        .uri(path)
        .header("host", "httpbin.example.com");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req.body(Empty::<Bytes>::new()).unwrap();
    let (resp, info) = mgr.send(cluster, req, ctx).await?;
    let status = resp.status();
    let header = |n: &str| {
        resp.headers()
            .get(n)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    };
    let (version, authority) = (header("x-version"), header("x-authority"));
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"hello");
    Ok(Answer {
        status,
        version,
        authority,
        info,
    })
}

pub async fn get(
    mgr: &ClusterManager,
    cluster: &Arc<Cluster>,
    path: &str,
) -> Result<Answer, UpstreamError> {
    get_with(mgr, cluster, path, &[], &SendContext::default()).await
}

pub fn h2_ctx() -> SendContext {
    SendContext {
        downstream_version: Version::HTTP_2,
        ..Default::default()
    }
}

/// The `/clusters` value of `key` for the endpoint at `addr`.
pub fn host_stat(mgr: &ClusterManager, addr: &str, key: &str) -> String {
    let needle = format!("::{addr}::{key}::");
    mgr.clusters_text()
        .lines()
        .find_map(|l| l.split_once(&needle).map(|(_, v)| v.to_string()))
        .unwrap_or_else(|| panic!("no {key} for {addr} in /clusters"))
}

/// Polls `cond` every 10 ms for up to 3 s.
pub async fn eventually(mut cond: impl FnMut() -> bool) -> bool {
    for _ in 0..300 {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}
