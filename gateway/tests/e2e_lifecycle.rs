//! The gateway's life around its requests: hot reload under steady load without a
//! failed request, an invalid change keeping the last good config, and SIGTERM
//! draining in-flight requests before exiting 0.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::yaml::{destination_rule, http_gateway, service, virtual_service};
use common::{eventually, Backend, Gateway, Http};

const HOST: &str = "app.example";

struct Versions {
    v1: Backend,
    v2: Backend,
}

impl Versions {
    async fn start() -> Versions {
        Versions {
            v1: Backend::start("app-v1").await,
            v2: Backend::start("app-v2").await,
        }
    }

    fn base(&self) -> String {
        http_gateway("gw", &["*"])
            + &service(
                "app",
                8080,
                "HTTP",
                &[("v1", self.v1.port()), ("v2", self.v2.port())],
            )
            + &destination_rule("app", &["v1", "v2"], "")
    }
}

/// The app VirtualService: `tag` in `x-config`, weights for v1 and v2.
fn app_vs(tag: &str, v1: u32, v2: u32) -> String {
    virtual_service(
        "app",
        &[HOST],
        &["gw"],
        &format!(
            "  http:
  - headers:
      response:
        set:
          x-config: '{tag}'
    route:
    - destination:
        host: app
        subset: v1
      weight: {v1}
    - destination:
        host: app
        subset: v2
      weight: {v2}
"
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reloads_under_steady_load_fail_no_request() {
    let app = Versions::start().await;
    let base = app.base();
    let gw = Gateway::with_config(&(base.clone() + &app_vs("0", 100, 0)))
        .start()
        .await;
    let http = Http::new();
    let url = gw.url(80, "/");
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicUsize::new(0));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..3 {
        let (http, url, stop, sent) = (http.clone(), url.clone(), stop.clone(), sent.clone());
        workers.spawn(async move {
            let mut failures = Vec::new();
            let mut tags = BTreeSet::new();
            while !stop.load(Ordering::Relaxed) {
                sent.fetch_add(1, Ordering::Relaxed);
                match http.try_request("GET", &url, Some(HOST), &[], "").await {
                    Ok(r) if r.status == 200 => {
                        if let Some(t) = r.headers.get("x-config") {
                            tags.insert(t.to_str().unwrap().to_string());
                        }
                    }
                    Ok(r) => failures.push(format!("{} {}", r.status, r.body)),
                    Err(e) => failures.push(e),
                }
            }
            (failures, tags)
        });
    }
    // Ten rewrites, one a second, alternating the weights.
    for i in 1..=10u32 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let (v1, v2) = if i % 2 == 0 { (100, 0) } else { (0, 100) };
        gw.write_config(&(base.clone() + &app_vs(&i.to_string(), v1, v2)));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    let mut failures = Vec::new();
    let mut tags = BTreeSet::new();
    while let Some(r) = workers.join_next().await {
        let (f, t) = r.unwrap();
        failures.extend(f);
        tags.extend(t);
    }
    let total = sent.load(Ordering::Relaxed);
    assert!(
        failures.is_empty(),
        "{} of {total} failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert!(total > 100, "only {total} requests were sent");
    assert!(tags.len() >= 6, "few reloads were seen applied: {tags:?}");
    assert!(app.v1.requests() > 0 && app.v2.requests() > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_change_keeps_the_last_good_config() {
    let app = Versions::start().await;
    let base = app.base();
    let gw = Gateway::with_config(&(base.clone() + &app_vs("good", 100, 0)))
        .start()
        .await;
    let http = Http::new();
    let url = gw.url(80, "/");
    let check_old = || async {
        for _ in 0..10 {
            let r = http.get(&url, Some(HOST), &[]).await;
            assert_eq!(r.status, 200, "{}", r.body);
            assert_eq!(r.backend(), Some("app-v1"));
            assert_eq!(r.headers["x-config"], "good");
        }
    };
    check_old().await;

    // A file that no longer parses.
    let errors_before = gw.log().matches("error").count();
    gw.write_config(&(base.clone() + &app_vs("broken", 0, 100) + "kind: [unclosed\n"));
    let reported = eventually(Duration::from_secs(10), || async {
        gw.log().matches("error").count() > errors_before
    })
    .await;
    assert!(
        reported,
        "the broken file was never reported:\n{}",
        gw.log()
    );
    check_old().await;

    // A VirtualService that turned invalid (a regex that does not compile).
    let errors_before = gw.log().matches("error").count();
    let invalid = app_vs("invalid", 0, 100).replace(
        "  - headers:\n",
        "  - match:\n    - uri:\n        regex: '(unclosed'\n    headers:\n",
    );
    gw.write_config(&(base.clone() + &invalid));
    let reported = eventually(Duration::from_secs(10), || async {
        gw.log().matches("error").count() > errors_before
    })
    .await;
    assert!(
        reported,
        "the invalid VirtualService was never reported:\n{}",
        gw.log()
    );
    check_old().await;

    // The reload loop is still alive: a valid change applies.
    gw.write_config(&(base + &app_vs("next", 0, 100)));
    let applied = eventually(Duration::from_secs(10), || async {
        let r = http.get(&url, Some(HOST), &[]).await;
        r.backend() == Some("app-v2")
    })
    .await;
    assert!(
        applied,
        "a valid change after invalid ones never applied:\n{}",
        gw.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_an_in_flight_request_then_exits_0() {
    let app = Versions::start().await;
    let mut gw = Gateway::with_config(&(app.base() + &app_vs("x", 100, 0)))
        .start()
        .await;
    let http = Http::new();
    let url = gw.url(80, "/delay/1.5");
    let started = Instant::now();
    let slow = tokio::spawn({
        let http = http.clone();
        async move { http.try_request("GET", &url, Some(HOST), &[], "").await }
    });
    assert!(eventually(Duration::from_secs(5), || async { app.v1.requests() == 1 }).await);
    gw.sigterm();

    // New connections are refused once the listener has closed.
    let addr = gw.addr(80);
    let refused = eventually(Duration::from_secs(5), || async move {
        tokio::net::TcpStream::connect(addr).await.is_err()
    })
    .await;
    assert!(refused, "still accepting after SIGTERM");

    let r = slow.await.unwrap().expect("the in-flight request was cut");
    assert_eq!(r.status, 200);
    assert_eq!(r.backend(), Some("app-v1"));
    let status = gw
        .wait_exit(Duration::from_secs(10))
        .await
        .expect("the gateway did not exit after draining");
    assert_eq!(status.code(), Some(0), "{}", gw.log());
    assert!(started.elapsed() >= Duration::from_millis(1400));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_gives_up_on_requests_after_the_drain_timeout() {
    let app = Versions::start().await;
    let mut gw = Gateway::with_config(&(app.base() + &app_vs("x", 100, 0)))
        .arg("--drain-timeout")
        .arg("1s")
        .start()
        .await;
    let http = Http::new();
    let url = gw.url(80, "/delay/30");
    let slow = tokio::spawn({
        let http = http.clone();
        async move { http.try_request("GET", &url, Some(HOST), &[], "").await }
    });
    assert!(eventually(Duration::from_secs(5), || async { app.v1.requests() == 1 }).await);
    let t = Instant::now();
    gw.sigterm();
    let status = gw
        .wait_exit(Duration::from_secs(10))
        .await
        .expect("the gateway did not exit after its drain timeout");
    let took = t.elapsed();
    assert_eq!(status.code(), Some(0));
    assert!(
        took >= Duration::from_millis(800) && took < Duration::from_secs(8),
        "exited after {took:?}"
    );
    assert!(
        slow.await.unwrap().is_err(),
        "a 30 s request cannot have completed"
    );
}
