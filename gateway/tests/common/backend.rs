//! Backends the gateway forwards to: an HTTP/1.1 + h2c echo server (optionally over
//! TLS) that reports what it received as JSON and can be told to delay or fail, and a
//! TCP echo server that names itself.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

#[derive(Default)]
struct Shared {
    requests: AtomicUsize,
    /// Answer the next N requests with 503.
    fail_next: AtomicUsize,
    /// Answer every request with this status (0: normal behaviour).
    status: AtomicU16,
    hosts: Mutex<Vec<String>>,
}

/// An echo backend. Paths: `/status/N` answers N, `/delay/S` answers after S seconds
/// (fractions allowed); header `x-delay-ms: N` delays too. Every answer carries
/// `x-backend: NAME` and a JSON body: backend, method, path, host, version, headers.
pub struct Backend {
    pub name: String,
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Backend {
    pub async fn start(name: &str) -> Backend {
        Self::serve(name, None).await
    }

    /// Serves over TLS with `config` (ALPN picks h2 or HTTP/1.1).
    pub async fn start_tls(name: &str, config: Arc<rustls::ServerConfig>) -> Backend {
        Self::serve(name, Some(tokio_rustls::TlsAcceptor::from(config))).await
    }

    async fn serve(name: &str, tls: Option<tokio_rustls::TlsAcceptor>) -> Backend {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared::default());
        let (n, s) = (name.to_string(), shared.clone());
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (name, shared, tls) = (n.clone(), s.clone(), tls.clone());
                tokio::spawn(async move {
                    let svc = service_fn(move |req| answer(name.clone(), shared.clone(), req));
                    let builder = auto::Builder::new(TokioExecutor::new());
                    match tls {
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(tcp).await {
                                let _ = builder
                                    .serve_connection_with_upgrades(TokioIo::new(stream), svc)
                                    .await;
                            }
                        }
                        None => {
                            let _ = builder
                                .serve_connection_with_upgrades(TokioIo::new(tcp), svc)
                                .await;
                        }
                    }
                });
            }
        });
        Backend {
            name: name.to_string(),
            addr,
            shared,
            task,
        }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Requests received so far.
    pub fn requests(&self) -> usize {
        self.shared.requests.load(Ordering::SeqCst)
    }

    /// The Host / :authority of every request received, in order.
    pub fn hosts(&self) -> Vec<String> {
        self.shared.hosts.lock().unwrap().clone()
    }

    /// The next `n` requests get 503.
    pub fn fail_next(&self, n: usize) {
        self.shared.fail_next.store(n, Ordering::SeqCst);
    }

    /// Every request gets `status` from now on (0: back to normal).
    pub fn set_status(&self, status: u16) {
        self.shared.status.store(status, Ordering::SeqCst);
    }
}

async fn answer(
    name: String,
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    shared.requests.fetch_add(1, Ordering::SeqCst);
    let host = req
        .uri()
        .authority()
        .map(|a| a.to_string())
        .or_else(|| {
            req.headers()
                .get(http::header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_string)
        })
        .unwrap_or_default();
    shared.hosts.lock().unwrap().push(host.clone());
    let path = req.uri().path().to_string();
    let mut delay = req
        .headers()
        .get("x-delay-ms")
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
        .map(Duration::from_millis);
    let mut status = StatusCode::OK;
    if let Some(code) = path.strip_prefix("/status/") {
        status = code
            .parse::<u16>()
            .ok()
            .and_then(|c| StatusCode::from_u16(c).ok())
            .unwrap_or(StatusCode::BAD_REQUEST);
    }
    if let Some(secs) = path.strip_prefix("/delay/") {
        delay = secs.parse::<f64>().ok().map(Duration::from_secs_f64);
    }
    let forced = shared.status.load(Ordering::SeqCst);
    if forced != 0 {
        status = StatusCode::from_u16(forced).unwrap();
    }
    if shared
        .fail_next
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
    {
        status = StatusCode::SERVICE_UNAVAILABLE;
    }
    let headers: BTreeMap<String, String> = req
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let version = format!("{:?}", req.version());
    let method = req.method().to_string();
    // Read the request body before answering, as a real server would.
    let _ = req.into_body().collect().await;
    if let Some(d) = delay {
        tokio::time::sleep(d).await;
    }
    let body = serde_json::json!({
        "backend": name,
        "method": method,
        "path": path,
        "host": host,
        "version": version,
        "headers": headers,
    });
    Ok(Response::builder()
        .status(status)
        .header("x-backend", name.as_str())
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap())
}

/// A TCP server that answers each line with `NAME LINE`.
pub struct TcpEcho {
    pub name: String,
    pub addr: SocketAddr,
    pub connections: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Drop for TcpEcho {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TcpEcho {
    pub async fn start(name: &str) -> TcpEcho {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let (n, c) = (name.to_string(), connections.clone());
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                c.fetch_add(1, Ordering::SeqCst);
                let name = n.clone();
                tokio::spawn(async move {
                    let (r, mut w) = tcp.into_split();
                    let mut lines = BufReader::new(r).lines();
                    while let Ok(Some(line)) = lines.next_line().await {
                        if w.write_all(format!("{name} {line}\n").as_bytes())
                            .await
                            .is_err()
                        {
                            break;
                        }
                    }
                });
            }
        });
        TcpEcho {
            name: name.to_string(),
            addr,
            connections,
            task,
        }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }
}
