//! The demo's gRPC temperature converter (`temperature.v1.TemperatureService`): converts
//! between Celsius, Fahrenheit and Kelvin, served over cleartext HTTP/2 (h2c).
//!
//! `meshgate demo` links this crate and calls [`serve`] in-process; the
//! `temperature-service` binary does the same on its own.

use std::future::Future;

use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;

pub mod convert;
pub mod service;

/// Code generated from `proto/temperature.proto`.
#[allow(clippy::all)]
pub mod proto {
    tonic::include_proto!("temperature.v1");

    /// The encoded `FileDescriptorSet` of `proto/temperature.proto`, for gRPC reflection
    /// or for proxies that need to decode the messages.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        tonic::include_file_descriptor_set!("temperature_descriptor");
}

pub use convert::{ConversionError, Unit};
pub use proto::temperature_service_client::TemperatureServiceClient;
pub use proto::temperature_service_server::TemperatureServiceServer;
pub use proto::{ConvertRequest, ConvertResponse, FILE_DESCRIPTOR_SET};
pub use service::Converter;

/// The gRPC service name, as it appears in request paths (`/temperature.v1.TemperatureService/Convert`).
pub const SERVICE_NAME: &str = "temperature.v1.TemperatureService";

/// Why the server could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot use the listener: {0}")]
    Listener(Box<dyn std::error::Error + Send + Sync>),
    #[error("gRPC server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// The converter as a tower service, for callers that run their own HTTP/2 server.
pub fn grpc_service() -> TemperatureServiceServer<Converter> {
    TemperatureServiceServer::new(Converter)
}

/// Serves the converter on `listener` (h2c, prior knowledge) until `shutdown` completes,
/// then lets in-flight calls finish and returns.
pub async fn serve(
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    // Small unary messages: send them at once rather than wait for Nagle.
    let incoming =
        TcpIncoming::from_listener(listener, true, None).map_err(ServeError::Listener)?;
    tonic::transport::Server::builder()
        .add_service(grpc_service())
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptor_set_describes_the_service() {
        let contains = |needle: &[u8]| {
            FILE_DESCRIPTOR_SET
                .windows(needle.len())
                .any(|window| window == needle)
        };
        assert!(contains(b"temperature.proto"));
        assert!(contains(b"temperature.v1"));
        assert!(contains(b"TemperatureService"));
        assert!(contains(b"ConvertRequest"));
    }
}
