//! Outlier detection: consecutive 5xx and gateway errors eject an endpoint for
//! baseEjectionTime × ejections, within maxEjectionPercent; all ejected → UH unless
//! minHealthPercent puts the cluster in panic mode.

use std::time::Duration;

use meshgate::router::snapshot::{
    ClusterPolicy, LoadBalancerPolicy, OutlierPolicy, UpstreamProtocol,
};

use crate::support::*;

fn outlier(consecutive_5xx: u32, gateway: u32, base_ms: u64, max_percent: u32) -> ClusterPolicy {
    ClusterPolicy {
        lb: LoadBalancerPolicy::RoundRobin,
        outlier: Some(OutlierPolicy {
            consecutive_5xx,
            consecutive_gateway_errors: gateway,
            interval: Duration::from_secs(10),
            base_ejection_time: Duration::from_millis(base_ms),
            max_ejection_percent: max_percent,
            min_health_percent: 0,
        }),
        ..Default::default()
    }
}

/// The same counters reach the Prometheus exposition as `meshgate_*` series.
#[tokio::test]
async fn ejections_and_pool_usage_are_exported_as_metrics() {
    let bad = Backend::start().await;
    let good = Backend::start().await;
    bad.set_status(503);
    let c = http1(&[bad.addr, good.addr], outlier(2, 0, 60_000, 100));
    let unused = cluster(
        "outbound|80||unused.default.svc.cluster.local",
        vec![endpoint(good.addr.to_string())],
        UpstreamProtocol::Http1,
        ClusterPolicy::default(),
    );
    let mgr = std::sync::Arc::new(manager_with(&[&c, &unused]));
    let metrics = meshgate::telemetry::Metrics::new("test");
    metrics.add_proxy_source(mgr.clone());
    for _ in 0..6 {
        get(&mgr, &c, "/").await.unwrap();
    }
    let text = metrics.encode_prometheus_text();
    let name = c.name.to_string();
    for series in [
        format!("meshgate_outlier_ejections_total{{cluster=\"{name}\"}} 1\n"),
        format!("meshgate_outlier_ejections_active{{cluster=\"{name}\"}} 1\n"),
        format!("meshgate_upstream_connections_total{{cluster=\"{name}\"}} 2\n"),
        format!("meshgate_upstream_connections_active{{cluster=\"{name}\"}} 2\n"),
        format!("meshgate_upstream_requests_active{{cluster=\"{name}\"}} 0\n"),
        format!(
            "meshgate_upstream_overflow_total{{cluster=\"{name}\",limit=\"max_connections\"}} 0\n"
        ),
    ] {
        assert!(text.contains(&series), "missing {series:?} in:\n{text}");
    }
    assert!(
        text.contains("# TYPE meshgate_outlier_ejections_total counter"),
        "{text}"
    );
    assert!(
        !text.contains(&unused.name.to_string()),
        "a cluster no request reached stays out of the scrape"
    );
}

#[tokio::test]
async fn consecutive_5xx_ejects_an_endpoint_until_the_base_time_passes() {
    let bad = Backend::start().await;
    let good = Backend::start().await;
    bad.set_status(503);
    let c = http1(&[bad.addr, good.addr], outlier(3, 0, 400, 100));
    let mgr = manager_with(&[&c]);
    let bad_addr = bad.addr.to_string();
    for _ in 0..6 {
        get(&mgr, &c, "/").await.unwrap();
    }
    assert_eq!(bad.requests(), 3);
    assert_eq!(
        host_stat(&mgr, &bad_addr, "health_flags"),
        "/failed_outlier_check"
    );
    assert_eq!(host_stat(&mgr, &bad_addr, "outlier_ejections"), "1");
    assert!(mgr
        .clusters_text()
        .contains("::outlier_detection.ejections_active::1\n"));
    for _ in 0..10 {
        assert_eq!(get(&mgr, &c, "/").await.unwrap().status, 200);
    }
    assert_eq!(bad.requests(), 3, "an ejected endpoint gets no traffic");

    bad.set_status(200);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(host_stat(&mgr, &bad_addr, "health_flags"), "healthy");
    for _ in 0..4 {
        get(&mgr, &c, "/").await.unwrap();
    }
    assert_eq!(
        bad.requests(),
        5,
        "back in the rotation after baseEjectionTime"
    );
}

#[tokio::test]
async fn a_second_ejection_lasts_twice_as_long() {
    let bad = Backend::start().await;
    let good = Backend::start().await;
    bad.set_status(500);
    let c = http1(&[bad.addr, good.addr], outlier(1, 0, 300, 100));
    let mgr = manager_with(&[&c]);
    let bad_addr = bad.addr.to_string();
    while host_stat(&mgr, &bad_addr, "outlier_ejections") != "1" {
        get(&mgr, &c, "/").await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    while host_stat(&mgr, &bad_addr, "outlier_ejections") != "2" {
        get(&mgr, &c, "/").await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        host_stat(&mgr, &bad_addr, "health_flags"),
        "/failed_outlier_check",
        "600 ms the second time"
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(host_stat(&mgr, &bad_addr, "health_flags"), "healthy");
}

#[tokio::test]
async fn max_ejection_percent_bounds_how_many_are_ejected() {
    let mut bs = Vec::new();
    for _ in 0..4 {
        bs.push(Backend::start().await);
    }
    for b in &bs[..3] {
        b.set_status(503);
    }
    let addrs: Vec<_> = bs.iter().map(|b| b.addr).collect();
    // Envoy ejects only while 100 × (ejected + 1) / endpoints ≤ maxEjectionPercent.
    let c = http1(&addrs, outlier(2, 0, 60_000, 50));
    let mgr = manager_with(&[&c]);
    for _ in 0..40 {
        get(&mgr, &c, "/").await.unwrap();
    }
    let text = mgr.clusters_text();
    assert!(
        text.contains("::outlier_detection.ejections_active::2\n"),
        "{text}"
    );
    assert!(!text.contains("::outlier_detection.ejections_overflow::0\n"));

    // Istio's default 10% ejects nothing from a two-endpoint cluster.
    let c2 = http1(&addrs[..2], outlier(1, 0, 60_000, 10));
    let mgr = manager_with(&[&c2]);
    for _ in 0..10 {
        get(&mgr, &c2, "/").await.unwrap();
    }
    assert!(mgr
        .clusters_text()
        .contains("::outlier_detection.ejections_active::0\n"));
}

#[tokio::test]
async fn all_endpoints_ejected_is_uh_unless_min_health_percent_panics() {
    let b = Backend::start().await;
    b.set_status(503);
    let c = http1(&[b.addr], outlier(2, 0, 60_000, 100));
    let mgr = manager_with(&[&c]);
    for _ in 0..2 {
        assert_eq!(get(&mgr, &c, "/").await.unwrap().status, 503);
    }
    let e = get(&mgr, &c, "/")
        .await
        .err()
        .expect("the only endpoint is ejected");
    assert_eq!((e.flag(), e.body().as_str()), ("UH", "no healthy upstream"));
    assert_eq!(b.requests(), 2);

    let mut panicky = outlier(2, 0, 60_000, 100);
    if let Some(o) = panicky.outlier.as_mut() {
        o.min_health_percent = 50;
    }
    let c = http1(&[b.addr], panicky);
    let mgr = manager_with(&[&c]);
    for _ in 0..5 {
        // Below minHealthPercent ejections are ignored: the backend answers itself.
        assert_eq!(get(&mgr, &c, "/").await.unwrap().status, 503);
    }
    assert_eq!(
        host_stat(&mgr, &b.addr.to_string(), "health_flags"),
        "/failed_outlier_check"
    );
}

#[tokio::test]
async fn connect_failures_count_as_gateway_errors() {
    let closed = {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap()
    };
    let good = Backend::start().await;
    let c = http1(&[closed, good.addr], outlier(0, 2, 60_000, 100));
    let mgr = manager_with(&[&c]);
    let mut failures = 0;
    for _ in 0..20 {
        match get(&mgr, &c, "/").await {
            Ok(a) => assert_eq!(a.status, 200),
            Err(e) => {
                assert_eq!(e.flag(), "UF");
                failures += 1;
            }
        }
    }
    assert_eq!(
        failures, 2,
        "ejected after two consecutive connect failures"
    );
    assert_eq!(
        host_stat(&mgr, &closed.to_string(), "health_flags"),
        "/failed_outlier_check"
    );
}

#[tokio::test]
async fn a_500_resets_the_gateway_error_streak() {
    let b = Backend::start().await;
    let other = Backend::start().await;
    let c = http1(&[b.addr, other.addr], outlier(0, 2, 60_000, 100));
    let mgr = manager_with(&[&c]);
    // Round robin alternates, so `b` sees 503, 500, 503, 500 ...: never two gateway
    // errors in a row.
    for i in 0..12 {
        b.set_status(if (i / 2) % 2 == 0 { 503 } else { 500 });
        get(&mgr, &c, "/").await.unwrap();
    }
    assert_eq!(
        host_stat(&mgr, &b.addr.to_string(), "health_flags"),
        "healthy"
    );
}
