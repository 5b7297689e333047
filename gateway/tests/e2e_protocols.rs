//! Protocols beyond HTTP/1.1 request/response through `meshgate gateway`: gRPC unary
//! and server-streaming calls to h2c upstreams with their trailers, a gRPC caller's view
//! of a local reply, and a WebSocket conversation over an upgraded connection.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use prost::Message;
use temperature_service::{ConvertRequest, TemperatureServiceClient};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tonic::transport::server::TcpIncoming;
use tonic_health::pb::health_check_response::ServingStatus as Wire;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::ServingStatus;

use common::yaml::{destination_rule, http_gateway, service, virtual_service};
use common::Gateway;

const SERVICE: &str = "temperature.v1.TemperatureService";

async fn start_temperature_service() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(temperature_service::serve(
        listener,
        std::future::pending::<()>(),
    ));
    port
}

async fn start_health_service() -> (u16, tonic_health::server::HealthReporter) {
    let (mut reporter, svc) = tonic_health::server::health_reporter();
    reporter
        .set_service_status(SERVICE, ServingStatus::Serving)
        .await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let incoming = TcpIncoming::from_listener(listener, true, None).unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(svc)
            .serve_with_incoming(incoming),
    );
    (port, reporter)
}

fn grpc_config(temperature: u16, health: u16) -> String {
    http_gateway("gw", &["*"])
        + &service("temperature-service", 8080, "GRPC", &[("v1", temperature)])
        + &destination_rule("temperature-service", &["v1"], "")
        + &service("health", 8081, "GRPC", &[("v1", health)])
        + &virtual_service(
            "grpc",
            &["*"],
            &["gw"],
            "  http:
  - match:
    - headers:
        x-route:
          exact: missing
    route:
    - destination:
        host: temperature-service
        subset: v9
  - match:
    - uri:
        prefix: /grpc.health.v1.Health/
    route:
    - destination:
        host: health
  - route:
    - destination:
        host: temperature-service
        subset: v1
",
        )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_unary_streaming_and_local_replies() {
    let temperature = start_temperature_service().await;
    let (health, mut reporter) = start_health_service().await;
    let gw = Gateway::with_config(&grpc_config(temperature, health))
        .start()
        .await;
    let channel = tonic::transport::Endpoint::from_shared(gw.url(80, ""))
        .unwrap()
        .connect()
        .await
        .unwrap();

    // Unary, and an application error carried in grpc-status.
    let mut client = TemperatureServiceClient::new(channel.clone());
    let answer = client
        .convert(ConvertRequest {
            value: 100.0,
            from: "celsius".into(),
            to: "fahrenheit".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.value, 212.0);
    assert_eq!(answer.unit, "Fahrenheit");
    let err = client
        .convert(ConvertRequest {
            value: 1.0,
            from: "rankine".into(),
            to: "celsius".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(err.message().contains("rankine"), "{}", err.message());

    // A route to a subset no DestinationRule defines: 503 NC, UNAVAILABLE for gRPC.
    let mut req = tonic::Request::new(ConvertRequest {
        value: 1.0,
        from: "celsius".into(),
        to: "kelvin".into(),
    });
    req.metadata_mut()
        .insert("x-route", "missing".parse().unwrap());
    let err = client.convert(req).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unavailable, "{err:?}");

    // Server streaming: every status change arrives on the one open call.
    let mut health_client = HealthClient::new(channel);
    let mut stream = health_client
        .watch(HealthCheckRequest {
            service: SERVICE.into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(next_status(&mut stream).await, Some(Wire::Serving as i32));
    reporter
        .set_service_status(SERVICE, ServingStatus::NotServing)
        .await;
    assert_eq!(
        next_status(&mut stream).await,
        Some(Wire::NotServing as i32)
    );
    reporter
        .set_service_status(SERVICE, ServingStatus::Serving)
        .await;
    assert_eq!(next_status(&mut stream).await, Some(Wire::Serving as i32));
}

async fn next_status(
    s: &mut tonic::Streaming<tonic_health::pb::HealthCheckResponse>,
) -> Option<i32> {
    tokio::time::timeout(Duration::from_secs(10), s.message())
        .await
        .expect("no message within 10 s")
        .unwrap()
        .map(|m| m.status)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_trailers_reach_the_caller() {
    let temperature = start_temperature_service().await;
    let (health, _reporter) = start_health_service().await;
    let gw = Gateway::with_config(&grpc_config(temperature, health))
        .start()
        .await;
    let tcp = tokio::net::TcpStream::connect(gw.addr(80)).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tcp),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    let msg = ConvertRequest {
        value: 0.0,
        from: "celsius".into(),
        to: "kelvin".into(),
    }
    .encode_to_vec();
    let mut frame = BytesMut::new();
    frame.put_u8(0);
    frame.put_u32(msg.len() as u32);
    frame.put_slice(&msg);
    let req = http::Request::post(format!("http://{}/{SERVICE}/Convert", gw.addr(80)))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(Full::new(Bytes::from(frame)))
        .unwrap();
    let resp = sender.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    let collected = resp.into_body().collect().await.unwrap();
    let trailers = collected.trailers().cloned().expect("trailers forwarded");
    assert_eq!(trailers["grpc-status"], "0");
    let body = collected.to_bytes();
    let answer = temperature_service::ConvertResponse::decode(&body[5..]).unwrap();
    assert_eq!(answer.value, 273.15);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_conversation_through_the_gateway() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else {
                    return;
                };
                while let Some(Ok(msg)) = ws.next().await {
                    if (msg.is_text() || msg.is_binary()) && ws.send(msg).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    let yaml = http_gateway("gw", &["*"])
        + &service("ws-echo", 8080, "HTTP", &[("v1", port)])
        + &virtual_service(
            "ws-echo",
            &["ws.example"],
            &["gw"],
            "  http:
  - route:
    - destination:
        host: ws-echo
",
        );
    let gw = Gateway::with_config(&yaml).start().await;
    let tcp = tokio::net::TcpStream::connect(gw.addr(80)).await.unwrap();
    let (mut ws, resp) = tokio_tungstenite::client_async("ws://ws.example/echo", tcp)
        .await
        .unwrap();
    assert_eq!(resp.status(), 101);
    for i in 0..5 {
        let text = format!("hello {i}");
        ws.send(WsMessage::Text(text.clone())).await.unwrap();
        let back = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(back, WsMessage::Text(text));
    }
    ws.send(WsMessage::Binary(vec![0, 1, 2, 255]))
        .await
        .unwrap();
    let back = ws.next().await.unwrap().unwrap();
    assert_eq!(back, WsMessage::Binary(vec![0, 1, 2, 255]));
    ws.close(None).await.unwrap();
}
