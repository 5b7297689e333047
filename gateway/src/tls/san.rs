//! Subject alternative names of a certificate, and Istio's `subjectAltNames` matching.

use std::net::IpAddr;

use x509_parser::extensions::GeneralName;

/// The certificate's SANs as strings: DNS names, URIs, IP addresses and e-mails.
/// Empty for a certificate that does not parse or has no SAN extension.
pub fn certificate_sans(der: &[u8]) -> Vec<String> {
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) else {
        return Vec::new();
    };
    let Ok(Some(san)) = cert.subject_alternative_name() else {
        return Vec::new();
    };
    san.value
        .general_names
        .iter()
        .filter_map(|name| match name {
            GeneralName::DNSName(s) | GeneralName::URI(s) | GeneralName::RFC822Name(s) => {
                Some(s.to_string())
            }
            GeneralName::IPAddress(octets) => ip_from_octets(octets).map(|ip| ip.to_string()),
            _ => None,
        })
        .collect()
}

/// True when one of the certificate's SANs equals one of `wanted` (DNS names compared
/// case-insensitively; a `*.example.com` DNS SAN covers one label of `wanted`).
pub fn matches_any_san(der: &[u8], wanted: &[String]) -> bool {
    let sans = certificate_sans(der);
    wanted
        .iter()
        .any(|w| sans.iter().any(|san| san_matches(san, w)))
}

fn san_matches(san: &str, wanted: &str) -> bool {
    if san.eq_ignore_ascii_case(wanted) {
        return true;
    }
    match san.strip_prefix("*.") {
        Some(suffix) => match wanted.split_once('.') {
            Some((label, rest)) => {
                !label.is_empty() && !label.contains('*') && rest.eq_ignore_ascii_case(suffix)
            }
            None => false,
        },
        None => false,
    }
}

fn ip_from_octets(octets: &[u8]) -> Option<IpAddr> {
    match octets.len() {
        4 => <[u8; 4]>::try_from(octets).ok().map(IpAddr::from),
        16 => <[u8; 16]>::try_from(octets).ok().map(IpAddr::from),
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_san_covers_one_label() {
        assert!(san_matches("*.example.com", "a.example.com"));
        assert!(!san_matches("*.example.com", "a.b.example.com"));
        assert!(!san_matches("*.example.com", "example.com"));
        assert!(san_matches("API.example.com", "api.example.com"));
        assert!(san_matches(
            "spiffe://cluster.local/ns/a/sa/b",
            "spiffe://cluster.local/ns/a/sa/b"
        ));
    }

    #[test]
    fn sans_of_a_generated_cert() {
        let cert =
            rcgen::generate_simple_self_signed(vec!["a.example.com".into(), "10.0.0.1".into()])
                .unwrap();
        let sans = certificate_sans(cert.cert.der());
        assert_eq!(
            sans,
            vec!["a.example.com".to_string(), "10.0.0.1".to_string()]
        );
        assert!(matches_any_san(cert.cert.der(), &["10.0.0.1".into()]));
        assert!(!matches_any_san(cert.cert.der(), &["b.example.com".into()]));
        assert!(certificate_sans(b"garbage").is_empty());
    }
}
