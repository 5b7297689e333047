//! Route lookup and compile cost at mesh scale.
//!
//! Run: `cargo bench -p meshgate --bench route_lookup -- --warm-up-time 1 --measurement-time 3`
//! Prints criterion's timings, then a per-lookup latency distribution (p50/p99/max over
//! 200,000 timed lookups) for 10, 1,000 and 10,000 VirtualServices.
//! Targets (performance.md #6): lookup p99 ≤ 1 µs, compile ≤ 100 ms for 10,000.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion};
use meshgate::config::*;
use meshgate::router::explain::RouteQuery;
use meshgate::router::{compile, RouteDecision, Snapshot};

fn meta(kind: &'static str, name: String, fields: &Arc<FieldLines>) -> ResourceMeta {
    ResourceMeta {
        kind,
        name,
        namespace: "default".into(),
        labels: Labels::new(),
        annotations: Labels::new(),
        origin: Origin {
            file: fields.file.clone(),
            line: 1,
            column: 1,
        },
        fields: fields.clone(),
    }
}

fn to(host: &str, port: u32) -> Vec<HttpRouteDestination> {
    vec![HttpRouteDestination {
        destination: Destination {
            host: host.into(),
            subset: None,
            port: Some(PortSelector { number: port }),
        },
        weight: None,
        headers: None,
    }]
}

fn string_match(exact: Option<&str>, prefix: Option<&str>, regex: Option<String>) -> StringMatch {
    StringMatch {
        exact: exact.map(str::to_string),
        prefix: prefix.map(str::to_string),
        regex,
    }
}

/// A gateway on port 80 with hosts `*`, and `n` VirtualServices for distinct hosts,
/// each with a header rule, a regex rule (distinct per service), a prefix rule and a
/// catch-all, plus a ServiceEntry per host so every destination resolves.
fn config(n: usize) -> ConfigSet {
    let fields = Arc::new(FieldLines {
        file: Arc::new(PathBuf::from("bench.yaml")),
        entries: Vec::new(),
    });
    let mut c = ConfigSet::default();
    c.gateways.push(Res {
        meta: meta("Gateway", "gw".into(), &fields),
        spec: GatewaySpec {
            selector: [("istio".to_string(), "ingressgateway".to_string())].into(),
            servers: vec![Server {
                port: ServerPort {
                    number: 80,
                    protocol: "HTTP".into(),
                    name: "http".into(),
                    target_port: None,
                },
                hosts: vec!["*".into()],
                ..Server::default()
            }],
        },
    });
    for i in 0..n {
        let host = format!("svc-{i}.example.com");
        let backend = format!("backend-{i}.default.svc.cluster.local");
        let header = HttpMatchRequest {
            headers: BTreeMap::from([(
                "x-canary".to_string(),
                string_match(Some("true"), None, None),
            )]),
            uri: Some(string_match(None, Some("/api"), None)),
            ..HttpMatchRequest::default()
        };
        let regex = HttpMatchRequest {
            uri: Some(string_match(
                None,
                None,
                Some(format!("/items/[0-9]+/s{i}")),
            )),
            ..HttpMatchRequest::default()
        };
        let prefix = HttpMatchRequest {
            uri: Some(string_match(None, Some("/static"), None)),
            ..HttpMatchRequest::default()
        };
        let rule = |m: Option<HttpMatchRequest>, port| HttpRoute {
            matches: m.into_iter().collect(),
            route: to(&backend, port),
            ..HttpRoute::default()
        };
        c.virtual_services.push(Res {
            meta: meta("VirtualService", format!("vs-{i}"), &fields),
            spec: VirtualServiceSpec {
                hosts: vec![host],
                gateways: vec!["gw".into()],
                http: vec![
                    rule(Some(header), 8081),
                    rule(Some(regex), 8082),
                    rule(Some(prefix), 8083),
                    rule(None, 8080),
                ],
                ..VirtualServiceSpec::default()
            },
        });
        c.service_entries.push(Res {
            meta: meta("ServiceEntry", format!("backend-{i}"), &fields),
            spec: ServiceEntrySpec {
                hosts: vec![backend.clone()],
                ports: [8080, 8081, 8082, 8083]
                    .into_iter()
                    .map(|p| ServiceEntryPort {
                        number: p,
                        protocol: Some("HTTP".into()),
                        name: format!("http-{p}"),
                        target_port: None,
                    })
                    .collect(),
                resolution: Some("STATIC".into()),
                endpoints: vec![WorkloadEntry {
                    address: format!("127.0.{}.{}", (i / 250) % 250, i % 250 + 1),
                    ..WorkloadEntry::default()
                }],
                ..ServiceEntrySpec::default()
            },
        });
    }
    c
}

/// Requests that exercise each rule kind on the last VirtualService (the hash lookup
/// is O(1), so its position does not matter; the rule scan does).
fn requests(n: usize) -> Vec<(&'static str, RouteQuery)> {
    let host = format!("SVC-{}.example.com", n - 1);
    let q = |path: &str, headers: &[&str]| {
        let h: Vec<String> = headers.iter().map(|s| s.to_string()).collect();
        RouteQuery::parse("GET", &format!("http://{host}{path}"), &h, None).expect("request")
    };
    vec![
        (
            "header",
            q("/api/orders", &["x-canary: true", "user-agent: bench"]),
        ),
        (
            "regex",
            q(&format!("/items/12345/s{}", n - 1), &["user-agent: bench"]),
        ),
        ("catch_all", q("/checkout?cart=7", &["user-agent: bench"])),
        ("no_route", {
            let mut r = q("/", &[]);
            r.authority = "unknown.example.org".into();
            r
        }),
    ]
}

fn check(snapshot: &Snapshot, name: &str, q: &RouteQuery) {
    let routed = matches!(
        snapshot.route(80, None, &q.view()),
        RouteDecision::Matched { .. }
    );
    assert_eq!(routed, name != "no_route", "{name} routed as expected");
}

fn lookup(c: &mut Criterion) {
    let mut group = c.benchmark_group("route_lookup");
    for n in [10, 1_000, 10_000] {
        let compiled = compile(&config(n), 1);
        assert!(
            compiled.rejected.is_empty(),
            "{:?}",
            compiled.rejected.first()
        );
        for (name, q) in requests(n) {
            check(&compiled.snapshot, name, &q);
            let view = q.view();
            group.bench_with_input(BenchmarkId::new(name, n), &view, |b, view| {
                b.iter(|| {
                    black_box(compiled.snapshot.route(80, None, black_box(view))).is_some_route()
                })
            });
        }
    }
    group.finish();
}

trait IsSome {
    fn is_some_route(&self) -> bool;
}

impl IsSome for RouteDecision<'_> {
    fn is_some_route(&self) -> bool {
        matches!(self, RouteDecision::Matched { .. })
    }
}

fn compile_10k(c: &mut Criterion) {
    let cfg = config(10_000);
    let mut group = c.benchmark_group("compile");
    group.sample_size(10);
    group.bench_function("10000_virtual_services", |b| {
        b.iter(|| black_box(compile(black_box(&cfg), 1)).snapshot.version)
    });
    group.finish();
}

/// Criterion reports means; the target is a tail bound, so time lookups one by one.
fn latency_distribution() {
    const SAMPLES: usize = 200_000;
    println!("\nper-lookup latency (each lookup timed alone, includes ~20-40 ns of clock reads)");
    for n in [10, 1_000, 10_000] {
        let compiled = compile(&config(n), 1);
        for (name, q) in requests(n) {
            let view = q.view();
            let mut times = Vec::with_capacity(SAMPLES);
            for _ in 0..SAMPLES {
                let start = Instant::now();
                black_box(
                    compiled
                        .snapshot
                        .route(80, None, black_box(&view))
                        .is_some_route(),
                );
                times.push(start.elapsed());
            }
            times.sort();
            let at = |p: f64| times[((SAMPLES as f64 * p) as usize).min(SAMPLES - 1)];
            println!(
                "  {n:>6} VirtualServices  {name:<9}  p50 {:>6?}  p99 {:>6?}  max {:>8?}",
                at(0.50),
                at(0.99),
                times[SAMPLES - 1]
            );
        }
    }
    let cfg = config(10_000);
    let mut runs: Vec<Duration> = (0..5)
        .map(|_| {
            let start = Instant::now();
            black_box(compile(&cfg, 1));
            start.elapsed()
        })
        .collect();
    runs.sort();
    println!(
        "  compile 10000 VirtualServices: median {:?} (min {:?}, max {:?})",
        runs[2], runs[0], runs[4]
    );
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    lookup(&mut c);
    compile_10k(&mut c);
    c.final_summary();
    latency_distribution();
}
