use std::time::{Duration, Instant};

use meshgate::router::snapshot::ServerTlsMode;
use meshgate::tls::{CredentialStore, SniAcceptor};

use crate::support::*;

struct Setup {
    _creds: TempDir,
    ca: Ca,
    srv: TestServer,
}

async fn setup(mode: ServerTlsMode) -> Setup {
    let creds = TempDir::new("mutual");
    let ca = Ca::new("test root");
    write_credential_files(
        creds.path(),
        "web",
        &ca.server(&["web.example.com"]),
        Some(&ca),
        false,
    );
    let acceptor = SniAcceptor::new(
        vec![server(&["web.example.com"], policy(mode, "web"))],
        CredentialStore::new(creds.path()),
    )
    .unwrap();
    Setup {
        srv: serve(acceptor).await,
        _creds: creds,
        ca,
    }
}

/// Connects and pings; Ok only if the server really accepted the client.
async fn session(s: &mut Setup, client: Option<&Leaf>) -> Result<(), String> {
    let config = client_config(&[s.ca.der()], client);
    let mut conn = connect(s.srv.addr, config, "web.example.com").await?;
    ping(&mut conn).await
}

#[tokio::test]
async fn mutual_without_client_certificate_fails_in_the_handshake_promptly() {
    let mut s = setup(ServerTlsMode::Mutual).await;
    let start = Instant::now();
    assert!(session(&mut s, None).await.is_err());
    let err = s.srv.next_result().await.unwrap_err();
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "took {:?}",
        start.elapsed()
    );
    assert!(err.contains("handshake"), "{err}");
}

#[tokio::test]
async fn mutual_accepts_a_certificate_from_the_ca_and_rejects_another_ca() {
    let mut s = setup(ServerTlsMode::Mutual).await;
    let good = s.ca.client("client.example.com");
    session(&mut s, Some(&good)).await.unwrap();
    let info = s.srv.next_result().await.unwrap();
    assert_eq!(info.peer_certs.len(), 1);
    assert_eq!(info.peer_certs[0], good.der);

    let stranger = Ca::new("other root").client("client.example.com");
    assert!(session(&mut s, Some(&stranger)).await.is_err());
    let err = s.srv.next_result().await.unwrap_err();
    assert!(
        err.contains("UnknownIssuer") || err.contains("unknown issuer"),
        "{err}"
    );
}

#[tokio::test]
async fn optional_mutual_verifies_a_certificate_only_when_given() {
    let mut s = setup(ServerTlsMode::OptionalMutual).await;
    session(&mut s, None).await.unwrap();
    assert!(s.srv.next_result().await.unwrap().peer_certs.is_empty());

    let good = s.ca.client("client.example.com");
    session(&mut s, Some(&good)).await.unwrap();
    assert_eq!(
        s.srv.next_result().await.unwrap().peer_certs,
        vec![good.der]
    );

    let stranger = Ca::new("other root").client("client.example.com");
    assert!(session(&mut s, Some(&stranger)).await.is_err());
    assert!(s.srv.next_result().await.is_err());
}

#[tokio::test]
async fn mutual_without_a_ca_file_is_an_error_naming_it() {
    let creds = TempDir::new("noca");
    let ca = Ca::new("test root");
    write_credential_files(
        creds.path(),
        "web",
        &ca.server(&["web.example.com"]),
        None,
        false,
    );
    let acceptor = SniAcceptor::new(
        vec![server(&["*"], policy(ServerTlsMode::Mutual, "web"))],
        CredentialStore::new(creds.path()),
    )
    .unwrap();
    let err = acceptor.server_config(0).unwrap_err().to_string();
    assert!(err.contains("ca.crt") && err.contains("web"), "{err}");
}

#[tokio::test]
async fn a_separate_cacert_credential_is_used_for_mutual() {
    let creds = TempDir::new("cacert");
    let ca = Ca::new("test root");
    write_credential_files(
        creds.path(),
        "web",
        &ca.server(&["web.example.com"]),
        None,
        false,
    );
    std::fs::create_dir_all(creds.path().join("web-cacert")).unwrap();
    std::fs::write(creds.path().join("web-cacert/ca.crt"), ca.pem()).unwrap();
    let acceptor = SniAcceptor::new(
        vec![server(&["*"], policy(ServerTlsMode::Mutual, "web"))],
        CredentialStore::new(creds.path()),
    )
    .unwrap();
    let mut s = Setup {
        srv: serve(acceptor).await,
        _creds: creds,
        ca,
    };
    let good = s.ca.client("client.example.com");
    session(&mut s, Some(&good)).await.unwrap();
    assert!(session(&mut s, None).await.is_err());
}
