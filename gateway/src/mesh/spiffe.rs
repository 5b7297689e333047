//! SPIFFE workload identities as Istio writes them: `spiffe://TD/ns/NS/sa/SA`.

use std::fmt;
use std::str::FromStr;

use x509_parser::extensions::GeneralName;

/// Istio's default trust domain.
pub const DEFAULT_TRUST_DOMAIN: &str = "cluster.local";

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SpiffeId {
    pub trust_domain: String,
    pub namespace: String,
    pub service_account: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{input}' is not a SPIFFE identity of the form spiffe://TRUST_DOMAIN/ns/NAMESPACE/sa/SERVICE_ACCOUNT: {reason}")]
pub struct SpiffeIdError {
    pub input: String,
    pub reason: &'static str,
}

impl SpiffeId {
    /// Checks each part (trust domain: lower-case host-like; names: Kubernetes-like).
    pub fn new(
        trust_domain: &str,
        namespace: &str,
        service_account: &str,
    ) -> Result<Self, SpiffeIdError> {
        let id = SpiffeId {
            trust_domain: trust_domain.to_string(),
            namespace: namespace.to_string(),
            service_account: service_account.to_string(),
        };
        let fail = |reason| {
            Err(SpiffeIdError {
                input: id.to_string(),
                reason,
            })
        };
        if !valid_trust_domain(trust_domain) {
            return fail("bad trust domain");
        }
        if !valid_segment(namespace) {
            return fail("bad namespace");
        }
        if !valid_segment(service_account) {
            return fail("bad service account");
        }
        Ok(id)
    }

    /// `spiffe://cluster.local/ns/NS/sa/SA` for the default trust domain.
    pub fn in_cluster(namespace: &str, service_account: &str) -> Result<Self, SpiffeIdError> {
        Self::new(DEFAULT_TRUST_DOMAIN, namespace, service_account)
    }
}

fn valid_trust_domain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 255
        && s.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'_')
        })
}

fn valid_segment(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

impl fmt::Display for SpiffeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "spiffe://{}/ns/{}/sa/{}",
            self.trust_domain, self.namespace, self.service_account
        )
    }
}

impl FromStr for SpiffeId {
    type Err = SpiffeIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let fail = |reason| SpiffeIdError {
            input: s.to_string(),
            reason,
        };
        let rest = s
            .strip_prefix("spiffe://")
            .ok_or_else(|| fail("missing spiffe:// scheme"))?;
        let mut parts = rest.split('/');
        match (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) {
            (Some(td), Some("ns"), Some(ns), Some("sa"), Some(sa), None) => {
                SpiffeId::new(td, ns, sa).map_err(|e| fail(e.reason))
            }
            _ => Err(fail("the path must be /ns/NAMESPACE/sa/SERVICE_ACCOUNT")),
        }
    }
}

/// The SPIFFE identity in a certificate's URI SANs (the first one that parses).
/// `None` for a certificate that does not parse or carries no SPIFFE URI.
pub fn spiffe_id_from_cert(der: &[u8]) -> Option<SpiffeId> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let san = cert.subject_alternative_name().ok()??;
    san.value.general_names.iter().find_map(|name| match name {
        GeneralName::URI(uri) => uri.parse().ok(),
        _ => None,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_malformed_ids() {
        let id: SpiffeId = "spiffe://cluster.local/ns/default/sa/temperature-api"
            .parse()
            .unwrap();
        assert_eq!(
            id,
            SpiffeId::in_cluster("default", "temperature-api").unwrap()
        );
        assert_eq!(
            id.to_string(),
            "spiffe://cluster.local/ns/default/sa/temperature-api"
        );
        for bad in [
            "",
            "spiffe://",
            "http://cluster.local/ns/a/sa/b",
            "spiffe://cluster.local/ns/a/sa/b/extra",
            "spiffe://cluster.local/sa/b/ns/a",
            "spiffe://cluster.local/ns//sa/b",
            "spiffe://Cluster.Local/ns/a/sa/b",
            "spiffe://cluster.local/ns/../sa/b",
        ] {
            let err = bad.parse::<SpiffeId>().unwrap_err();
            assert!(
                err.to_string().contains("spiffe://TRUST_DOMAIN"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn reads_the_uri_san_of_a_certificate() {
        let mut params = rcgen::CertificateParams::default();
        params.subject_alt_names = vec![
            rcgen::SanType::DnsName("x.test".try_into().unwrap()),
            rcgen::SanType::URI("https://not-spiffe.test/".try_into().unwrap()),
            rcgen::SanType::URI("spiffe://cluster.local/ns/shop/sa/cart".try_into().unwrap()),
        ];
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        assert_eq!(
            spiffe_id_from_cert(cert.der()),
            Some(SpiffeId::in_cluster("shop", "cart").unwrap())
        );
        let plain = rcgen::generate_simple_self_signed(vec!["x.test".into()]).unwrap();
        assert_eq!(spiffe_id_from_cert(plain.cert.der()), None);
        assert_eq!(spiffe_id_from_cert(b"\x30\x03garbage"), None);
    }
}
