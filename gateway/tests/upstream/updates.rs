//! Snapshot swaps keep the state of clusters and endpoints that survive; `/clusters`
//! shows it in Envoy's format.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use meshgate::router::snapshot::{Cluster, ClusterPolicy, LoadBalancerPolicy, OutlierPolicy};
use meshgate::upstream::ClusterManager;

use crate::support::*;

fn policy() -> ClusterPolicy {
    ClusterPolicy {
        lb: LoadBalancerPolicy::RoundRobin,
        outlier: Some(OutlierPolicy {
            consecutive_5xx: 2,
            consecutive_gateway_errors: 0,
            interval: Duration::from_secs(10),
            base_ejection_time: Duration::from_secs(60),
            max_ejection_percent: 100,
            min_health_percent: 0,
        }),
        ..Default::default()
    }
}

fn apply(mgr: &ClusterManager, clusters: &[&Arc<Cluster>]) {
    let map: HashMap<_, _> = clusters
        .iter()
        .map(|c| (c.name.clone(), Arc::clone(c)))
        .collect();
    mgr.update(&map);
}

#[tokio::test]
async fn update_keeps_state_of_surviving_endpoints_and_drops_the_rest() {
    let bad = Backend::start().await;
    let good = Backend::start().await;
    let added = Backend::start().await;
    bad.set_status(503);
    let v1 = http1(&[bad.addr, good.addr], policy());
    let mgr = manager_with(&[&v1]);
    for _ in 0..4 {
        get(&mgr, &v1, "/").await.unwrap();
    }
    let bad_addr = bad.addr.to_string();
    assert_eq!(
        host_stat(&mgr, &bad_addr, "health_flags"),
        "/failed_outlier_check"
    );
    assert_eq!(good.accepts(), 1);

    // A new compile of the same cluster with one more endpoint.
    let v2 = http1(&[bad.addr, good.addr, added.addr], policy());
    apply(&mgr, &[&v2]);
    assert_eq!(
        host_stat(&mgr, &bad_addr, "health_flags"),
        "/failed_outlier_check"
    );
    assert_eq!(host_stat(&mgr, &good.addr.to_string(), "rq_total"), "2");
    for _ in 0..6 {
        assert_eq!(get(&mgr, &v2, "/").await.unwrap().status, 200);
    }
    assert_eq!(good.accepts(), 1, "the pooled connection survived the swap");
    assert!(added.requests() > 0);

    // Dropping an endpoint forgets it; bringing it back starts fresh.
    let v3 = http1(&[good.addr, added.addr], policy());
    apply(&mgr, &[&v3]);
    assert!(!mgr.clusters_text().contains(&bad_addr));
    apply(&mgr, &[&v2]);
    assert_eq!(host_stat(&mgr, &bad_addr, "health_flags"), "healthy");
    assert_eq!(host_stat(&mgr, &bad_addr, "rq_total"), "0");

    // A cluster missing from the snapshot is dropped entirely.
    let other = http1(&[good.addr], ClusterPolicy::default());
    let mut renamed = Arc::try_unwrap(other).unwrap();
    renamed.name = "outbound|80|v2|httpbin.default.svc.cluster.local".into();
    let renamed = Arc::new(renamed);
    apply(&mgr, &[&renamed]);
    assert!(mgr.cluster(&v2.name).is_none());
    assert!(mgr.cluster(&renamed.name).is_some());
    assert!(!mgr.clusters_text().contains("outbound|80||httpbin"));
}

#[tokio::test]
async fn clusters_text_uses_envoys_format() {
    let b = Backend::start().await;
    let c = http1(&[b.addr], ClusterPolicy::default());
    let mgr = manager_with(&[&c]);
    get(&mgr, &c, "/").await.unwrap();
    let text = mgr.clusters_text();
    let host = format!("outbound|80||httpbin.default.svc.cluster.local::{}", b.addr);
    for line in [
        format!("{host}::health_flags::healthy"),
        format!("{host}::rq_active::0"),
        format!("{host}::cx_active::1"),
        format!("{host}::rq_total::1"),
        format!("{host}::rq_success::1"),
        format!("{host}::outlier_ejections::0"),
        "outbound|80||httpbin.default.svc.cluster.local::default_priority::max_connections::4294967295".to_string(),
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
    }
}
