//! TLS settings changing under a running `meshgate gateway`: credential files replaced
//! (rotation without restart), a credentialName changed on reload, a host moved to a
//! MUTUAL server, and a credential that only appears after start.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::certs::{write_credential, Ca};
use common::client::{get_over, https_get, peer_cert, tls_client, tls_connect};
use common::yaml::{http_route, tls_gateway, tls_server};
use common::{eventually, Backend, Gateway, TempDir};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaced_credential_files_apply_without_restart() {
    let ca = Ca::new("example.com");
    let creds = TempDir::new("creds");
    let first = ca.server(&["httpbin.example.com"]);
    write_credential(creds.path(), "httpbin-credential", &first, None);
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
        tls_gateway(&[tls_server(
            "https",
            "httpbin.example.com",
            "SIMPLE",
            Some(cred),
        )]) + &route
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
    let before =
        tls_gateway(&[tls_server("https", "*.example.com", "SIMPLE", Some("both"))]) + &routes;
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

    let after = tls_gateway(&[
        tls_server("https", "open.example.com", "SIMPLE", Some("both")),
        tls_server(
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
