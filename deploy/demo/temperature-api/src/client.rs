//! The gRPC client for temperature-service: one lazily connected HTTP/2 channel that
//! reconnects on its own after the service restarts.

use http::{HeaderMap, Uri};
use temperature_service::{ConvertRequest, ConvertResponse, TemperatureServiceClient};
use tonic::metadata::MetadataValue;
use tonic::transport::{Channel, Endpoint};

use crate::config::{ApiConfig, ConfigError};

/// Request headers passed on to temperature-service so a mesh can join the two hops
/// into one trace (Istio asks applications to propagate these).
const PROPAGATED_HEADERS: [&str; 9] = [
    "x-request-id",
    "traceparent",
    "tracestate",
    "b3",
    "x-b3-traceid",
    "x-b3-spanid",
    "x-b3-parentspanid",
    "x-b3-sampled",
    "x-b3-flags",
];

/// A cheap-to-clone handle on the channel to temperature-service.
#[derive(Debug, Clone)]
pub struct TemperatureClient {
    grpc: TemperatureServiceClient<Channel>,
    target: Uri,
}

impl TemperatureClient {
    /// Builds the channel without connecting: the first call connects, and a call after
    /// the connection broke dials again.
    pub fn new(config: &ApiConfig) -> Result<Self, ConfigError> {
        let origin = config.origin()?;
        let channel = Endpoint::from(config.temperature_service.clone())
            // Requests name `origin` in `:authority` while the socket goes to the target.
            .origin(origin)
            .connect_timeout(config.timeout)
            .timeout(config.timeout)
            .tcp_nodelay(true)
            .connect_lazy();
        Ok(TemperatureClient {
            grpc: TemperatureServiceClient::new(channel),
            target: config.temperature_service.clone(),
        })
    }

    /// Where the channel connects.
    pub fn target(&self) -> &Uri {
        &self.target
    }

    /// Calls Convert, carrying the trace headers found in `incoming`.
    pub async fn convert(
        &self,
        request: ConvertRequest,
        incoming: &HeaderMap,
    ) -> Result<ConvertResponse, tonic::Status> {
        let mut call = tonic::Request::new(request);
        for name in PROPAGATED_HEADERS {
            let value = incoming
                .get(name)
                .and_then(|value| MetadataValue::try_from(value.as_bytes()).ok());
            if let Some(value) = value {
                call.metadata_mut().insert(name, value);
            }
        }
        // The generated client needs `&mut`; clones share the one channel.
        let mut grpc = self.grpc.clone();
        Ok(grpc.convert(call).await?.into_inner())
    }
}
