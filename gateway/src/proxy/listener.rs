//! Listeners: accept loops that hand each connection to a handler (hyper for HTTP with
//! upgrades and HTTP/2 by preface or ALPN, or a TCP proxy) and drain in-flight
//! connections on shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::http::{handle, ConnInfo};
use super::ProxyState;

/// Binds `addr`, naming the flag that chose it when the port is taken.
pub async fn bind(addr: SocketAddr, flag: &str) -> anyhow::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket
        .bind(addr)
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr} ({flag}): {e}"))?;
    Ok(socket.listen(1024)?)
}

/// Something that turns an accepted TCP connection into a (possibly TLS) stream.
pub trait Accept: Send + Sync + 'static {
    type Io: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    fn accept(
        &self,
        tcp: TcpStream,
        info: ConnInfo,
    ) -> impl std::future::Future<Output = Option<(Self::Io, ConnInfo)>> + Send;
}

/// Plain TCP: the connection as it is.
pub struct Plain;

impl Accept for Plain {
    type Io = TcpStream;
    async fn accept(&self, tcp: TcpStream, info: ConnInfo) -> Option<(Self::Io, ConnInfo)> {
        Some((tcp, info))
    }
}

/// Serves HTTP on `listener` until `stop` turns true, then lets in-flight requests
/// finish for up to `drain`.
pub async fn serve_http<A: Accept>(
    listener: TcpListener,
    port: u32,
    scheme: &'static str,
    acceptor: Arc<A>,
    state: Arc<ProxyState>,
    stop: watch::Receiver<bool>,
    drain: Duration,
) {
    let stats = listener_stats(&state, &listener, port);
    serve(
        listener,
        port,
        scheme,
        stop,
        drain,
        stats,
        move |tcp, info, watcher| {
            let acceptor = acceptor.clone();
            let state = state.clone();
            async move {
                if let Some((io, info)) = acceptor.accept(tcp, info).await {
                    serve_hyper(io, Arc::new(info), state, watcher).await;
                }
            }
        },
    )
    .await
}

/// `meshgate_downstream_connections_*` for this listener, named by its address.
pub fn listener_stats(
    state: &ProxyState,
    listener: &TcpListener,
    port: u32,
) -> Option<crate::telemetry::ListenerStats> {
    let t = state.telemetry.as_ref()?;
    let name = listener
        .local_addr()
        .map_or_else(|_| port.to_string(), |a| a.to_string());
    Some(t.metrics.proxy.listener(&name))
}

/// Serves one connection with hyper (HTTP/1.1 with upgrades, or HTTP/2), registered
/// with `watcher` so a shutdown lets its in-flight requests finish.
pub async fn serve_hyper<IO>(io: IO, info: Arc<ConnInfo>, state: Arc<ProxyState>, watcher: Watcher)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let svc = service_fn(move |req| handle(state.clone(), info.clone(), req));
    let builder = Builder::new(TokioExecutor::new());
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), svc);
    let _ = watcher.watch(conn.into_owned()).await;
}

/// The accept loop: every connection goes to `on_conn` in its own task. When `stop`
/// turns true the listener closes; HTTP connections registered with the watcher finish
/// their in-flight requests, other connections (TCP proxying) run on, all for up to
/// `drain`, after which whatever is left is cut.
pub async fn serve<F, Fut>(
    listener: TcpListener,
    port: u32,
    scheme: &'static str,
    mut stop: watch::Receiver<bool>,
    drain: Duration,
    stats: Option<crate::telemetry::ListenerStats>,
    on_conn: F,
) where
    F: Fn(TcpStream, ConnInfo, Watcher) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let graceful = GracefulShutdown::new();
    let local = listener.local_addr().ok();
    let mut conns = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.wait_for(|s| *s) => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
        };
        let (tcp, remote) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!("accept on port {port}: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let info = ConnInfo {
            remote,
            local: local.unwrap_or(remote),
            port,
            scheme,
            sni: None,
            peer_identity: None,
            tls_server: None,
        };
        // Counted open until the connection's task ends.
        let open = stats.as_ref().map(|s| s.connection_opened());
        let conn = on_conn(tcp, info, graceful.watcher());
        conns.spawn(async move {
            conn.await;
            drop(open);
        });
    }
    drop(listener);
    let finished = async {
        graceful.shutdown().await;
        while conns.join_next().await.is_some() {}
    };
    if tokio::time::timeout(drain, finished).await.is_err() {
        tracing::warn!("port {port}: drain timeout reached with connections still open");
    }
}
