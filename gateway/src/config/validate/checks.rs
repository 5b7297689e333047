//! The analyzer's checks: stable codes, severities and one-line summaries. Codes never
//! change meaning; a retired check keeps its number unused.

use crate::config::Severity;

/// One kind of problem the analyzer reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Check {
    pub code: &'static str,
    pub severity: Severity,
    pub summary: &'static str,
}

const fn check(code: &'static str, severity: Severity, summary: &'static str) -> Check {
    Check {
        code,
        severity,
        summary,
    }
}

use Severity::{Error, Warning};

pub const INVALID_REGEX: Check = check("MG0101", Error, "regex is not valid RE2");
pub const ZERO_TOTAL_WEIGHT: Check = check("MG0102", Error, "route weights add up to 0");
pub const NEGATIVE_WEIGHT: Check = check("MG0103", Error, "route weight is negative");
pub const UNKNOWN_SUBSET: Check = check(
    "MG0104",
    Error,
    "route to a subset no DestinationRule defines (503 NC)",
);
pub const UNKNOWN_GATEWAY: Check = check(
    "MG0105",
    Error,
    "VirtualService names a Gateway that does not exist",
);
pub const HOSTS_MATCH_NO_SERVER: Check = check(
    "MG0106",
    Warning,
    "VirtualService hosts match no server host of its Gateway (404 NR)",
);
pub const CLUSTER_HOST_ON_GATEWAY: Check = check(
    "MG0107",
    Warning,
    "VirtualService on a Gateway matches only an in-cluster Host header (404 NR otherwise)",
);
pub const UNKNOWN_HOST: Check = check(
    "MG0108",
    Warning,
    "destination host defined by no ServiceEntry or Service (503 UH)",
);
pub const DUPLICATE_PORT_NAME: Check = check(
    "MG0109",
    Error,
    "Gateway server port name used twice on one workload",
);
pub const UNREACHABLE_RULE: Check = check(
    "MG0110",
    Warning,
    "rules after a catch-all rule can never match",
);
pub const CONFLICTING_ACTIONS: Check = check(
    "MG0111",
    Error,
    "rule sets more than one of route, redirect, directResponse, delegate",
);
pub const INCOMPATIBLE_FIELDS: Check = check(
    "MG0112",
    Error,
    "fault with redirect/directResponse, or rewrite with redirect",
);
pub const NO_ACTION: Check = check("MG0113", Error, "rule has no route or other action");
pub const SERVER_TLS_MISSING: Check = check("MG0114", Error, "HTTPS or TLS server without tls");
pub const SERVER_CERT_MISSING: Check = check(
    "MG0115",
    Error,
    "terminating TLS server without credentialName or certificate files",
);
pub const PLAIN_SERVER_TLS: Check = check(
    "MG0116",
    Warning,
    "plain-text server sets tls beyond httpsRedirect (ignored)",
);
pub const INVALID_DURATION: Check = check("MG0117", Error, "invalid duration");
pub const PERCENT_OUT_OF_RANGE: Check = check("MG0118", Error, "percentage outside 0..100");
pub const INVALID_REDIRECT_CODE: Check = check(
    "MG0119",
    Error,
    "redirectCode not 301, 302, 303, 307 or 308",
);
pub const INVALID_DIRECT_STATUS: Check =
    check("MG0120", Error, "directResponse status outside 200..599");
pub const INCOMPLETE_FAULT: Check = check(
    "MG0121",
    Error,
    "fault abort without a valid status, or delay without fixedDelay",
);
pub const NEGATIVE_RETRIES: Check = check("MG0122", Error, "retries.attempts is negative");
pub const UNKNOWN_LOAD_BALANCER: Check =
    check("MG0123", Error, "unknown loadBalancer.simple value");
pub const UNKNOWN_TLS_MODE: Check = check("MG0124", Error, "unknown TLS or mTLS mode");
pub const VIRTUAL_SERVICE_WITHOUT_HOSTS: Check = check(
    "MG0125",
    Error,
    "VirtualService without hosts that is not a delegate",
);
pub const DESTINATION_RULE_WITHOUT_HOST: Check =
    check("MG0126", Error, "DestinationRule without host");
pub const DUPLICATE_DESTINATION_RULE: Check = check(
    "MG0127",
    Warning,
    "two DestinationRules for one host in one namespace",
);
pub const UNKNOWN_PROTOCOL: Check = check("MG0128", Error, "unknown or missing port protocol");
pub const DESTINATION_WITHOUT_HOST: Check =
    check("MG0129", Error, "route destination without host");
pub const UNKNOWN_DELEGATE: Check = check(
    "MG0130",
    Error,
    "delegate names a VirtualService that does not exist",
);

/// Every check, in code order (for `--help`-style listings and docs).
pub const CHECKS: &[Check] = &[
    INVALID_REGEX,
    ZERO_TOTAL_WEIGHT,
    NEGATIVE_WEIGHT,
    UNKNOWN_SUBSET,
    UNKNOWN_GATEWAY,
    HOSTS_MATCH_NO_SERVER,
    CLUSTER_HOST_ON_GATEWAY,
    UNKNOWN_HOST,
    DUPLICATE_PORT_NAME,
    UNREACHABLE_RULE,
    CONFLICTING_ACTIONS,
    INCOMPATIBLE_FIELDS,
    NO_ACTION,
    SERVER_TLS_MISSING,
    SERVER_CERT_MISSING,
    PLAIN_SERVER_TLS,
    INVALID_DURATION,
    PERCENT_OUT_OF_RANGE,
    INVALID_REDIRECT_CODE,
    INVALID_DIRECT_STATUS,
    INCOMPLETE_FAULT,
    NEGATIVE_RETRIES,
    UNKNOWN_LOAD_BALANCER,
    UNKNOWN_TLS_MODE,
    VIRTUAL_SERVICE_WITHOUT_HOSTS,
    DESTINATION_RULE_WITHOUT_HOST,
    DUPLICATE_DESTINATION_RULE,
    UNKNOWN_PROTOCOL,
    DESTINATION_WITHOUT_HOST,
    UNKNOWN_DELEGATE,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_in_order() {
        let codes: Vec<&str> = CHECKS.iter().map(|c| c.code).collect();
        let mut sorted = codes.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(codes, sorted);
        assert_eq!(codes.len(), 30);
    }
}
