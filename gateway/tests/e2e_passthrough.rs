//! Istio's TLS passthrough task through `meshgate gateway`: the client sees the
//! upstream's own certificate, unknown SNIs are closed, and one port can terminate one
//! host while passing another through.
#![allow(clippy::unwrap_used)]

mod common;

use common::certs::{server_config, write_credential, Ca};
use common::client::{get_over, peer_cert, tls_client, tls_connect};
use common::yaml::{http_route, service, tls_gateway, tls_server, virtual_service};
use common::{Backend, Gateway, TempDir};

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
    let yaml =
        tls_gateway(&[tls_server("tls", "nginx.example.com", "PASSTHROUGH", None)]) + &nginx.yaml();
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
    let yaml = tls_gateway(&[
        tls_server(
            "https",
            "httpbin.example.com",
            "SIMPLE",
            Some("httpbin-credential"),
        ),
        tls_server("tls", "nginx.example.com", "PASSTHROUGH", None),
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
