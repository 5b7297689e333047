//! Plugins built with the proxy-wasm Rust SDK editing requests and responses through
//! the chain API: headers and pseudo-headers, properties, local replies, bodies and
//! execution order.

#![allow(clippy::unwrap_used)]

mod wasm_support;

use std::collections::BTreeMap;

use bytes::Bytes;
use http::StatusCode;
use meshgate::wasm::{FailStrategy, Phase, PluginChain, RequestLine, StreamInfo, Verdict};
use wasm_support::*;

#[tokio::test]
async fn header_plugin_edits_headers_and_pseudo_headers_both_ways() {
    let chain = chain(vec![spec_with(
        "t/add",
        "header_add",
        "\"hello\"",
        FailStrategy::FailClose,
    )]);
    let (mut stream, v, h, line) = request(
        &chain,
        &[
            ("x-set-path", "/rewritten?q=1"),
            ("x-remove-me", "1"),
            ("user-agent", "t"),
        ],
        "/orig",
    )
    .await;
    assert!(v.is_continue(), "{v:?}");
    assert_eq!(get(&h, "x-wasm-request"), Some("hello"));
    assert_eq!(get(&h, "x-seen"), Some("GET example.com /rewritten?q=1"));
    assert_eq!(line.path, "/rewritten?q=1", "the plugin rewrote :path");
    assert!(h.get("x-remove-me").is_none());
    // 4 pseudo-headers + x-set-path, user-agent, x-wasm-request, x-seen.
    assert_eq!(get(&h, "x-header-count"), Some("8"));

    let (v, h, status) = response(&mut stream, &[("x-set-status", "201")], 200).await;
    assert!(v.is_continue());
    assert_eq!(status, StatusCode::CREATED, "the plugin rewrote :status");
    assert_eq!(get(&h, "x-upstream-status"), Some("200"));
    assert_eq!(get(&h, "x-wasm-response"), Some("hello"));
    assert_eq!(
        get(&h, "x-request-path"),
        Some("/rewritten?q=1"),
        "request headers readable in response"
    );
}

#[tokio::test]
async fn properties_describe_plugin_node_and_connection() {
    let mut s = spec_with(
        "team-a/props",
        "header_add",
        "\"v\"",
        FailStrategy::FailClose,
    );
    s.root_id = "my_root".into();
    let mut meta = BTreeMap::new();
    meta.insert("NAMESPACE".to_string(), serde_json::json!("team-a"));
    meta.insert("LABELS".to_string(), serde_json::json!({"app": "web"}));
    s.node_metadata = meta;
    let chain = chain(vec![s]);
    let info = StreamInfo {
        source: Some("127.0.0.1:4567".parse().unwrap()),
        mtls: true,
        sni: Some("api.example.com".into()),
        ..Default::default()
    };
    let mut stream = chain.new_stream(info);
    let mut h = headers(&[("x-want-props", "1")]);
    let mut line = RequestLine::new("GET", "https", "api.example.com", "/a/b?x=1");
    assert!(stream
        .on_request_headers(&mut h, &mut line, true)
        .await
        .is_continue());
    assert_eq!(
        get(&h, "x-props"),
        Some(
            "name=team-a/props root=my_root ns=team-a app=web src=127.0.0.1:4567 port=4567 \
             url_path=/a/b mtls=Some([1]) sni=api.example.com"
        )
    );
}

#[tokio::test]
async fn deny_plugin_answers_locally_and_later_plugins_do_not_run() {
    let mut first = spec("t/deny", "deny");
    first.phase = Phase::Authn;
    let chain = chain(vec![
        spec_with("t/add", "header_add", "\"x\"", FailStrategy::FailClose),
        first,
    ]);
    assert_eq!(
        chain.plugin_names(),
        ["t/deny", "t/add"],
        "AUTHN runs before unspecified"
    );

    let (_s, v, h, _) = request(&chain, &[("x-deny", "nope")], "/").await;
    let r = expect_local(v);
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(&r.body[..], b"denied by plugin");
    assert_eq!(get(&r.headers, "x-denied-by"), Some("wasm"));
    assert_eq!(get(&r.headers, "x-reason"), Some("nope"));
    assert!(
        h.get("x-wasm-request").is_none(),
        "the later plugin never ran"
    );

    let (_s, v, h, _) = request(&chain, &[], "/").await;
    assert!(v.is_continue());
    assert_eq!(get(&h, "x-deny-checked"), Some("1"));
    assert_eq!(get(&h, "x-wasm-request"), Some("x"));
}

#[tokio::test]
async fn order_follows_phase_then_priority_and_responses_run_in_reverse() {
    let mk = |name: &str, value: &str, phase, priority| {
        let mut s = spec_with(
            name,
            "header_add",
            &format!("\"{value}\""),
            FailStrategy::FailClose,
        );
        s.phase = phase;
        s.priority = priority;
        s
    };
    let chain = chain(vec![
        mk("t/stats", "stats", Phase::Stats, 0),
        mk("t/low", "authz-low", Phase::Authz, 1),
        mk("t/none", "unspecified", Phase::Unspecified, 100),
        mk("t/high", "authz-high", Phase::Authz, 10),
        mk("t/authn", "authn", Phase::Authn, -5),
    ]);
    let (mut stream, v, h, _) = request(&chain, &[], "/").await;
    assert!(v.is_continue());
    let order: Vec<_> = h
        .get_all("x-wasm-request")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(
        order,
        ["authn", "authz-high", "authz-low", "stats", "unspecified"]
    );
    let (_, h, _) = response(&mut stream, &[], 200).await;
    let order: Vec<_> = h
        .get_all("x-wasm-response")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(
        order,
        ["unspecified", "stats", "authz-low", "authz-high", "authn"]
    );
}

#[tokio::test]
async fn body_plugin_holds_headers_until_it_has_read_the_whole_body() {
    let chain = chain(vec![
        spec("t/body", "body"),
        spec_with("t/add", "header_add", "\"after\"", FailStrategy::FailClose),
    ]);
    let mut stream = chain.new_stream(StreamInfo::default());
    let mut h = headers(&[("content-type", "text/plain")]);
    let mut line = RequestLine::new("POST", "http", "example.com", "/upload");
    let v = stream.on_request_headers(&mut h, &mut line, false).await;
    assert!(matches!(v, Verdict::Pause), "{v:?}");
    assert!(h.is_empty(), "the stream holds the head");
    assert!(stream.take_request_head().is_none(), "not released yet");

    let mut chunk = Bytes::from_static(b"hello ");
    assert!(matches!(
        stream.on_request_body(&mut chunk, false).await,
        Verdict::Pause
    ));
    assert!(chunk.is_empty(), "the chunk was buffered");
    let mut chunk = Bytes::from_static(b"world");
    let v = stream.on_request_body(&mut chunk, true).await;
    assert!(v.is_continue(), "{v:?}");
    assert_eq!(&chunk[..], b"HELLO WORLD", "whole body, rewritten");
    let (h, line) = stream.take_request_head().expect("head released");
    assert_eq!(
        get(&h, "x-body-len"),
        Some("11"),
        "header set after reading the body"
    );
    assert_eq!(
        get(&h, "x-wasm-request"),
        Some("after"),
        "later plugin saw the headers after release"
    );
    assert_eq!(get(&h, "content-type"), Some("text/plain"));
    assert_eq!(line.path, "/upload");

    let (_, _, _) = response(&mut stream, &[], 200).await;
    let mut body = Bytes::from_static(b"resp");
    assert!(stream.on_response_body(&mut body, true).await.is_continue());
    assert_eq!(&body[..], b"resp!");

    // A rejected body ends the stream with the plugin's answer.
    let mut stream = chain.new_stream(StreamInfo::default());
    let mut h = headers(&[]);
    let mut line = RequestLine::new("POST", "http", "example.com", "/upload");
    assert!(matches!(
        stream.on_request_headers(&mut h, &mut line, false).await,
        Verdict::Pause
    ));
    let mut chunk = Bytes::from_static(b"this is forbidden");
    let r = expect_local(stream.on_request_body(&mut chunk, true).await);
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(&r.body[..], b"body rejected");
}

#[tokio::test]
async fn plugins_load_from_a_wasmplugin_url_with_sha256() {
    let path = wasm_support::plugins::wasm_path("header_add");
    let bytes = std::fs::read(&path).unwrap();
    let sha = meshgate::wasm::sha256_hex(&bytes);
    let url = format!("file://{}", path.display());
    assert_eq!(
        &*meshgate::wasm::fetch_module(&url, Some(&sha)).unwrap(),
        &bytes[..]
    );
    let err = meshgate::wasm::fetch_module(&url, Some(&"ab".repeat(32))).unwrap_err();
    assert!(err.contains("sha256 mismatch"), "{err}");
}

#[tokio::test]
async fn invalid_modules_are_reported_by_plugin_name() {
    let bad = meshgate::wasm::PluginSpec::new("t/garbage", b"not wasm".to_vec());
    let err =
        PluginChain::new(vec![bad], std::sync::Arc::new(meshgate::wasm::NoCallouts)).unwrap_err();
    assert_eq!(err[0].0, "t/garbage");
    assert!(err[0].1.contains("not a valid wasm module"), "{}", err[0].1);
}

/// The proxy keeps a stream inside a hyper service future: the stream, the chain and
/// every callback's future must be `Send`.
#[test]
fn streams_and_callback_futures_are_send() {
    fn assert_send_sync<T: Send + Sync>() {}
    fn assert_send<T: Send>() {}
    assert_send_sync::<PluginChain>();
    assert_send::<meshgate::wasm::Stream>();
    fn request_future<'a>(
        s: &'a mut meshgate::wasm::Stream,
        h: &'a mut http::HeaderMap,
        l: &'a mut RequestLine,
    ) -> impl std::future::Future<Output = Verdict> + Send + 'a {
        s.on_request_headers(h, l, false)
    }
    fn body_future<'a>(
        s: &'a mut meshgate::wasm::Stream,
        b: &'a mut Bytes,
    ) -> impl std::future::Future<Output = Verdict> + Send + 'a {
        s.on_response_body(b, false)
    }
    let _ = (request_future, body_future);
}
