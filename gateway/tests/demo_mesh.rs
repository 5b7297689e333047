//! The seed's demo as a mesh, end to end: the real `meshgate` gateway and two sidecars
//! (child processes), temperature-api and temperature-service in this process, mesh
//! mTLS between every pair of proxies.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use meshgate::cli::demo::{prepare, proxy_commands, DemoPorts};
use meshgate::mesh::{client_config, init_ca, CaInitOptions, SpiffeId, WorkloadCerts};
use tokio::sync::watch;

struct Proxies(Vec<Child>);

impl Drop for Proxies {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

async fn wait_port(port: u16) {
    let start = Instant::now();
    while tokio::net::TcpStream::connect(local(port)).await.is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "port {port} never opened"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn get(url: &str) -> (u16, String) {
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let resp = tokio::time::timeout(Duration::from_secs(10), client.get(url.parse().unwrap()))
        .await
        .expect("answer within 10 s")
        .expect("request");
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// The temperature-service app, which the test stops and restarts.
fn start_service(port: u16) -> (watch::Sender<bool>, tokio::task::JoinHandle<()>) {
    let (stop, mut rx) = watch::channel(false);
    let task = tokio::spawn(async move {
        let listener = loop {
            match tokio::net::TcpListener::bind(local(port)).await {
                Ok(l) => break l,
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        };
        let _ = temperature_service::serve(listener, async move {
            let _ = rx.wait_for(|s| *s).await;
        })
        .await;
    });
    (stop, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn temperature_demo_through_gateway_and_sidecars() {
    let offset = 11_000;
    let ports = DemoPorts::new(28_080, offset);
    let dir: PathBuf =
        std::env::temp_dir().join(format!("meshgate-demo-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    prepare(&dir, &ports).unwrap();

    let (service_stop, service_task) = start_service(ports.service_app);
    let api_listener = tokio::net::TcpListener::bind(local(ports.api_app))
        .await
        .unwrap();
    let api_config = temperature_api::ApiConfig::new(
        format!("http://127.0.0.1:{}", ports.api_outbound)
            .parse()
            .unwrap(),
    )
    .with_authority(
        "temperature-service.default.svc.cluster.local:8080"
            .parse()
            .unwrap(),
    );
    tokio::spawn(temperature_api::serve(
        api_listener,
        api_config,
        std::future::pending::<()>(),
    ));

    let exe = env!("CARGO_BIN_EXE_meshgate");
    let proxies = Proxies(
        proxy_commands(&ports, &dir)
            .into_iter()
            .map(|(_, args)| {
                Command::new(exe)
                    .args(&args)
                    .stdout(Stdio::null())
                    .spawn()
                    .unwrap()
            })
            .collect(),
    );
    for p in [
        ports.gateway,
        ports.api_inbound,
        ports.api_outbound,
        ports.service_inbound,
    ] {
        wait_port(p).await;
    }
    let gw = |q: &str| format!("http://127.0.0.1:{}/?{q}", ports.gateway);

    // The article's request and answer, through gateway → api sidecar → api → sidecar → service.
    let (status, body) = get(&gw("from=Celsius&to=Kelvin&temperature=150")).await;
    assert_eq!(
        (status, body.as_str()),
        (200, r#"{"value":423.15,"unit":"Kelvin"}"#)
    );

    for (from, to, t, want) in [
        (
            "Celsius",
            "Fahrenheit",
            "100",
            r#"{"value":212,"unit":"Fahrenheit"}"#,
        ),
        (
            "Fahrenheit",
            "Celsius",
            "212",
            r#"{"value":100,"unit":"Celsius"}"#,
        ),
        (
            "Kelvin",
            "Celsius",
            "0",
            r#"{"value":-273.15,"unit":"Celsius"}"#,
        ),
        (
            "Fahrenheit",
            "Kelvin",
            "32",
            r#"{"value":273.15,"unit":"Kelvin"}"#,
        ),
        (
            "Kelvin",
            "Fahrenheit",
            "273.15",
            r#"{"value":32,"unit":"Fahrenheit"}"#,
        ),
        (
            "Celsius",
            "Celsius",
            "21.5",
            r#"{"value":21.5,"unit":"Celsius"}"#,
        ),
    ] {
        let (status, body) = get(&gw(&format!("from={from}&to={to}&temperature={t}"))).await;
        assert_eq!(status, 200, "{from}->{to}: {body}");
        let got: serde_json::Value = serde_json::from_str(&body).unwrap();
        let want: serde_json::Value = serde_json::from_str(want).unwrap();
        assert_eq!(got["unit"], want["unit"], "{from}->{to}");
        assert!(
            (got["value"].as_f64().unwrap() - want["value"].as_f64().unwrap()).abs() < 1e-9,
            "{from}->{to}: {body}"
        );
    }

    // A bad unit is refused by the service, and the error travels back as 400 JSON.
    let (status, body) = get(&gw("from=Celsius&to=Rankine&temperature=1")).await;
    assert_eq!(status, 400, "{body}");
    let err: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(err["error"].as_str().unwrap().contains("Rankine"), "{body}");

    // A plaintext client straight to a sidecar's inbound port gets nothing (STRICT).
    let refused = get_raw_plaintext(ports.service_inbound).await;
    assert!(
        !refused.starts_with("HTTP/1.1 200"),
        "plaintext reached the app: {refused:?}"
    );

    // A client whose certificate comes from another CA fails the handshake.
    let other = dir.join("other-ca");
    let other_ca = Arc::new(init_ca(&other, &CaInitOptions::default()).unwrap());
    let stranger = WorkloadCerts::new(
        other_ca,
        SpiffeId::in_cluster("default", "temperature-api").unwrap(),
        Duration::from_secs(600),
    )
    .unwrap();
    assert!(
        mtls_handshake(&stranger, ports.service_inbound, None)
            .await
            .is_err(),
        "a foreign CA was accepted"
    );

    // The service's sidecar presents temperature-service's SPIFFE identity, and a mesh
    // client with temperature-api's identity is accepted.
    let api_identity = WorkloadCerts::from_ca_dir(
        &dir.join("ca"),
        SpiffeId::in_cluster("default", "temperature-api").unwrap(),
        Duration::from_secs(600),
    )
    .unwrap();
    let service_id = SpiffeId::in_cluster("default", "temperature-service").unwrap();
    mtls_handshake(
        &api_identity,
        ports.service_inbound,
        Some(service_id.clone()),
    )
    .await
    .expect("mesh handshake with the service sidecar");
    let wrong = SpiffeId::in_cluster("default", "someone-else").unwrap();
    assert!(
        mtls_handshake(&api_identity, ports.service_inbound, Some(wrong))
            .await
            .is_err()
    );

    // The proxies' own metrics show the hop between the sidecars was mutual TLS with the
    // expected identities on both ends, reported alike by both sides.
    let scrape = get(&format!(
        "http://127.0.0.1:{}/stats/prometheus",
        ports.service_metrics
    ))
    .await
    .1;
    let inbound = scrape
        .lines()
        .find(|l| {
            l.starts_with("istio_requests_total{")
                && l.contains(r#"reporter="destination""#)
                && l.contains(r#"response_code="200""#)
        })
        .unwrap_or_else(|| panic!("no destination-side series:\n{scrape}"));
    for label in [
        r#"connection_security_policy="mutual_tls""#,
        r#"source_workload="temperature-api""#,
        r#"source_principal="spiffe://cluster.local/ns/default/sa/temperature-api""#,
        r#"destination_principal="spiffe://cluster.local/ns/default/sa/temperature-service""#,
        r#"destination_service="temperature-service.default.svc.cluster.local""#,
        r#"request_protocol="grpc""#,
    ] {
        assert!(inbound.contains(label), "{label} missing in {inbound}");
    }
    let api_scrape = get(&format!(
        "http://127.0.0.1:{}/stats/prometheus",
        ports.api_metrics
    ))
    .await
    .1;
    assert!(
        api_scrape
            .lines()
            .any(|l| l.starts_with("istio_requests_total{")
                && l.contains(r#"reporter="source""#)
                && l.contains(r#"destination_workload="temperature-service""#)),
        "the api sidecar did not learn who answered:\n{api_scrape}"
    );

    // Stopping temperature-service: the API answers 503 with a JSON error; restarting recovers.
    let _ = service_stop.send(true);
    let _ = service_task.await;
    let (status, body) = get(&gw("from=Celsius&to=Kelvin&temperature=150")).await;
    assert_eq!(status, 503, "{body}");
    assert!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["error"].is_string(),
        "{body}"
    );
    let (_restart_stop, _restart) = start_service(ports.service_app);
    let start = Instant::now();
    loop {
        let (status, body) = get(&gw("from=Celsius&to=Kelvin&temperature=150")).await;
        if status == 200 {
            assert_eq!(body, r#"{"value":423.15,"unit":"Kelvin"}"#);
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no recovery after restart: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop(proxies);
    let _ = std::fs::remove_dir_all(&dir);
}

async fn get_raw_plaintext(port: u16) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut s) = tokio::net::TcpStream::connect(local(port)).await else {
        return String::new();
    };
    let _ = s
        .write_all(b"GET /?from=Celsius&to=Kelvin&temperature=1 HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf)).await;
    String::from_utf8_lossy(&buf).into_owned()
}

async fn mtls_handshake(
    certs: &WorkloadCerts,
    port: u16,
    expected: Option<SpiffeId>,
) -> Result<(), String> {
    let config = client_config(certs, expected).map_err(|e| e.to_string())?;
    let tcp = tokio::net::TcpStream::connect(local(port))
        .await
        .map_err(|e| e.to_string())?;
    let name =
        rustls::pki_types::ServerName::try_from("temperature-service.default.svc.cluster.local")
            .unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .map_err(|e| e.to_string())?;
    // TLS 1.3 client auth failures surface on first read: make the server speak.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    tls.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), tls.read_to_end(&mut buf))
        .await
        .map_err(|_| "timeout".to_string())?
        .map_err(|e| e.to_string())?;
    if buf.is_empty() {
        return Err("connection closed without an answer".into());
    }
    Ok(())
}
