//! The SDK's paths through Meshgate's real wasm engine, driven by the probe plugin in
//! testdata/probe: errors and `onError`, bodies, HTTP calls and their continuations,
//! shared counters, per-stream variables, redirects, odd header bytes.

#![allow(clippy::unwrap_used)]

use std::path::Path;

use bytes::Bytes;
use meshgate_plugin_test::{build_plugin, PluginHarness, Request, Response};
use serde_json::json;

fn probe() -> std::path::PathBuf {
    build_plugin(Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/probe"))
}

fn harness(config: serde_json::Value) -> PluginHarness {
    PluginHarness::load(probe(), config).unwrap()
}

#[test]
fn request_views_read_path_query_client_and_odd_bytes() {
    let h = harness(json!({}));
    let out = h.request(
        Request::get("/convert?from=Celsius&to=Kelvin&temperature=1")
            .client("192.0.2.7:4242")
            .header_bytes("x-bin", b"caf\xe9"),
    );
    let up = out.forwarded();
    assert_eq!(up.header("x-path"), Some("/convert"));
    assert_eq!(up.header("x-query-count"), Some("3"));
    assert_eq!(up.header("x-client-ip"), Some("192.0.2.7"));
    // Not UTF-8: read lossily (4 chars, the last a replacement), no trap.
    assert_eq!(up.header("x-bin-chars"), Some("4"));
}

#[test]
fn an_error_answers_500_by_default_and_is_logged_with_the_plugin() {
    let h = harness(json!({}));
    let out = h.request(Request::get("/x").header("x-probe", "fail"));
    let r = out.local();
    assert_eq!(r.status, 500);
    assert_eq!(r.json(), json!({"error": "plugin error"}));
    assert!(
        out.plugin_logs()
            .iter()
            .any(|l| l.contains("probe failure on /x")),
        "{:?}",
        out.logs
    );
    // The plugin is still healthy: no trap, the next request goes through.
    assert!(h.request(Request::get("/y")).upstream_request.is_some());
}

#[test]
fn on_error_continue_lets_the_request_through() {
    let h = harness(json!({"onError": "continue"}));
    let out = h.request(Request::get("/").header("x-probe", "fail"));
    assert!(out.upstream_request.is_some(), "{out:?}");
    let out = h.request(Request::post("/", "abc").header("x-probe", "fail-body"));
    assert_eq!(out.forwarded().body, Bytes::from("abc"));
    assert!(out
        .plugin_logs()
        .iter()
        .any(|l| l.contains("after 3 bytes")));
}

#[test]
fn the_whole_request_body_is_read_and_replaced() {
    let h = harness(json!({}));
    let out = h.request(
        Request::post("/", "hello body in chunks")
            .header("x-probe", "body")
            .header("content-length", "20")
            .chunked(4),
    );
    let up = out.forwarded();
    assert_eq!(up.body, Bytes::from("HELLO BODY IN CHUNKS"));
    assert_eq!(up.header("x-body-len"), Some("20"));
    assert_eq!(up.header("content-length"), None);
    // Without a body the body callback still runs, with nothing.
    let out = h.request(Request::get("/").header("x-probe", "body"));
    assert_eq!(out.forwarded().header("x-body-len"), Some("0"));
}

#[test]
fn responses_see_stream_variables_and_can_rewrite_the_body() {
    let h = harness(json!({}));
    let out = h.exchange(
        Request::new("DELETE", "/").header("x-probe", "resp-body"),
        Response::ok().body("twelve bytes"),
    );
    let down = out.client_response();
    assert_eq!(down.header("x-method"), Some("DELETE"));
    assert_eq!(down.status, 203);
    assert_eq!(down.json(), json!({"len": 12, "status": 200}));
}

#[test]
fn redirects_answer_locally() {
    let h = harness(json!({}));
    let out = h.request(Request::get("/private").header("x-probe", "redirect"));
    assert_eq!(out.local().status, 302);
    assert_eq!(out.local().header("location"), Some("/login"));
}

#[test]
fn http_calls_resume_or_deny_from_their_continuation() {
    let h = PluginHarness::builder(probe())
        .config(json!({"auth": "auth-service"}))
        .upstream("auth-service", |req| {
            let user = req
                .headers()
                .get("x-user")
                .map(|v| v.to_str().unwrap().to_string());
            assert_eq!(req.uri().path(), "/check");
            match user.as_deref() {
                Some("ann") => http::Response::new(Bytes::from("ann-is-ok")),
                _ => http::Response::builder()
                    .status(401)
                    .body(Bytes::new())
                    .unwrap(),
            }
        })
        .build()
        .unwrap();
    let out = h.request(
        Request::get("/")
            .header("x-probe", "call")
            .header("x-user", "ann"),
    );
    assert_eq!(out.forwarded().header("x-auth"), Some("ann-is-ok"));
    let out = h.request(
        Request::get("/")
            .header("x-probe", "call")
            .header("x-user", "bob"),
    );
    assert_eq!(out.local().status, 403);
    assert_eq!(out.local().json(), json!({"status": 401}));
}

#[test]
fn a_failed_call_reaches_the_continuation_as_an_error() {
    let h = PluginHarness::builder(probe())
        .config(json!({"auth": "flaky"}))
        .failing_upstream("flaky")
        .build()
        .unwrap();
    let out = h.request(Request::get("/").header("x-probe", "call"));
    assert_eq!(out.local().status, 502, "{out:?}");
    assert_eq!(
        out.local().json(),
        json!({"error": "the HTTP call failed (unreachable, reset or timed out)"})
    );
}

#[test]
fn an_unknown_cluster_fails_at_dispatch_as_an_error() {
    let h = PluginHarness::builder(probe())
        .config(json!({"auth": "unknown-cluster"}))
        .build()
        .unwrap();
    let out = h.request(Request::get("/").header("x-probe", "call"));
    // An unknown cluster fails at dispatch: an Err from on_request → 500.
    assert_eq!(out.local().status, 500, "{out:?}");
    assert!(out
        .plugin_logs()
        .iter()
        .any(|l| l.contains("HTTP call to \"unknown-cluster\"")));
}

#[test]
fn shared_counters_count_across_instances() {
    let wasm = probe();
    let a = PluginHarness::builder(&wasm)
        .vm_id("probe-shared")
        .build()
        .unwrap();
    let b = PluginHarness::builder(&wasm)
        .vm_id("probe-shared")
        .build()
        .unwrap();
    let mut seen = Vec::new();
    for i in 0..6 {
        let h = if i % 2 == 0 { &a } else { &b };
        let out = h.request(Request::get("/"));
        seen.push(
            out.forwarded()
                .header("x-count")
                .unwrap()
                .parse::<i64>()
                .unwrap(),
        );
    }
    assert_eq!(seen, [1, 2, 3, 4, 5, 6]);
}

#[test]
fn bad_config_names_the_field() {
    let err = PluginHarness::load(probe(), json!({"auth": 7}))
        .err()
        .unwrap();
    assert!(
        err.to_string()
            .contains("invalid pluginConfig: auth: invalid type: integer `7`"),
        "{err}"
    );
}
