//! Istio's metric labels as typed label sets, and the label values they are built from
//! (who a peer is, which service was called). Values are interned `Arc<str>` so building
//! a series key copies pointers, not strings.

use std::fmt::Write as _;
use std::sync::Arc;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelSetEncoder};

use super::identity::{DestinationService, PeerInfo, DEFAULT_CLUSTER};

/// A label value: never empty when built through [`LabelValue::or`], escaped for the
/// OpenMetrics text format when encoded (the encoder writes values verbatim, and peer
/// metadata comes from the network).
#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord)]
pub struct LabelValue(Arc<str>);

impl LabelValue {
    pub fn new(value: &str) -> Self {
        LabelValue(Arc::from(value))
    }

    /// `value`, or `fallback` when `value` is empty.
    pub fn or(value: &str, fallback: &str) -> Self {
        LabelValue::new(if value.is_empty() { fallback } else { value })
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&str> for LabelValue {
    fn from(value: &str) -> Self {
        LabelValue::new(value)
    }
}

impl EncodeLabelValue for LabelValue {
    fn encode(
        &self,
        encoder: &mut prometheus_client::encoding::LabelValueEncoder,
    ) -> Result<(), std::fmt::Error> {
        write_escaped(encoder, &self.0)
    }
}

/// OpenMetrics label-value escaping: backslash, double quote and line feed.
pub(crate) fn write_escaped(out: &mut impl std::fmt::Write, value: &str) -> std::fmt::Result {
    let mut rest = value;
    while let Some(i) = rest.find(['\\', '"', '\n']) {
        out.write_str(&rest[..i])?;
        out.write_str(match rest.as_bytes()[i] {
            b'\\' => "\\\\",
            b'"' => "\\\"",
            _ => "\\n",
        })?;
        rest = &rest[i + 1..];
    }
    out.write_str(rest)
}

/// Which side of a hop reports a series.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum Reporter {
    /// Outbound sidecars and the ingress gateway.
    Source,
    /// Inbound sidecars.
    Destination,
}

impl Reporter {
    pub fn as_str(self) -> &'static str {
        match self {
            Reporter::Source => "source",
            Reporter::Destination => "destination",
        }
    }
}

/// `request_protocol`.
#[derive(Clone, Copy, Debug, Default, Hash, PartialEq, Eq)]
pub enum RequestProtocol {
    #[default]
    Http,
    /// A request with a `application/grpc*` content-type.
    Grpc,
    Tcp,
}

impl RequestProtocol {
    /// `Grpc` for an `application/grpc` content-type (with or without `+proto` etc.),
    /// else `Http`.
    pub fn from_content_type(content_type: Option<&http::HeaderValue>) -> RequestProtocol {
        match content_type {
            Some(v) if v.as_bytes().starts_with(b"application/grpc") => RequestProtocol::Grpc,
            _ => RequestProtocol::Http,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RequestProtocol::Http => "http",
            RequestProtocol::Grpc => "grpc",
            RequestProtocol::Tcp => "tcp",
        }
    }
}

/// `connection_security_policy`: what the destination reporter saw; a source reporter
/// says `unknown`.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum SecurityPolicy {
    Unknown,
    MutualTls,
    None,
}

impl SecurityPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            SecurityPolicy::Unknown => "unknown",
            SecurityPolicy::MutualTls => "mutual_tls",
            SecurityPolicy::None => "none",
        }
    }
}

/// L_PEER: the 20 labels naming both ends of a hop. Built once per edge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, prometheus_client::encoding::EncodeLabelSet)]
pub struct PeerLabels {
    pub reporter: &'static str,
    pub source_workload: LabelValue,
    pub source_workload_namespace: LabelValue,
    pub source_principal: LabelValue,
    pub source_app: LabelValue,
    pub source_version: LabelValue,
    pub source_canonical_service: LabelValue,
    pub source_canonical_revision: LabelValue,
    pub source_cluster: LabelValue,
    pub destination_workload: LabelValue,
    pub destination_workload_namespace: LabelValue,
    pub destination_principal: LabelValue,
    pub destination_app: LabelValue,
    pub destination_version: LabelValue,
    pub destination_service: LabelValue,
    pub destination_service_name: LabelValue,
    pub destination_service_namespace: LabelValue,
    pub destination_canonical_service: LabelValue,
    pub destination_canonical_revision: LabelValue,
    pub destination_cluster: LabelValue,
}

impl PeerLabels {
    pub fn new(
        reporter: Reporter,
        source: &PeerInfo,
        destination: &PeerInfo,
        service: &DestinationService,
    ) -> Self {
        PeerLabels {
            reporter: reporter.as_str(),
            source_workload: LabelValue::or(&source.workload, "unknown"),
            source_workload_namespace: LabelValue::or(&source.namespace, "unknown"),
            source_principal: LabelValue::or(&source.principal, "unknown"),
            source_app: LabelValue::or(&source.app, "unknown"),
            source_version: LabelValue::or(&source.version, "unknown"),
            source_canonical_service: LabelValue::or(&source.canonical_service, "unknown"),
            source_canonical_revision: LabelValue::or(&source.canonical_revision, "latest"),
            source_cluster: LabelValue::or(&source.cluster, DEFAULT_CLUSTER),
            destination_workload: LabelValue::or(&destination.workload, "unknown"),
            destination_workload_namespace: LabelValue::or(&destination.namespace, "unknown"),
            destination_principal: LabelValue::or(&destination.principal, "unknown"),
            destination_app: LabelValue::or(&destination.app, "unknown"),
            destination_version: LabelValue::or(&destination.version, "unknown"),
            destination_service: LabelValue::or(&service.fqdn, "unknown"),
            destination_service_name: LabelValue::or(&service.name, "unknown"),
            destination_service_namespace: LabelValue::or(&service.namespace, "unknown"),
            destination_canonical_service: LabelValue::or(
                &destination.canonical_service,
                "unknown",
            ),
            destination_canonical_revision: LabelValue::or(
                &destination.canonical_revision,
                "latest",
            ),
            destination_cluster: LabelValue::or(&destination.cluster, DEFAULT_CLUSTER),
        }
    }
}

/// [`PeerLabels`] shared by every series of one edge: cloning a series key is one
/// reference-count increment instead of twenty.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub struct SharedPeerLabels(pub Arc<PeerLabels>);

impl EncodeLabelSet for SharedPeerLabels {
    fn encode(&self, encoder: LabelSetEncoder) -> Result<(), std::fmt::Error> {
        self.0.encode(encoder)
    }
}

/// L_HTTP: L_PEER plus the request outcome. Labels of `istio_requests_total`,
/// `istio_request_duration_milliseconds`, `istio_request_bytes`, `istio_response_bytes`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, prometheus_client::encoding::EncodeLabelSet)]
pub struct HttpLabels {
    pub request_protocol: &'static str,
    /// `0` when no response was sent.
    pub response_code: u16,
    /// Empty for non-gRPC requests, as Istio emits (Prometheus treats it as absent and
    /// Kiali reads it only for `request_protocol="grpc"`).
    pub grpc_response_status: Option<u8>,
    pub response_flags: LabelValue,
    pub connection_security_policy: &'static str,
    #[prometheus(flatten)]
    pub peer: SharedPeerLabels,
}

/// Labels of the TCP metrics: L_PEER plus `request_protocol="tcp"`, flags and policy.
#[derive(Clone, Debug, Hash, PartialEq, Eq, prometheus_client::encoding::EncodeLabelSet)]
pub struct TcpLabels {
    pub request_protocol: &'static str,
    pub response_flags: LabelValue,
    pub connection_security_policy: &'static str,
    #[prometheus(flatten)]
    pub peer: SharedPeerLabels,
}

/// `istio_build{component, tag}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, prometheus_client::encoding::EncodeLabelSet)]
pub struct BuildLabels {
    pub component: &'static str,
    pub tag: String,
}

/// Envoy's response flags as a bit set; `Display` gives the short names joined by `,`,
/// or `-` when none is set.
#[derive(Clone, Copy, Debug, Default, Hash, PartialEq, Eq)]
pub struct ResponseFlags(pub u32);

macro_rules! response_flags {
    ($($name:ident = $bit:expr, $short:literal, $doc:literal;)*) => {
        impl ResponseFlags {
            $(#[doc = $doc] pub const $name: ResponseFlags = ResponseFlags(1 << $bit);)*
            const NAMES: &'static [(u32, &'static str)] = &[$((1 << $bit, $short)),*];
        }
    };
}

response_flags! {
    FAILED_LOCAL_HEALTHCHECK = 0, "LH", "No healthy upstream (local health check).";
    NO_HEALTHY_UPSTREAM = 1, "UH", "No healthy upstream host.";
    UPSTREAM_REQUEST_TIMEOUT = 2, "UT", "Upstream request timeout.";
    LOCAL_RESET = 3, "LR", "Connection local reset.";
    UPSTREAM_REMOTE_RESET = 4, "UR", "Upstream remote reset.";
    UPSTREAM_CONNECTION_FAILURE = 5, "UF", "Upstream connection failure.";
    UPSTREAM_CONNECTION_TERMINATION = 6, "UC", "Upstream connection termination.";
    UPSTREAM_OVERFLOW = 7, "UO", "Upstream overflow (circuit breaking).";
    NO_ROUTE_FOUND = 8, "NR", "No route configured.";
    DELAY_INJECTED = 9, "DI", "Request delayed by fault injection.";
    FAULT_INJECTED = 10, "FI", "Request aborted by fault injection.";
    RATE_LIMITED = 11, "RL", "Rate limited.";
    UNAUTHORIZED_EXTERNAL_SERVICE = 12, "UAEX", "Denied by an external authorization service.";
    RATELIMIT_SERVICE_ERROR = 13, "RLSE", "Rate limit service error.";
    DOWNSTREAM_CONNECTION_TERMINATION = 14, "DC", "Downstream connection termination.";
    UPSTREAM_RETRY_LIMIT_EXCEEDED = 15, "URX", "Upstream retry limit exceeded.";
    STREAM_IDLE_TIMEOUT = 16, "SI", "Stream idle timeout.";
    INVALID_ENVOY_REQUEST_HEADERS = 17, "IH", "Invalid request headers.";
    DOWNSTREAM_PROTOCOL_ERROR = 18, "DPE", "Downstream protocol error.";
    UPSTREAM_MAX_STREAM_DURATION_REACHED = 19, "UMSDR", "Upstream max stream duration reached.";
    RESPONSE_FROM_CACHE_FILTER = 20, "RFCF", "Response served from cache.";
    NO_FILTER_CONFIG_FOUND = 21, "NFCF", "No filter config found.";
    DURATION_TIMEOUT = 22, "DT", "Request or connection exceeded its max duration.";
    UPSTREAM_PROTOCOL_ERROR = 23, "UPE", "Upstream protocol error.";
    NO_CLUSTER_FOUND = 24, "NC", "Upstream cluster not found.";
    OVERLOAD_MANAGER = 25, "OM", "Overload manager terminated the request.";
    DNS_RESOLUTION_FAILURE = 26, "DF", "DNS resolution failed.";
    DOWNSTREAM_REMOTE_RESET = 27, "DR", "Downstream remote reset.";
}

impl ResponseFlags {
    pub const NONE: ResponseFlags = ResponseFlags(0);

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn contains(self, other: ResponseFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// The flag for an Envoy short name (`UF`), if known.
    pub fn from_short_name(name: &str) -> Option<ResponseFlags> {
        Self::NAMES
            .iter()
            .find(|(_, short)| *short == name)
            .map(|(bit, _)| ResponseFlags(*bit))
    }
}

impl std::ops::BitOr for ResponseFlags {
    type Output = ResponseFlags;
    fn bitor(self, rhs: ResponseFlags) -> ResponseFlags {
        ResponseFlags(self.0 | rhs.0)
    }
}

impl std::ops::BitOrAssign for ResponseFlags {
    fn bitor_assign(&mut self, rhs: ResponseFlags) {
        self.0 |= rhs.0;
    }
}

impl std::fmt::Display for ResponseFlags {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.is_empty() {
            return f.write_str("-");
        }
        let mut first = true;
        for (bit, short) in Self::NAMES {
            if self.0 & bit != 0 {
                if !first {
                    f.write_char(',')?;
                }
                f.write_str(short)?;
                first = false;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_print_like_envoy() {
        assert_eq!(ResponseFlags::NONE.to_string(), "-");
        assert_eq!(ResponseFlags::UPSTREAM_CONNECTION_FAILURE.to_string(), "UF");
        let both = ResponseFlags::NO_HEALTHY_UPSTREAM | ResponseFlags::UPSTREAM_REQUEST_TIMEOUT;
        assert_eq!(both.to_string(), "UH,UT");
        assert_eq!(
            ResponseFlags::from_short_name("FI"),
            Some(ResponseFlags::FAULT_INJECTED)
        );
        assert_eq!(ResponseFlags::from_short_name("ZZ"), None);
    }

    #[test]
    fn label_values_are_escaped() {
        let mut out = String::new();
        write_escaped(&mut out, "a\"b\\c\nd").unwrap();
        assert_eq!(out, "a\\\"b\\\\c\\nd");
    }
}
