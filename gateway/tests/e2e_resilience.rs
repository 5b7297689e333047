//! Istio's resilience tasks through `meshgate gateway`: request timeouts, circuit
//! breaking, retries (configured and Istio's defaults), outlier ejection and return,
//! and an egress-style ServiceEntry with a route timeout.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::yaml::{destination_rule, http_gateway, service, virtual_service};
use common::{eventually, Backend, Gateway, Http};

const HOST: &str = "svc.example";

/// Gateway `gw` (hosts `*`), ServiceEntry `backend` with the given endpoints, an
/// optional DestinationRule policy, and a VirtualService whose single route carries
/// `route_extra` (YAML at rule level, 4 spaces).
fn config(endpoints: &[(&str, u16)], policy: &str, route_extra: &str) -> String {
    let mut yaml = http_gateway("gw", &["*"]) + &service("backend", 8080, "HTTP", endpoints);
    if !policy.is_empty() {
        yaml += &destination_rule("backend", &[], policy);
    }
    yaml + &virtual_service(
        "backend",
        &[HOST],
        &["gw"],
        &format!(
            "  http:
  - route:
    - destination:
        host: backend
{route_extra}"
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn route_timeout_answers_504_ut() {
    let b = Backend::start("slow").await;
    let gw = Gateway::with_config(&config(&[("v1", b.port())], "", "    timeout: 0.5s\n"))
        .start()
        .await;
    let http = Http::new();
    let t = Instant::now();
    let r = http.get(&gw.url(80, "/delay/3"), Some(HOST), &[]).await;
    let took = t.elapsed();
    assert_eq!(r.status, 504, "{}", r.body);
    assert_eq!(r.flag(), Some("UT"));
    assert_eq!(r.body.trim(), "upstream request timeout");
    assert!(
        took >= Duration::from_millis(400) && took < Duration::from_secs(3),
        "took {took:?}"
    );
    // A fast answer is unaffected.
    let r = http.get(&gw.url(80, "/delay/0.05"), Some(HOST), &[]).await;
    assert_eq!(r.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn circuit_breaker_overflows_with_503_uo() {
    let b = Backend::start("httpbin").await;
    let policy = "    connectionPool:
      tcp:
        maxConnections: 1
      http:
        http1MaxPendingRequests: 1
        maxRequestsPerConnection: 1
";
    let gw = Gateway::with_config(&config(&[("v1", b.port())], policy, ""))
        .start()
        .await;
    let http = Http::new();
    let url = gw.url(80, "/get");
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let (http, url) = (http.clone(), url.clone());
        set.spawn(async move { http.get(&url, Some(HOST), &[("x-delay-ms", "300")]).await });
    }
    let (mut ok, mut overflow) = (0, 0);
    while let Some(r) = set.join_next().await {
        let r = r.unwrap();
        match r.status {
            200 => ok += 1,
            503 => {
                assert_eq!(r.flag(), Some("UO"), "{}", r.body);
                assert_eq!(r.headers["x-envoy-overloaded"], "true");
                assert!(r.body.contains("overflow"), "{}", r.body);
                overflow += 1;
            }
            s => panic!("unexpected {s}: {}", r.body),
        }
    }
    assert!(ok >= 1, "nothing got through");
    assert!(overflow >= 1, "no request overflowed ({ok} succeeded)");

    // One request at a time stays within the limits.
    for _ in 0..5 {
        assert_eq!(http.get(&url, Some(HOST), &[]).await.status, 200);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configured_5xx_retries_recover_and_defaults_do_not_retry_503() {
    let b = Backend::start("flaky").await;
    let retrying = config(
        &[("v1", b.port())],
        "",
        "    retries:
      attempts: 2
      retryOn: 5xx
",
    );
    let gw = Gateway::with_config(&retrying).start().await;
    let http = Http::new();
    let url = gw.url(80, "/get");
    b.fail_next(1);
    let r = http.get(&url, Some(HOST), &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(b.requests(), 2, "the first 503 was retried once");
    assert_eq!(
        r.upstream_header("x-envoy-attempt-count").as_deref(),
        Some("2")
    );

    // Three failures in a row exhaust 1 try + 2 retries: the last 503 comes back.
    b.fail_next(3);
    let r = http.get(&url, Some(HOST), &[]).await;
    assert_eq!(r.status, 503);
    assert_eq!(b.requests(), 5);

    // Istio's defaults never retry a 503.
    gw.write_config(&config(
        &[("v1", b.port())],
        "",
        "    headers:\n      response:\n        set:\n          x-config: defaults\n",
    ));
    let applied = eventually(Duration::from_secs(10), || {
        let (http, url) = (http.clone(), url.clone());
        async move {
            let r = http.get(&url, Some(HOST), &[]).await;
            r.headers.get("x-config").is_some_and(|v| v == "defaults")
        }
    })
    .await;
    assert!(applied);
    let before = b.requests();
    b.fail_next(1);
    let r = http.get(&url, Some(HOST), &[]).await;
    assert_eq!(r.status, 503);
    assert_eq!(b.requests() - before, 1, "a 503 is not retried by default");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outlier_detection_ejects_a_failing_endpoint_and_lets_it_back() {
    let good = Backend::start("good").await;
    let bad = Backend::start("bad").await;
    bad.set_status(500);
    let policy = "    loadBalancer:
      simple: ROUND_ROBIN
    outlierDetection:
      consecutive5xxErrors: 2
      interval: 1s
      baseEjectionTime: 2s
      maxEjectionPercent: 100
";
    let gw = Gateway::with_config(&config(
        &[("v1", good.port()), ("v1", bad.port())],
        policy,
        "",
    ))
    .start()
    .await;
    let http = Http::new();
    let url = gw.url(80, "/get");
    // Round robin reaches the bad endpoint until its second consecutive 5xx ejects it.
    let mut failures = 0;
    for _ in 0..10 {
        if http.get(&url, Some(HOST), &[]).await.status == 500 {
            failures += 1;
        }
        if failures == 2 {
            break;
        }
    }
    assert_eq!(failures, 2);
    let ejected_at = Instant::now();
    let bad_seen = bad.requests();
    for _ in 0..20 {
        let r = http.get(&url, Some(HOST), &[]).await;
        assert_eq!(r.status, 200, "an ejected endpoint got traffic");
        assert_eq!(r.backend(), Some("good"));
    }
    assert_eq!(bad.requests(), bad_seen);
    assert!(
        ejected_at.elapsed() < Duration::from_secs(2),
        "test too slow to prove ejection"
    );

    // Healthy again: after the ejection time it takes traffic.
    bad.set_status(0);
    let back = eventually(Duration::from_secs(10), || {
        let (http, url) = (http.clone(), url.clone());
        async move { http.get(&url, Some(HOST), &[]).await.backend() == Some("bad") }
    })
    .await;
    assert!(back, "the endpoint never came back");
    assert!(
        ejected_at.elapsed() >= Duration::from_millis(1500),
        "came back after {:?}",
        ejected_at.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_entry_with_route_timeout_answers_504_after_3s() {
    let slow = Backend::start("external").await;
    let yaml = http_gateway("gw", &["*"])
        + &format!(
            "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: httpbin-ext
spec:
  hosts:
  - httpbin.external.example
  ports:
  - number: 80
    name: http
    protocol: HTTP
  resolution: STATIC
  location: MESH_EXTERNAL
  endpoints:
  - address: 127.0.0.1
    ports:
      http: {}
---
",
            slow.port()
        )
        + &virtual_service(
            "httpbin-ext",
            &["httpbin.external.example"],
            &["gw"],
            "  http:
  - timeout: 3s
    route:
    - destination:
        host: httpbin.external.example
      weight: 100
",
        );
    let gw = Gateway::with_config(&yaml).start().await;
    let http = Http::new();
    let host = Some("httpbin.external.example");
    let r = http.get(&gw.url(80, "/delay/1"), host, &[]).await;
    assert_eq!(r.status, 200);
    let t = Instant::now();
    let r = http.get(&gw.url(80, "/delay/5"), host, &[]).await;
    let took = t.elapsed();
    assert_eq!(r.status, 504);
    assert_eq!(r.flag(), Some("UT"));
    assert!(
        took >= Duration::from_millis(2800) && took < Duration::from_secs(5),
        "took {took:?}"
    );
}
