//! The gRPC face of the converter: maps requests onto `convert` and refusals onto
//! INVALID_ARGUMENT.

use tonic::{Request, Response, Status};

use crate::convert::{convert, parse_unit};
use crate::proto::temperature_service_server::TemperatureService;
use crate::proto::{ConvertRequest, ConvertResponse};

/// The `temperature.v1.TemperatureService` implementation. Stateless.
#[derive(Debug, Default, Clone, Copy)]
pub struct Converter;

#[tonic::async_trait]
impl TemperatureService for Converter {
    async fn convert(
        &self,
        request: Request<ConvertRequest>,
    ) -> Result<Response<ConvertResponse>, Status> {
        let ConvertRequest { value, from, to } = request.into_inner();
        let result = parse_unit("from", &from).and_then(|from_unit| {
            let to_unit = parse_unit("to", &to)?;
            Ok((convert(value, from_unit, to_unit)?, to_unit))
        });
        match result {
            Ok((converted, unit)) => Ok(Response::new(ConvertResponse {
                value: converted,
                unit: unit.canonical_name().to_string(),
            })),
            Err(refusal) => {
                tracing::debug!(%refusal, "conversion refused");
                Err(Status::invalid_argument(refusal.to_string()))
            }
        }
    }
}
