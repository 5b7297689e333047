//! Circuit breaking as in Istio's task: maxConnections 1 + http1MaxPendingRequests 1
//! overflow under concurrency 3 (503 UO, x-envoy-overloaded) and never at concurrency 1;
//! plus http2MaxRequests, maxRetries and maxConnections for TCP.

use std::sync::Arc;
use std::time::Duration;

use meshgate::router::snapshot::{ClusterPolicy, UpstreamProtocol};
use meshgate::upstream::{OverflowKind, SendContext, UpstreamError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::*;

fn istio_task_policy() -> ClusterPolicy {
    ClusterPolicy {
        max_connections: Some(1),
        max_pending_requests: Some(1),
        max_requests_per_connection: Some(1),
        ..Default::default()
    }
}

/// `workers` callers each sending `per_worker` requests back to back; returns
/// (successes, overflow errors).
async fn load(
    mgr: &Arc<meshgate::upstream::ClusterManager>,
    c: &Arc<meshgate::router::snapshot::Cluster>,
    workers: usize,
    per_worker: usize,
) -> (usize, Vec<UpstreamError>) {
    let mut tasks = Vec::new();
    for _ in 0..workers {
        let (mgr, c) = (mgr.clone(), c.clone());
        tasks.push(tokio::spawn(async move {
            let mut ok = 0;
            let mut overflow = Vec::new();
            for _ in 0..per_worker {
                match get(&mgr, &c, "/slow?ms=20").await {
                    Ok(a) if a.status == 200 => ok += 1,
                    Ok(a) => panic!("unexpected status {}", a.status),
                    Err(e) => overflow.push(e),
                }
            }
            (ok, overflow)
        }));
    }
    let mut ok = 0;
    let mut errors = Vec::new();
    for t in tasks {
        let (o, e) = t.await.unwrap();
        ok += o;
        errors.extend(e);
    }
    (ok, errors)
}

#[tokio::test]
async fn istio_circuit_breaking_task() {
    let b = Backend::start().await;
    let c = http1(&[b.addr], istio_task_policy());
    let mgr = Arc::new(manager_with(&[&c]));

    let (ok, errors) = load(&mgr, &c, 3, 10).await;
    assert!(!errors.is_empty(), "concurrency 3 must trip the breaker");
    assert!(ok > 0, "some requests must still pass");
    for e in &errors {
        assert_eq!((e.flag(), e.status().as_u16()), ("UO", 503));
        assert!(e.overloaded());
        assert!(e.body().contains("reset reason: overflow"), "{}", e.body());
        assert_eq!(e.local_reply().headers()["x-envoy-overloaded"], "true");
    }
    assert!(mgr
        .clusters_text()
        .contains("::default_priority::max_connections::1\n"));
    let overflowed: u64 = mgr
        .clusters_text()
        .lines()
        .find_map(|l| {
            l.split_once("::upstream_rq_pending_overflow::")
                .map(|(_, v)| v.parse().unwrap())
        })
        .unwrap();
    assert_eq!(overflowed as usize, errors.len());

    let (ok, errors) = load(&mgr, &c, 1, 20).await;
    assert_eq!(
        (ok, errors.len()),
        (20, 0),
        "a single caller never overflows"
    );
    // maxConnections 1 held throughout.
    assert!(b.accepts() >= 1);
    assert!(
        host_stat(&mgr, &b.addr.to_string(), "cx_active")
            .parse::<u32>()
            .unwrap()
            <= 1
    );
}

#[tokio::test]
async fn pending_requests_wait_for_the_connection_instead_of_failing() {
    let b = Backend::start().await;
    let policy = ClusterPolicy {
        max_connections: Some(1),
        ..Default::default()
    };
    let c = http1(&[b.addr], policy);
    let mgr = Arc::new(manager_with(&[&c]));
    let (ok, errors) = load(&mgr, &c, 4, 5).await;
    assert_eq!((ok, errors.len()), (20, 0));
    assert_eq!(
        b.accepts(),
        1,
        "every request queued for the single connection"
    );
}

#[tokio::test]
async fn http2_max_requests_caps_concurrent_streams() {
    let b = Backend::start().await;
    let policy = ClusterPolicy {
        max_requests: Some(2),
        ..Default::default()
    };
    let eps = vec![endpoint(b.addr.to_string())];
    let c = cluster(
        "outbound|80||h2-capped",
        eps,
        UpstreamProtocol::Http2,
        policy,
    );
    let mgr = Arc::new(manager_with(&[&c]));
    let mut blocked = Vec::new();
    for _ in 0..2 {
        let (mgr, c) = (mgr.clone(), c.clone());
        blocked.push(tokio::spawn(async move {
            get(&mgr, &c, "/block").await.unwrap().status
        }));
    }
    assert!(eventually(|| b.in_flight.load(std::sync::atomic::Ordering::SeqCst) == 2).await);
    for _ in 0..3 {
        let e = get(&mgr, &c, "/")
            .await
            .err()
            .expect("third concurrent request overflows");
        assert!(matches!(
            e,
            UpstreamError::Overflow {
                kind: OverflowKind::MaxRequests,
                limit: 2,
                ..
            }
        ));
    }
    b.release();
    for t in blocked {
        assert_eq!(t.await.unwrap(), 200);
    }
    assert_eq!(get(&mgr, &c, "/").await.unwrap().status, 200);
}

#[tokio::test]
async fn max_retries_bounds_concurrent_retries() {
    let policy = ClusterPolicy {
        max_retries: Some(1),
        ..Default::default()
    };
    let c = http1(&[], policy);
    let mgr = manager_with(&[&c]);
    let first = mgr.try_retry(&c).expect("one retry is allowed");
    assert!(mgr.try_retry(&c).is_none());
    drop(first);
    assert!(mgr.try_retry(&c).is_some());
    assert!(mgr
        .clusters_text()
        .contains("::upstream_rq_retry_overflow::1\n"));
}

#[tokio::test]
async fn tcp_connections_honour_max_connections() {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 64];
                while let Ok(n) = s.read(&mut buf).await {
                    if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    let policy = ClusterPolicy {
        max_connections: Some(1),
        ..Default::default()
    };
    let eps = vec![endpoint(addr.to_string())];
    let c = cluster(
        "outbound|31400||tcp-echo",
        eps,
        UpstreamProtocol::Tcp,
        policy,
    );
    let mgr = manager_with(&[&c]);
    let ctx = SendContext::default();
    let (mut conn, info) = mgr.connect_tcp(&c, &ctx).await.unwrap();
    assert_eq!(info.peer_addr, Some(addr));
    conn.write_all(b"ping").await.unwrap();
    let mut buf = [0u8; 4];
    conn.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"ping");
    let e = mgr
        .connect_tcp(&c, &ctx)
        .await
        .err()
        .expect("second connection overflows");
    assert!(matches!(
        e,
        UpstreamError::Overflow {
            kind: OverflowKind::MaxConnections,
            ..
        }
    ));
    drop(conn);
    let again = tokio::time::timeout(Duration::from_secs(2), mgr.connect_tcp(&c, &ctx))
        .await
        .unwrap();
    assert!(again.is_ok());
}
