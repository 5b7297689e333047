//! Istio's secure gateway task through `meshgate gateway`: SIMPLE termination over
//! HTTP/1.1 and h2, several hosts on 443 chosen by SNI, MUTUAL client authentication,
//! and a SIMPLE connection kept away from a MUTUAL server's routes.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::certs::{write_credential, Ca};
use common::client::{get_over, https_get, peer_cert, tls_client, tls_connect};
use common::yaml::{http_route, tls_gateway, tls_server};
use common::{Backend, Gateway, TempDir};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simple_tls_serves_https_with_http1_and_h2() {
    let ca = Ca::new("example.com");
    let creds = TempDir::new("creds");
    write_credential(
        creds.path(),
        "httpbin-credential",
        &ca.server(&["httpbin.example.com"]),
        None,
    );
    let httpbin = Backend::start("httpbin").await;
    let yaml = tls_gateway(&[tls_server(
        "https",
        "httpbin.example.com",
        "SIMPLE",
        Some("httpbin-credential"),
    )]) + &http_route("httpbin", &httpbin, "httpbin.example.com");
    let gw = Gateway::with_config(&yaml)
        .ports(&[443])
        .credentials(creds.path())
        .start()
        .await;
    let client = tls_client(&[ca.der()], None);
    let host = "httpbin.example.com";
    let r = https_get(gw.addr(443), host, host, "/status/418", client.clone())
        .await
        .unwrap();
    assert_eq!(r.status, 418);
    assert_eq!(r.backend(), Some("httpbin"));
    assert_eq!(
        r.upstream_header("x-forwarded-proto").as_deref(),
        Some("https")
    );

    // ALPN h2: the same port speaks HTTP/2.
    let mut h2 = (*client).clone();
    h2.alpn_protocols = vec![b"h2".to_vec()];
    let stream = tls_connect(gw.addr(443), host, std::sync::Arc::new(h2))
        .await
        .unwrap();
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    let req = http::Request::get("https://httpbin.example.com/status/418")
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .unwrap();
    let resp = sender.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 418);
    assert_eq!(resp.version(), http::Version::HTTP_2);

    // An SNI no server covers gets no certificate at all.
    let err = https_get(gw.addr(443), "other.example.com", host, "/", client).await;
    assert!(err.is_err(), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hosts_on_443_are_chosen_by_sni() {
    let ca = Ca::new("example.com");
    let creds = TempDir::new("creds");
    let httpbin_leaf = ca.server(&["httpbin.example.com"]);
    let hello_leaf = ca.server(&["helloworld-v1.example.com"]);
    write_credential(creds.path(), "httpbin-credential", &httpbin_leaf, None);
    write_credential(creds.path(), "helloworld-credential", &hello_leaf, None);
    let httpbin = Backend::start("httpbin").await;
    let hello = Backend::start("helloworld-v1").await;
    let yaml = tls_gateway(&[
        tls_server(
            "https-httpbin",
            "httpbin.example.com",
            "SIMPLE",
            Some("httpbin-credential"),
        ),
        tls_server(
            "https-helloworld",
            "helloworld-v1.example.com",
            "SIMPLE",
            Some("helloworld-credential"),
        ),
    ]) + &http_route("httpbin", &httpbin, "httpbin.example.com")
        + &http_route("helloworld-v1", &hello, "helloworld-v1.example.com");
    let gw = Gateway::with_config(&yaml)
        .ports(&[443])
        .credentials(creds.path())
        .start()
        .await;
    let client = tls_client(&[ca.der()], None);
    for (host, leaf, backend) in [
        ("httpbin.example.com", &httpbin_leaf, "httpbin"),
        ("helloworld-v1.example.com", &hello_leaf, "helloworld-v1"),
    ] {
        let stream = tls_connect(gw.addr(443), host, client.clone())
            .await
            .unwrap();
        assert_eq!(peer_cert(&stream), leaf.der, "certificate for {host}");
        let r = get_over(stream, host, "/status/418").await.unwrap();
        assert_eq!(r.status, 418);
        assert_eq!(r.backend(), Some(backend));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_requires_a_client_certificate() {
    let ca = Ca::new("example.com");
    let client_ca = Ca::new("client-ca");
    let creds = TempDir::new("creds");
    write_credential(
        creds.path(),
        "httpbin-credential",
        &ca.server(&["httpbin.example.com"]),
        Some(&client_ca),
    );
    let httpbin = Backend::start("httpbin").await;
    let yaml = tls_gateway(&[tls_server(
        "https",
        "httpbin.example.com",
        "MUTUAL",
        Some("httpbin-credential"),
    )]) + &http_route("httpbin", &httpbin, "httpbin.example.com");
    let gw = Gateway::with_config(&yaml)
        .ports(&[443])
        .credentials(creds.path())
        .start()
        .await;
    let host = "httpbin.example.com";

    let started = std::time::Instant::now();
    let without = https_get(
        gw.addr(443),
        host,
        host,
        "/status/418",
        tls_client(&[ca.der()], None),
    )
    .await;
    assert!(
        without.is_err(),
        "answered without a client certificate: {without:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "failure was not prompt"
    );
    assert_eq!(httpbin.requests(), 0);

    // A certificate from another CA is refused too.
    let stranger = Ca::new("stranger").client("client.example.com");
    let wrong = https_get(
        gw.addr(443),
        host,
        host,
        "/status/418",
        tls_client(&[ca.der()], Some((&stranger.cert_pem, &stranger.key_pem))),
    )
    .await;
    assert!(wrong.is_err(), "{wrong:?}");

    let leaf = client_ca.client("client.example.com");
    let r = https_get(
        gw.addr(443),
        host,
        host,
        "/status/418",
        tls_client(&[ca.der()], Some((&leaf.cert_pem, &leaf.key_pem))),
    )
    .await
    .unwrap();
    assert_eq!(r.status, 418);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_simple_sni_cannot_reach_a_mutual_servers_routes() {
    let ca = Ca::new("example.com");
    let client_ca = Ca::new("client-ca");
    let creds = TempDir::new("creds");
    write_credential(
        creds.path(),
        "open",
        &ca.server(&["open.example.com"]),
        None,
    );
    write_credential(
        creds.path(),
        "locked",
        &ca.server(&["locked.example.com"]),
        Some(&client_ca),
    );
    let open = Backend::start("open").await;
    let locked = Backend::start("locked").await;
    let yaml = tls_gateway(&[
        tls_server("https-open", "open.example.com", "SIMPLE", Some("open")),
        tls_server(
            "https-locked",
            "locked.example.com",
            "MUTUAL",
            Some("locked"),
        ),
    ]) + &http_route("open", &open, "open.example.com")
        + &http_route("locked", &locked, "locked.example.com");
    let gw = Gateway::with_config(&yaml)
        .ports(&[443])
        .credentials(creds.path())
        .start()
        .await;
    let client = tls_client(&[ca.der()], None);
    let r = https_get(
        gw.addr(443),
        "open.example.com",
        "open.example.com",
        "/",
        client.clone(),
    )
    .await
    .unwrap();
    assert_eq!(r.backend(), Some("open"));
    let r = https_get(
        gw.addr(443),
        "open.example.com",
        "locked.example.com",
        "/",
        client,
    )
    .await
    .unwrap();
    assert!(
        r.status == 404 || r.status == 421,
        "Host of the MUTUAL server over the SIMPLE server's connection got {} {}",
        r.status,
        r.body
    );
    assert_eq!(locked.requests(), 0);
}
