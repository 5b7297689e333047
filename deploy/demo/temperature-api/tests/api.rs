//! temperature-api in front of a real temperature-service, over real sockets on
//! 127.0.0.1: the article's request, the JSON errors, the `:authority` sent, and
//! recovery after the service restarts.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::uri::Authority;
use http::{Request, StatusCode, Uri};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use temperature_api::ApiConfig;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::codegen::Service;

const MESH_AUTHORITY: &str = "temperature-service.default.svc.cluster.local:8080";

/// A server task and the switch that stops it.
struct Running<E> {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), E>>,
}

impl<E: std::fmt::Debug> Running<E> {
    async fn stop(self) {
        self.stop.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("server did not stop within 10 s")
            .unwrap()
            .unwrap();
    }
}

async fn start_service(listener: TcpListener) -> Running<temperature_service::ServeError> {
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(temperature_service::serve(listener, async {
        let _ = stopped.await;
    }));
    Running { addr, stop, task }
}

async fn start_api(config: ApiConfig) -> Running<temperature_api::ServeError> {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(temperature_api::serve(listener, config, async {
        let _ = stopped.await;
    }));
    Running { addr, stop, task }
}

fn target(addr: SocketAddr) -> Uri {
    format!("http://{addr}").parse().unwrap()
}

/// What a test reads from a response.
#[derive(Debug)]
struct Answer {
    status: StatusCode,
    content_type: Option<String>,
    body: String,
}

impl Answer {
    fn error_message(&self) -> String {
        let json: serde_json::Value = serde_json::from_str(&self.body).unwrap();
        assert_eq!(json.as_object().unwrap().len(), 1, "body: {}", self.body);
        json["error"].as_str().unwrap().to_string()
    }
}

/// One HTTP/1.1 GET on a fresh connection.
async fn get(api: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Answer {
    let stream = TcpStream::connect(api).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    let mut request = Request::get(path).header("host", "temperature-api");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = sender
        .send_request(request.body(Empty::<Bytes>::new()).unwrap())
        .await
        .unwrap();
    read(response).await
}

async fn read(response: http::Response<Incoming>) -> Answer {
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|value| value.to_str().unwrap().to_string());
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        content_type,
        body: String::from_utf8(body.to_vec()).unwrap(),
    }
}

const ARTICLE_REQUEST: &str = "/?from=Celsius&to=Kelvin&temperature=150";

#[tokio::test]
async fn the_articles_request_gets_the_exact_body() {
    let service = start_service(TcpListener::bind("127.0.0.1:0").await.unwrap()).await;
    let api = start_api(ApiConfig::new(target(service.addr))).await;
    let answer = get(api.addr, ARTICLE_REQUEST, &[]).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.content_type.as_deref(), Some("application/json"));
    assert_eq!(answer.body, r#"{"value":423.15,"unit":"Kelvin"}"#);

    let answer = get(
        api.addr,
        "/?from=fahrenheit&to=celsius&temperature=212",
        &[],
    )
    .await;
    assert_eq!(answer.body, r#"{"value":100.0,"unit":"Celsius"}"#);

    api.stop().await;
    service.stop().await;
}

#[tokio::test]
async fn answers_over_h2c_too() {
    let service = start_service(TcpListener::bind("127.0.0.1:0").await.unwrap()).await;
    let api = start_api(ApiConfig::new(target(service.addr))).await;
    let stream = TcpStream::connect(api.addr).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(connection);
    let request = Request::get(format!("http://temperature-api{ARTICLE_REQUEST}"))
        .body(Empty::<Bytes>::new())
        .unwrap();
    let answer = read(sender.send_request(request).await.unwrap()).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.body, r#"{"value":423.15,"unit":"Kelvin"}"#);
}

#[tokio::test]
async fn healthz_and_unknown_routes() {
    // /healthz answers even when the service is not there.
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = start_api(ApiConfig::new(target(closed.local_addr().unwrap()))).await;
    drop(closed);
    let answer = get(api.addr, "/healthz", &[]).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.body, r#"{"status":"ok"}"#);

    let answer = get(api.addr, "/convert", &[]).await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert!(answer.error_message().contains(ARTICLE_REQUEST));
}

#[tokio::test]
async fn missing_or_bad_parameters_are_400_json() {
    let service = start_service(TcpListener::bind("127.0.0.1:0").await.unwrap()).await;
    let api = start_api(ApiConfig::new(target(service.addr))).await;

    let answer = get(api.addr, "/?from=Celsius&to=Kelvin", &[]).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(answer.content_type.as_deref(), Some("application/json"));
    assert_eq!(
        answer.error_message(),
        format!("missing query parameter temperature; expected {ARTICLE_REQUEST}")
    );

    let answer = get(api.addr, "/", &[]).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert!(answer
        .error_message()
        .starts_with("missing query parameters from, to, temperature;"));

    let answer = get(api.addr, "/?from=Celsius&to=Kelvin&temperature=warm", &[]).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        answer.error_message(),
        "query parameter 'temperature' must be a number, got 'warm'"
    );
}

#[tokio::test]
async fn service_refusals_are_400_json_with_the_services_message() {
    let service = start_service(TcpListener::bind("127.0.0.1:0").await.unwrap()).await;
    let api = start_api(ApiConfig::new(target(service.addr))).await;

    let answer = get(api.addr, "/?from=Celsius&to=Rankine&temperature=1", &[]).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(answer.content_type.as_deref(), Some("application/json"));
    assert_eq!(
        answer.error_message(),
        "unknown unit 'Rankine' in 'to'; expected Celsius, Fahrenheit or Kelvin"
    );

    let answer = get(api.addr, "/?from=Kelvin&to=Celsius&temperature=-1", &[]).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        answer.error_message(),
        "-1 Kelvin is below absolute zero (0 Kelvin)"
    );
}

#[tokio::test]
async fn service_down_is_503_and_a_restart_on_the_same_port_recovers() {
    let service = start_service(TcpListener::bind("127.0.0.1:0").await.unwrap()).await;
    let addr = service.addr;
    let api = start_api(ApiConfig::new(target(addr))).await;
    assert_eq!(
        get(api.addr, ARTICLE_REQUEST, &[]).await.status,
        StatusCode::OK
    );

    service.stop().await;
    let answer = get(api.addr, ARTICLE_REQUEST, &[]).await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE, "{answer:?}");
    assert_eq!(answer.content_type.as_deref(), Some("application/json"));
    let message = answer.error_message();
    assert!(
        message.starts_with(&format!(
            "temperature-service at http://{addr}/ is unavailable"
        )),
        "{message}"
    );
    // The root cause reaches the caller, not just "tcp connect error".
    assert!(message.contains("refused"), "{message}");

    let service = start_service(TcpListener::bind(addr).await.unwrap()).await;
    let answer = get(api.addr, ARTICLE_REQUEST, &[]).await;
    assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
    assert_eq!(answer.body, r#"{"value":423.15,"unit":"Kelvin"}"#);
    service.stop().await;
}

#[tokio::test]
async fn a_silent_service_is_504_after_the_timeout() {
    // Accepts connections and never speaks HTTP/2.
    let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut config = ApiConfig::new(target(silent.local_addr().unwrap()));
    config.timeout = Duration::from_millis(500);
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((stream, _)) = silent.accept().await {
            open.push(stream);
        }
    });
    let api = start_api(config).await;
    let started = Instant::now();
    let answer = get(api.addr, ARTICLE_REQUEST, &[]).await;
    let took = started.elapsed();
    assert_eq!(answer.status, StatusCode::GATEWAY_TIMEOUT, "{answer:?}");
    assert!(answer.error_message().contains("did not answer in time"));
    assert!(
        took >= Duration::from_millis(400) && took < Duration::from_secs(3),
        "{took:?}"
    );
    held.abort();
}

/// What a call looked like when it reached the service.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    authority: Option<String>,
    request_id: Option<String>,
}

/// The real converter behind an HTTP/2 server that notes each call's `:authority`
/// (which tonic's own server does not hand to services).
async fn start_recording_service() -> (SocketAddr, Arc<Mutex<Vec<Seen>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let log = log.clone();
            let service = service_fn(move |request: Request<Incoming>| {
                log.lock().unwrap().push(Seen {
                    authority: request.uri().authority().map(|a| a.to_string()),
                    request_id: request
                        .headers()
                        .get("x-request-id")
                        .map(|v| v.to_str().unwrap().to_string()),
                });
                let mut grpc = temperature_service::grpc_service();
                async move { grpc.call(request).await }
            });
            tokio::spawn(
                hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service),
            );
        }
    });
    (addr, seen)
}

#[tokio::test]
async fn calls_carry_the_configured_authority_to_a_different_socket() {
    let (addr, seen) = start_recording_service().await;
    let config =
        ApiConfig::new(target(addr)).with_authority(Authority::from_static(MESH_AUTHORITY));
    let api = start_api(config).await;
    let answer = get(api.addr, ARTICLE_REQUEST, &[("x-request-id", "req-42")]).await;
    assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
    assert_eq!(answer.body, r#"{"value":423.15,"unit":"Kelvin"}"#);
    assert_eq!(
        seen.lock().unwrap().clone(),
        vec![Seen {
            authority: Some(MESH_AUTHORITY.to_string()),
            request_id: Some("req-42".to_string()),
        }]
    );
}

#[tokio::test]
async fn without_an_override_calls_carry_the_targets_authority() {
    let (addr, seen) = start_recording_service().await;
    let api = start_api(ApiConfig::new(target(addr))).await;
    assert_eq!(
        get(api.addr, ARTICLE_REQUEST, &[]).await.status,
        StatusCode::OK
    );
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].authority, Some(addr.to_string()));
    assert_eq!(seen[0].request_id, None);
}

#[tokio::test]
async fn a_config_it_cannot_use_fails_before_listening() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let config = ApiConfig::new(Uri::from_static("https://temperature-service:8080"));
    let err = temperature_api::serve(listener, config, std::future::pending())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("must start with http://"), "{err}");
}
