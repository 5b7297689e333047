use std::time::Duration;

use meshgate_plugin_test::{PluginHarness, Request, Response};
use serde_json::json;

fn harness(config: serde_json::Value) -> PluginHarness {
    PluginHarness::load(meshgate_plugin_test::this_plugin!(), config).unwrap()
}

#[test]
fn over_the_limit_answers_429_with_retry_after() {
    let h = harness(json!({"capacity": 3, "refill": 1, "intervalMs": 60000}));
    for remaining in ["2", "1", "0"] {
        let out = h.exchange(Request::get("/").client("10.0.0.1:1000"), Response::ok());
        assert_eq!(
            out.client_response().header("x-ratelimit-remaining"),
            Some(remaining)
        );
    }
    let r = h.request(Request::get("/").client("10.0.0.1:1001"));
    let r = r.local();
    assert_eq!(r.status, 429);
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "retry-after {retry}");
    assert_eq!(r.json(), json!({"error": "rate limit exceeded"}));
    // Another client IP has its own bucket.
    let out = h.request(Request::get("/").client("10.0.0.2:1000"));
    assert!(out.upstream_request.is_some());
}

#[test]
fn buckets_are_keyed_by_the_configured_header() {
    let h =
        harness(json!({"capacity": 1, "refill": 1, "intervalMs": 60000, "keyHeader": "x-user"}));
    let req = |user: &str| {
        Request::get("/")
            .header("x-user", user)
            .client("10.0.0.9:1")
    };
    assert!(h.request(req("ann")).upstream_request.is_some());
    assert_eq!(h.request(req("ann")).local().status, 429);
    assert!(h.request(req("bob")).upstream_request.is_some());
}

#[test]
fn two_instances_draw_from_one_bucket() {
    // Two loads with one vm_id share data, as every instance of one WasmPlugin does.
    let wasm = meshgate_plugin_test::this_plugin!();
    let config = json!({"capacity": 4, "refill": 1, "intervalMs": 60000});
    let a = PluginHarness::builder(&wasm)
        .config(config.clone())
        .vm_id("shared-rl")
        .build()
        .unwrap();
    let b = PluginHarness::builder(&wasm)
        .config(config)
        .vm_id("shared-rl")
        .build()
        .unwrap();
    let mut allowed = 0;
    for i in 0..10 {
        let h = if i % 2 == 0 { &a } else { &b };
        if h.request(Request::get("/").client("10.1.1.1:5"))
            .upstream_request
            .is_some()
        {
            allowed += 1;
        }
    }
    assert_eq!(allowed, 4);
}

#[test]
fn tokens_come_back_over_time() {
    let h = harness(json!({"capacity": 1, "refill": 1, "intervalMs": 200}));
    assert!(h.request(Request::get("/")).upstream_request.is_some());
    assert_eq!(h.request(Request::get("/")).local().status, 429);
    // Bounded wait for the refill (one token per 200 ms).
    let start = std::time::Instant::now();
    loop {
        std::thread::sleep(Duration::from_millis(100));
        if h.request(Request::get("/")).upstream_request.is_some() {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "no refill within 5 s"
        );
    }
}

#[test]
fn zero_capacity_or_refill_is_rejected() {
    let wasm = meshgate_plugin_test::this_plugin!();
    let err = PluginHarness::load(&wasm, json!({"capacity": 0, "refill": 1}))
        .err()
        .unwrap();
    assert!(
        err.to_string().contains("capacity: must be at least 1"),
        "{err}"
    );
    let err = PluginHarness::load(&wasm, json!({"capacity": 1, "refill": 0}))
        .err()
        .unwrap();
    assert!(err.to_string().contains("never refills"), "{err}");
}
