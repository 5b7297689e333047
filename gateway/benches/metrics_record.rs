//! Cost of recording one request's Istio metrics, idle and while another thread encodes
//! scrapes back to back, against the naive approach (25 label strings built per request,
//! looked up in a prometheus-client `Family`, stock `Histogram`).
//!
//! # Run
//! `cargo bench -p meshgate --bench metrics_record`
//!
//! # Expected output
//! Five criterion timings under `record_http/`: `edge_handle` and
//! `edge_handle_during_scrapes` (tens of nanoseconds; the second is slower only by
//! sharing CPU with the encoding thread), `naive_labels` and
//! `naive_labels_during_scrapes` (microseconds), and `encode_300_edges_x_3_outcomes`,
//! one scrape of 300 edges × 3 outcomes (about 38 MB of text: 25 labels on every line).
//! Then a stall report: record latency percentiles while one thread scrapes and another
//! creates new series. A design that waits on the family lock shows stalls as long as
//! an encode; the edge handles do not.

// Benchmark setup unwraps: a panic there is a broken benchmark, not a crashed proxy.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use criterion::{criterion_group, Criterion};
use meshgate::telemetry::{
    DestinationService, HttpRecord, Metrics, PeerInfo, ProxyIdentity, DURATION_BUCKETS_MS,
};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Edges that exist besides the one being recorded, so a scrape has real work.
const BACKGROUND_EDGES: usize = 300;

fn record() -> HttpRecord {
    HttpRecord {
        response_code: 200,
        duration: Duration::from_micros(1_800),
        request_bytes: 120,
        response_bytes: 900,
        ..HttpRecord::default()
    }
}

fn populated_metrics() -> Arc<Metrics> {
    let metrics = Arc::new(Metrics::new("bench"));
    let gw = ProxyIdentity::default_gateway();
    for i in 0..BACKGROUND_EDGES {
        let fqdn = format!("svc-{i}.default.svc.cluster.local");
        let svc = Arc::new(DestinationService::from_fqdn(&fqdn, "default"));
        let edge = metrics.istio.edge(&gw.outbound_edge(None, svc));
        for code in [200, 404, 503] {
            metrics.istio.record_http(
                &edge,
                &HttpRecord {
                    response_code: code,
                    ..record()
                },
            );
        }
    }
    metrics
}

/// Encodes `encode()` in a loop on another thread until dropped.
struct Scraper {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<u64>>,
}

impl Scraper {
    fn start(encode: impl Fn() -> usize + Send + 'static) -> Scraper {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut n = 0;
            while !flag.load(Ordering::Relaxed) {
                black_box(encode());
                n += 1;
            }
            n
        });
        Scraper {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Scraper {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let scrapes = t.join().unwrap();
            eprintln!("  ({scrapes} scrapes encoded meanwhile)");
        }
    }
}

type NaiveLabels = Vec<(&'static str, String)>;

/// The naive way: every request builds its 25 labels and hashes them into the family.
struct Naive {
    registry: Arc<Registry>,
    requests: Family<NaiveLabels, Counter>,
    duration: Family<NaiveLabels, Histogram, fn() -> Histogram>,
}

fn new_histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS_MS.iter().copied())
}

impl Naive {
    fn new() -> Naive {
        let mut registry = Registry::default();
        let requests = Family::default();
        let duration = Family::new_with_constructor(new_histogram as fn() -> Histogram);
        registry.register("istio_requests", "Requests", requests.clone());
        registry.register(
            "istio_request_duration_milliseconds",
            "Duration",
            duration.clone(),
        );
        let naive = Naive {
            registry: Arc::new(registry),
            requests,
            duration,
        };
        for i in 0..BACKGROUND_EDGES {
            naive.record(&format!("svc-{i}.default.svc.cluster.local"), 1.8);
        }
        naive
    }

    fn record(&self, service: &str, ms: f64) {
        let mut labels: NaiveLabels = vec![("reporter", "source".into())];
        for name in [
            "source_workload",
            "source_workload_namespace",
            "source_principal",
            "source_app",
            "source_version",
            "source_canonical_service",
            "source_canonical_revision",
            "source_cluster",
            "destination_workload",
            "destination_workload_namespace",
            "destination_principal",
            "destination_app",
            "destination_version",
            "destination_service_name",
            "destination_service_namespace",
            "destination_canonical_service",
            "destination_canonical_revision",
            "destination_cluster",
            "request_protocol",
            "grpc_response_status",
            "response_flags",
            "connection_security_policy",
        ] {
            labels.push((name, "unknown".into()));
        }
        labels.push(("destination_service", service.to_string()));
        labels.push(("response_code", "200".into()));
        self.requests.get_or_create(&labels).inc();
        self.duration.get_or_create(&labels).observe(ms);
    }
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("record_http");
    group
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));

    let metrics = populated_metrics();
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
    let rec = record();
    group.bench_function("edge_handle", |b| {
        b.iter(|| metrics.istio.record_http(&edge, black_box(&rec)))
    });
    {
        let m = metrics.clone();
        let _scraper = Scraper::start(move || m.encode_openmetrics().len());
        group.bench_function("edge_handle_during_scrapes", |b| {
            b.iter(|| metrics.istio.record_http(&edge, black_box(&rec)))
        });
    }

    // What one scrape of that state costs the admin thread.
    group.bench_function("encode_300_edges_x_3_outcomes", |b| {
        b.iter(|| metrics.encode_openmetrics().len())
    });

    let naive = Naive::new();
    let service = "temperature-api.default.svc.cluster.local";
    group.bench_function("naive_labels", |b| {
        b.iter(|| naive.record(black_box(service), 1.8))
    });
    {
        let registry = naive.registry.clone();
        let _scraper = Scraper::start(move || {
            let mut out = String::new();
            prometheus_client::encoding::text::encode(&mut out, &registry).unwrap();
            out.len()
        });
        group.bench_function("naive_labels_during_scrapes", |b| {
            b.iter(|| naive.record(black_box(service), 1.8))
        });
    }
    group.finish();
}

/// Records `n` times on this thread while `scrape` and `churn` (new series) run on two
/// others, and prints latency percentiles of single records.
fn stall_report(
    name: &str,
    record: impl Fn(),
    scrape: impl Fn() -> usize + Send + 'static,
    churn: impl Fn(u64) + Send + 'static,
) {
    let _scraper = Scraper::start(scrape);
    let stop = Arc::new(AtomicBool::new(false));
    let churner = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            for i in 0..5_000 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                churn(i);
                std::thread::sleep(Duration::from_micros(200));
            }
        })
    };
    let mut ns: Vec<u64> = Vec::with_capacity(400_000);
    let started = Instant::now();
    while ns.len() < 400_000 && started.elapsed() < Duration::from_secs(10) {
        let t = Instant::now();
        record();
        ns.push(t.elapsed().as_nanos() as u64);
    }
    stop.store(true, Ordering::Relaxed);
    churner.join().unwrap();
    ns.sort_unstable();
    let pct = |p: f64| ns[((ns.len() - 1) as f64 * p) as usize];
    eprintln!(
        "stalls/{name}: {} records, p50 {} ns, p99.9 {} ns, p99.99 {} ns, max {} µs",
        ns.len(),
        pct(0.5),
        pct(0.999),
        pct(0.9999),
        ns[ns.len() - 1] / 1000
    );
}

fn stalls() {
    let metrics = populated_metrics();
    let gw = ProxyIdentity::default_gateway();
    let hot = metrics.istio.edge(&gw.outbound_edge(
        None,
        Arc::new(DestinationService::from_fqdn(
            "hot.default.svc.cluster.local",
            "default",
        )),
    ));
    let rec = record();
    // The first record of an outcome creates its series (the slow path, which does
    // wait for a running encode); measure the steady state.
    metrics.istio.record_http(&hot, &rec);
    let (m1, m2) = (metrics.clone(), metrics.clone());
    stall_report(
        "edge_handle",
        || metrics.istio.record_http(&hot, &rec),
        move || m1.encode_openmetrics().len(),
        move |i| {
            let fqdn = format!("churn-{i}.default.svc.cluster.local");
            let svc = Arc::new(DestinationService::from_fqdn(&fqdn, "default"));
            let edge = m2.istio.edge(&gw.outbound_edge(None, svc));
            m2.istio.record_http(&edge, &record());
        },
    );

    let naive = Arc::new(Naive::new());
    naive.record("hot.default.svc.cluster.local", 1.8);
    let (n1, n2) = (naive.clone(), naive.clone());
    stall_report(
        "naive_labels",
        || naive.record("hot.default.svc.cluster.local", 1.8),
        move || {
            let mut out = String::new();
            prometheus_client::encoding::text::encode(&mut out, &n1.registry).unwrap();
            out.len()
        },
        move |i| n2.record(&format!("churn-{i}.default.svc.cluster.local"), 1.8),
    );
}

criterion_group!(benches, bench);

fn main() {
    benches();
    stalls();
    Criterion::default().configure_from_args().final_summary();
}
