//! Errors of the mesh module, each naming the file, identity or peer involved.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum MeshError {
    /// Reading or writing the CA folder.
    #[error("{path}: {reason}")]
    CaFiles { path: PathBuf, reason: String },
    /// Generating or signing a certificate.
    #[error("certificate: {0}")]
    Cert(String),
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    /// A plaintext connection reached a STRICT port.
    #[error("plaintext connection refused: mTLS is STRICT on this port")]
    PlaintextRefused,
    #[error("mesh mTLS handshake failed: {0}")]
    Handshake(String),
    #[error("mesh mTLS handshake did not finish within {0:?}")]
    Timeout(std::time::Duration),
    #[error("reading from the connection: {0}")]
    Io(#[from] std::io::Error),
}

impl MeshError {
    pub(crate) fn files(path: impl Into<PathBuf>, reason: impl std::fmt::Display) -> Self {
        MeshError::CaFiles {
            path: path.into(),
            reason: reason.to_string(),
        }
    }
}
