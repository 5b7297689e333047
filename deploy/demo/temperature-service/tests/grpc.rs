//! The converter over real gRPC on 127.0.0.1: every unit pair, identity, and the
//! INVALID_ARGUMENT refusals a caller sees.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;

use temperature_service::{ConvertRequest, TemperatureServiceClient};
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};
use tonic::{transport::Channel, Code};

struct Running {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), temperature_service::ServeError>>,
}

async fn start() -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(temperature_service::serve(listener, async {
        let _ = stopped.await;
    }));
    Running { addr, stop, task }
}

async fn client(addr: SocketAddr) -> TemperatureServiceClient<Channel> {
    TemperatureServiceClient::connect(format!("http://{addr}"))
        .await
        .unwrap()
}

async fn convert(
    client: &mut TemperatureServiceClient<Channel>,
    value: f64,
    from: &str,
    to: &str,
) -> Result<(f64, String), tonic::Status> {
    let response = client
        .convert(ConvertRequest {
            value,
            from: from.into(),
            to: to.into(),
        })
        .await?
        .into_inner();
    Ok((response.value, response.unit))
}

#[tokio::test]
async fn converts_every_unit_pair_and_identity() {
    let server = start().await;
    let mut client = client(server.addr).await;
    let cases = [
        (150.0, "Celsius", "Kelvin", 423.15, "Kelvin"),
        (100.0, "Celsius", "Fahrenheit", 212.0, "Fahrenheit"),
        (98.6, "Fahrenheit", "Celsius", 37.0, "Celsius"),
        (32.0, "Fahrenheit", "Kelvin", 273.15, "Kelvin"),
        (0.0, "Kelvin", "Celsius", -273.15, "Celsius"),
        (373.15, "Kelvin", "Fahrenheit", 212.0, "Fahrenheit"),
        (-40.0, "Celsius", "Fahrenheit", -40.0, "Fahrenheit"),
        (21.5, "Celsius", "Celsius", 21.5, "Celsius"),
        (-40.0, "Fahrenheit", "Fahrenheit", -40.0, "Fahrenheit"),
        (300.0, "Kelvin", "Kelvin", 300.0, "Kelvin"),
    ];
    for (value, from, to, want, want_unit) in cases {
        let (got, unit) = convert(&mut client, value, from, to).await.unwrap();
        assert_eq!(got, want, "{value} {from} -> {to}");
        assert_eq!(unit, want_unit);
    }
    server.stop.send(()).unwrap();
    server.task.await.unwrap().unwrap();
}

#[tokio::test]
async fn unit_names_are_case_insensitive_and_answered_canonically() {
    let server = start().await;
    let mut client = client(server.addr).await;
    let (value, unit) = convert(&mut client, 150.0, "celsius", "KELVIN")
        .await
        .unwrap();
    assert_eq!((value, unit.as_str()), (423.15, "Kelvin"));
    let (value, unit) = convert(&mut client, 0.0, "CeLsIuS", "fahrenheit")
        .await
        .unwrap();
    assert_eq!((value, unit.as_str()), (32.0, "Fahrenheit"));
}

#[tokio::test]
async fn below_absolute_zero_is_invalid_argument() {
    let server = start().await;
    let mut client = client(server.addr).await;
    for (value, unit, zero) in [
        (-300.0, "Celsius", "-273.15 Celsius"),
        (-500.0, "Fahrenheit", "-459.67 Fahrenheit"),
        (-0.5, "Kelvin", "0 Kelvin"),
    ] {
        let status = convert(&mut client, value, unit, "Kelvin")
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(
            status.message(),
            format!("{value} {unit} is below absolute zero ({zero})")
        );
    }
    // A value exactly at absolute zero is a temperature, not an error.
    let (value, _) = convert(&mut client, -273.15, "Celsius", "Kelvin")
        .await
        .unwrap();
    assert_eq!(value, 0.0);
}

#[tokio::test]
async fn unknown_unit_is_invalid_argument_naming_the_field() {
    let server = start().await;
    let mut client = client(server.addr).await;
    let status = convert(&mut client, 10.0, "Rankine", "Kelvin")
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(
        status.message(),
        "unknown unit 'Rankine' in 'from'; expected Celsius, Fahrenheit or Kelvin"
    );
    let status = convert(&mut client, 10.0, "Celsius", "").await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(
        status.message(),
        "unknown unit '' in 'to'; expected Celsius, Fahrenheit or Kelvin"
    );
}

#[tokio::test]
async fn shutdown_stops_the_server_and_frees_the_port() {
    let server = start().await;
    let mut client = client(server.addr).await;
    convert(&mut client, 1.0, "Celsius", "Kelvin")
        .await
        .unwrap();
    server.stop.send(()).unwrap();
    let served = tokio::time::timeout(std::time::Duration::from_secs(10), server.task)
        .await
        .unwrap();
    served.unwrap().unwrap();
    // The same port can be bound again at once (the demo restarts services in place).
    TcpListener::bind(server.addr).await.unwrap();
}
