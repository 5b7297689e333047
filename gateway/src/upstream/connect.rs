//! Opening connections to an endpoint: DNS when the cluster asks for it, TCP with
//! TCP_NODELAY under `connectTimeout`, then TLS through a pluggable connector when the
//! DestinationRule originates TLS.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::router::snapshot::{Cluster, Endpoint, UpstreamTlsMode};

use super::cluster::CxGuard;
use super::error::UpstreamError;

/// Istio's default `connectionPool.tcp.connectTimeout`.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Any byte stream an upstream connection can run over.
pub trait UpstreamStream: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> UpstreamStream for T {}

pub type BoxedIo = Box<dyn UpstreamStream>;
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The result of a TLS handshake towards an upstream.
pub struct TlsStream {
    pub io: BoxedIo,
    /// ALPN chose `h2`.
    pub negotiated_h2: bool,
}

/// Originates TLS to an endpoint (`DestinationRule.trafficPolicy.tls`). The proxies
/// plug in `mesh::upstream::MeshTlsConnector`: SIMPLE and MUTUAL from files or
/// `credentialName`, and ISTIO_MUTUAL with the workload's mesh identity.
pub trait UpstreamTlsConnector: Send + Sync + 'static {
    /// `alpn` lists the protocols to offer, most preferred first.
    fn connect<'a>(
        &'a self,
        tcp: TcpStream,
        endpoint: &'a Endpoint,
        cluster: &'a Cluster,
        alpn: &'a [&'static [u8]],
    ) -> BoxFuture<'a, io::Result<TlsStream>>;
}

/// An open upstream connection. It holds its slot under `maxConnections` (and the
/// `cx_active` counters) until dropped.
pub struct UpstreamConnection {
    io: BoxedIo,
    pub(crate) peer: Option<SocketAddr>,
    pub(crate) local: Option<SocketAddr>,
    pub(crate) negotiated_h2: bool,
    _slot: CxGuard,
}

impl UpstreamConnection {
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.peer
    }

    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local
    }

    /// TLS was originated and ALPN chose `h2`.
    pub fn negotiated_h2(&self) -> bool {
        self.negotiated_h2
    }
}

impl AsyncRead for UpstreamConnection {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for UpstreamConnection {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.io).poll_shutdown(cx)
    }
}

/// Connects `slot`'s endpoint. `alpn` is offered only when TLS is originated.
pub(crate) async fn open(
    cluster: &Cluster,
    slot: CxGuard,
    tls: &dyn UpstreamTlsConnector,
    alpn: &[&'static [u8]],
) -> Result<UpstreamConnection, UpstreamError> {
    let endpoint = slot.endpoint.endpoint.load_full();
    let timeout = cluster
        .policy
        .connect_timeout
        .filter(|d| !d.is_zero())
        .unwrap_or(DEFAULT_CONNECT_TIMEOUT);
    let fail = |reason: String| UpstreamError::ConnectFailure {
        address: endpoint.address.clone(),
        reason,
    };
    let attempt = async {
        let tcp = connect_tcp(&endpoint.address)
            .await
            .map_err(|e| fail(e.to_string()))?;
        let peer = tcp.peer_addr().ok();
        let local = tcp.local_addr().ok();
        let originate = cluster
            .policy
            .tls
            .as_ref()
            .is_some_and(|t| t.mode != UpstreamTlsMode::Disable);
        let (io, negotiated_h2): (BoxedIo, bool) = if originate {
            let s = tls
                .connect(tcp, &endpoint, cluster, alpn)
                .await
                .map_err(|e| fail(format!("TLS error: {e}")))?;
            (s.io, s.negotiated_h2)
        } else {
            (Box::new(tcp), false)
        };
        Ok((io, peer, local, negotiated_h2))
    };
    let result = match tokio::time::timeout(timeout, attempt).await {
        Ok(r) => r,
        Err(_) => Err(fail(format!("connect timeout after {timeout:?}"))),
    };
    match result {
        Ok((io, peer, local, negotiated_h2)) => Ok(UpstreamConnection {
            io,
            peer,
            local,
            negotiated_h2,
            _slot: slot,
        }),
        Err(e) => {
            slot.endpoint
                .stats
                .cx_connect_fail
                .fetch_add(1, Ordering::Relaxed);
            Err(e)
        }
    }
}

/// `address` is `IP:port`, or `host:port` resolved now (DNS clusters resolve at
/// connect time); every resolved address is tried in turn.
async fn connect_tcp(address: &str) -> io::Result<TcpStream> {
    let addrs: Vec<SocketAddr> = match address.parse::<SocketAddr>() {
        Ok(a) => vec![a],
        Err(_) => tokio::net::lookup_host(address)
            .await
            .map_err(|e| io::Error::new(e.kind(), format!("resolving {address}: {e}")))?
            .collect(),
    };
    let mut last = io::Error::new(
        io::ErrorKind::NotFound,
        format!("{address} resolved to no address"),
    );
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(s) => {
                // Small request heads must not wait for Nagle.
                s.set_nodelay(true)?;
                return Ok(s);
            }
            Err(e) => last = io::Error::new(e.kind(), format!("{addr}: {e}")),
        }
    }
    Err(last)
}
