//! Reading certificates and private keys from PEM files, with errors that name the file.

use std::path::Path;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::RootCertStore;

use super::TlsError;

/// Largest credential file read; real ones are a few KiB.
const MAX_PEM_FILE_BYTES: u64 = 1024 * 1024;

fn read_file(path: &Path) -> Result<Vec<u8>, TlsError> {
    let meta = std::fs::metadata(path).map_err(|e| TlsError::credential(path, e))?;
    if meta.len() > MAX_PEM_FILE_BYTES {
        return Err(TlsError::credential(
            path,
            format!("{} bytes is too large for a PEM file", meta.len()),
        ));
    }
    std::fs::read(path).map_err(|e| TlsError::credential(path, e))
}

/// Every `CERTIFICATE` block of the file, leaf first; at least one.
pub fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read_file(path)?;
    let certs = rustls_pemfile::certs(&mut bytes.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::credential(path, format!("bad PEM: {e}")))?;
    if certs.is_empty() {
        return Err(TlsError::credential(path, "no CERTIFICATE block found"));
    }
    Ok(certs)
}

/// The first private key of the file: PKCS#8, PKCS#1 (RSA) or SEC1 (EC).
pub fn read_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = read_file(path)?;
    match rustls_pemfile::private_key(&mut bytes.as_slice()) {
        Ok(Some(key)) => Ok(key),
        Ok(None) => Err(TlsError::credential(
            path,
            "no PRIVATE KEY block found (PKCS#8, RSA or EC PEM expected)",
        )),
        Err(e) => Err(TlsError::credential(path, format!("bad PEM: {e}"))),
    }
}

/// Trust anchors from a CA bundle; every certificate must be usable as an anchor.
pub fn read_roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let certs = read_certs(path)?;
    let mut roots = RootCertStore::empty();
    for cert in certs {
        roots
            .add(cert)
            .map_err(|e| TlsError::credential(path, format!("unusable CA certificate: {e}")))?;
    }
    Ok(roots)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_file() {
        let dir = std::env::temp_dir().join(format!("meshgate-pem-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let garbage = dir.join("garbage.pem");
        std::fs::write(&garbage, b"not pem at all").unwrap();
        let err = read_certs(&garbage).unwrap_err().to_string();
        assert!(
            err.contains("garbage.pem") && err.contains("no CERTIFICATE"),
            "{err}"
        );
        let err = read_private_key(&garbage).unwrap_err().to_string();
        assert!(err.contains("no PRIVATE KEY"), "{err}");
        let err = read_certs(&dir.join("missing.pem"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing.pem"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
