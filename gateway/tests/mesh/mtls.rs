use std::time::Duration;

use meshgate::mesh::{client_config, peer_identity, MtlsMode, DEFAULT_CERT_LIFETIME};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::support::*;

#[tokio::test]
async fn mtls_between_two_workloads_exposes_both_identities() {
    let ca = mesh_ca("mtls");
    let server = workload(&ca, "default", "server", DEFAULT_CERT_LIFETIME);
    let client = workload(&ca, "shop", "client", Duration::from_secs(3600));
    let (addr, mut seen) = inbound(&server, MtlsMode::Strict).await;

    let config = client_config(&client, Some(id("default", "server"))).unwrap();
    let mut conn = dial(addr, config).await.unwrap();
    ping(&mut conn).await.unwrap();
    let conn_state = conn.get_ref().1;
    assert_eq!(
        peer_identity(conn_state.peer_certificates().unwrap()),
        Some(id("default", "server"))
    );
    assert_eq!(conn_state.alpn_protocol(), Some(&b"h2"[..]));
    match next(&mut seen).await {
        Seen::Mtls(peer) => assert_eq!(peer, id("shop", "client")),
        other => panic!("{other:?}"),
    }

    // Without an expected identity any workload of the trust domain is accepted.
    let mut conn = dial(addr, client_config(&client, None).unwrap())
        .await
        .unwrap();
    ping(&mut conn).await.unwrap();
}

#[tokio::test]
async fn a_server_with_another_identity_fails_the_handshake() {
    let ca = mesh_ca("wrong-id");
    let server = workload(&ca, "default", "server", DEFAULT_CERT_LIFETIME);
    let client = workload(&ca, "default", "client", DEFAULT_CERT_LIFETIME);
    let (addr, _seen) = inbound(&server, MtlsMode::Strict).await;
    let config = client_config(&client, Some(id("default", "payments"))).unwrap();
    let err = dial(addr, config).await.unwrap_err();
    assert!(
        err.contains("spiffe://cluster.local/ns/default/sa/server does not match the expected spiffe://cluster.local/ns/default/sa/payments"),
        "{err}"
    );
}

#[tokio::test]
async fn workloads_of_another_mesh_are_rejected_both_ways() {
    let ca = mesh_ca("mesh-a");
    let other_ca = mesh_ca("mesh-b");
    let server = workload(&ca, "default", "server", DEFAULT_CERT_LIFETIME);
    let stranger = workload(&other_ca, "default", "client", DEFAULT_CERT_LIFETIME);
    let (addr, mut seen) = inbound(&server, MtlsMode::Strict).await;

    // The stranger does not trust our server...
    assert!(dial(addr, client_config(&stranger, None).unwrap())
        .await
        .is_err());
    assert!(matches!(next(&mut seen).await, Seen::Refused(_)));
    // ...and a client trusting our root but presenting the stranger's certificate is refused.
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(
            meshgate::mesh::MeshCa::load(&ca.0)
                .unwrap()
                .root_cert()
                .clone(),
        )
        .unwrap();
    let key = stranger.current().certified_key.clone();
    let config = rustls::ClientConfig::builder_with_provider(meshgate::tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(std::sync::Arc::new(AnyServer))
        .with_client_cert_resolver(std::sync::Arc::new(rustls::sign::SingleCertAndKey::from(
            key,
        )));
    let result = match dial(addr, std::sync::Arc::new(config)).await {
        Ok(mut conn) => ping(&mut conn).await,
        Err(e) => Err(e),
    };
    assert!(result.is_err());
    match next(&mut seen).await {
        // Both meshes' roots share a name, so webpki reports the signature, not the issuer.
        Seen::Refused(e) => assert!(e.contains("invalid peer certificate"), "{e}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn plaintext_to_a_strict_port_is_refused_and_permissive_serves_both() {
    let ca = mesh_ca("strict");
    let server = workload(&ca, "default", "server", DEFAULT_CERT_LIFETIME);
    let client = workload(&ca, "default", "client", DEFAULT_CERT_LIFETIME);

    let (strict, mut seen) = inbound(&server, MtlsMode::Strict).await;
    let mut tcp = TcpStream::connect(strict).await.unwrap();
    tcp.write_all(b"ping\n").await.unwrap();
    match next(&mut seen).await {
        Seen::Refused(e) => assert!(e.contains("plaintext connection refused"), "{e}"),
        other => panic!("{other:?}"),
    }
    assert!(
        ping(&mut tcp).await.is_err(),
        "a refused plaintext connection must not be answered"
    );

    let (permissive, mut seen) = inbound(&server, MtlsMode::Permissive).await;
    let mut tcp = TcpStream::connect(permissive).await.unwrap();
    tcp.write_all(b"hello").await.unwrap();
    let mut back = [0u8; 5];
    tokio::io::AsyncReadExt::read_exact(&mut tcp, &mut back)
        .await
        .unwrap();
    assert_eq!(&back, b"hello");
    assert!(matches!(next(&mut seen).await, Seen::Plaintext(b) if b == b"hello"));
    let mut conn = dial(
        permissive,
        client_config(&client, Some(id("default", "server"))).unwrap(),
    )
    .await
    .unwrap();
    ping(&mut conn).await.unwrap();
    assert!(matches!(next(&mut seen).await, Seen::Mtls(_)));
}

/// Accepts any server certificate: lets a test reach the server-side client check.
#[derive(Debug)]
struct AnyServer;

impl rustls::client::danger::ServerCertVerifier for AnyServer {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &rustls::pki_types::CertificateDer<'_>,
        d: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            m,
            c,
            d,
            &meshgate::tls::provider().signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &rustls::pki_types::CertificateDer<'_>,
        d: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            m,
            c,
            d,
            &meshgate::tls::provider().signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        meshgate::tls::provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}
