//! A real Prometheus server scrapes the metrics port every second, and the queries
//! Kiali and the Istio dashboards run return values.
//!
//! Needs the `prometheus` binary (see `support::prometheus`); without it the test prints
//! a loud SKIPPED message and passes.

// Test helpers outside #[test] functions unwrap too: a panic there is a failed test.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use meshgate::admin::{AdminRoutes, AdminServer};
use meshgate::telemetry::{
    DestinationService, HttpRecord, Metrics, PeerInfo, ProxyIdentity, RequestProtocol,
    ResponseFlags,
};
use support::get;
use support::prometheus::{binary_or_skip, sample_value, Prometheus};

const DEADLINE: Duration = Duration::from_secs(40);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_and_kiali_queries_answer() {
    let Some(binary) = binary_or_skip("prometheus_scrapes_and_kiali_queries_answer") else {
        return;
    };
    let started = Instant::now();
    let metrics = Arc::new(Metrics::new("0.1.0"));
    let server = AdminServer::start(vec![(
        "127.0.0.1:0".parse().unwrap(),
        AdminRoutes::metrics(metrics.clone()),
    )])
    .unwrap();
    let prom = Prometheus::start(&binary, &[("meshgate", server.local_addrs()[0])]);

    // Traffic gateway → temperature-api, 1 in 10 failing, until the test ends.
    let stop = Arc::new(AtomicBool::new(false));
    let traffic = {
        let (metrics, stop) = (metrics.clone(), stop.clone());
        std::thread::spawn(move || {
            let labels = BTreeMap::from([("app".to_string(), "temperature-api".to_string())]);
            let api = Arc::new(PeerInfo::from_labels(
                "temperature-api",
                "default",
                &labels,
                None,
            ));
            let svc = Arc::new(DestinationService::from_fqdn(
                "temperature-api.default.svc.cluster.local",
                "default",
            ));
            let edge = metrics
                .istio
                .edge(&ProxyIdentity::default_gateway().outbound_edge(Some(api), svc));
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) && i < 100_000 {
                let failed = i % 10 == 9;
                metrics.istio.record_http(
                    &edge,
                    &HttpRecord {
                        response_code: if failed { 503 } else { 200 },
                        flags: if failed {
                            ResponseFlags::UPSTREAM_CONNECTION_FAILURE
                        } else {
                            ResponseFlags::NONE
                        },
                        duration: Duration::from_millis(2 + i % 20),
                        request_bytes: 80,
                        response_bytes: 400,
                        grpc_status: None,
                        protocol: RequestProtocol::Http,
                    },
                );
                i += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };

    let rate_q = r#"sum(rate(istio_requests_total{reporter="source"}[30s])) by (source_workload,destination_service)"#;
    let p50_q = r#"histogram_quantile(0.5, sum(rate(istio_request_duration_milliseconds_bucket[30s])) by (le))"#;
    // Kiali's outbound query for the gateway's namespace, grouped as Kiali groups it.
    let kiali_q = "sum(rate(istio_requests_total{reporter=\"source\",source_workload_namespace=\"istio-system\"}[60s])) by (source_cluster,source_workload_namespace,source_workload,source_canonical_service,source_canonical_revision,destination_cluster,destination_service_namespace,destination_service,destination_service_name,destination_workload_namespace,destination_workload,destination_canonical_service,destination_canonical_revision,request_protocol,response_code,grpc_response_status,response_flags) > 0";

    let mut answered = None;
    while started.elapsed() < DEADLINE {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let Some(rate) = prom.query(rate_q).await else {
            continue;
        };
        let Some(p50) = prom.query(p50_q).await else {
            continue;
        };
        let Some(kiali) = prom.query(kiali_q).await else {
            continue;
        };
        let rate_ok = rate.len() == 1 && sample_value(&rate[0]) > 0.0;
        let p50_ok = p50.len() == 1 && sample_value(&p50[0]).is_finite();
        if rate_ok && p50_ok && kiali.len() == 2 {
            answered = Some((rate, p50, kiali));
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    traffic.join().unwrap();
    let Some((rate, p50, kiali)) = answered else {
        panic!(
            "Prometheus did not return the expected series within {DEADLINE:?}.\nscrape: {}\nprometheus log:\n{}",
            get(server.local_addrs()[0], "/stats/prometheus").await.body.lines().take(5).collect::<Vec<_>>().join("\n"),
            prom.log()
        );
    };
    eprintln!("answered after {:?}", started.elapsed());

    let m = &rate[0]["metric"];
    assert_eq!(m["source_workload"], "istio-ingressgateway");
    assert_eq!(
        m["destination_service"],
        "temperature-api.default.svc.cluster.local"
    );
    // 50 requests/s at most; a rate of 0 or nonsense would mean broken counters.
    let r = sample_value(&rate[0]);
    assert!(r > 0.0 && r <= 60.0, "rate {r}");
    let median = sample_value(&p50[0]);
    assert!((0.5..=25.0).contains(&median), "p50 {median} ms");
    // Kiali sees the edge twice: the 200s and the 503 UF failures, labels intact.
    let codes: Vec<(&str, &str)> = kiali
        .iter()
        .map(|s| {
            (
                s["metric"]["response_code"].as_str().unwrap_or(""),
                s["metric"]["response_flags"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert!(
        codes.contains(&("200", "-")) && codes.contains(&("503", "UF")),
        "{codes:?}"
    );
    for s in &kiali {
        let m = &s["metric"];
        assert_eq!(m["destination_service_name"], "temperature-api");
        assert_eq!(m["destination_workload"], "temperature-api");
        assert_eq!(m["source_cluster"], "Kubernetes");
        assert_eq!(m["request_protocol"], "http");
        // Prometheus drops empty labels: grpc_response_status is absent for HTTP.
        assert!(m.get("grpc_response_status").is_none());
    }
    server.shutdown();
}
