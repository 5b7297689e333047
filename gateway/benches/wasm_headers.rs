//! Per-request cost of a header-adding proxy-wasm plugin: one full stream (context
//! create, request headers, response headers, done/log/delete) against the same
//! stream with no plugin.
//!
//! # Run
//! `cargo bench -p meshgate --bench wasm_headers`
//!
//! # Expected output
//! Criterion timings for `stream/no_plugin`, `stream/add_one`, `stream/add_one_x3`
//! and `stream/header_add_rich`; the difference to `no_plugin` is the plugins'
//! overhead per request.

#![allow(clippy::unwrap_used)]

#[path = "../tests/wasm_support/plugins.rs"]
mod plugins;

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use http::{HeaderMap, HeaderValue, StatusCode};
use meshgate::wasm::{FailStrategy, NoCallouts, PluginChain, PluginSpec, RequestLine, StreamInfo};

fn chain(plugin: &str, n: usize) -> PluginChain {
    let specs = (0..n)
        .map(|i| {
            let mut s = PluginSpec::new(format!("bench/{plugin}{i}"), plugins::wasm(plugin));
            s.config = b"\"bench\"".to_vec();
            s.fail_strategy = FailStrategy::FailClose;
            s
        })
        .collect();
    PluginChain::new(specs, Arc::new(NoCallouts)).expect("chain")
}

fn request_headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("user-agent", HeaderValue::from_static("bench/1.0"));
    h.insert("accept", HeaderValue::from_static("*/*"));
    h.insert(
        "x-request-id",
        HeaderValue::from_static("0b7e3c1a-7c55-4a0f-9b1e-1f2f3a4b5c6d"),
    );
    h
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut group = c.benchmark_group("stream");
    let cases = [
        ("no_plugin", "add_one", 0),
        // One request and one response header added: the target case.
        ("add_one", "add_one", 1),
        ("add_one_x3", "add_one", 3),
        // ~15 host calls per request: pseudo-headers, full header-map reads, edits.
        ("header_add_rich", "header_add", 1),
    ];
    for (name, plugin, n) in cases {
        let chain = rt.block_on(async { chain(plugin, n) });
        group.bench_function(name, |b| {
            b.iter(|| {
                rt.block_on(async {
                    let mut stream = chain.new_stream(StreamInfo::default());
                    let mut h = request_headers();
                    let mut line = RequestLine::new("GET", "http", "example.com", "/api/v1/items");
                    assert!(stream
                        .on_request_headers(&mut h, &mut line, true)
                        .await
                        .is_continue());
                    let mut rh = HeaderMap::new();
                    rh.insert("content-type", HeaderValue::from_static("application/json"));
                    let mut status = StatusCode::OK;
                    assert!(stream
                        .on_response_headers(&mut rh, &mut status, true)
                        .await
                        .is_continue());
                    stream.on_log();
                })
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
