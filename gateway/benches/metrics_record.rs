//! Cost of recording one request's Istio metrics, idle and while another thread encodes
//! scrapes back to back, against the naive approach (25 label strings built per request,
//! looked up in a prometheus-client `Family`, stock `Histogram`).
//!
//! # Run
//! `cargo bench -p meshgate --bench metrics_record`
//!
//! # Expected output
//! Four criterion timings under `record_http/`: `edge_handle` and
//! `edge_handle_during_scrapes` (tens of nanoseconds, nearly equal: recording never waits
//! for the encoder), `naive_labels` and `naive_labels_during_scrapes` (microseconds).

// Benchmark setup unwraps: a panic there is a broken benchmark, not a crashed proxy.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use meshgate::telemetry::{
    DestinationService, HttpRecord, Metrics, PeerInfo, ProxyIdentity, RequestProtocol,
    DURATION_BUCKETS_MS,
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
        let edge = metrics
            .istio
            .edge(&gw.outbound_edge(None, svc, RequestProtocol::Http));
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
        .edge(&ProxyIdentity::default_gateway().outbound_edge(
            Some(api),
            svc,
            RequestProtocol::Http,
        ));
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

criterion_group!(benches, bench);
criterion_main!(benches);
