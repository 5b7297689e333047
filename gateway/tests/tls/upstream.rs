use meshgate::router::snapshot::{ServerTlsMode, UpstreamTls, UpstreamTlsMode};
use meshgate::tls::{client_config, upstream_server_name, CredentialStore, SniAcceptor};
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;

use crate::support::*;

fn upstream(mode: UpstreamTlsMode) -> UpstreamTls {
    UpstreamTls {
        mode,
        credential_name: None,
        client_certificate: None,
        private_key: None,
        ca_certificates: None,
        subject_alt_names: vec![],
        sni: None,
        insecure_skip_verify: false,
    }
}

async fn dial(
    addr: std::net::SocketAddr,
    config: std::sync::Arc<rustls::ClientConfig>,
    name: ServerName<'static>,
) -> Result<(), String> {
    let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let mut conn = tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .map_err(|e| e.to_string())?;
    ping(&mut conn).await
}

#[tokio::test]
async fn simple_verifies_against_the_ca_file_names_and_sans() {
    let dir = TempDir::new("upstream");
    let ca = Ca::new("upstream root");
    write_credential_files(
        dir.path(),
        "up",
        &ca.server(&["up.example.com"]),
        None,
        false,
    );
    let ca_file = dir.path().join("upstream-ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    let store = CredentialStore::new(dir.path());
    let srv = serve(
        SniAcceptor::new(
            vec![server(&["*"], policy(ServerTlsMode::Simple, "up"))],
            store.clone(),
        )
        .unwrap(),
    )
    .await;

    let mut tls = upstream(UpstreamTlsMode::Simple);
    tls.ca_certificates = Some(ca_file.display().to_string());
    let config = client_config(&tls, &store, &[b"h2"]).unwrap();
    dial(
        srv.addr,
        config.clone(),
        upstream_server_name(&tls, "up.example.com").unwrap(),
    )
    .await
    .unwrap();
    let err = dial(
        srv.addr,
        config,
        upstream_server_name(&tls, "other.example.com").unwrap(),
    )
    .await
    .unwrap_err();
    assert!(err.contains("not valid for name"), "{err}");

    // subjectAltNames replace the host-name check: connecting by IP works when the SAN is listed.
    tls.subject_alt_names = vec!["up.example.com".into()];
    let config = client_config(&tls, &store, &[b"h2"]).unwrap();
    dial(
        srv.addr,
        config,
        upstream_server_name(&tls, "127.0.0.1").unwrap(),
    )
    .await
    .unwrap();
    tls.subject_alt_names = vec!["else.example.com".into()];
    let config = client_config(&tls, &store, &[b"h2"]).unwrap();
    let err = dial(
        srv.addr,
        config,
        upstream_server_name(&tls, "127.0.0.1").unwrap(),
    )
    .await
    .unwrap_err();
    assert!(err.contains("match none of subjectAltNames"), "{err}");

    // An unknown CA fails, unless verification is switched off.
    let mut other = upstream(UpstreamTlsMode::Simple);
    let other_ca = dir.path().join("other-ca.pem");
    std::fs::write(&other_ca, Ca::new("other").pem()).unwrap();
    other.ca_certificates = Some(other_ca.display().to_string());
    let config = client_config(&other, &store, &[]).unwrap();
    assert!(dial(
        srv.addr,
        config,
        upstream_server_name(&other, "up.example.com").unwrap()
    )
    .await
    .is_err());
    other.insecure_skip_verify = true;
    let config = client_config(&other, &store, &[]).unwrap();
    dial(
        srv.addr,
        config,
        upstream_server_name(&other, "up.example.com").unwrap(),
    )
    .await
    .unwrap();

    // `sni` overrides the host.
    let mut with_sni = tls.clone();
    with_sni.sni = Some("named.example.com".into());
    assert_eq!(
        upstream_server_name(&with_sni, "10.0.0.1").unwrap(),
        ServerName::try_from("named.example.com").unwrap()
    );
}

#[tokio::test]
async fn mutual_presents_the_credential_certificate() {
    let dir = TempDir::new("upstream-mutual");
    let ca = Ca::new("mesh-less root");
    write_credential_files(
        dir.path(),
        "server",
        &ca.server(&["up.example.com"]),
        Some(&ca),
        false,
    );
    let client_leaf = ca.client("gateway.example.com");
    write_credential_files(dir.path(), "client", &client_leaf, Some(&ca), false);
    let store = CredentialStore::new(dir.path());
    let mut srv = serve(
        SniAcceptor::new(
            vec![server(&["*"], policy(ServerTlsMode::Mutual, "server"))],
            store.clone(),
        )
        .unwrap(),
    )
    .await;

    let mut tls = upstream(UpstreamTlsMode::Mutual);
    tls.credential_name = Some("client".into());
    let config = client_config(&tls, &store, &[b"h2", b"http/1.1"]).unwrap();
    dial(
        srv.addr,
        config,
        upstream_server_name(&tls, "up.example.com").unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(
        srv.next_result().await.unwrap().peer_certs,
        vec![client_leaf.der]
    );

    tls.credential_name = Some("absent".into());
    let err = client_config(&tls, &store, &[]).unwrap_err().to_string();
    assert!(err.contains("absent"), "{err}");
    let err = client_config(&upstream(UpstreamTlsMode::Simple), &store, &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("caCertificates"), "{err}");
}
