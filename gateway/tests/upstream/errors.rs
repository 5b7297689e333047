//! The failures the proxy answers itself: NC, UH, UF (refused and timed-out connects),
//! UC, UR (refused stream) and UT, each with Envoy's flag, status and body.

use std::sync::Arc;
use std::time::{Duration, Instant};

use meshgate::router::snapshot::{ClusterPolicy, RetryOn, UpstreamProtocol};
use meshgate::upstream::{SendContext, UpstreamError};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpSocket, TcpStream};

use crate::support::*;

async fn closed_port() -> std::net::SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap()
}

#[tokio::test]
async fn refused_connect_fails_fast_with_uf() {
    let addr = closed_port().await;
    let c = http1(&[addr], ClusterPolicy::default());
    let mgr = manager_with(&[&c]);
    let started = Instant::now();
    let e = get(&mgr, &c, "/")
        .await
        .err()
        .expect("nothing listens there");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(e.flag(), "UF");
    assert_eq!(e.status(), 503);
    assert!(e.body().starts_with(
        "upstream connect error or disconnect/reset before headers. reset reason: connection failure"
    ));
    assert_eq!(e.upstream_address(), Some(addr.to_string().as_str()));
    assert!(e.retriable(&[RetryOn::ConnectFailure]));
    assert_eq!(host_stat(&mgr, &addr.to_string(), "cx_connect_fail"), "1");
    assert_eq!(host_stat(&mgr, &addr.to_string(), "cx_active"), "0");
}

#[tokio::test]
async fn connect_timeout_applies_to_an_unanswered_handshake() {
    // A listener that never accepts: once its accept queue is full the kernel drops
    // further SYNs, so connecting hangs as it would towards a black-holed address.
    let sock = TcpSocket::new_v4().unwrap();
    sock.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = sock.listen(0).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut filler = Vec::new();
    let mut hung = false;
    for _ in 0..32 {
        match tokio::time::timeout(Duration::from_millis(200), TcpStream::connect(addr)).await {
            Ok(Ok(s)) => filler.push(s),
            Ok(Err(e)) => panic!("connect failed instead of hanging: {e}"),
            Err(_) => {
                hung = true;
                break;
            }
        }
    }
    if !hung {
        eprintln!("skipped: this kernel accepts connections beyond the listen backlog");
        return;
    }
    let policy = ClusterPolicy {
        connect_timeout: Some(Duration::from_millis(300)),
        ..Default::default()
    };
    let c = http1(&[addr], policy);
    let mgr = manager_with(&[&c]);
    let started = Instant::now();
    let e = get(&mgr, &c, "/").await.err().expect("must time out");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_secs(3),
        "{took:?}"
    );
    assert_eq!(e.flag(), "UF");
    assert!(
        e.body().contains("connect timeout after 300ms"),
        "{}",
        e.body()
    );
    drop(listener);
}

#[tokio::test]
async fn missing_cluster_is_nc_and_empty_cluster_is_uh() {
    let mut missing = Arc::try_unwrap(http1(&[], ClusterPolicy::default())).unwrap();
    missing.name = "outbound|80|v3|reviews.default.svc.cluster.local".into();
    missing.missing = Some("subset v3 is not defined by any DestinationRule".into());
    let missing = Arc::new(missing);
    let empty = http1(&[], ClusterPolicy::default());
    let mgr = manager_with(&[&missing, &empty]);
    let e = get(&mgr, &missing, "/").await.err().unwrap();
    assert_eq!((e.flag(), e.status().as_u16()), ("NC", 503));
    assert!(e.body().contains("subset v3"));
    let e = get(&mgr, &empty, "/").await.err().unwrap();
    assert_eq!((e.flag(), e.status().as_u16()), ("UH", 503));
    assert_eq!(e.body(), "no healthy upstream");
    let e = mgr
        .connect_tcp(&empty, &SendContext::default())
        .await
        .err()
        .unwrap();
    assert_eq!(e.flag(), "UH");
}

#[tokio::test]
async fn upstream_closing_before_headers_is_uc() {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf).await;
            drop(s);
        }
    });
    let c = http1(&[addr], ClusterPolicy::default());
    let mgr = manager_with(&[&c]);
    let e = get(&mgr, &c, "/").await.err().unwrap();
    assert_eq!(e.flag(), "UC");
    assert!(
        e.body().contains("reset reason: connection termination"),
        "{}",
        e.body()
    );
    assert!(e.retriable(&[RetryOn::Reset]));
    assert!(!e.retriable(&[RetryOn::ConnectFailure]));
}

#[tokio::test]
async fn h2_refused_stream_is_ur_and_retriable_as_refused_stream() {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            tokio::spawn(async move {
                let Ok(mut conn) = h2::server::handshake(s).await else {
                    return;
                };
                while let Some(Ok((_req, mut respond))) = conn.accept().await {
                    respond.send_reset(h2::Reason::REFUSED_STREAM);
                }
            });
        }
    });
    let eps = vec![endpoint(addr.to_string())];
    let c = cluster(
        "outbound|80||refuser",
        eps,
        UpstreamProtocol::Http2,
        ClusterPolicy::default(),
    );
    let mgr = manager_with(&[&c]);
    let e = get(&mgr, &c, "/").await.err().unwrap();
    assert_eq!(e.flag(), "UR", "{e:?}");
    assert!(e
        .body()
        .ends_with("reset reason: remote refused stream reset"));
    assert!(e.retriable(&[RetryOn::RefusedStream]));
}

#[tokio::test]
async fn no_headers_within_the_timeout_is_ut() {
    let b = Backend::start().await;
    let c = http1(&[b.addr], ClusterPolicy::default());
    let mgr = manager_with(&[&c]);
    let ctx = SendContext {
        timeout: Some(Duration::from_millis(300)),
        ..Default::default()
    };
    let started = Instant::now();
    let e = get_with(&mgr, &c, "/slow?ms=3000", &[], &ctx)
        .await
        .err()
        .unwrap();
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_secs(2),
        "{took:?}"
    );
    assert!(matches!(e, UpstreamError::Timeout { .. }));
    assert_eq!((e.flag(), e.status().as_u16()), ("UT", 504));
    assert_eq!(e.body(), "upstream request timeout");
    let addr = b.addr.to_string();
    assert_eq!(host_stat(&mgr, &addr, "rq_timeout"), "1");
    assert!(eventually(|| host_stat(&mgr, &addr, "rq_active") == "0").await);
}

#[tokio::test]
async fn a_failing_request_body_is_not_held_against_the_endpoint() {
    use bytes::Bytes;
    use futures_util::stream;
    use http_body_util::StreamBody;
    use hyper::body::Frame;
    use meshgate::router::snapshot::{LoadBalancerPolicy, OutlierPolicy};

    let b = Backend::start().await;
    let policy = ClusterPolicy {
        lb: LoadBalancerPolicy::RoundRobin,
        outlier: Some(OutlierPolicy {
            consecutive_5xx: 1,
            consecutive_gateway_errors: 1,
            interval: Duration::from_secs(10),
            base_ejection_time: Duration::from_secs(60),
            max_ejection_percent: 100,
            min_health_percent: 0,
        }),
        ..Default::default()
    };
    let c = http1(&[b.addr], policy);
    let mgr = manager_with(&[&c]);
    for _ in 0..3 {
        let frames: Vec<Result<Frame<Bytes>, std::io::Error>> = vec![
            Ok(Frame::data(Bytes::from_static(b"partial"))),
            Err(std::io::Error::other("downstream client went away")),
        ];
        let req = http::Request::post("/upload")
            .header("host", "httpbin.example.com")
            .body(StreamBody::new(stream::iter(frames)))
            .unwrap();
        let e = mgr
            .send(&c, req, &SendContext::default())
            .await
            .expect_err("the body failed");
        assert_eq!(e.flag(), "UC");
    }
    assert_eq!(
        host_stat(&mgr, &b.addr.to_string(), "health_flags"),
        "healthy"
    );
    assert_eq!(get(&mgr, &c, "/").await.unwrap().status, 200);
}
