//! Certificate verifiers rustls does not ship: chain-only verification with our own name
//! check (Istio `subjectAltNames`, SPIFFE identities), client verification with an extra
//! SAN check, and the `insecureSkipVerify` verifier.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::verify_server_cert_signed_by_trust_anchor;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::ParsedCertificate;
use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, Error, OtherError, RootCertStore,
    SignatureScheme,
};

use super::provider;

/// Checks the peer's end-entity certificate after its chain was verified; the `Err`
/// text is what the handshake error says.
pub(crate) type EndEntityCheck =
    Arc<dyn Fn(&CertificateDer<'_>) -> Result<(), String> + Send + Sync>;

/// A handshake error carrying our own explanation.
pub(crate) fn identity_error(msg: String) -> Error {
    #[derive(Debug)]
    struct Msg(String);
    impl std::fmt::Display for Msg {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(&self.0)
        }
    }
    impl std::error::Error for Msg {}
    Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(Msg(msg)))))
}

fn algorithms() -> WebPkiSupportedAlgorithms {
    provider().signature_verification_algorithms
}

/// Verifies a server's chain against `roots`, then runs `check` on the leaf instead of
/// matching the server name.
pub(crate) struct ChainServerVerifier {
    roots: Arc<RootCertStore>,
    check: EndEntityCheck,
    algs: WebPkiSupportedAlgorithms,
}

impl ChainServerVerifier {
    pub(crate) fn new(roots: Arc<RootCertStore>, check: EndEntityCheck) -> Self {
        ChainServerVerifier {
            roots,
            check,
            algs: algorithms(),
        }
    }
}

impl std::fmt::Debug for ChainServerVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChainServerVerifier")
            .field("roots", &self.roots.len())
            .finish()
    }
}

impl ServerCertVerifier for ChainServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let parsed = ParsedCertificate::try_from(end_entity)?;
        verify_server_cert_signed_by_trust_anchor(
            &parsed,
            &self.roots,
            intermediates,
            now,
            self.algs.all,
        )?;
        (self.check)(end_entity).map_err(identity_error)?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls12_signature(message, cert, dss, &self.algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls13_signature(message, cert, dss, &self.algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algs.supported_schemes()
    }
}

/// `insecureSkipVerify`: any certificate is accepted, but handshake signatures are still
/// checked so the connection is at least bound to the presented key.
#[derive(Debug)]
pub(crate) struct SkipServerVerification {
    algs: WebPkiSupportedAlgorithms,
}

impl SkipServerVerification {
    pub(crate) fn new() -> Self {
        SkipServerVerification { algs: algorithms() }
    }
}

impl ServerCertVerifier for SkipServerVerification {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls12_signature(message, cert, dss, &self.algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls13_signature(message, cert, dss, &self.algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algs.supported_schemes()
    }
}

/// A client verifier (webpki: chain to the CA) followed by `check` on the client's leaf.
pub(crate) struct CheckedClientVerifier {
    inner: Arc<dyn ClientCertVerifier>,
    check: EndEntityCheck,
}

impl CheckedClientVerifier {
    pub(crate) fn new(inner: Arc<dyn ClientCertVerifier>, check: EndEntityCheck) -> Self {
        CheckedClientVerifier { inner, check }
    }
}

impl std::fmt::Debug for CheckedClientVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckedClientVerifier")
            .field("inner", &self.inner)
            .finish()
    }
}

impl ClientCertVerifier for CheckedClientVerifier {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        let verified = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)?;
        (self.check)(end_entity).map_err(identity_error)?;
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The check for Istio's `subjectAltNames`: one of the peer's SANs must be listed.
pub(crate) fn san_list_check(wanted: Vec<String>) -> EndEntityCheck {
    Arc::new(move |cert: &CertificateDer<'_>| {
        if super::matches_any_san(cert, &wanted) {
            Ok(())
        } else {
            Err(format!(
                "peer certificate SANs {:?} match none of subjectAltNames {:?}",
                super::certificate_sans(cert),
                wanted
            ))
        }
    })
}
