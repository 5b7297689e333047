//! Istio's secure gateway and TLS passthrough tasks through `meshgate gateway`: SIMPLE
//! termination, several hosts chosen by SNI, credential rotation without restart,
//! MUTUAL client authentication, PASSTHROUGH to an upstream's own certificate, a port
//! mixing both, and TLS settings that change on reload.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::certs::{server_config, write_credential, Ca};
use common::client::{get_over, https_get, peer_cert, tls_client, tls_connect};
use common::yaml::{service, virtual_service};
use common::{eventually, Backend, Gateway, TempDir};

/// One `servers[]` entry on port 443.
fn server(name: &str, host: &str, mode: &str, credential: Option<&str>) -> String {
    let protocol = if mode == "PASSTHROUGH" {
        "TLS"
    } else {
        "HTTPS"
    };
    let credential = credential
        .map(|c| format!("      credentialName: {c}\n"))
        .unwrap_or_default();
    format!(
        "  - port:
      number: 443
      name: {name}
      protocol: {protocol}
    tls:
      mode: {mode}
{credential}    hosts:
    - \"{host}\"
"
    )
}

fn gateway(servers: &[String]) -> String {
    format!(
        "apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: mygateway
spec:
  selector:
    istio: ingressgateway
  servers:
{}---
",
        servers.concat()
    )
}

/// httpbin (or another backend) on port 8000 routed for `host` through `mygateway`.
fn http_route(svc: &str, backend: &Backend, host: &str) -> String {
    service(svc, 8000, "HTTP", &[("v1", backend.port())])
        + &virtual_service(
            svc,
            &[host],
            &["mygateway"],
            &format!(
                "  http:
  - route:
    - destination:
        port:
          number: 8000
        host: {svc}
"
            ),
        )
}

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
    let yaml = gateway(&[server(
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
    let yaml = gateway(&[
        server(
            "https-httpbin",
            "httpbin.example.com",
            "SIMPLE",
            Some("httpbin-credential"),
        ),
        server(
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
async fn replaced_credential_files_apply_without_restart() {
    let ca = Ca::new("example.com");
    let creds = TempDir::new("creds");
    let first = ca.server(&["httpbin.example.com"]);
    write_credential(creds.path(), "httpbin-credential", &first, None);
    let httpbin = Backend::start("httpbin").await;
    let yaml = gateway(&[server(
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
    let stream = tls_connect(gw.addr(443), host, client.clone())
        .await
        .unwrap();
    assert_eq!(peer_cert(&stream), first.der);

    let second = ca.server(&["httpbin.example.com"]);
    write_credential(creds.path(), "httpbin-credential", &second, None);
    let rotated = eventually(Duration::from_secs(10), || {
        let client = client.clone();
        let (addr, want) = (gw.addr(443), second.der.clone());
        async move {
            match tls_connect(addr, host, client).await {
                Ok(s) => peer_cert(&s) == want,
                Err(_) => false,
            }
        }
    })
    .await;
    assert!(rotated, "the new certificate was never served");
    let r = https_get(gw.addr(443), host, host, "/status/418", client)
        .await
        .unwrap();
    assert_eq!(r.status, 418);
    // The connection made before the rotation still works.
    let r = get_over(stream, host, "/status/200").await.unwrap();
    assert_eq!(r.status, 200);
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
    let yaml = gateway(&[server(
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
    let yaml = gateway(&[
        server("https-open", "open.example.com", "SIMPLE", Some("open")),
        server(
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

/// nginx with its own certificate, behind a PASSTHROUGH server.
struct Nginx {
    ca: Ca,
    leaf: common::certs::Leaf,
    backend: Backend,
}

impl Nginx {
    async fn start() -> Nginx {
        let ca = Ca::new("nginx-ca");
        let leaf = ca.server(&["nginx.example.com"]);
        let backend = Backend::start_tls("nginx", server_config(&leaf)).await;
        Nginx { ca, leaf, backend }
    }

    fn yaml(&self) -> String {
        service("my-nginx", 443, "TLS", &[("v1", self.backend.port())])
            + &virtual_service(
                "nginx",
                &["nginx.example.com"],
                &["mygateway"],
                "  tls:
  - match:
    - port: 443
      sniHosts:
      - nginx.example.com
    route:
    - destination:
        host: my-nginx
        port:
          number: 443
",
            )
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passthrough_reaches_the_upstreams_own_certificate() {
    let nginx = Nginx::start().await;
    let yaml = gateway(&[server("tls", "nginx.example.com", "PASSTHROUGH", None)]) + &nginx.yaml();
    let gw = Gateway::with_config(&yaml).ports(&[443]).start().await;
    let client = tls_client(&[nginx.ca.der()], None);
    let host = "nginx.example.com";
    let stream = tls_connect(gw.addr(443), host, client.clone())
        .await
        .unwrap();
    assert_eq!(peer_cert(&stream), nginx.leaf.der);
    let r = get_over(stream, host, "/status/200").await.unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.backend(), Some("nginx"));
    assert!(
        r.json()["headers"].get("x-forwarded-for").is_none(),
        "passthrough must not touch the bytes"
    );

    // An SNI without a tls[] route is closed.
    let other = tls_connect(gw.addr(443), "other.example.com", client).await;
    assert!(other.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_port_terminates_one_host_and_passes_another_through() {
    let ca = Ca::new("example.com");
    let creds = TempDir::new("creds");
    let httpbin_leaf = ca.server(&["httpbin.example.com"]);
    write_credential(creds.path(), "httpbin-credential", &httpbin_leaf, None);
    let httpbin = Backend::start("httpbin").await;
    let nginx = Nginx::start().await;
    let yaml = gateway(&[
        server(
            "https",
            "httpbin.example.com",
            "SIMPLE",
            Some("httpbin-credential"),
        ),
        server("tls", "nginx.example.com", "PASSTHROUGH", None),
    ]) + &http_route("httpbin", &httpbin, "httpbin.example.com")
        + &nginx.yaml();
    let gw = Gateway::with_config(&yaml)
        .ports(&[443])
        .credentials(creds.path())
        .start()
        .await;

    let stream = tls_connect(
        gw.addr(443),
        "httpbin.example.com",
        tls_client(&[ca.der()], None),
    )
    .await
    .unwrap();
    assert_eq!(peer_cert(&stream), httpbin_leaf.der);
    let r = get_over(stream, "httpbin.example.com", "/status/418")
        .await
        .unwrap();
    assert_eq!(r.status, 418);

    let stream = tls_connect(
        gw.addr(443),
        "nginx.example.com",
        tls_client(&[nginx.ca.der()], None),
    )
    .await
    .unwrap();
    assert_eq!(peer_cert(&stream), nginx.leaf.der);
    let r = get_over(stream, "nginx.example.com", "/").await.unwrap();
    assert_eq!(r.backend(), Some("nginx"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_tls_settings_apply_to_new_connections_on_reload() {
    let ca = Ca::new("example.com");
    let creds = TempDir::new("creds");
    let old = ca.server(&["httpbin.example.com"]);
    let new = ca.server(&["httpbin.example.com"]);
    write_credential(creds.path(), "old-credential", &old, None);
    write_credential(creds.path(), "new-credential", &new, None);
    let httpbin = Backend::start("httpbin").await;
    let route = http_route("httpbin", &httpbin, "httpbin.example.com");
    let yaml = |cred: &str| {
        gateway(&[server("https", "httpbin.example.com", "SIMPLE", Some(cred))]) + &route
    };
    let gw = Gateway::with_config(&yaml("old-credential"))
        .ports(&[443])
        .credentials(creds.path())
        .start()
        .await;
    let client = tls_client(&[ca.der()], None);
    let host = "httpbin.example.com";
    let s = tls_connect(gw.addr(443), host, client.clone())
        .await
        .unwrap();
    assert_eq!(peer_cert(&s), old.der);

    gw.write_config(&yaml("new-credential"));
    let switched = eventually(Duration::from_secs(10), || {
        let client = client.clone();
        let (addr, want) = (gw.addr(443), new.der.clone());
        async move {
            match tls_connect(addr, host, client).await {
                Ok(s) => peer_cert(&s) == want,
                Err(_) => false,
            }
        }
    })
    .await;
    assert!(
        switched,
        "the reloaded credentialName was never used:\n{}",
        gw.log()
    );
    let r = https_get(gw.addr(443), host, host, "/status/418", client)
        .await
        .unwrap();
    assert_eq!(r.status, 418);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_made_before_a_server_turned_mutual_gets_421() {
    let ca = Ca::new("example.com");
    let client_ca = Ca::new("client-ca");
    let creds = TempDir::new("creds");
    let names = ["open.example.com", "locked.example.com"];
    write_credential(creds.path(), "both", &ca.server(&names), None);
    write_credential(
        creds.path(),
        "locked",
        &ca.server(&["locked.example.com"]),
        Some(&client_ca),
    );
    let open = Backend::start("open").await;
    let locked = Backend::start("locked").await;
    let routes = http_route("open", &open, "open.example.com")
        + &http_route("locked", &locked, "locked.example.com");
    let before = gateway(&[server("https", "*.example.com", "SIMPLE", Some("both"))]) + &routes;
    let gw = Gateway::with_config(&before)
        .ports(&[443])
        .credentials(creds.path())
        .start()
        .await;
    let stream = tls_connect(
        gw.addr(443),
        "locked.example.com",
        tls_client(&[ca.der()], None),
    )
    .await
    .unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let get = || {
        http::Request::get("/")
            .header("host", "locked.example.com")
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .unwrap()
    };
    let resp = sender.send_request(get()).await.unwrap();
    assert_eq!(resp.status(), 200);
    let _ = http_body_util::BodyExt::collect(resp.into_body()).await;

    let after = gateway(&[
        server("https", "open.example.com", "SIMPLE", Some("both")),
        server(
            "https-locked",
            "locked.example.com",
            "MUTUAL",
            Some("locked"),
        ),
    ]) + &routes;
    gw.write_config(&after);
    // New connections without a client certificate no longer get in...
    let refused = eventually(Duration::from_secs(10), || {
        let addr = gw.addr(443);
        let client = tls_client(&[ca.der()], None);
        async move {
            https_get(
                addr,
                "locked.example.com",
                "locked.example.com",
                "/",
                client,
            )
            .await
            .is_err()
        }
    })
    .await;
    assert!(refused, "the MUTUAL server never applied:\n{}", gw.log());
    // ...and the connection made under the SIMPLE server cannot use the MUTUAL routes.
    let served = locked.requests();
    let resp = sender.send_request(get()).await.unwrap();
    assert_eq!(resp.status(), 421);
    assert_eq!(locked.requests(), served);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_credential_is_reported_and_picked_up_once_written() {
    let ca = Ca::new("example.com");
    let creds = TempDir::new("creds");
    let httpbin = Backend::start("httpbin").await;
    let yaml = gateway(&[server(
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
    assert!(
        gw.wait_log("httpbin-credential", Duration::from_secs(5))
            .await,
        "the missing credential was not reported:\n{}",
        gw.log()
    );
    let client = tls_client(&[ca.der()], None);
    let host = "httpbin.example.com";
    assert!(https_get(gw.addr(443), host, host, "/", client.clone())
        .await
        .is_err());

    write_credential(
        creds.path(),
        "httpbin-credential",
        &ca.server(&[host]),
        None,
    );
    let served = eventually(Duration::from_secs(10), || {
        let (addr, client) = (gw.addr(443), client.clone());
        async move {
            https_get(addr, host, host, "/status/418", client)
                .await
                .is_ok_and(|r| r.status == 418)
        }
    })
    .await;
    assert!(served, "the credential written later was never used");
}
