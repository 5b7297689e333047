//! The built-in TLS origination: rustls towards SIMPLE and MUTUAL DestinationRules
//! whose certificates are files (`caCertificates`, `clientCertificate`, `privateKey`),
//! checking `subjectAltNames` when given. One client config per cluster, cached.

use std::io;
use std::sync::Arc;

use dashmap::DashMap;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::router::snapshot::{Cluster, ClusterName, Endpoint, UpstreamTls, UpstreamTlsMode};

use super::connect::{BoxFuture, TlsStream, UpstreamTlsConnector};

/// Used when a SIMPLE rule names no CA (egress to public services).
const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

type CacheKey = (ClusterName, Vec<Vec<u8>>);

#[derive(Default)]
pub struct BuiltinTlsConnector {
    configs: DashMap<CacheKey, (UpstreamTls, Arc<ClientConfig>)>,
}

impl BuiltinTlsConnector {
    pub fn new() -> BuiltinTlsConnector {
        BuiltinTlsConnector::default()
    }

    fn config(
        &self,
        cluster: &Cluster,
        tls: &UpstreamTls,
        alpn: &[&'static [u8]],
    ) -> io::Result<Arc<ClientConfig>> {
        let key = (
            cluster.name.clone(),
            alpn.iter().map(|p| p.to_vec()).collect::<Vec<_>>(),
        );
        if let Some(entry) = self.configs.get(&key) {
            if entry.0 == *tls {
                return Ok(entry.1.clone());
            }
        }
        let config = Arc::new(build_config(cluster, tls, alpn)?);
        self.configs.insert(key, (tls.clone(), config.clone()));
        Ok(config)
    }
}

impl UpstreamTlsConnector for BuiltinTlsConnector {
    fn connect<'a>(
        &'a self,
        tcp: TcpStream,
        _endpoint: &'a Endpoint,
        cluster: &'a Cluster,
        alpn: &'a [&'static [u8]],
    ) -> BoxFuture<'a, io::Result<TlsStream>> {
        Box::pin(async move {
            let tls = cluster
                .policy
                .tls
                .as_ref()
                .ok_or_else(|| io::Error::other("the cluster has no TLS settings"))?;
            let config = self.config(cluster, tls, alpn)?;
            let sni = tls.sni.clone().unwrap_or_else(|| cluster.host.clone());
            let name = ServerName::try_from(sni.clone()).map_err(|_| {
                io::Error::new(io::ErrorKind::InvalidInput, format!("invalid SNI {sni:?}"))
            })?;
            let stream = TlsConnector::from(config).connect(name, tcp).await?;
            let negotiated_h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
            Ok(TlsStream {
                io: Box::new(stream),
                negotiated_h2,
            })
        })
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

fn build_config(
    cluster: &Cluster,
    tls: &UpstreamTls,
    alpn: &[&'static [u8]],
) -> io::Result<ClientConfig> {
    if matches!(tls.mode, UpstreamTlsMode::IstioMutual) || tls.credential_name.is_some() {
        return Err(invalid(format!(
            "{}: ISTIO_MUTUAL and credentialName need the mesh/credential TLS connector",
            cluster.name
        )));
    }
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(e.to_string()))?;
    let verifier: Arc<dyn ServerCertVerifier> = if tls.insecure_skip_verify {
        Arc::new(NoVerify(provider()))
    } else {
        let ca_path = tls.ca_certificates.as_deref().unwrap_or(SYSTEM_CA_BUNDLE);
        let mut roots = RootCertStore::empty();
        for cert in read_certs(ca_path)? {
            roots
                .add(cert)
                .map_err(|e| invalid(format!("{ca_path}: {e}")))?;
        }
        let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
            .build()
            .map_err(|e| invalid(format!("{ca_path}: {e}")))?;
        let sans = tls
            .subject_alt_names
            .iter()
            .filter_map(|s| ServerName::try_from(s.clone()).ok())
            .collect();
        Arc::new(SanVerifier { inner, sans })
    };
    let builder = builder
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut config = match (tls.mode, &tls.client_certificate, &tls.private_key) {
        (UpstreamTlsMode::Mutual, Some(cert), Some(key)) => builder
            .with_client_auth_cert(read_certs(cert)?, read_key(key)?)
            .map_err(|e| invalid(format!("{cert}: {e}")))?,
        (UpstreamTlsMode::Mutual, _, _) => {
            return Err(invalid(format!(
                "{}: MUTUAL needs clientCertificate and privateKey",
                cluster.name
            )))
        }
        _ => builder.with_no_client_auth(),
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(config)
}

fn read_certs(path: &str) -> io::Result<Vec<CertificateDer<'static>>> {
    let pem = std::fs::read(path).map_err(|e| io::Error::new(e.kind(), format!("{path}: {e}")))?;
    let certs = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(format!("{path}: {e}")))?;
    if certs.is_empty() {
        return Err(invalid(format!("{path}: no PEM certificate")));
    }
    Ok(certs)
}

fn read_key(path: &str) -> io::Result<PrivateKeyDer<'static>> {
    let pem = std::fs::read(path).map_err(|e| io::Error::new(e.kind(), format!("{path}: {e}")))?;
    rustls_pemfile::private_key(&mut pem.as_slice())
        .map_err(|e| invalid(format!("{path}: {e}")))?
        .ok_or_else(|| invalid(format!("{path}: no PEM private key")))
}

/// WebPKI verification against the SNI, or — when `subjectAltNames` is set — against
/// any one of those names, as Istio's `subjectAltNames` means.
#[derive(Debug)]
struct SanVerifier {
    inner: Arc<WebPkiServerVerifier>,
    sans: Vec<ServerName<'static>>,
}

impl ServerCertVerifier for SanVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if self.sans.is_empty() {
            return self.inner.verify_server_cert(
                end_entity,
                intermediates,
                server_name,
                ocsp,
                now,
            );
        }
        let mut last = rustls::Error::General("no subjectAltNames".into());
        for san in &self.sans {
            match self
                .inner
                .verify_server_cert(end_entity, intermediates, san, ocsp, now)
            {
                Ok(v) => return Ok(v),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// `insecureSkipVerify: true`: any certificate, but handshake signatures still checked.
#[derive(Debug)]
struct NoVerify(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
