//! State plugins share across instances and time: shared data with CAS, metrics,
//! ticks, queues, and HTTP calls to a real server on loopback.

#![allow(clippy::unwrap_used)]

mod wasm_support;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::{HeaderMap, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use meshgate::wasm::{
    plugin_metrics, CalloutError, CalloutResponse, FailStrategy, HttpCallout, MetricValue,
    PluginChain,
};
use wasm_support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_count_exactly_once_across_instances() {
    let chain = chain(vec![spec("t/counter", "counter")]);
    let mut tasks = Vec::new();
    for i in 0..40 {
        let chain = chain.clone();
        tasks.push(tokio::spawn(async move {
            let (stream, v, h, _) = request(&chain, &[], &format!("/p{}", "x".repeat(i % 4))).await;
            assert!(v.is_continue());
            // Hold the instance a moment so several instances are in use at once.
            tokio::time::sleep(Duration::from_millis(5)).await;
            drop(stream);
            get(&h, "x-count").unwrap().parse::<u64>().unwrap()
        }));
    }
    let mut seen = HashSet::new();
    for t in tasks {
        assert!(
            seen.insert(t.await.unwrap()),
            "a count was handed out twice"
        );
    }
    assert_eq!(seen, (1..=40).collect::<HashSet<u64>>());
    assert!(
        chain.idle_instances()[0] > 1,
        "several instances served the load"
    );

    let metrics = plugin_metrics();
    let find = |n: &str| {
        metrics
            .iter()
            .find(|m| m.name == n)
            .unwrap_or_else(|| panic!("{n} missing"))
            .value
            .clone()
    };
    assert_eq!(
        find("wasmtest_requests_total"),
        MetricValue::Counter(40),
        "summed over instances"
    );
    assert!(matches!(
        find("wasmtest_last_path_length"),
        MetricValue::Gauge(2..=5)
    ));
    let MetricValue::Histogram { count, sum, .. } = find("wasmtest_path_length") else {
        panic!()
    };
    assert_eq!(count, 40);
    assert_eq!(sum, (0..40).map(|i| 2 + (i % 4) as u64).sum::<u64>());
}

#[tokio::test]
async fn ticks_fire_and_queues_deliver_to_the_root_context() {
    let chain = chain(vec![spec("t/tick", "tick")]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_s, v, h, _) = request(&chain, &[], "/first").await;
    assert!(v.is_continue());
    let ticks: u64 = get(&h, "x-ticks").unwrap().parse().unwrap();
    assert!(ticks >= 2, "20 ms ticks for 300 ms gave only {ticks}");
    drop(_s);
    // The enqueued path reaches on_queue_ready, which stores it for later requests.
    let mut last = String::new();
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let (_s, _, h, _) = request(&chain, &[], "/poll").await;
        last = get(&h, "x-last-event").unwrap_or_default().to_string();
        if last == "/first" || last == "/poll" {
            break;
        }
    }
    assert!(
        last == "/first" || last == "/poll",
        "queue item never delivered: {last:?}"
    );
}

/// An auth server on loopback: 200 + `x-user` for `Bearer good`, 401 otherwise,
/// and a 5 s stall for `Bearer slow`.
async fn auth_server() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let svc = service_fn(|req: http::Request<hyper::body::Incoming>| async move {
                    let token = req
                        .headers()
                        .get("x-token")
                        .map(|v| v.to_str().unwrap_or("").to_string());
                    assert_eq!(req.uri().path(), "/check");
                    let resp = match token.as_deref() {
                        Some("Bearer good") => http::Response::builder()
                            .header("x-user", "alice")
                            .body(Full::new(Bytes::new())),
                        Some("Bearer slow") => {
                            tokio::time::sleep(Duration::from_secs(5)).await;
                            http::Response::builder().body(Full::new(Bytes::new()))
                        }
                        _ => http::Response::builder()
                            .status(401)
                            .body(Full::new(Bytes::from_static(b"bad token"))),
                    };
                    Ok::<_, http::Error>(resp.unwrap())
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), svc)
                    .await;
            });
        }
    });
    addr
}

/// Routes the `auth` cluster to a real HTTP/1.1 server.
struct LoopbackCallout {
    auth: SocketAddr,
}

impl HttpCallout for LoopbackCallout {
    fn has_upstream(&self, upstream: &str) -> bool {
        upstream == "auth"
    }

    fn call(
        &self,
        _upstream: &str,
        request: http::Request<Bytes>,
        _trailers: HeaderMap,
        _timeout: Duration,
    ) -> BoxFuture<'static, Result<CalloutResponse, CalloutError>> {
        let addr = self.auth;
        Box::pin(async move {
            let tcp = tokio::net::TcpStream::connect(addr)
                .await
                .map_err(|e| CalloutError::Failed(e.to_string()))?;
            let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
                .await
                .map_err(|e| CalloutError::Failed(e.to_string()))?;
            tokio::spawn(conn);
            let (parts, body) = request.into_parts();
            let mut req = http::Request::from_parts(parts, Full::new(body));
            *req.uri_mut() = req
                .uri()
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("/")
                .parse()
                .unwrap();
            let resp = send
                .send_request(req)
                .await
                .map_err(|e| CalloutError::Failed(e.to_string()))?;
            let (parts, body) = resp.into_parts();
            let body = body
                .collect()
                .await
                .map_err(|e| CalloutError::Failed(e.to_string()))?
                .to_bytes();
            Ok(CalloutResponse {
                status: parts.status,
                headers: parts.headers,
                body,
                trailers: HeaderMap::new(),
            })
        })
    }
}

#[tokio::test]
async fn http_callout_decides_while_the_request_waits() {
    let addr = auth_server().await;
    let chain = PluginChain::new(
        vec![spec_with("t/auth", "callout", "", FailStrategy::FailClose)],
        Arc::new(LoopbackCallout { auth: addr }),
    )
    .unwrap();

    let (_s, v, h, _) = request(&chain, &[("authorization", "Bearer good")], "/").await;
    assert!(v.is_continue(), "{v:?}");
    assert_eq!(get(&h, "x-user"), Some("alice"), "set from the auth answer");

    let (_s, v, _, _) = request(&chain, &[("authorization", "Bearer bad")], "/").await;
    let r = expect_local(v);
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(&r.body[..], b"bad token");
    assert_eq!(get(&r.headers, "x-auth-status"), Some("401"));

    // The plugin's own timeout (300 ms) ends the call: the plugin sees a failed call.
    let started = std::time::Instant::now();
    let (_s, v, _, _) = request(
        &chain,
        &[
            ("authorization", "Bearer slow"),
            ("x-auth-timeout-ms", "300"),
        ],
        "/",
    )
    .await;
    let r = expect_local(v);
    assert_eq!(get(&r.headers, "x-auth-status"), Some("none"));
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_secs(3),
        "{took:?}"
    );
}

#[tokio::test]
async fn http_call_to_an_unknown_cluster_is_refused_at_once() {
    let chain = chain(vec![spec("t/auth", "callout")]);
    let (_s, v, _, _) = request(&chain, &[], "/").await;
    let r = expect_local(v);
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(&r.body[..], b"auth cluster unknown");
}
