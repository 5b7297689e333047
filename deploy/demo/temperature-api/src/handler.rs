//! The HTTP routes (`GET /`, `GET /healthz`) and the one place where failures become
//! JSON error responses.

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;
use serde::Serialize;
use tonic::Code;

use crate::client::TemperatureClient;
use crate::query::{self, QueryError, EXAMPLE};

/// The body of a successful conversion: `{"value":423.15,"unit":"Kelvin"}`.
#[derive(Debug, Serialize)]
struct Conversion<'a> {
    value: f64,
    unit: &'a str,
}

#[derive(Debug, Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
}

/// Everything that ends a request without a conversion, mapped to a status in
/// [`ApiError::into_response`] only.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Query(#[from] QueryError),
    /// The service refused the input (INVALID_ARGUMENT); its message is the error.
    #[error("{0}")]
    Rejected(String),
    #[error("temperature-service at {target} is unavailable: {message}")]
    Unavailable { target: String, message: String },
    #[error("temperature-service at {target} did not answer in time: {message}")]
    Timeout { target: String, message: String },
    #[error("temperature-service at {target} failed: {code:?}: {message}")]
    Upstream {
        target: String,
        code: Code,
        message: String,
    },
    #[error("no such path '{0}'; try GET {EXAMPLE}")]
    NotFound(String),
    #[error("method {0} is not allowed; use GET")]
    MethodNotAllowed(Method),
}

impl ApiError {
    fn from_status(status: tonic::Status, client: &TemperatureClient) -> Self {
        let target = client.target().to_string();
        let message = describe(&status);
        match status.code() {
            Code::InvalidArgument => ApiError::Rejected(message),
            Code::Unavailable => ApiError::Unavailable { target, message },
            Code::DeadlineExceeded | Code::Cancelled => ApiError::Timeout { target, message },
            code => ApiError::Upstream {
                target,
                code,
                message,
            },
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            ApiError::Query(_) | ApiError::Rejected(_) => StatusCode::BAD_REQUEST,
            ApiError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Timeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            ApiError::Upstream { .. } => StatusCode::BAD_GATEWAY,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
        }
    }

    /// `{"error":"…"}` with the status that fits.
    pub fn into_response(self) -> Response<Full<Bytes>> {
        let status = self.status();
        if status.is_server_error() {
            tracing::warn!(error = %self, "conversion failed");
        }
        let message = self.to_string();
        let mut response = json(status, &ErrorBody { error: &message });
        if let ApiError::MethodNotAllowed(_) = self {
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET"));
        }
        response
    }
}

/// The status message followed by its root cause ("tcp connect error: Connection
/// refused"), since transport failures keep the useful part at the end of the chain.
fn describe(status: &tonic::Status) -> String {
    let message = status.message().to_string();
    let mut root = None;
    let mut cause = std::error::Error::source(status);
    while let Some(error) = cause {
        root = Some(error);
        cause = error.source();
    }
    match root.map(|error| error.to_string()) {
        Some(root) if !message.contains(&root) => format!("{message}: {root}"),
        _ => message,
    }
}

/// Answers one request.
pub async fn handle<B>(request: Request<B>, client: &TemperatureClient) -> Response<Full<Bytes>> {
    match route(&request, client).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn route<B>(
    request: &Request<B>,
    client: &TemperatureClient,
) -> Result<Response<Full<Bytes>>, ApiError> {
    let path = request.uri().path();
    if path != "/" && path != "/healthz" {
        return Err(ApiError::NotFound(path.to_string()));
    }
    if request.method() != Method::GET {
        return Err(ApiError::MethodNotAllowed(request.method().clone()));
    }
    if path == "/healthz" {
        return Ok(json(StatusCode::OK, &serde_json::json!({ "status": "ok" })));
    }
    let convert = query::parse(request.uri().query())?;
    let converted = client
        .convert(convert, request.headers())
        .await
        .map_err(|status| ApiError::from_status(status, client))?;
    Ok(json(
        StatusCode::OK,
        &Conversion {
            value: converted.value,
            unit: &converted.unit,
        },
    ))
}

fn json(status: StatusCode, body: &impl Serialize) -> Response<Full<Bytes>> {
    // Serializing these plain structs cannot fail; fall back to an empty object anyway.
    let bytes = serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec());
    let mut response = Response::new(Full::new(Bytes::from(bytes)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
