//! Route lookup and compile cost at mesh scale.
//!
//! Run: `cargo bench -p meshgate --bench route_lookup -- --warm-up-time 1 --measurement-time 3`
//! Prints criterion's timings, then a per-lookup latency distribution (p50/p99/max over
//! 200,000 timed lookups) for 10, 1,000 and 10,000 VirtualServices.
//! Targets (performance.md #6): lookup p99 ≤ 1 µs, compile ≤ 100 ms for 10,000.
//! `-- --distribution-only` prints just the distribution and compile times;
//! `-- --profile-compile` only reloads the 10,000-VirtualService config (for perf).

use std::alloc::{GlobalAlloc, Layout};
use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion};

// The allocator the meshgate binary ships with (compile is allocation-heavy, and
// glibc's malloc made up a third of its profile), counting live bytes so the memory a
// snapshot holds is measured exactly rather than through RSS.
#[global_allocator]
static GLOBAL: Counting = Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

struct Counting;

// SAFETY: forwards every call to mimalloc unchanged; only counts sizes. (The one unsafe
// block in the project, in a benchmark: an allocator cannot be written without it.)
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        unsafe { mimalloc::MiMalloc.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { mimalloc::MiMalloc.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        unsafe { mimalloc::MiMalloc.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size, Ordering::Relaxed);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { mimalloc::MiMalloc.realloc(ptr, layout, new_size) }
    }
}

fn mib(bytes: usize) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}
use meshgate::config::*;
use meshgate::router::explain::RouteQuery;
use meshgate::router::{compile, Compiler, RouteDecision, Snapshot};

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
    config_with(n, true)
}

/// `distinct_regex: false` gives every VirtualService the same pattern, as configs that
/// repeat a pattern do: compile then builds it once.
fn config_with(n: usize, distinct_regex: bool) -> ConfigSet {
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
                Some(if distinct_regex {
                    format!("/items/[0-9]+/s{i}")
                } else {
                    "/items/[0-9]+/s[0-9]+".to_string()
                }),
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
    group.bench_function("10000_virtual_services_first", |b| {
        b.iter_with_large_drop(|| compile(black_box(&cfg), 1))
    });
    let mut compiler = Compiler::new();
    drop(compiler.compile(&cfg, 1));
    group.bench_function("10000_virtual_services_reload", |b| {
        b.iter_with_large_drop(|| compiler.compile(black_box(&cfg), 2))
    });
    group.finish();
}

/// Criterion reports means; the target is a tail bound, so time lookups one by one.
fn latency_distribution() {
    const SAMPLES: usize = 200_000;
    // First, in a fresh heap: the resident memory a 10,000-VirtualService snapshot holds
    // (target: ≤ 64 MiB). Measured once per config shape, before anything is freed.
    for (label, distinct) in [("a distinct regex each", true), ("one shared regex", false)] {
        let cfg = config_with(10_000, distinct);
        let (rss, live) = (resident_bytes(), LIVE.load(Ordering::Relaxed));
        let mut held = compile(&cfg, 1);
        let rss_grew = resident_bytes().saturating_sub(rss) as usize;
        let total = LIVE.load(Ordering::Relaxed).saturating_sub(live);
        // Where it goes: free the parts one by one.
        let mut parts = Vec::new();
        let mut free = |what: &'static str, f: &mut dyn FnMut()| {
            let before = LIVE.load(Ordering::Relaxed);
            f();
            parts.push((what, before.saturating_sub(LIVE.load(Ordering::Relaxed))));
        };
        free("listeners (routes)", &mut || {
            drop(std::mem::take(&mut held.snapshot.listeners))
        });
        free("clusters", &mut || {
            drop(std::mem::take(&mut held.snapshot.clusters))
        });
        free("services", &mut || {
            drop(std::mem::take(&mut held.snapshot.services))
        });
        let parts: Vec<String> = parts
            .iter()
            .map(|(w, b)| format!("{w} {:.1}", mib(*b)))
            .collect();
        println!(
            "  10000 VirtualServices ({label}): the snapshot holds {:.1} MiB of heap ({}), RSS grew {:.1} MiB",
            mib(total),
            parts.join(", "),
            mib(rss_grew)
        );
    }
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
    let median = |mut runs: Vec<Duration>| {
        runs.sort();
        runs[runs.len() / 2]
    };
    for (label, distinct) in [("a distinct regex each", true), ("one shared regex", false)] {
        let cfg = config_with(10_000, distinct);
        let cold: Vec<Duration> = (0..5)
            .map(|_| {
                let start = Instant::now();
                let compiled = compile(&cfg, 1);
                let took = start.elapsed();
                // Dropping the old snapshot happens after the swap, off the compile path.
                drop(black_box(compiled));
                took
            })
            .collect();
        let mut compiler = Compiler::new();
        drop(compiler.compile(&cfg, 1));
        let mut reload_cpu = Vec::new();
        let mut all_cpu = Duration::ZERO;
        let reload: Vec<Duration> = (0..5)
            .map(|v| {
                let (cpu, all) = (thread_cpu(), process_cpu());
                let start = Instant::now();
                let compiled = compiler.compile(&cfg, v + 2);
                let took = start.elapsed();
                reload_cpu.push(thread_cpu().saturating_sub(cpu));
                all_cpu += process_cpu().saturating_sub(all);
                drop(black_box(compiled));
                took
            })
            .collect();
        println!(
            "  compile 10000 VirtualServices ({label}): first {:?}; reload {:?} wall, {:?} CPU on the compiling thread, {:?} CPU in all threads (medians / mean of 5)",
            median(cold),
            median(reload),
            median(reload_cpu),
            all_cpu / 5
        );
    }
}

/// Resident set size of this process (Linux `/proc/self/statm`, in bytes).
fn resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

/// CPU time of the whole process, all threads (Linux, 10 ms resolution).
fn process_cpu() -> Duration {
    let ticks = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            // Fields after the `(comm)`; utime and stime are the 14th and 15th overall.
            let rest = s.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
        });
    ticks.map_or(Duration::ZERO, |t| Duration::from_millis(t * 10))
}

/// CPU time of this thread (Linux), so a busy machine's waiting does not count.
fn thread_cpu() -> Duration {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(Duration::ZERO, Duration::from_nanos)
}

fn main() {
    if std::env::args().any(|a| a == "--profile-compile") {
        // For profilers: reload the 10,000-VirtualService config repeatedly, nothing else.
        let cfg = config_with(10_000, true);
        let mut compiler = Compiler::new();
        for v in 0..10 {
            black_box(compiler.compile(&cfg, v));
        }
        return;
    }
    if std::env::args().any(|a| a == "--distribution-only") {
        latency_distribution();
        return;
    }
    let mut c = Criterion::default().configure_from_args();
    lookup(&mut c);
    compile_10k(&mut c);
    c.final_summary();
    latency_distribution();
}
