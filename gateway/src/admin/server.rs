//! Binding and serving the admin ports. [`AdminServer::start`] binds every port up front
//! (so a port in use is reported before anything starts) and serves them from one OS
//! thread running a current-thread tokio runtime, apart from the data-plane workers.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{oneshot, Semaphore};

use super::routes::handle;
use super::AdminRoutes;

/// Connections served at once per port; further ones wait in the accept queue.
const MAX_CONNECTIONS: usize = 64;
/// A client that has not sent its request headers by then is dropped.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error(
        "cannot listen on {addr}: address already in use (is another meshgate or Envoy running?)"
    )]
    AddrInUse { addr: SocketAddr },
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start the admin server thread: {0}")]
    Start(#[source] std::io::Error),
}

impl AdminError {
    /// The address that could not be bound, if that was the problem.
    pub fn addr(&self) -> Option<SocketAddr> {
        match self {
            AdminError::AddrInUse { addr } | AdminError::Bind { addr, .. } => Some(*addr),
            AdminError::Start(_) => None,
        }
    }
}

fn bind_error(addr: SocketAddr, source: std::io::Error) -> AdminError {
    if source.kind() == std::io::ErrorKind::AddrInUse {
        AdminError::AddrInUse { addr }
    } else {
        AdminError::Bind { addr, source }
    }
}

/// A bound admin port, not yet serving.
#[derive(Debug)]
pub struct AdminListener {
    listener: TcpListener,
    local_addr: SocketAddr,
}

/// Binds `addr` (port 0 picks a free port; read it with
/// [`AdminListener::local_addr`]).
pub async fn bind(addr: SocketAddr) -> Result<AdminListener, AdminError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| bind_error(addr, e))?;
    let local_addr = listener.local_addr().map_err(|e| bind_error(addr, e))?;
    Ok(AdminListener {
        listener,
        local_addr,
    })
}

/// Binds `addr` and serves `routes` on it until the task is dropped.
pub async fn serve(addr: SocketAddr, routes: AdminRoutes) -> Result<(), AdminError> {
    bind(addr).await?.serve(routes).await;
    Ok(())
}

impl AdminListener {
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves `routes` until the task is dropped.
    pub async fn serve(self, routes: AdminRoutes) {
        let routes = Arc::new(routes);
        let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        loop {
            let Ok(permit) = slots.clone().acquire_owned().await else {
                return;
            };
            let stream = match self.listener.accept().await {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: wait rather than spin.
                    tracing::warn!(addr = %self.local_addr, error = %e, "admin accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let routes = routes.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req: http::Request<Incoming>| {
                    let resp = handle(&routes, &req);
                    async move { Ok::<_, Infallible>(resp) }
                });
                let conn = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEADER_READ_TIMEOUT)
                    .serve_connection(TokioIo::new(stream), service);
                if let Err(e) = conn.await {
                    tracing::debug!(error = %e, "admin connection ended with an error");
                }
                drop(permit);
            });
        }
    }
}

/// The admin thread and its bound ports. Dropping it stops serving.
#[derive(Debug)]
pub struct AdminServer {
    local_addrs: Vec<SocketAddr>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl AdminServer {
    /// Binds every `(address, routes)` pair, then serves them all from a new thread
    /// named `meshgate-admin`. Fails, naming the address, if any port cannot be bound;
    /// nothing is served then.
    pub fn start(ports: Vec<(SocketAddr, AdminRoutes)>) -> Result<AdminServer, AdminError> {
        let mut bound = Vec::with_capacity(ports.len());
        for (addr, routes) in ports {
            let listener = std::net::TcpListener::bind(addr).map_err(|e| bind_error(addr, e))?;
            listener
                .set_nonblocking(true)
                .map_err(|e| bind_error(addr, e))?;
            let local = listener.local_addr().map_err(|e| bind_error(addr, e))?;
            bound.push((listener, local, routes));
        }
        let local_addrs = bound.iter().map(|(_, a, _)| *a).collect();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .thread_name("meshgate-admin")
            .build()
            .map_err(AdminError::Start)?;
        let (shutdown, stopped) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("meshgate-admin".into())
            .spawn(move || {
                runtime.block_on(async move {
                    for (std_listener, local_addr, routes) in bound {
                        match TcpListener::from_std(std_listener) {
                            Ok(listener) => {
                                let l = AdminListener {
                                    listener,
                                    local_addr,
                                };
                                tokio::spawn(l.serve(routes));
                            }
                            Err(e) => {
                                tracing::error!(addr = %local_addr, error = %e, "admin port lost")
                            }
                        }
                    }
                    // Either an explicit shutdown or the AdminServer being dropped.
                    let _ = stopped.await;
                });
            })
            .map_err(AdminError::Start)?;
        Ok(AdminServer {
            local_addrs,
            shutdown: Some(shutdown),
            thread: Some(thread),
        })
    }

    /// The bound addresses, in the order given to [`AdminServer::start`].
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.local_addrs
    }

    /// Stops serving and waits for the thread to end.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::warn!("admin thread panicked");
            }
        }
    }
}

impl Drop for AdminServer {
    fn drop(&mut self) {
        self.stop();
    }
}
