//! A real Prometheus server scrapes the metrics port every second, and the queries
//! Kiali and the Istio dashboards run return values.
//!
//! Needs the `prometheus` binary (Debian: `apt-get install -y prometheus`; `.ci/run`
//! installs it) or `PROMETHEUS_BIN`. Without it the test prints a loud SKIPPED message
//! and passes.

// Test helpers outside #[test] functions unwrap too: a panic there is a failed test.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use meshgate::admin::{AdminRoutes, AdminServer};
use meshgate::telemetry::{
    DestinationService, HttpRecord, Metrics, PeerInfo, ProxyIdentity, RequestProtocol,
    ResponseFlags,
};
use support::{get, url_encode};

const DEADLINE: Duration = Duration::from_secs(40);

fn prometheus_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("PROMETHEUS_BIN") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("prometheus"))
        .find(|p| p.is_file())
}

/// Kills Prometheus and removes its data directory however the test ends.
struct Prometheus {
    child: Child,
    dir: PathBuf,
    addr: SocketAddr,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Prometheus {
    fn start(binary: &PathBuf, target: SocketAddr) -> Prometheus {
        let dir = std::env::temp_dir().join(format!(
            "meshgate-prom-{}-{}",
            std::process::id(),
            target.port()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: meshgate\n    metrics_path: /stats/prometheus\n\
             \x20   static_configs:\n      - targets: ['{target}']\n"
        );
        std::fs::write(dir.join("prometheus.yml"), config).unwrap();
        // Reserve a free loopback port for Prometheus' own API.
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
        let child = Command::new(binary)
            .arg(format!(
                "--config.file={}",
                dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .arg("--log.level=warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start prometheus");
        Prometheus { child, dir, addr }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("prometheus.log")).unwrap_or_default()
    }

    /// The instant-query result vector, or None while Prometheus is not answering.
    async fn query(&self, promql: &str) -> Option<Vec<serde_json::Value>> {
        let connect = tokio::net::TcpStream::connect(self.addr).await;
        if connect.is_err() {
            return None;
        }
        drop(connect);
        let reply = get(
            self.addr,
            &format!("/api/v1/query?query={}", url_encode(promql)),
        )
        .await;
        let v: serde_json::Value = serde_json::from_str(&reply.body).ok()?;
        v["data"]["result"].as_array().cloned()
    }
}

fn sample_value(series: &serde_json::Value) -> f64 {
    series["value"][1]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or(f64::NAN)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_and_kiali_queries_answer() {
    let Some(binary) = prometheus_binary() else {
        eprintln!("\n=========================================================================");
        eprintln!("SKIPPED prometheus_scrapes_and_kiali_queries_answer: no `prometheus` binary");
        eprintln!("on PATH (install it: apt-get install -y prometheus, or set PROMETHEUS_BIN)");
        eprintln!("=========================================================================\n");
        return;
    };
    let started = Instant::now();
    let metrics = Arc::new(Metrics::new("0.1.0"));
    let server = AdminServer::start(vec![(
        "127.0.0.1:0".parse().unwrap(),
        AdminRoutes::metrics(metrics.clone()),
    )])
    .unwrap();
    let prom = Prometheus::start(&binary, server.local_addrs()[0]);

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
