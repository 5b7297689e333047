//! Load balancers over real backends: round robin (plain and weighted), least request,
//! random and consistent hashing on header, cookie (with generation), source IP and
//! query parameter.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use meshgate::router::snapshot::{ClusterPolicy, HashPolicy, LoadBalancerPolicy, UpstreamProtocol};
use meshgate::upstream::SendContext;

use crate::support::*;

async fn backends(n: usize) -> Vec<Backend> {
    let mut v = Vec::new();
    for _ in 0..n {
        v.push(Backend::start().await);
    }
    v
}

fn addrs(bs: &[Backend]) -> Vec<SocketAddr> {
    bs.iter().map(|b| b.addr).collect()
}

fn lb(policy: LoadBalancerPolicy) -> ClusterPolicy {
    ClusterPolicy {
        lb: policy,
        ..Default::default()
    }
}

#[tokio::test]
async fn round_robin_rotates_exactly() {
    let bs = backends(3).await;
    let c = http1(&addrs(&bs), lb(LoadBalancerPolicy::RoundRobin));
    let mgr = manager_with(&[&c]);
    let mut order = Vec::new();
    for _ in 0..30 {
        order.push(
            get(&mgr, &c, "/")
                .await
                .unwrap()
                .info
                .endpoint
                .address
                .clone(),
        );
    }
    for b in &bs {
        assert_eq!(b.requests(), 10);
    }
    for i in 3..30 {
        assert_eq!(order[i], order[i - 3], "rotation broke at {i}");
    }
}

#[tokio::test]
async fn weighted_round_robin_follows_weights_exactly() {
    let bs = backends(2).await;
    let mut eps = vec![
        endpoint(bs[0].addr.to_string()),
        endpoint(bs[1].addr.to_string()),
    ];
    eps[0].weight = 3;
    let c = cluster(
        "outbound|80||weighted",
        eps,
        UpstreamProtocol::Http1,
        lb(LoadBalancerPolicy::RoundRobin),
    );
    let mgr = manager_with(&[&c]);
    for _ in 0..40 {
        get(&mgr, &c, "/").await.unwrap();
    }
    assert_eq!((bs[0].requests(), bs[1].requests()), (30, 10));
}

#[tokio::test]
async fn least_request_prefers_the_idle_endpoint() {
    let bs = backends(2).await;
    let c = http1(&addrs(&bs), ClusterPolicy::default());
    let mgr = Arc::new(manager_with(&[&c]));
    let busy = {
        let (mgr, c) = (mgr.clone(), c.clone());
        tokio::spawn(async move {
            get(&mgr, &c, "/block")
                .await
                .unwrap()
                .info
                .endpoint
                .address
                .clone()
        })
    };
    assert!(
        eventually(|| bs
            .iter()
            .any(|b| b.in_flight.load(std::sync::atomic::Ordering::SeqCst) == 1))
        .await
    );
    let busy_idx = bs
        .iter()
        .position(|b| b.in_flight.load(std::sync::atomic::Ordering::SeqCst) == 1)
        .unwrap();
    for _ in 0..20 {
        let a = get(&mgr, &c, "/").await.unwrap();
        assert_ne!(a.info.endpoint.address, bs[busy_idx].addr.to_string());
    }
    assert_eq!(mgr.active_requests(&c.name), 1);
    bs[busy_idx].release();
    assert_eq!(busy.await.unwrap(), bs[busy_idx].addr.to_string());
    assert!(eventually(|| mgr.active_requests(&c.name) == 0).await);
}

#[tokio::test]
async fn random_reaches_every_endpoint() {
    let bs = backends(3).await;
    let c = http1(&addrs(&bs), lb(LoadBalancerPolicy::Random));
    let mgr = manager_with(&[&c]);
    for _ in 0..300 {
        get(&mgr, &c, "/").await.unwrap();
    }
    for b in &bs {
        assert!(
            b.requests() > 50,
            "random sent only {} of 300 to one endpoint",
            b.requests()
        );
    }
}

#[tokio::test]
async fn header_hash_sticks_per_key_and_spreads_keys() {
    let bs = backends(3).await;
    let policy = lb(LoadBalancerPolicy::ConsistentHash(HashPolicy::Header(
        "x-user".parse().unwrap(),
    )));
    let c = http1(&addrs(&bs), policy);
    let mgr = manager_with(&[&c]);
    let mut owners = HashMap::new();
    for user in 0..30 {
        let u = format!("user-{user}");
        for _ in 0..3 {
            let a = get_with(&mgr, &c, "/", &[("x-user", &u)], &SendContext::default())
                .await
                .unwrap();
            let prev = owners.insert(u.clone(), a.info.endpoint.address.clone());
            assert!(
                prev.is_none() || prev.as_ref() == Some(&a.info.endpoint.address),
                "{u} moved"
            );
        }
    }
    for b in &bs {
        assert!(b.requests() > 0, "30 keys never reached {}", b.addr);
    }
}

#[tokio::test]
async fn cookie_hash_generates_a_cookie_then_sticks_to_it() {
    let bs = backends(3).await;
    let policy = lb(LoadBalancerPolicy::ConsistentHash(HashPolicy::Cookie {
        name: "sess".into(),
        path: Some("/".into()),
        ttl: Some(Duration::from_secs(60)),
    }));
    let c = http1(&addrs(&bs), policy);
    let mgr = manager_with(&[&c]);
    let ctx = SendContext {
        source_addr: Some("127.0.0.9:40000".parse().unwrap()),
        local_addr: Some("127.0.0.1:8080".parse().unwrap()),
        ..Default::default()
    };
    let first = get_with(&mgr, &c, "/", &[], &ctx).await.unwrap();
    let set_cookie = first
        .info
        .set_cookie
        .clone()
        .expect("a cookie must be generated");
    let set_cookie = set_cookie.to_str().unwrap().to_string();
    let value = set_cookie
        .strip_prefix("sess=")
        .and_then(|r| r.strip_suffix("; Path=/; Max-Age=60; HttpOnly"))
        .unwrap_or_else(|| panic!("unexpected Set-Cookie {set_cookie}"));
    assert_eq!(value.len(), 16);
    let cookie = format!("other=1; sess={value}");
    for _ in 0..10 {
        let a = get_with(
            &mgr,
            &c,
            "/",
            &[("cookie", &cookie)],
            &SendContext::default(),
        )
        .await
        .unwrap();
        assert!(
            a.info.set_cookie.is_none(),
            "the client already has the cookie"
        );
        assert_eq!(a.info.endpoint.address, first.info.endpoint.address);
    }

    // Without a TTL nothing is generated and requests are spread at random.
    let no_ttl = http1(
        &addrs(&bs),
        lb(LoadBalancerPolicy::ConsistentHash(HashPolicy::Cookie {
            name: "sess".into(),
            path: None,
            ttl: None,
        })),
    );
    let mgr = manager_with(&[&no_ttl]);
    assert!(get(&mgr, &no_ttl, "/")
        .await
        .unwrap()
        .info
        .set_cookie
        .is_none());
}

#[tokio::test]
async fn source_ip_and_query_parameter_hashes_stick() {
    let bs = backends(3).await;
    let by_ip = http1(
        &addrs(&bs),
        lb(LoadBalancerPolicy::ConsistentHash(HashPolicy::SourceIp)),
    );
    let by_query = http1(
        &addrs(&bs),
        lb(LoadBalancerPolicy::ConsistentHash(
            HashPolicy::QueryParameter("user".into()),
        )),
    );
    let mgr = manager_with(&[&by_ip]);
    for ip in 1..10u8 {
        let mut seen = None;
        for port in [1000u16, 2000, 3000] {
            let ctx = SendContext {
                source_addr: Some(SocketAddr::from(([10, 0, 0, ip], port))),
                ..Default::default()
            };
            let a = get_with(&mgr, &by_ip, "/", &[], &ctx).await.unwrap();
            let addr = a.info.endpoint.address.clone();
            assert!(
                seen.is_none() || seen.as_ref() == Some(&addr),
                "10.0.0.{ip} moved between ports"
            );
            seen = Some(addr);
        }
    }
    let mgr = manager_with(&[&by_query]);
    for user in ["ann", "bob", "cy"] {
        let path = format!("/get?x=1&user={user}");
        let first = get(&mgr, &by_query, &path)
            .await
            .unwrap()
            .info
            .endpoint
            .address
            .clone();
        for _ in 0..5 {
            assert_eq!(
                get(&mgr, &by_query, &path)
                    .await
                    .unwrap()
                    .info
                    .endpoint
                    .address,
                first
            );
        }
    }
}

#[tokio::test]
async fn passthrough_goes_to_the_original_destination() {
    let bs = backends(2).await;
    let c = cluster(
        "PassthroughCluster",
        Vec::new(),
        UpstreamProtocol::Http1,
        lb(LoadBalancerPolicy::Passthrough),
    );
    let mgr = manager_with(&[&c]);
    for b in &bs {
        let ctx = SendContext {
            original_dst: Some(b.addr),
            ..Default::default()
        };
        for _ in 0..3 {
            let a = get_with(&mgr, &c, "/", &[], &ctx).await.unwrap();
            assert_eq!(a.info.endpoint.address, b.addr.to_string());
        }
        assert_eq!(
            (b.requests(), b.accepts()),
            (3, 1),
            "pooled per destination"
        );
        let (_conn, info) = mgr.connect_tcp(&c, &ctx).await.unwrap();
        assert_eq!(info.peer_addr, Some(b.addr));
    }
    assert_eq!(host_stat(&mgr, &bs[0].addr.to_string(), "rq_total"), "3");
    let e = get(&mgr, &c, "/")
        .await
        .err()
        .expect("no original destination, no endpoints");
    assert_eq!(e.flag(), "UH");
}
