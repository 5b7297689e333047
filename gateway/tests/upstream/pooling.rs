//! Connection pooling and upstream protocols: keep-alive reuse, h2c multiplexing,
//! per-connection request limits, idle timeouts, DNS clusters and TLS origination.

use std::sync::Arc;
use std::time::Duration;

use http::Version;
use meshgate::router::snapshot::{ClusterPolicy, UpstreamProtocol, UpstreamTls, UpstreamTlsMode};
use meshgate::upstream::SendContext;
use rustls::pki_types::PrivateKeyDer;

use crate::support::*;

#[tokio::test]
async fn http1_keep_alive_reuses_one_connection() {
    let b = Backend::start().await;
    let c = http1(&[b.addr], ClusterPolicy::default());
    let mgr = manager_with(&[&c]);
    for i in 0..20 {
        let a = get(&mgr, &c, "/get").await.unwrap();
        assert_eq!(a.status, 200);
        assert_eq!(a.version, "HTTP/1.1");
        assert_eq!(a.authority, "httpbin.example.com");
        assert_eq!(a.info.reused_connection, i > 0);
        assert_eq!(a.info.endpoint.address, b.addr.to_string());
    }
    assert_eq!(
        b.accepts(),
        1,
        "20 sequential requests must share one connection"
    );
    assert_eq!(b.requests(), 20);
    let addr = b.addr.to_string();
    assert_eq!(host_stat(&mgr, &addr, "cx_active"), "1");
    assert!(eventually(|| host_stat(&mgr, &addr, "rq_active") == "0").await);
    assert_eq!(host_stat(&mgr, &addr, "rq_total"), "20");
}

#[tokio::test]
async fn h2c_upstream_multiplexes_concurrent_requests_on_one_connection() {
    let b = Backend::start().await;
    let eps = vec![endpoint(b.addr.to_string())];
    let c = cluster(
        "outbound|9080||grpc.default.svc.cluster.local",
        eps,
        UpstreamProtocol::Http2,
        ClusterPolicy::default(),
    );
    let mgr = Arc::new(manager_with(&[&c]));
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let (mgr, c) = (mgr.clone(), c.clone());
        tasks.push(tokio::spawn(async move {
            get(&mgr, &c, "/slow?ms=100").await.unwrap()
        }));
    }
    for t in tasks {
        let a = t.await.unwrap();
        assert_eq!(a.status, 200);
        assert_eq!(a.version, "HTTP/2.0");
        assert_eq!(a.info.version, Version::HTTP_2);
        // The downstream Host travels as :authority, not the endpoint address.
        assert_eq!(a.authority, "httpbin.example.com");
    }
    assert_eq!(
        b.accepts(),
        1,
        "h2 requests must multiplex on one connection"
    );
}

#[tokio::test]
async fn client_protocol_follows_the_downstream_version() {
    let b = Backend::start().await;
    let eps = vec![endpoint(b.addr.to_string())];
    let c = cluster(
        "outbound|80||either",
        eps,
        UpstreamProtocol::Client,
        ClusterPolicy::default(),
    );
    let mgr = manager_with(&[&c]);
    let h2 = get_with(&mgr, &c, "/", &[], &h2_ctx()).await.unwrap();
    assert_eq!(h2.version, "HTTP/2.0");
    let h1 = get_with(&mgr, &c, "/", &[], &SendContext::default())
        .await
        .unwrap();
    assert_eq!(h1.version, "HTTP/1.1");
}

#[tokio::test]
async fn max_requests_per_connection_rotates_connections() {
    let b = Backend::start().await;
    let policy = ClusterPolicy {
        max_requests_per_connection: Some(2),
        ..Default::default()
    };
    let c = http1(&[b.addr], policy.clone());
    let mgr = manager_with(&[&c]);
    for _ in 0..6 {
        assert_eq!(get(&mgr, &c, "/").await.unwrap().status, 200);
    }
    assert_eq!(b.accepts(), 3);

    let b2 = Backend::start().await;
    let eps = vec![endpoint(b2.addr.to_string())];
    let c2 = cluster("outbound|81||h2", eps, UpstreamProtocol::Http2, policy);
    let mgr2 = manager_with(&[&c2]);
    for _ in 0..6 {
        assert_eq!(get(&mgr2, &c2, "/").await.unwrap().status, 200);
    }
    assert_eq!(b2.accepts(), 3);
}

#[tokio::test]
async fn idle_timeout_closes_pooled_connections() {
    let b = Backend::start().await;
    let policy = ClusterPolicy {
        idle_timeout: Some(Duration::from_millis(150)),
        ..Default::default()
    };
    let c = http1(&[b.addr], policy);
    let mgr = manager_with(&[&c]);
    get(&mgr, &c, "/").await.unwrap();
    let addr = b.addr.to_string();
    assert_eq!(host_stat(&mgr, &addr, "cx_active"), "1");
    assert!(eventually(|| host_stat(&mgr, &addr, "cx_active") == "0").await);
    let a = get(&mgr, &c, "/").await.unwrap();
    assert!(!a.info.reused_connection);
    assert_eq!(b.accepts(), 2);
}

#[tokio::test]
async fn dns_cluster_resolves_host_names_at_connect_time() {
    let b = Backend::start().await;
    let eps = vec![endpoint(format!("localhost:{}", b.addr.port()))];
    let mut c = Arc::try_unwrap(cluster(
        "outbound|80||dns",
        eps,
        UpstreamProtocol::Http1,
        ClusterPolicy::default(),
    ))
    .unwrap();
    c.dns = true;
    let c = Arc::new(c);
    let mgr = manager_with(&[&c]);
    let a = get(&mgr, &c, "/").await.unwrap();
    assert_eq!(a.status, 200);
    assert_eq!(a.info.peer_addr, Some(b.addr));
    assert!(mgr
        .clusters_text()
        .contains(&format!("::hostname::localhost:{}", b.addr.port())));
}

struct Pki {
    ca_path: String,
    acceptor: tokio_rustls::TlsAcceptor,
}

/// A CA and a server certificate for `backend.test`, signed by it.
fn pki(tag: &str) -> Pki {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["backend.test".to_string()])
        .unwrap()
        .signed_by(&key, &ca, &ca_key)
        .unwrap();
    let ca_path = std::env::temp_dir().join(format!(
        "meshgate-upstream-{tag}-{}.pem",
        std::process::id()
    ));
    std::fs::write(&ca_path, ca.pem()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .unwrap();
    server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Pki {
        ca_path: ca_path.to_string_lossy().into_owned(),
        acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(server)),
    }
}

fn simple_tls(ca: &str, sni: &str, sans: &[&str]) -> ClusterPolicy {
    ClusterPolicy {
        tls: Some(UpstreamTls {
            mode: UpstreamTlsMode::Simple,
            credential_name: None,
            client_certificate: None,
            private_key: None,
            ca_certificates: Some(ca.to_string()),
            subject_alt_names: sans.iter().map(|s| s.to_string()).collect(),
            sni: Some(sni.to_string()),
            insecure_skip_verify: false,
        }),
        ..Default::default()
    }
}

#[tokio::test]
async fn simple_tls_towards_a_ca_file_speaks_http1_and_alpn_h2() {
    let pki = pki("simple");
    let b = Backend::start_tls(pki.acceptor.clone()).await;
    let eps = vec![endpoint(b.addr.to_string())];
    let h1 = cluster(
        "outbound|443||tls-h1",
        eps.clone(),
        UpstreamProtocol::Http1,
        simple_tls(&pki.ca_path, "backend.test", &[]),
    );
    let h2 = cluster(
        "outbound|443||tls-h2",
        eps,
        UpstreamProtocol::Http2,
        simple_tls(&pki.ca_path, "backend.test", &[]),
    );
    let mgr = manager_with(&[&h1, &h2]);
    for _ in 0..3 {
        let a = get(&mgr, &h1, "/").await.unwrap();
        assert_eq!((a.status.as_u16(), a.version.as_str()), (200, "HTTP/1.1"));
        let a = get(&mgr, &h2, "/").await.unwrap();
        assert_eq!((a.status.as_u16(), a.version.as_str()), (200, "HTTP/2.0"));
        assert_eq!(a.authority, "httpbin.example.com");
    }
    assert_eq!(b.accepts(), 2, "one pooled TLS connection per cluster");
}

#[tokio::test]
async fn tls_name_mismatch_is_a_connect_failure_that_says_why() {
    let pki = pki("mismatch");
    let b = Backend::start_tls(pki.acceptor.clone()).await;
    let eps = vec![endpoint(b.addr.to_string())];
    let wrong_sni = cluster(
        "outbound|443||wrong-sni",
        eps.clone(),
        UpstreamProtocol::Http1,
        simple_tls(&pki.ca_path, "other.test", &[]),
    );
    let good_san = cluster(
        "outbound|443||san",
        eps.clone(),
        UpstreamProtocol::Http1,
        simple_tls(&pki.ca_path, "other.test", &["backend.test"]),
    );
    let wrong_san = cluster(
        "outbound|443||wrong-san",
        eps,
        UpstreamProtocol::Http1,
        simple_tls(&pki.ca_path, "backend.test", &["nope.test"]),
    );
    let mgr = manager_with(&[&wrong_sni, &good_san, &wrong_san]);
    for c in [&wrong_sni, &wrong_san] {
        let e = get(&mgr, c, "/").await.err().expect("must fail");
        assert_eq!(e.flag(), "UF");
        assert!(e.body().contains("TLS error"), "{}", e.body());
    }
    // subjectAltNames replaces the SNI as the name the certificate must carry.
    assert_eq!(get(&mgr, &good_san, "/").await.unwrap().status, 200);
}

#[tokio::test]
async fn http1_only_headers_are_dropped_towards_h2() {
    let b = Backend::start().await;
    let eps = vec![endpoint(b.addr.to_string())];
    let c = cluster(
        "outbound|80||h2-clean",
        eps,
        UpstreamProtocol::Http2,
        ClusterPolicy::default(),
    );
    let mgr = manager_with(&[&c]);
    let headers = [
        ("connection", "keep-alive, x-hop"),
        ("keep-alive", "timeout=5"),
        ("x-hop", "1"),
        ("upgrade", "websocket"),
        ("te", "gzip"),
    ];
    let a = get_with(&mgr, &c, "/", &headers, &SendContext::default())
        .await
        .unwrap();
    assert_eq!((a.status.as_u16(), a.version.as_str()), (200, "HTTP/2.0"));
}
