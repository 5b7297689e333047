//! A misbehaving plugin never takes the proxy down: traps, runaway loops and unknown
//! imports end up as the plugin's failStrategy says.

#![allow(clippy::unwrap_used)]

mod wasm_support;

use std::time::{Duration, Instant};

use http::StatusCode;
use meshgate::wasm::FailStrategy;
use wasm_support::*;

#[tokio::test]
async fn fail_close_answers_503_from_then_on() {
    let chain = chain(vec![spec_with(
        "t/trap",
        "trap",
        "",
        FailStrategy::FailClose,
    )]);
    let (_s, v, h, _) = request(&chain, &[], "/").await;
    assert!(v.is_continue());
    assert_eq!(get(&h, "x-trap-plugin"), Some("ran"));

    let (_s, v, _, _) = request(&chain, &[("x-crash", "1")], "/").await;
    let r = expect_local(v);
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.details, "wasm_fail_stream");

    // As in Envoy, a failed FAIL_CLOSE plugin keeps failing closed until reloaded.
    let (_s, v, _, _) = request(&chain, &[], "/").await;
    assert_eq!(expect_local(v).status, StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn fail_open_skips_the_plugin_and_runs_the_others() {
    let chain = chain(vec![
        spec_with("t/trap", "trap", "", FailStrategy::FailOpen),
        spec_with("t/add", "header_add", "\"still\"", FailStrategy::FailClose),
    ]);
    let (_s, v, h, _) = request(&chain, &[("x-crash", "1")], "/").await;
    assert!(v.is_continue(), "{v:?}");
    assert!(h.get("x-trap-plugin").is_none());
    assert_eq!(get(&h, "x-wasm-request"), Some("still"));
    let (_s, v, h, _) = request(&chain, &[], "/").await;
    assert!(v.is_continue());
    assert!(h.get("x-trap-plugin").is_none(), "skipped from then on");
    assert_eq!(get(&h, "x-wasm-request"), Some("still"));
}

#[tokio::test]
async fn fail_reload_gives_the_next_request_a_fresh_instance() {
    let chain = chain(vec![spec_with(
        "t/trap",
        "trap",
        "",
        FailStrategy::FailReload,
    )]);
    let (_s, v, _, _) = request(&chain, &[("x-crash", "1")], "/").await;
    assert_eq!(expect_local(v).status, StatusCode::SERVICE_UNAVAILABLE);
    for _ in 0..3 {
        let (_s, v, h, _) = request(&chain, &[], "/").await;
        assert!(v.is_continue(), "{v:?}");
        assert_eq!(get(&h, "x-trap-plugin"), Some("ran"));
    }
}

#[tokio::test]
async fn a_runaway_loop_is_interrupted() {
    let chain = chain(vec![spec_with(
        "t/spin",
        "spin",
        "",
        FailStrategy::FailReload,
    )]);
    let started = Instant::now();
    let (_s, v, _, _) = request(&chain, &[("x-spin", "1")], "/").await;
    let took = started.elapsed();
    let r = expect_local(v);
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    // The deadline is about 100 ms of epochs; allow a loaded machine plenty of slack.
    assert!(
        took >= Duration::from_millis(50) && took < Duration::from_secs(3),
        "{took:?}"
    );
    let (_s, v, h, _) = request(&chain, &[], "/").await;
    assert!(v.is_continue());
    assert_eq!(get(&h, "x-spin-plugin"), Some("ran"));
}

#[tokio::test]
async fn a_plugin_cannot_grow_past_the_memory_cap() {
    let chain = chain(vec![spec_with(
        "t/hog",
        "spin",
        "",
        FailStrategy::FailReload,
    )]);
    let (_s, v, _, _) = request(&chain, &[("x-hog", "1")], "/").await;
    assert_eq!(expect_local(v).status, StatusCode::SERVICE_UNAVAILABLE);
    let (_s, v, h, _) = request(&chain, &[], "/").await;
    assert!(v.is_continue());
    assert_eq!(get(&h, "x-spin-plugin"), Some("ran"));
}

#[tokio::test]
async fn a_module_importing_an_unknown_function_still_loads() {
    let chain = chain(vec![
        spec_with("t/bogus", "bogus_import", "", FailStrategy::FailOpen),
        spec_with("t/add", "header_add", "\"ok\"", FailStrategy::FailClose),
    ]);
    let (_s, v, h, _) = request(&chain, &[], "/").await;
    assert!(v.is_continue());
    assert_eq!(get(&h, "x-bogus-plugin"), Some("loaded"));
    // Calling it fails that plugin only.
    let (_s, v, h, _) = request(&chain, &[("x-call-bogus", "1")], "/").await;
    assert!(v.is_continue(), "{v:?}");
    assert!(h.get("x-bogus-result").is_none());
    assert_eq!(get(&h, "x-wasm-request"), Some("ok"));
}
