//! The demo's HTTP temperature API: `GET /?from=Celsius&to=Kelvin&temperature=150`
//! answers `{"value":423.15,"unit":"Kelvin"}` by calling temperature-service over gRPC.
//!
//! `meshgate demo` links this crate and calls [`serve`] in-process; the
//! `temperature-api` binary does the same on its own.

use std::{convert::Infallible, future::Future, time::Duration};

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

pub mod client;
pub mod config;
pub mod handler;
pub mod query;

pub use client::TemperatureClient;
pub use config::{ApiConfig, ConfigError};

/// How long open connections get to finish after shutdown before they are dropped.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the API could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("invalid temperature-api configuration: {0}")]
    Config(#[from] ConfigError),
}

/// Serves the API on `listener` (HTTP/1.1, and HTTP/2 with prior knowledge) until
/// `shutdown` completes, then drains open connections (for at most 10 s) and returns.
/// Fails at once, before accepting anything, if `config` cannot work.
pub async fn serve(
    listener: TcpListener,
    config: ApiConfig,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    let client = TemperatureClient::new(&config)?;
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // The timer lets hyper enforce its HTTP/1 header-read timeout on slow clients.
    builder.http1().timer(TokioTimer::new());
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _peer)) => stream,
            Err(err) => {
                // Usually out of file descriptors: back off instead of spinning.
                tracing::warn!(error = %err, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let client = client.clone();
        let service = service_fn(move |request| {
            let client = client.clone();
            async move { Ok::<_, Infallible>(handler::handle(request, &client).await) }
        });
        let connection = builder
            .serve_connection(TokioIo::new(stream), service)
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                tracing::debug!(error = %err, "connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after {DRAIN_TIMEOUT:?}; closing them");
    }
    Ok(())
}
