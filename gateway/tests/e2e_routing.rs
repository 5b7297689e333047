//! Istio's traffic management tasks that route HTTP through `meshgate gateway`:
//! request routing, fault injection, traffic shifting, mirroring and the ingress
//! gateway task, plus the headers a proxy adds and removes on the way.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::yaml::{destination_rule, http_gateway, service, virtual_service};
use common::{eventually, share, Backend, Gateway, Http};

const BOOKINFO: &str = "bookinfo.example";

/// reviews v1, v2, v3 behind a ServiceEntry with version subsets.
struct Reviews {
    v1: Backend,
    v2: Backend,
    v3: Backend,
}

impl Reviews {
    async fn start() -> Reviews {
        Reviews {
            v1: Backend::start("reviews-v1").await,
            v2: Backend::start("reviews-v2").await,
            v3: Backend::start("reviews-v3").await,
        }
    }

    fn yaml(&self) -> String {
        http_gateway("bookinfo-gateway", &["*"])
            + &service(
                "reviews",
                9080,
                "HTTP",
                &[
                    ("v1", self.v1.port()),
                    ("v2", self.v2.port()),
                    ("v3", self.v3.port()),
                ],
            )
            + &destination_rule("reviews", &["v1", "v2", "v3"], "")
    }
}

fn reviews_vs(rules: &str) -> String {
    virtual_service("reviews", &[BOOKINFO], &["bookinfo-gateway"], rules)
}

/// Sends `n` requests (4 at a time) and counts answers per backend.
async fn tally(
    http: &Http,
    url: &str,
    host: &str,
    n: usize,
) -> std::collections::BTreeMap<String, usize> {
    let mut counts = std::collections::BTreeMap::new();
    let mut left = n;
    while left > 0 {
        let batch = left.min(4);
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..batch {
            let (http, url, host) = (http.clone(), url.to_string(), host.to_string());
            set.spawn(async move { http.get(&url, Some(&host), &[]).await });
        }
        while let Some(r) = set.join_next().await {
            let r = r.unwrap();
            assert_eq!(r.status, 200, "{}", r.body);
            *counts
                .entry(r.backend().unwrap_or("?").to_string())
                .or_insert(0) += 1;
        }
        left -= batch;
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_routing_sends_jason_to_v2_and_everyone_else_to_v1() {
    let reviews = Reviews::start().await;
    let yaml = reviews.yaml()
        + &reviews_vs(
            "  http:
  - match:
    - headers:
        end-user:
          exact: jason
    route:
    - destination:
        host: reviews
        subset: v2
  - route:
    - destination:
        host: reviews
        subset: v1
",
        );
    let gw = Gateway::with_config(&yaml).start().await;
    let http = Http::new();
    let url = gw.url(80, "/reviews/0");
    for _ in 0..10 {
        let r = http.get(&url, Some(BOOKINFO), &[]).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.backend(), Some("reviews-v1"));
        let r = http
            .get(&url, Some(BOOKINFO), &[("end-user", "jason")])
            .await;
        assert_eq!(r.backend(), Some("reviews-v2"));
        let r = http
            .get(&url, Some(BOOKINFO), &[("end-user", "alice")])
            .await;
        assert_eq!(r.backend(), Some("reviews-v1"));
    }
    assert_eq!(reviews.v3.requests(), 0);
    // Host matching ignores case and the port.
    let r = http.get(&url, Some("BookInfo.Example:80"), &[]).await;
    assert_eq!(r.backend(), Some("reviews-v1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_injection_delays_one_user_and_aborts_with_fi() {
    let reviews = Reviews::start().await;
    let yaml = reviews.yaml()
        + &reviews_vs(
            "  http:
  - match:
    - headers:
        end-user:
          exact: jason
    fault:
      delay:
        fixedDelay: 1s
        percentage:
          value: 100.0
    route:
    - destination:
        host: reviews
        subset: v2
  - match:
    - headers:
        end-user:
          exact: bob
    fault:
      abort:
        httpStatus: 500
        percentage:
          value: 100.0
    route:
    - destination:
        host: reviews
        subset: v3
  - route:
    - destination:
        host: reviews
        subset: v1
",
        );
    let gw = Gateway::with_config(&yaml).start().await;
    let http = Http::new();
    let url = gw.url(80, "/ratings/0");

    let t = Instant::now();
    let r = http.get(&url, Some(BOOKINFO), &[]).await;
    assert_eq!(r.backend(), Some("reviews-v1"));
    assert!(
        t.elapsed() < Duration::from_millis(900),
        "{:?}",
        t.elapsed()
    );

    let t = Instant::now();
    let r = http
        .get(&url, Some(BOOKINFO), &[("end-user", "jason")])
        .await;
    let took = t.elapsed();
    assert_eq!(r.status, 200);
    assert_eq!(r.backend(), Some("reviews-v2"));
    assert!(
        took >= Duration::from_millis(950) && took < Duration::from_secs(5),
        "delayed request took {took:?}"
    );

    for _ in 0..5 {
        let r = http.get(&url, Some(BOOKINFO), &[("end-user", "bob")]).await;
        assert_eq!(r.status, 500);
        assert_eq!(r.flag(), Some("FI"));
        assert_eq!(r.body.trim(), "fault filter abort");
    }
    assert_eq!(
        reviews.v3.requests(),
        0,
        "an aborted request never reaches the upstream"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abort_without_match_makes_later_rules_unreachable() {
    let reviews = Reviews::start().await;
    let yaml = reviews.yaml()
        + &reviews_vs(
            "  http:
  - fault:
      abort:
        httpStatus: 503
        percentage:
          value: 100
    route:
    - destination:
        host: reviews
        subset: v1
  - match:
    - headers:
        end-user:
          exact: jason
    route:
    - destination:
        host: reviews
        subset: v2
",
        );
    let gw = Gateway::with_config(&yaml).start().await;
    let http = Http::new();
    for user in ["jason", "alice"] {
        let r = http
            .get(&gw.url(80, "/"), Some(BOOKINFO), &[("end-user", user)])
            .await;
        assert_eq!(r.status, 503);
        assert_eq!(r.flag(), Some("FI"));
    }
    assert_eq!(reviews.v1.requests() + reviews.v2.requests(), 0);
}

fn shifting_vs(tag: &str, weights: &[(&str, u32)]) -> String {
    let mut route = String::new();
    for (subset, w) in weights {
        route.push_str(&format!(
            "    - destination:
        host: reviews
        subset: {subset}
      weight: {w}
"
        ));
    }
    reviews_vs(&format!(
        "  http:
  - headers:
      response:
        set:
          x-config: {tag}
    route:
{route}"
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traffic_shifting_50_50_then_80_20_then_100() {
    let reviews = Reviews::start().await;
    let base = reviews.yaml();
    let gw = Gateway::with_config(&(base.clone() + &shifting_vs("a", &[("v1", 50), ("v3", 50)])))
        .start()
        .await;
    let http = Http::new();
    let url = gw.url(80, "/reviews/0");
    let counts = tally(&http, &url, BOOKINFO, 1000).await;
    let v1 = share(counts["reviews-v1"], 1000);
    assert!((v1 - 0.5).abs() <= 0.05, "50/50 gave {counts:?}");

    let applied = |tag: &'static str| {
        let (http, url) = (http.clone(), url.clone());
        move || {
            let (http, url) = (http.clone(), url.clone());
            async move {
                let r = http.get(&url, Some(BOOKINFO), &[]).await;
                r.headers.get("x-config").is_some_and(|v| v == tag)
            }
        }
    };
    gw.write_config(&(base.clone() + &shifting_vs("b", &[("v1", 80), ("v3", 20)])));
    assert!(eventually(Duration::from_secs(10), applied("b")).await);
    let counts = tally(&http, &url, BOOKINFO, 1000).await;
    let v1 = share(counts["reviews-v1"], 1000);
    assert!((v1 - 0.8).abs() <= 0.05, "80/20 gave {counts:?}");

    gw.write_config(&(base + &shifting_vs("c", &[("v3", 100)])));
    assert!(eventually(Duration::from_secs(10), applied("c")).await);
    let counts = tally(&http, &url, BOOKINFO, 100).await;
    assert_eq!(counts.get("reviews-v3"), Some(&100), "{counts:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mirroring_copies_to_v2_with_shadow_host_and_answers_from_v1() {
    let v1 = Backend::start("httpbin-v1").await;
    let v2 = Backend::start("httpbin-v2").await;
    let yaml = http_gateway("gw", &["*"])
        + &service(
            "httpbin",
            8000,
            "HTTP",
            &[("v1", v1.port()), ("v2", v2.port())],
        )
        + &destination_rule("httpbin", &["v1", "v2"], "")
        + &virtual_service(
            "httpbin",
            &["httpbin.example"],
            &["gw"],
            "  http:
  - route:
    - destination:
        host: httpbin
        subset: v1
      weight: 100
    mirror:
      host: httpbin
      subset: v2
    mirrorPercentage:
      value: 100.0
",
        );
    let gw = Gateway::with_config(&yaml).start().await;
    let http = Http::new();
    for _ in 0..5 {
        let r = http
            .get(&gw.url(80, "/headers"), Some("httpbin.example"), &[])
            .await;
        assert_eq!(r.status, 200);
        assert_eq!(r.backend(), Some("httpbin-v1"));
        assert_eq!(r.json()["host"], "httpbin.example");
    }
    assert!(eventually(Duration::from_secs(5), || async { v2.requests() == 5 }).await);
    assert_eq!(v1.requests(), 5);
    assert!(
        v2.hosts().iter().all(|h| h == "httpbin.example-shadow"),
        "{:?}",
        v2.hosts()
    );
}

fn httpbin_gateway(hosts: &str) -> String {
    format!(
        "apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: httpbin-gateway
spec:
  selector:
    istio: ingressgateway
  servers:
  - port:
      number: 80
      name: http
      protocol: HTTP
    hosts:
    - \"{hosts}\"
---
"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingress_gateway_task() {
    let httpbin = Backend::start("httpbin").await;
    let svc = service("httpbin", 8000, "HTTP", &[("v1", httpbin.port())]);
    let first = httpbin_gateway("httpbin.example.com")
        + &svc
        + &virtual_service(
            "httpbin",
            &["httpbin.example.com"],
            &["httpbin-gateway"],
            "  http:
  - match:
    - uri:
        prefix: /status
    - uri:
        prefix: /delay
    route:
    - destination:
        port:
          number: 8000
        host: httpbin
",
        );
    let gw = Gateway::with_config(&first).start().await;
    let http = Http::new();
    let host = Some("httpbin.example.com");
    let r = http.get(&gw.url(80, "/status/200"), host, &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.backend(), Some("httpbin"));
    let r = http.get(&gw.url(80, "/delay/0.2"), host, &[]).await;
    assert_eq!(r.status, 200);
    let r = http.get(&gw.url(80, "/headers"), host, &[]).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.flag(), Some("NR"));
    assert!(r.body.contains("no route"), "{}", r.body);
    assert!(r.body.contains("httpbin.example.com"), "{}", r.body);
    // A Host the gateway does not serve says which hosts it does.
    let r = http.get(&gw.url(80, "/status/200"), None, &[]).await;
    assert_eq!(r.status, 404);
    assert!(r.body.contains("httpbin.example.com"), "{}", r.body);

    let second = httpbin_gateway("*")
        + &svc
        + &virtual_service(
            "httpbin",
            &["*"],
            &["httpbin-gateway"],
            "  http:
  - match:
    - uri:
        prefix: /headers
    route:
    - destination:
        port:
          number: 8000
        host: httpbin
",
        );
    gw.write_config(&second);
    let url = gw.url(80, "/headers");
    let applied = eventually(Duration::from_secs(10), || {
        let (http, url) = (http.clone(), url.clone());
        async move { http.get(&url, None, &[]).await.status == 200 }
    })
    .await;
    assert!(applied, "hosts '*' never applied:\n{}", gw.log());
    let r = http.get(&url, None, &[]).await;
    assert_eq!(r.backend(), Some("httpbin"));
    assert_eq!(r.json()["path"], "/headers");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarding_headers_added_and_hop_by_hop_headers_removed() {
    let b = Backend::start("echo").await;
    let yaml = http_gateway("gw", &["*"])
        + &service("echo", 8080, "HTTP", &[("v1", b.port())])
        + &virtual_service(
            "echo",
            &["*"],
            &["gw"],
            "  http:
  - route:
    - destination:
        host: echo
",
        );
    let gw = Gateway::with_config(&yaml).start().await;
    let http = Http::new();
    let r = http
        .get(
            &gw.url(80, "/anything"),
            Some("echo.example"),
            &[
                ("connection", "keep-alive, x-secret"),
                ("keep-alive", "timeout=5"),
                ("x-secret", "1"),
                ("proxy-connection", "keep-alive"),
                ("x-kept", "yes"),
            ],
        )
        .await;
    assert_eq!(r.status, 200);
    let seen = r.json()["headers"].clone();
    assert_eq!(seen["x-kept"], "yes");
    for gone in ["x-secret", "keep-alive", "proxy-connection"] {
        assert!(
            seen.get(gone).is_none(),
            "{gone} reached the upstream: {seen}"
        );
    }
    assert_eq!(seen["x-forwarded-for"], "127.0.0.1");
    assert_eq!(seen["x-forwarded-proto"], "http");
    let id = seen["x-request-id"].as_str().unwrap();
    assert_eq!(id.len(), 36, "{id}");
    assert_eq!(seen["host"], "echo.example");

    // An incoming x-forwarded-for is extended, an incoming x-request-id kept.
    let r = http
        .get(
            &gw.url(80, "/"),
            Some("echo.example"),
            &[
                ("x-forwarded-for", "203.0.113.7"),
                ("x-request-id", "abc-123"),
            ],
        )
        .await;
    assert_eq!(
        r.upstream_header("x-forwarded-for").unwrap(),
        "203.0.113.7, 127.0.0.1"
    );
    assert_eq!(r.upstream_header("x-request-id").unwrap(), "abc-123");
}
