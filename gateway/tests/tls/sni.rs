use std::time::{Duration, Instant};

use meshgate::router::snapshot::ServerTlsMode;
use meshgate::tls::{certificate_sans, CredentialStore, SniAcceptor};

use crate::support::*;

#[tokio::test]
async fn sni_chooses_the_server_and_its_certificate() {
    let creds = TempDir::new("sni");
    let ca = Ca::new("test root");
    let a = ca.server(&["a.example.com"]);
    let b = ca.server(&["*.b.example.com"]);
    write_credential_files(creds.path(), "a-cred", &a, None, false);
    // Istio's generic secret keys (cert/key) work too.
    write_credential_files(creds.path(), "b-cred", &b, None, true);
    let acceptor = SniAcceptor::new(
        vec![
            server(&["a.example.com"], policy(ServerTlsMode::Simple, "a-cred")),
            server(
                &["*.b.example.com"],
                policy(ServerTlsMode::Simple, "b-cred"),
            ),
        ],
        CredentialStore::new(creds.path()),
    )
    .unwrap();
    let mut srv = serve(acceptor).await;
    let config = client_config(&[ca.der()], None);

    let mut conn = connect(srv.addr, config.clone(), "a.example.com")
        .await
        .unwrap();
    ping(&mut conn).await.unwrap();
    assert_eq!(server_leaf(&conn), a.der);
    assert_eq!(conn.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let info = srv.next_result().await.unwrap();
    assert_eq!(
        (info.server_index, info.sni.as_deref()),
        (0, Some("a.example.com"))
    );
    assert_eq!(info.alpn.as_deref(), Some(&b"h2"[..]));
    assert!(info.peer_certs.is_empty());

    let mut conn = connect(srv.addr, config.clone(), "api.b.example.com")
        .await
        .unwrap();
    ping(&mut conn).await.unwrap();
    assert_eq!(
        certificate_sans(&server_leaf(&conn)),
        vec!["*.b.example.com".to_string()]
    );
    assert_eq!(srv.next_result().await.unwrap().server_index, 1);

    // No server for this name (and no `*` server): the handshake is refused.
    assert!(connect(srv.addr, config, "c.example.com").await.is_err());
    let err = srv.next_result().await.unwrap_err();
    assert!(err.contains("'c.example.com'"), "{err}");
}

#[tokio::test]
async fn replacing_the_files_rotates_the_certificate_for_new_handshakes() {
    let creds = TempDir::new("rotate");
    let ca = Ca::new("test root");
    let first = ca.server(&["web.example.com"]);
    write_credential_files(creds.path(), "web", &first, None, false);
    let acceptor = SniAcceptor::new(
        vec![server(&["*"], policy(ServerTlsMode::Simple, "web"))],
        CredentialStore::new(creds.path()),
    )
    .unwrap();
    let srv = serve(acceptor).await;
    let config = client_config(&[ca.der()], None);
    let mut before = connect(srv.addr, config.clone(), "web.example.com")
        .await
        .unwrap();
    ping(&mut before).await.unwrap();
    assert_eq!(server_leaf(&before), first.der);

    let second = ca.server(&["web.example.com"]);
    write_credential_files(creds.path(), "web", &second, None, false);
    let start = Instant::now();
    loop {
        let mut conn = connect(srv.addr, config.clone(), "web.example.com")
            .await
            .unwrap();
        ping(&mut conn).await.unwrap();
        if server_leaf(&conn) == second.der {
            break;
        }
        assert_eq!(server_leaf(&conn), first.der);
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "new certificate not served after 5 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The connection made before the rotation is untouched.
    ping(&mut before).await.unwrap();
    assert_eq!(server_leaf(&before), first.der);
}

#[tokio::test]
async fn a_broken_rotation_keeps_the_last_good_certificate_and_errors_name_the_path() {
    let creds = TempDir::new("broken");
    let ca = Ca::new("test root");
    let good = ca.server(&["web.example.com"]);
    write_credential_files(creds.path(), "web", &good, None, false);
    let store = CredentialStore::with_check_interval(creds.path(), Duration::ZERO);
    let acceptor = SniAcceptor::new(
        vec![
            server(&["web.example.com"], policy(ServerTlsMode::Simple, "web")),
            server(
                &["missing.example.com"],
                policy(ServerTlsMode::Simple, "missing"),
            ),
        ],
        store,
    )
    .unwrap();
    let mut srv = serve(acceptor).await;
    let config = client_config(&[ca.der()], None);

    let mut conn = connect(srv.addr, config.clone(), "web.example.com")
        .await
        .unwrap();
    ping(&mut conn).await.unwrap();
    srv.next_result().await.unwrap();
    // A key that does not parse, as a writer caught half-way would leave it.
    std::fs::write(
        creds.path().join("web/tls.key"),
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let mut conn = connect(srv.addr, config.clone(), "web.example.com")
        .await
        .unwrap();
    ping(&mut conn).await.unwrap();
    assert_eq!(server_leaf(&conn), good.der);
    srv.next_result().await.unwrap();

    assert!(connect(srv.addr, config, "missing.example.com")
        .await
        .is_err());
    let err = srv.next_result().await.unwrap_err();
    let wanted = creds.path().join("missing").display().to_string();
    assert!(err.contains(&wanted), "{err}");
}

#[tokio::test]
async fn a_tls13_only_server_refuses_tls12_clients() {
    let creds = TempDir::new("tls13");
    let ca = Ca::new("test root");
    write_credential_files(
        creds.path(),
        "web",
        &ca.server(&["web.example.com"]),
        None,
        false,
    );
    let mut p = policy(ServerTlsMode::Simple, "web");
    p.min_tls13 = true;
    let acceptor =
        SniAcceptor::new(vec![server(&["*"], p)], CredentialStore::new(creds.path())).unwrap();
    let mut srv = serve(acceptor).await;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.der()).unwrap();
    let tls12 = rustls::ClientConfig::builder_with_provider(meshgate::tls::provider())
        .with_protocol_versions(&[&rustls::version::TLS12])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    assert!(
        connect(srv.addr, std::sync::Arc::new(tls12), "web.example.com")
            .await
            .is_err()
    );
    assert!(srv.next_result().await.is_err());
    let mut ok = connect(
        srv.addr,
        client_config(&[ca.der()], None),
        "web.example.com",
    )
    .await
    .unwrap();
    ping(&mut ok).await.unwrap();
    assert_eq!(
        ok.get_ref().1.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_3)
    );
}
