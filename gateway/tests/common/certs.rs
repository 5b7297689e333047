//! rcgen certificates: a CA, server and client leaves, credential folders in the
//! `DIR/NAME/{tls.crt,tls.key,ca.crt}` layout, and rustls server configs for backends.

use std::path::Path;
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::CertificateDer;

pub struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

/// A leaf certificate and key as PEM, with the certificate's DER.
pub struct Leaf {
    pub cert_pem: String,
    pub key_pem: String,
    pub der: CertificateDer<'static>,
}

impl Ca {
    pub fn new(name: &str) -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, name);
        params
            .distinguished_name
            .push(DnType::OrganizationName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).unwrap();
        Ca { cert, key }
    }

    pub fn pem(&self) -> String {
        self.cert.pem()
    }

    pub fn der(&self) -> CertificateDer<'static> {
        self.cert.der().clone()
    }

    pub fn server(&self, names: &[&str]) -> Leaf {
        self.leaf(names, ExtendedKeyUsagePurpose::ServerAuth)
    }

    pub fn client(&self, name: &str) -> Leaf {
        self.leaf(&[name], ExtendedKeyUsagePurpose::ClientAuth)
    }

    fn leaf(&self, names: &[&str], usage: ExtendedKeyUsagePurpose) -> Leaf {
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, names[0].to_string());
        params.extended_key_usages = vec![usage];
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().clone(),
        }
    }
}

/// Writes `root/NAME/{tls.crt,tls.key[,ca.crt]}`, each file replaced by rename as a
/// mounted secret update would (key first, so a reader never pairs a new cert with an
/// old key for long).
pub fn write_credential(root: &Path, name: &str, leaf: &Leaf, ca: Option<&Ca>) {
    write_credential_files(root, name, leaf, ca, false);
}

/// [`write_credential`], or with Istio's `cert`/`key`/`cacert` names when `istio_names`.
pub fn write_credential_files(
    root: &Path,
    name: &str,
    leaf: &Leaf,
    ca: Option<&Ca>,
    istio_names: bool,
) {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let (c, k, a) = if istio_names {
        ("cert", "key", "cacert")
    } else {
        ("tls.crt", "tls.key", "ca.crt")
    };
    let write = |file: &str, contents: &str| {
        let tmp = dir.join(format!(".{file}.tmp{}", fastrand::u32(..)));
        std::fs::write(&tmp, contents).unwrap();
        std::fs::rename(&tmp, dir.join(file)).unwrap();
    };
    write(k, &leaf.key_pem);
    write(c, &leaf.cert_pem);
    if let Some(ca) = ca {
        write(a, &ca.pem());
    }
}

/// A rustls server config presenting `leaf` (for TLS backends behind PASSTHROUGH).
pub fn server_config(leaf: &Leaf) -> Arc<rustls::ServerConfig> {
    let certs = rustls_pemfile::certs(&mut leaf.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = rustls_pemfile::private_key(&mut leaf.key_pem.as_bytes())
        .unwrap()
        .unwrap();
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Arc::new(config)
}
