//! The admin, health and metrics ports over real loopback HTTP: what a scrape returns
//! (names, types, labels, buckets, content type), readiness, the provider endpoints,
//! and a clear error for a port already in use.

// Test helpers outside #[test] functions unwrap too: a panic there is a failed test.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use meshgate::admin::{AdminError, AdminRoutes, AdminServer, AdminState, Readiness};
use meshgate::telemetry::{
    DestinationService, HttpRecord, Metrics, PeerInfo, ProxyIdentity, RequestProtocol,
    ResponseFlags, DURATION_BUCKETS_MS, OPENMETRICS_CONTENT_TYPE,
};
use support::{get, request};

struct FakeProxy;

impl AdminState for FakeProxy {
    fn config_dump(&self) -> serde_json::Value {
        serde_json::json!({"version": 7, "gateways": ["istio-system/api-gateway"]})
    }
    fn clusters(&self) -> String {
        "outbound|8080||temperature-api.default.svc.cluster.local::127.0.0.1:8081::health_flags::healthy\n".into()
    }
}

fn record_traffic(metrics: &Metrics) {
    let labels = BTreeMap::from([("app".to_string(), "temperature-api".to_string())]);
    let api = Arc::new(PeerInfo::from_labels(
        "temperature-api",
        "default",
        &labels,
        None,
    ));
    let service = Arc::new(DestinationService::from_fqdn(
        "temperature-api.default.svc.cluster.local",
        "default",
    ));
    let spec = ProxyIdentity::default_gateway().outbound_edge(Some(api), service);
    let edge = metrics.istio.edge(&spec);
    for i in 0..10u64 {
        metrics.istio.record_http(
            &edge,
            &HttpRecord {
                response_code: if i == 9 { 503 } else { 200 },
                flags: if i == 9 {
                    ResponseFlags::UPSTREAM_CONNECTION_FAILURE
                } else {
                    ResponseFlags::NONE
                },
                duration: Duration::from_millis(i * 10),
                request_bytes: 100,
                response_bytes: 1500,
                grpc_status: None,
                protocol: RequestProtocol::Http,
            },
        );
    }
}

fn start_three_ports(metrics: Arc<Metrics>, ready: Readiness) -> AdminServer {
    let any = "127.0.0.1:0".parse().unwrap();
    AdminServer::start(vec![
        (
            any,
            AdminRoutes::admin(metrics.clone(), ready.clone(), Arc::new(FakeProxy)),
        ),
        (any, AdminRoutes::health(ready)),
        (any, AdminRoutes::metrics(metrics)),
    ])
    .unwrap()
}

#[tokio::test]
async fn scrape_returns_istio_metrics_as_openmetrics() {
    let metrics = Arc::new(Metrics::new("0.1.0"));
    record_traffic(&metrics);
    let server = start_three_ports(metrics.clone(), Readiness::new());
    let metrics_port = server.local_addrs()[2];

    let scrape = get(metrics_port, "/stats/prometheus").await;
    assert_eq!(scrape.status, 200);
    assert_eq!(scrape.content_type(), OPENMETRICS_CONTENT_TYPE);
    let body = &scrape.body;
    assert!(body.ends_with("# EOF\n"));
    for family in [
        "# TYPE istio_requests counter",
        "# TYPE istio_request_duration_milliseconds histogram",
        "# TYPE istio_request_bytes histogram",
        "# TYPE istio_response_bytes histogram",
        "# TYPE istio_request_messages counter",
        "# TYPE istio_response_messages counter",
        "# TYPE istio_tcp_sent_bytes counter",
        "# TYPE istio_tcp_received_bytes counter",
        "# TYPE istio_tcp_connections_opened counter",
        "# TYPE istio_tcp_connections_closed counter",
        "# TYPE istio_build gauge",
        "# TYPE meshgate_config_reloads counter",
        "# TYPE meshgate_downstream_connections_active gauge",
    ] {
        assert!(body.contains(&format!("{family}\n")), "missing {family}");
    }
    let ok = body
        .lines()
        .find(|l| l.starts_with("istio_requests_total{") && l.contains("response_code=\"200\""))
        .expect("a 200 series");
    for label in [
        "reporter=\"source\"",
        "source_workload=\"istio-ingressgateway\"",
        "source_workload_namespace=\"istio-system\"",
        "destination_service=\"temperature-api.default.svc.cluster.local\"",
        "destination_service_name=\"temperature-api\"",
        "destination_workload=\"temperature-api\"",
        "destination_canonical_revision=\"latest\"",
        "destination_cluster=\"Kubernetes\"",
        "request_protocol=\"http\"",
        "response_flags=\"-\"",
    ] {
        assert!(ok.contains(label), "{label} not in {ok}");
    }
    assert!(ok.ends_with("} 9"), "{ok}");
    assert!(body.lines().any(|l| l.starts_with("istio_requests_total{")
        && l.contains("response_code=\"503\"")
        && l.contains("response_flags=\"UF\"")
        && l.ends_with("} 1")));
    // Every Envoy bucket is exposed, in order, then +Inf.
    let les: Vec<String> = body
        .lines()
        .filter(|l| {
            l.starts_with("istio_request_duration_milliseconds_bucket{")
                && l.contains("code=\"200\"")
        })
        .map(|l| {
            l.split("le=\"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap()
                .to_string()
        })
        .collect();
    let mut expected: Vec<String> = DURATION_BUCKETS_MS
        .iter()
        .map(|b| format!("{b:.1}"))
        .collect();
    expected.push("+Inf".into());
    assert_eq!(les, expected);
    assert!(body.contains("istio_build{component=\"proxy\",tag=\"0.1.0\"} 1\n"));

    // A client that accepts only the classic text format gets it.
    let text = request(
        metrics_port,
        "GET",
        "/stats/prometheus",
        &[("accept", "text/plain;version=0.0.4")],
    )
    .await;
    assert_eq!(
        text.content_type(),
        "text/plain; version=0.0.4; charset=utf-8"
    );
    assert!(text.body.contains("# TYPE istio_requests_total counter\n"));
    assert!(!text.body.contains("# EOF"));
    server.shutdown();
}

#[tokio::test]
async fn readiness_and_provider_endpoints() {
    let metrics = Arc::new(Metrics::new("0.1.0"));
    let ready = Readiness::new();
    let server = start_three_ports(metrics, ready.clone());
    let (admin, health, metrics_port) = (
        server.local_addrs()[0],
        server.local_addrs()[1],
        server.local_addrs()[2],
    );

    assert_eq!(get(health, "/healthz/ready").await.status, 503);
    ready.set_ready(true);
    assert_eq!(get(health, "/healthz/ready").await.status, 200);
    assert_eq!(get(admin, "/healthz/ready").await.status, 200);

    let dump = get(admin, "/config_dump").await;
    assert_eq!(dump.status, 200);
    assert_eq!(dump.content_type(), "application/json");
    let v: serde_json::Value = serde_json::from_str(&dump.body).unwrap();
    assert_eq!(v["version"], 7);
    let clusters = get(admin, "/clusters").await;
    assert!(clusters.body.starts_with("outbound|8080||temperature-api"));

    let index = get(admin, "/").await;
    for path in [
        "/stats/prometheus",
        "/healthz/ready",
        "/config_dump",
        "/clusters",
    ] {
        assert!(
            index.body.contains(path),
            "{path} not listed: {}",
            index.body
        );
    }
    // Each port serves only its own endpoints.
    assert_eq!(get(health, "/stats/prometheus").await.status, 404);
    assert_eq!(get(metrics_port, "/config_dump").await.status, 404);
    assert!(!get(health, "/").await.body.contains("/config_dump"));
    assert_eq!(get(admin, "/reload_status").await.status, 404);
    let post = request(admin, "POST", "/config_dump", &[]).await;
    assert_eq!(post.status, 405);
    server.shutdown();
}

#[tokio::test]
async fn a_port_in_use_is_named_in_the_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let err = AdminServer::start(vec![(addr, AdminRoutes::new())]).unwrap_err();
    assert!(matches!(err, AdminError::AddrInUse { .. }), "{err:?}");
    assert_eq!(err.addr(), Some(addr));
    assert!(err.to_string().contains(&addr.to_string()), "{err}");
    let async_err = meshgate::admin::serve(addr, AdminRoutes::new())
        .await
        .unwrap_err();
    assert!(
        async_err.to_string().contains(&addr.to_string()),
        "{async_err}"
    );
}

/// Scrapes while eight threads record: every request is counted exactly once and no
/// scrape returns a broken exposition.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recording_during_scrapes_loses_nothing() {
    let metrics = Arc::new(Metrics::new("0.1.0"));
    let server = AdminServer::start(vec![(
        "127.0.0.1:0".parse().unwrap(),
        AdminRoutes::metrics(metrics.clone()),
    )])
    .unwrap();
    let addr = server.local_addrs()[0];
    let spec = ProxyIdentity::default_gateway().outbound_edge(
        None,
        Arc::new(DestinationService::from_fqdn(
            "a.default.svc.cluster.local",
            "default",
        )),
    );
    let workers: Vec<_> = (0..8)
        .map(|t| {
            let metrics = metrics.clone();
            let spec = spec.clone();
            std::thread::spawn(move || {
                let edge = metrics.istio.edge(&spec);
                for i in 0..20_000u32 {
                    let code = if (i + t) % 10 == 0 { 500 } else { 200 };
                    metrics.istio.record_http(
                        &edge,
                        &HttpRecord {
                            response_code: code,
                            ..HttpRecord::default()
                        },
                    );
                }
            })
        })
        .collect();
    let mut scrapes = 0;
    while workers.iter().any(|w| !w.is_finished()) && scrapes < 500 {
        let body = get(addr, "/stats/prometheus").await.body;
        assert!(body.ends_with("# EOF\n"));
        scrapes += 1;
    }
    for w in workers {
        w.join().unwrap();
    }
    let body = get(addr, "/stats/prometheus").await.body;
    let total: f64 = body
        .lines()
        .filter(|l| l.starts_with("istio_requests_total{"))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum();
    assert_eq!(total, 160_000.0);
    let count: f64 = body
        .lines()
        .filter(|l| l.starts_with("istio_request_duration_milliseconds_count{"))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum();
    assert_eq!(count, 160_000.0);
    eprintln!("{scrapes} scrapes while recording");
    server.shutdown();
}
