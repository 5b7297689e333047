//! The one error type of the tls module: every message names the file, server or peer involved.

use std::path::PathBuf;
use std::time::Duration;

/// Errors are `Clone` so a failed credential load can be cached and handed to every
/// handshake that asks within the same check interval.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TlsError {
    /// A credential file is missing or unreadable, or holds no usable PEM.
    #[error("credential {path}: {reason}")]
    Credential { path: PathBuf, reason: String },
    /// A configuration that cannot work (no CA for MUTUAL, DISABLE asked for a TLS config, ...).
    #[error("{0}")]
    Config(String),
    /// The ClientHello named a host no server on this port serves.
    #[error("no TLS server on this port serves SNI {}", .0.as_deref().map(|s| format!("'{s}'")).unwrap_or_else(|| "(none sent)".into()))]
    NoServerForSni(Option<String>),
    /// The chosen server is PASSTHROUGH: it must be forwarded, not terminated.
    #[error(
        "server #{0} is a PASSTHROUGH server: forward the connection instead of terminating it"
    )]
    Passthrough(usize),
    #[error("TLS handshake failed: {0}")]
    Handshake(String),
    #[error("TLS handshake did not finish within {0:?}")]
    Timeout(Duration),
}

impl TlsError {
    pub(crate) fn credential(path: impl Into<PathBuf>, reason: impl std::fmt::Display) -> Self {
        TlsError::Credential {
            path: path.into(),
            reason: reason.to_string(),
        }
    }
}
