//! Listeners: accept loops that hand each connection to hyper (HTTP/1.1 with upgrades,
//! HTTP/2 prior-knowledge or by ALPN) and drain in-flight requests on shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::watch;

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
        tcp: tokio::net::TcpStream,
        info: ConnInfo,
    ) -> impl std::future::Future<Output = Option<(Self::Io, ConnInfo)>> + Send;
}

/// Plain TCP: the connection as it is.
pub struct Plain;

impl Accept for Plain {
    type Io = tokio::net::TcpStream;
    async fn accept(
        &self,
        tcp: tokio::net::TcpStream,
        info: ConnInfo,
    ) -> Option<(Self::Io, ConnInfo)> {
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
    mut stop: watch::Receiver<bool>,
    drain: Duration,
) {
    let graceful = GracefulShutdown::new();
    let local = listener.local_addr().ok();
    let stats = state.telemetry.as_ref().map(|t| {
        let name = local.map_or_else(|| port.to_string(), |a| a.to_string());
        t.metrics.proxy.listener(&name)
    });
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.wait_for(|s| *s) => break,
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
        };
        let acceptor = acceptor.clone();
        let state = state.clone();
        let watcher = graceful.watcher();
        let open = stats.as_ref().map(|s| s.connection_opened());
        tokio::spawn(async move {
            let _open = open;
            let Some((io, info)) = acceptor.accept(tcp, info).await else {
                return;
            };
            let info = Arc::new(info);
            let svc = service_fn(move |req| handle(state.clone(), info.clone(), req));
            let builder = Builder::new(TokioExecutor::new());
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), svc);
            let _ = watcher.watch(conn.into_owned()).await;
        });
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(drain) => tracing::warn!("port {port}: drain timeout reached with requests still in flight"),
    }
}
