//! TLS towards upstreams (DestinationRule `tls`): SIMPLE and MUTUAL client configs.

use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::danger::ServerCertVerifier;
use rustls::client::{ResolvesClientCert, WebPkiServerVerifier};
use rustls::pki_types::ServerName;
use rustls::sign::CertifiedKey;
use rustls::version::{TLS12, TLS13};
use rustls::{ClientConfig, RootCertStore, SignatureScheme};

use super::credentials::{CredentialSource, CredentialStore};
use super::{alpn_list, pem, provider, verify, TlsError};
use crate::router::snapshot::{UpstreamTls, UpstreamTlsMode};

/// A client config for `tls` (SIMPLE or MUTUAL). The server is verified against
/// `caCertificates` (or the credential's `ca.crt`); with `subjectAltNames` one of those
/// names must be in its certificate (instead of the host name), and
/// `insecureSkipVerify` turns verification off. MUTUAL presents the credential's
/// certificate, re-read from the store on each handshake so rotation applies.
pub fn client_config(
    tls: &UpstreamTls,
    store: &CredentialStore,
    alpn: &[&[u8]],
) -> Result<Arc<ClientConfig>, TlsError> {
    match tls.mode {
        UpstreamTlsMode::Disable => {
            return Err(TlsError::Config(
                "tls mode DISABLE: the upstream is plaintext, there is no client TLS config".into(),
            ))
        }
        UpstreamTlsMode::IstioMutual => return Err(TlsError::Config(
            "ISTIO_MUTUAL uses the mesh workload certificate: build it with mesh::client_config"
                .into(),
        )),
        UpstreamTlsMode::Simple | UpstreamTlsMode::Mutual => {}
    }
    let verifier = server_verifier(tls, store)?;
    let builder = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&TLS12, &TLS13])
        .map_err(|e| TlsError::Config(format!("TLS versions: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut config = if tls.mode == UpstreamTlsMode::Mutual {
        let source = client_cert_source(tls)?;
        // Fail now, naming the files, rather than on the first connection.
        store.get_source(&source)?.certified_key()?;
        builder.with_client_cert_resolver(Arc::new(StoreClientCert {
            store: store.clone(),
            source,
        }))
    } else {
        builder.with_no_client_auth()
    };
    config.alpn_protocols = alpn_list(alpn);
    Ok(Arc::new(config))
}

/// The name to connect with: `sni` when set, else the destination host (an IP address
/// sends no SNI).
pub fn upstream_server_name(
    tls: &UpstreamTls,
    host: &str,
) -> Result<ServerName<'static>, TlsError> {
    let name = tls.sni.as_deref().unwrap_or(host);
    let name = name.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(name.to_string())
        .map_err(|e| TlsError::Config(format!("'{name}' is not a valid TLS server name: {e}")))
}

fn server_verifier(
    tls: &UpstreamTls,
    store: &CredentialStore,
) -> Result<Arc<dyn ServerCertVerifier>, TlsError> {
    if tls.insecure_skip_verify {
        return Ok(Arc::new(verify::SkipServerVerification::new()));
    }
    let roots: Arc<RootCertStore> = match (&tls.credential_name, &tls.ca_certificates) {
        (Some(name), _) => store.get(name)?.ca()?.clone(),
        (None, Some(ca)) => Arc::new(pem::read_roots(&PathBuf::from(ca))?),
        (None, None) => {
            return Err(TlsError::Config(
                "no CA to verify the upstream: set caCertificates, a credentialName holding ca.crt, or insecureSkipVerify".into(),
            ))
        }
    };
    if tls.subject_alt_names.is_empty() {
        let verifier = WebPkiServerVerifier::builder_with_provider(roots, provider())
            .build()
            .map_err(|e| TlsError::Config(format!("server certificate verifier: {e}")))?;
        Ok(verifier)
    } else {
        Ok(Arc::new(verify::ChainServerVerifier::new(
            roots,
            verify::san_list_check(tls.subject_alt_names.clone()),
        )))
    }
}

/// `credentialName` wins over inline files, as in Istio.
fn client_cert_source(tls: &UpstreamTls) -> Result<CredentialSource, TlsError> {
    if let Some(name) = &tls.credential_name {
        return Ok(CredentialSource::Named(name.clone()));
    }
    match (&tls.client_certificate, &tls.private_key) {
        (Some(cert), Some(key)) => Ok(CredentialSource::Files {
            cert: Some(PathBuf::from(cert)),
            key: Some(PathBuf::from(key)),
            ca: None,
        }),
        _ => Err(TlsError::Config(
            "tls mode MUTUAL needs credentialName or clientCertificate + privateKey".into(),
        )),
    }
}

/// The client certificate, fetched from the store at each handshake.
#[derive(Debug)]
struct StoreClientCert {
    store: CredentialStore,
    source: CredentialSource,
}

impl ResolvesClientCert for StoreClientCert {
    fn resolve(&self, _hints: &[&[u8]], _schemes: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        match self
            .store
            .get_source(&self.source)
            .and_then(|c| c.certified_key().cloned())
        {
            Ok(key) => Some(key),
            Err(e) => {
                tracing::warn!(error = %e, "no client certificate for upstream mTLS");
                None
            }
        }
    }

    fn has_certs(&self) -> bool {
        true
    }
}
