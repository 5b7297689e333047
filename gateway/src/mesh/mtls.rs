//! Mesh mTLS between sidecars: the inbound server config (client certificate chained to
//! the mesh root required), the outbound client config (the server must present the
//! expected SPIFFE identity), and TLS-vs-plaintext detection for PERMISSIVE ports.

use std::sync::Arc;
use std::time::Duration;

use rustls::client::ResolvesClientCert;
use rustls::pki_types::CertificateDer;
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::version::{TLS12, TLS13};
use rustls::{ClientConfig, ServerConfig, SignatureScheme};
use tokio::net::TcpStream;

use super::identity::WorkloadCerts;
use super::peer_auth::MtlsMode;
use super::spiffe::{spiffe_id_from_cert, SpiffeId};
use super::MeshError;
use crate::tls::verify::{ChainServerVerifier, CheckedClientVerifier, EndEntityCheck};
use crate::tls::{alpn_list, provider, ServerTlsStream, DEFAULT_ALPN, DEFAULT_HANDSHAKE_TIMEOUT};

/// The first byte of every TLS connection (a handshake record).
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// Inbound config: the workload's current certificate; clients must present a
/// certificate chained to the mesh root that carries a SPIFFE identity of this trust domain.
pub fn server_config(certs: &WorkloadCerts) -> Result<Arc<ServerConfig>, MeshError> {
    let webpki = WebPkiClientVerifier::builder_with_provider(certs.roots(), provider())
        .build()
        .map_err(|e| MeshError::Cert(format!("mesh client verifier: {e}")))?;
    let verifier =
        CheckedClientVerifier::new(webpki, spiffe_check(certs.trust_domain().to_string(), None));
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&TLS12, &TLS13])
        .map_err(|e| MeshError::Cert(format!("TLS versions: {e}")))?
        .with_client_cert_verifier(Arc::new(verifier))
        .with_cert_resolver(Arc::new(CurrentCert(certs.clone())));
    config.alpn_protocols = alpn_list(&DEFAULT_ALPN);
    Ok(Arc::new(config))
}

/// Outbound config: presents the workload certificate and verifies the server's chain
/// against the mesh root and its identity against `expected_peer` (any identity of this
/// trust domain when `None`). A mismatch fails the handshake naming both identities.
/// The server name passed to `connect` is sent as SNI but not checked.
pub fn client_config(
    certs: &WorkloadCerts,
    expected_peer: Option<SpiffeId>,
) -> Result<Arc<ClientConfig>, MeshError> {
    let verifier = ChainServerVerifier::new(
        certs.roots(),
        spiffe_check(certs.trust_domain().to_string(), expected_peer),
    );
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&TLS12, &TLS13])
        .map_err(|e| MeshError::Cert(format!("TLS versions: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_client_cert_resolver(Arc::new(CurrentCert(certs.clone())));
    config.alpn_protocols = alpn_list(&DEFAULT_ALPN);
    Ok(Arc::new(config))
}

fn spiffe_check(trust_domain: String, expected: Option<SpiffeId>) -> EndEntityCheck {
    Arc::new(move |cert: &CertificateDer<'_>| {
        let Some(id) = spiffe_id_from_cert(cert) else {
            return Err(
                "peer certificate carries no SPIFFE identity (URI SAN spiffe://TD/ns/NS/sa/SA)"
                    .into(),
            );
        };
        match &expected {
            Some(want) if *want != id => Err(format!(
                "peer identity {id} does not match the expected {want}"
            )),
            None if id.trust_domain != trust_domain => Err(format!(
                "peer identity {id} is outside trust domain '{trust_domain}'"
            )),
            _ => Ok(()),
        }
    })
}

/// The SPIFFE identity of a verified peer chain (leaf first).
pub fn peer_identity(peer_certs: &[CertificateDer<'_>]) -> Option<SpiffeId> {
    peer_certs
        .first()
        .and_then(|leaf| spiffe_id_from_cert(leaf))
}

/// True when the client's first byte starts a TLS handshake; the byte stays unread.
/// A connection closed before sending anything counts as plaintext.
pub async fn detect_tls(tcp: &TcpStream) -> std::io::Result<bool> {
    let mut first = [0u8; 1];
    let n = tcp.peek(&mut first).await?;
    Ok(n == 1 && first[0] == TLS_HANDSHAKE_RECORD)
}

/// The workload certificate of the moment, for both handshake directions.
#[derive(Debug)]
struct CurrentCert(WorkloadCerts);

impl ResolvesServerCert for CurrentCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.current().certified_key.clone())
    }
}

impl ResolvesClientCert for CurrentCert {
    fn resolve(&self, _hints: &[&[u8]], _schemes: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        Some(self.0.current().certified_key.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// What an inbound connection turned out to be.
#[derive(Debug)]
pub enum InboundConnection {
    /// Mesh mTLS, with the verified identity of the calling workload.
    Mtls {
        stream: Box<ServerTlsStream<TcpStream>>,
        peer: SpiffeId,
    },
    /// Plaintext (PERMISSIVE or DISABLE); nothing has been read from it.
    Plaintext(TcpStream),
}

/// Terminates mesh mTLS on a sidecar's inbound port according to the PeerAuthentication mode.
#[derive(Debug, Clone)]
pub struct MeshInbound {
    config: Arc<ServerConfig>,
    handshake_timeout: Duration,
}

impl MeshInbound {
    pub fn new(certs: &WorkloadCerts) -> Result<Self, MeshError> {
        Ok(MeshInbound {
            config: server_config(certs)?,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
        })
    }

    pub fn with_handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// STRICT: mTLS only (plaintext is refused). PERMISSIVE: mTLS when the client starts
    /// TLS, otherwise plaintext (also for clients that wait for the server to speak first).
    /// DISABLE: plaintext, untouched.
    pub async fn accept(
        &self,
        tcp: TcpStream,
        mode: MtlsMode,
    ) -> Result<InboundConnection, MeshError> {
        if mode == MtlsMode::Disable {
            return Ok(InboundConnection::Plaintext(tcp));
        }
        let deadline = tokio::time::Instant::now() + self.handshake_timeout;
        let is_tls = match tokio::time::timeout_at(deadline, detect_tls(&tcp)).await {
            Ok(result) => result?,
            Err(_) if mode == MtlsMode::Permissive => false,
            Err(_) => return Err(MeshError::Timeout(self.handshake_timeout)),
        };
        if !is_tls {
            return match mode {
                MtlsMode::Permissive => Ok(InboundConnection::Plaintext(tcp)),
                _ => Err(MeshError::PlaintextRefused),
            };
        }
        let stream = tokio::time::timeout_at(
            deadline,
            tokio_rustls::TlsAcceptor::from(self.config.clone()).accept(tcp),
        )
        .await
        .map_err(|_| MeshError::Timeout(self.handshake_timeout))?
        .map_err(|e| MeshError::Handshake(e.to_string()))?;
        let peer = stream
            .get_ref()
            .1
            .peer_certificates()
            .and_then(peer_identity)
            .ok_or_else(|| MeshError::Handshake("client presented no SPIFFE identity".into()))?;
        Ok(InboundConnection::Mtls {
            stream: Box::new(stream),
            peer,
        })
    }
}
