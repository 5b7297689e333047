//! What the API needs to know to reach temperature-service, checked once at start-up.

use std::time::Duration;

use http::uri::{Authority, Scheme};
use http::Uri;

/// How temperature-api reaches temperature-service.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Where to connect, as `http://HOST:PORT` (gRPC over cleartext HTTP/2). In a mesh this
    /// is the local sidecar's outbound port, e.g. `http://127.0.0.1:15001`.
    pub temperature_service: Uri,
    /// The `:authority` to send instead of the one in `temperature_service`, so that a
    /// proxy on the way can route by service name, e.g.
    /// `temperature-service.default.svc.cluster.local:8080`. `None` sends the target's.
    pub authority: Option<Authority>,
    /// Bound on one Convert call, connecting included.
    pub timeout: Duration,
}

impl ApiConfig {
    /// The default per-call bound.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

    /// Calls `temperature_service` directly, with its own authority and the default timeout.
    pub fn new(temperature_service: Uri) -> Self {
        ApiConfig {
            temperature_service,
            authority: None,
            timeout: Self::DEFAULT_TIMEOUT,
        }
    }

    /// Sends `authority` as `:authority` on every call.
    pub fn with_authority(mut self, authority: Authority) -> Self {
        self.authority = Some(authority);
        self
    }

    /// The `:authority` the calls carry.
    pub fn effective_authority(&self) -> Option<&Authority> {
        self.authority
            .as_ref()
            .or(self.temperature_service.authority())
    }

    /// Rejects a configuration the client cannot use (not `http://`, no host, zero timeout).
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.origin().map(|_| ())
    }

    /// Rejects targets the client cannot dial; returns the origin (`http://AUTHORITY`)
    /// the calls are addressed to.
    pub(crate) fn origin(&self) -> Result<Uri, ConfigError> {
        let target = &self.temperature_service;
        if target.scheme() != Some(&Scheme::HTTP) {
            return Err(ConfigError::Scheme(target.to_string()));
        }
        let authority = self
            .effective_authority()
            .ok_or_else(|| ConfigError::NoAuthority(target.to_string()))?;
        if self.timeout.is_zero() {
            return Err(ConfigError::ZeroTimeout);
        }
        Uri::builder()
            .scheme(Scheme::HTTP)
            .authority(authority.clone())
            .path_and_query("/")
            .build()
            .map_err(|err| ConfigError::Origin(err.to_string()))
    }
}

/// A configuration that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("temperature-service target '{0}' must start with http:// (gRPC over cleartext HTTP/2; a sidecar adds mTLS)")]
    Scheme(String),
    #[error("temperature-service target '{0}' has no host:port")]
    NoAuthority(String),
    #[error("the temperature-service call timeout must be more than zero")]
    ZeroTimeout,
    #[error("cannot build the gRPC origin: {0}")]
    Origin(String),
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn override_replaces_the_target_authority() {
        let config = ApiConfig::new(Uri::from_static("http://127.0.0.1:15001")).with_authority(
            Authority::from_static("temperature-service.default.svc.cluster.local:8080"),
        );
        assert_eq!(
            config.origin().unwrap(),
            "http://temperature-service.default.svc.cluster.local:8080/"
        );
        let plain = ApiConfig::new(Uri::from_static("http://127.0.0.1:8080"));
        assert_eq!(plain.origin().unwrap(), "http://127.0.0.1:8080/");
    }

    #[test]
    fn rejects_targets_it_cannot_dial() {
        let https = ApiConfig::new(Uri::from_static("https://example.com"));
        assert!(matches!(https.origin(), Err(ConfigError::Scheme(_))));
        let bare = ApiConfig::new(Uri::from_static("/path-only"));
        assert!(matches!(bare.origin(), Err(ConfigError::Scheme(_))));
        let mut zero = ApiConfig::new(Uri::from_static("http://127.0.0.1:1"));
        zero.timeout = Duration::ZERO;
        assert_eq!(zero.origin(), Err(ConfigError::ZeroTimeout));
    }
}
