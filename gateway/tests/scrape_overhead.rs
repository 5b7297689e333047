//! Does scraping once a second move the request path's tail latency? Drives the demo
//! (gateway → temperature-api → temperature-service, real `meshgate` processes) at a
//! fixed rate, alternating runs without and with a 1 Hz scraper reading all three
//! proxies' `/stats/prometheus`, and prints p50/p99 for each run. It measures; it does
//! not assert on timing.
//!
//! Ignored by default (about 50 s):
//!   cargo test -p meshgate --test scrape_overhead -- --ignored --nocapture
//! `--release` measures the release binary. `MESHGATE_BENCH_RPS` (default 100) and
//! `MESHGATE_BENCH_SECS` (default 10) set the rate and the length of each run,
//! `MESHGATE_BENCH_ROUNDS` (default 2) how many without/with pairs run.

// Test helpers outside #[test] functions unwrap too: a panic there is a failed test.
#![allow(clippy::unwrap_used)]

mod support;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use support::demo::Demo;

/// Apart from the other demo tests' ports, below the ephemeral range.
const GATEWAY_PORT: u16 = 31_480;
const PORT_OFFSET: u16 = 16_000;
/// Requests in flight at most; a request that would exceed it counts as an error.
const MAX_IN_FLIGHT: usize = 256;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One request: when it was due and how long it took from then (None: failed).
type Sample = Option<(tokio::time::Instant, f64)>;

struct Run {
    /// Sorted latencies of the successful requests.
    latencies_ms: Vec<f64>,
    /// The latencies of the requests that started while a scrape was in progress.
    during_scrape_ms: Vec<f64>,
    errors: u64,
    scrapes: u64,
    /// The exposition size of the last target scraped.
    scrape_bytes: usize,
    /// The slowest single scrape, as the scraper saw it.
    scrape_max_ms: f64,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Reads every target once a second until `stop` (at most `length` + 1 rounds);
/// returns each round's time window, the last body size and the slowest scrape.
async fn scrape_every_second(
    targets: Vec<SocketAddr>,
    length: Duration,
    stop: Arc<AtomicBool>,
) -> (
    Vec<(tokio::time::Instant, tokio::time::Instant)>,
    usize,
    f64,
) {
    let (mut windows, mut bytes, mut slowest) = (Vec::new(), 0usize, 0f64);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    for _ in 0..=length.as_secs() {
        tick.tick().await;
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let round = tokio::time::Instant::now();
        for t in &targets {
            let began = tokio::time::Instant::now();
            bytes = support::get(*t, "/stats/prometheus").await.body.len();
            slowest = f64::max(slowest, began.elapsed().as_secs_f64() * 1000.0);
        }
        windows.push((round, tokio::time::Instant::now()));
    }
    (windows, bytes, slowest)
}

/// `rps` requests a second for `length`, each timed from its scheduled start (so a
/// stall delays the schedule's victims, not the schedule). With `scrape`, a scraper
/// reads every target once a second meanwhile.
async fn run(url: &str, rps: u64, length: Duration, scrape: Option<&[SocketAddr]>) -> Run {
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let uri: http::Uri = url.parse().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let scraper =
        scrape.map(|t| tokio::spawn(scrape_every_second(t.to_vec(), length, stop.clone())));
    let limit = Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT));
    let total = rps * length.as_secs();
    let every = Duration::from_secs_f64(1.0 / rps as f64);
    let start = tokio::time::Instant::now();
    let mut tasks: Vec<tokio::task::JoinHandle<Sample>> = Vec::with_capacity(total as usize);
    for i in 0..total {
        let due = start + every * i as u32;
        tokio::time::sleep_until(due).await;
        let Ok(permit) = limit.clone().try_acquire_owned() else {
            tasks.push(tokio::spawn(async { None }));
            continue;
        };
        let (client, uri) = (client.clone(), uri.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = permit;
            let answer = tokio::time::timeout(Duration::from_secs(10), async {
                let resp = client.get(uri).await.ok()?;
                let ok = resp.status() == 200;
                resp.into_body().collect().await.ok()?;
                ok.then_some(())
            })
            .await;
            matches!(answer, Ok(Some(()))).then(|| (due, due.elapsed().as_secs_f64() * 1000.0))
        }));
    }
    let mut samples = Vec::with_capacity(tasks.len());
    for t in tasks {
        samples.push(t.await.unwrap());
    }
    stop.store(true, Ordering::Relaxed);
    let (windows, scrape_bytes, scrape_max_ms) = match scraper {
        Some(s) => s.await.unwrap(),
        None => (Vec::new(), 0, 0.0),
    };
    let errors = samples.iter().filter(|s| s.is_none()).count() as u64;
    let mut latencies_ms: Vec<f64> = samples.iter().flatten().map(|s| s.1).collect();
    let mut during_scrape_ms: Vec<f64> = samples
        .iter()
        .flatten()
        // By start time, not overlap: slow requests overlap more windows by being slow.
        .filter(|(due, _)| windows.iter().any(|(a, b)| a <= due && due < b))
        .map(|s| s.1)
        .collect();
    latencies_ms.sort_by(f64::total_cmp);
    during_scrape_ms.sort_by(f64::total_cmp);
    Run {
        latencies_ms,
        during_scrape_ms,
        errors,
        scrapes: windows.len() as u64 * scrape.map_or(0, |t| t.len() as u64),
        scrape_bytes,
        scrape_max_ms,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement (about 50 s); run with --ignored --nocapture"]
async fn p99_with_and_without_a_1hz_scraper() {
    let rps = env_u64("MESHGATE_BENCH_RPS", 100).max(1);
    let secs = env_u64("MESHGATE_BENCH_SECS", 10).clamp(1, 120);
    let rounds = env_u64("MESHGATE_BENCH_ROUNDS", 2).clamp(1, 10);
    let demo = Demo::start(
        env!("CARGO_BIN_EXE_meshgate"),
        GATEWAY_PORT,
        PORT_OFFSET,
        "scrape-bench",
    )
    .await;
    let url = demo.gateway_url();
    let targets: Vec<SocketAddr> = demo.metrics_targets().iter().map(|t| t.1).collect();
    // Warm up pools, peer caches and metric edges.
    run(&url, rps, Duration::from_secs(2), None).await;
    println!(
        "\nscrape overhead: {rps} req/s for {secs} s per run through gateway → api → service; meshgate {} build",
        if cfg!(debug_assertions) { "debug" } else { "release" }
    );
    println!(
        "run  scraper  requests errors   p50 ms   p99 ms   max ms  scrapes  bytes/scrape  slowest scrape ms  started during a scrape: n, p50, p99 ms"
    );
    let (mut without, mut with, mut during) = (Vec::new(), Vec::new(), Vec::new());
    let runs = (0..rounds).flat_map(|_| [false, true]);
    for (i, scrape) in runs.enumerate() {
        let r = run(
            &url,
            rps,
            Duration::from_secs(secs),
            scrape.then_some(targets.as_slice()),
        )
        .await;
        let (l, d) = (&r.latencies_ms, &r.during_scrape_ms);
        println!(
            "{:<4} {:<8} {:>9} {:>6} {:>8.2} {:>8.2} {:>8.2} {:>8} {:>13} {:>18.2}  {:>5} {:>8.2} {:>8.2}",
            i + 1,
            if scrape { "1 Hz" } else { "none" },
            l.len(),
            r.errors,
            percentile(l, 50.0),
            percentile(l, 99.0),
            l.last().copied().unwrap_or(f64::NAN),
            r.scrapes,
            r.scrape_bytes,
            r.scrape_max_ms,
            d.len(),
            percentile(d, 50.0),
            percentile(d, 99.0),
        );
        if scrape {
            with.extend_from_slice(l);
            during.extend_from_slice(d);
        } else {
            without.extend_from_slice(l);
        }
    }
    for v in [&mut without, &mut with, &mut during] {
        v.sort_by(f64::total_cmp);
    }
    for (name, v) in [
        ("all runs without a scraper", &without),
        ("all runs with a 1 Hz scraper", &with),
        ("requests started during a scrape", &during),
    ] {
        println!(
            "{name:<36} n={:<6} p50 {:>8.2} ms  p90 {:>8.2} ms  p99 {:>8.2} ms",
            v.len(),
            percentile(v, 50.0),
            percentile(v, 90.0),
            percentile(v, 99.0)
        );
    }
    drop(demo);
}
