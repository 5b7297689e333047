//! Istio's metric labels as typed label sets, and the label values they are built from
//! (who a peer is, which service was called). Values are interned `Arc<str>` so building
//! a series key copies pointers, not strings.

use std::sync::Arc;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelSetEncoder};

use super::identity::{DestinationService, PeerInfo, DEFAULT_CLUSTER};
pub use super::response_flags::ResponseFlags;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        let mut out = String::new();
        write_escaped(&mut out, "a\"b\\c\nd").unwrap();
        assert_eq!(out, "a\\\"b\\\\c\\nd");
    }
}
