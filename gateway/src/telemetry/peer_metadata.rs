//! Istio's HTTP peer metadata exchange: `x-envoy-peer-metadata` (base64 of a protobuf
//! `google.protobuf.Struct` describing the workload) and `x-envoy-peer-metadata-id`
//! (`sidecar~IP~POD.NS~NS.svc.cluster.local`). The caller's sidecar adds them to
//! requests and the destination's sidecar to responses, so each side learns the other's
//! workload for its metric labels. Both headers come from the network: decoding
//! returns an error for anything malformed and never panics.

use std::collections::BTreeMap;

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use http::{HeaderMap, HeaderName, HeaderValue};
use prost::Message as _;
use prost_types::value::Kind;
use prost_types::{Struct, Value};

use super::identity::{PeerInfo, DEFAULT_CLUSTER};

pub const PEER_METADATA_HEADER: &str = "x-envoy-peer-metadata";
pub const PEER_METADATA_ID_HEADER: &str = "x-envoy-peer-metadata-id";
/// The same names as parsed `HeaderName`s: a `&str` name is parsed again on every
/// lookup, which the request path does several times per request.
pub const PEER_METADATA: HeaderName = HeaderName::from_static(PEER_METADATA_HEADER);
pub const PEER_METADATA_ID: HeaderName = HeaderName::from_static(PEER_METADATA_ID_HEADER);

/// Headers longer than this are refused before decoding.
pub const MAX_PEER_METADATA_LEN: usize = 16 * 1024;
/// Longer individual values are refused (Kubernetes names are at most 253 bytes;
/// label values 63).
const MAX_VALUE_LEN: usize = 1024;

/// Standard alphabet, padding optional: Envoy pads, other implementations may not.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PeerMetadataError {
    #[error("peer metadata is {0} bytes, over the {MAX_PEER_METADATA_LEN}-byte limit")]
    TooLong(usize),
    #[error("peer metadata is not valid base64")]
    Base64,
    #[error("peer metadata is not a protobuf Struct: {0}")]
    Protobuf(String),
    #[error("peer metadata field {0} is not a string of at most {MAX_VALUE_LEN} bytes")]
    BadField(String),
    #[error("peer metadata id {0:?} is not TYPE~IP~POD.NAMESPACE~DOMAIN")]
    BadId(String),
}

/// The workload facts Istio's node metadata carries.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PeerMetadata {
    /// `NAME`: the pod (instance) name.
    pub name: String,
    /// `NAMESPACE`.
    pub namespace: String,
    /// `WORKLOAD_NAME`: the deployment (or other owner) name.
    pub workload_name: String,
    /// `CLUSTER_ID`.
    pub cluster_id: String,
    /// `SERVICE_ACCOUNT`.
    pub service_account: String,
    /// `OWNER`: `kubernetes://apis/apps/v1/namespaces/NS/deployments/NAME`.
    pub owner: String,
    /// `APP_CONTAINERS`: comma-separated container names.
    pub app_containers: String,
    /// `INSTANCE_IPS`: comma-separated.
    pub instance_ips: String,
    /// `LABELS`: the pod labels (`app`, `version`, canonical-name ...).
    pub labels: BTreeMap<String, String>,
}

fn string_value(s: &str) -> Value {
    Value {
        kind: Some(Kind::StringValue(s.to_string())),
    }
}

impl PeerMetadata {
    /// The protobuf `Struct` bytes; empty fields are left out, as Envoy does.
    pub fn to_protobuf(&self) -> Vec<u8> {
        let mut fields = BTreeMap::new();
        for (key, value) in [
            ("NAME", &self.name),
            ("NAMESPACE", &self.namespace),
            ("WORKLOAD_NAME", &self.workload_name),
            ("CLUSTER_ID", &self.cluster_id),
            ("SERVICE_ACCOUNT", &self.service_account),
            ("OWNER", &self.owner),
            ("APP_CONTAINERS", &self.app_containers),
            ("INSTANCE_IPS", &self.instance_ips),
        ] {
            if !value.is_empty() {
                fields.insert(key.to_string(), string_value(value));
            }
        }
        if !self.labels.is_empty() {
            let labels = self
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), string_value(v)))
                .collect();
            fields.insert(
                "LABELS".to_string(),
                Value {
                    kind: Some(Kind::StructValue(Struct { fields: labels })),
                },
            );
        }
        Struct { fields }.encode_to_vec()
    }

    /// The `x-envoy-peer-metadata` header value.
    pub fn to_header_value(&self) -> String {
        BASE64.encode(self.to_protobuf())
    }

    /// Parses the `x-envoy-peer-metadata` value. Unknown keys and non-string values of
    /// keys not listed here are ignored, as Istio does; a listed key with a non-string
    /// value is an error.
    pub fn from_header_value(value: &[u8]) -> Result<PeerMetadata, PeerMetadataError> {
        if value.len() > MAX_PEER_METADATA_LEN {
            return Err(PeerMetadataError::TooLong(value.len()));
        }
        let trimmed = value.trim_ascii();
        let bytes = BASE64
            .decode(trimmed)
            .map_err(|_| PeerMetadataError::Base64)?;
        PeerMetadata::from_protobuf(&bytes)
    }

    pub fn from_protobuf(bytes: &[u8]) -> Result<PeerMetadata, PeerMetadataError> {
        let s = Struct::decode(bytes).map_err(|e| PeerMetadataError::Protobuf(e.to_string()))?;
        let mut m = PeerMetadata::default();
        for (key, value) in &s.fields {
            let slot = match key.as_str() {
                "NAME" => &mut m.name,
                "NAMESPACE" => &mut m.namespace,
                "WORKLOAD_NAME" => &mut m.workload_name,
                "CLUSTER_ID" => &mut m.cluster_id,
                "SERVICE_ACCOUNT" => &mut m.service_account,
                "OWNER" => &mut m.owner,
                "APP_CONTAINERS" => &mut m.app_containers,
                "INSTANCE_IPS" => &mut m.instance_ips,
                "LABELS" => {
                    if let Some(Kind::StructValue(labels)) = &value.kind {
                        for (k, v) in &labels.fields {
                            if let Some(Kind::StringValue(v)) = &v.kind {
                                if k.len() <= MAX_VALUE_LEN && v.len() <= MAX_VALUE_LEN {
                                    m.labels.insert(k.clone(), v.clone());
                                }
                            }
                        }
                    }
                    continue;
                }
                _ => continue,
            };
            match &value.kind {
                Some(Kind::StringValue(v)) if v.len() <= MAX_VALUE_LEN => *slot = v.clone(),
                _ => return Err(PeerMetadataError::BadField(key.clone())),
            }
        }
        Ok(m)
    }

    /// The workload name: `WORKLOAD_NAME`, else the last segment of `OWNER`, else the
    /// pod name.
    pub fn workload(&self) -> &str {
        if !self.workload_name.is_empty() {
            return &self.workload_name;
        }
        if let Some(last) = self.owner.rsplit('/').next().filter(|s| !s.is_empty()) {
            return last;
        }
        &self.name
    }

    /// Label values for metrics. `principal` comes from the peer's mTLS certificate
    /// (the header is not proof of identity); `None` reports `unknown`.
    pub fn to_peer_info(&self, principal: Option<&str>) -> PeerInfo {
        let cluster = if self.cluster_id.is_empty() {
            DEFAULT_CLUSTER
        } else {
            &self.cluster_id
        };
        PeerInfo::from_labels(self.workload(), &self.namespace, &self.labels, principal)
            .with_cluster(cluster)
    }

    /// Reads `x-envoy-peer-metadata` from `headers`: `None` when absent, an error when
    /// present but malformed.
    pub fn from_headers(headers: &HeaderMap) -> Option<Result<PeerMetadata, PeerMetadataError>> {
        headers
            .get(PEER_METADATA)
            .map(|v| PeerMetadata::from_header_value(v.as_bytes()))
    }

    /// Sets both exchange headers on an outgoing request or response.
    pub fn insert_headers(&self, id: &PeerNodeId, headers: &mut HeaderMap) {
        // Base64 and the id's characters are always valid header bytes; the id's parts
        // come from our own configuration, so a failure only skips the id header.
        if let Ok(v) = HeaderValue::from_str(&self.to_header_value()) {
            headers.insert(PEER_METADATA, v);
        }
        if let Ok(v) = HeaderValue::from_str(&id.to_string()) {
            headers.insert(PEER_METADATA_ID, v);
        }
    }
}

/// Removes both exchange headers, before a request or response leaves the mesh or
/// reaches the application.
pub fn strip_peer_headers(headers: &mut HeaderMap) {
    headers.remove(PEER_METADATA);
    headers.remove(PEER_METADATA_ID);
}

/// Envoy's node id, `TYPE~IP~POD.NAMESPACE~NAMESPACE.svc.cluster.local`
/// (`sidecar` for sidecars, `router` for gateways).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerNodeId {
    pub kind: String,
    pub ip: String,
    pub pod: String,
    pub namespace: String,
    pub domain: String,
}

impl PeerNodeId {
    pub fn sidecar(ip: &str, pod: &str, namespace: &str) -> Self {
        PeerNodeId {
            kind: "sidecar".to_string(),
            ip: ip.to_string(),
            pod: pod.to_string(),
            namespace: namespace.to_string(),
            domain: format!("{namespace}.svc.cluster.local"),
        }
    }

    pub fn parse(id: &str) -> Result<PeerNodeId, PeerMetadataError> {
        let bad = || PeerMetadataError::BadId(id.chars().take(128).collect());
        if id.len() > MAX_VALUE_LEN {
            return Err(bad());
        }
        let mut parts = id.split('~');
        let (Some(kind), Some(ip), Some(pod_ns), Some(domain), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(bad());
        };
        // The pod name may itself contain dots only in theory; Istio splits at the last.
        let (pod, namespace) = pod_ns.rsplit_once('.').ok_or_else(bad)?;
        if kind.is_empty() || pod.is_empty() || namespace.is_empty() {
            return Err(bad());
        }
        Ok(PeerNodeId {
            kind: kind.to_string(),
            ip: ip.to_string(),
            pod: pod.to_string(),
            namespace: namespace.to_string(),
            domain: domain.to_string(),
        })
    }
}

impl std::fmt::Display for PeerNodeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}~{}~{}.{}~{}",
            self.kind, self.ip, self.pod, self.namespace, self.domain
        )
    }
}

#[cfg(test)]
#[path = "peer_metadata_tests.rs"]
mod tests;
