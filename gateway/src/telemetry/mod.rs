//! Telemetry owns Istio's standard metrics, the proxy's own health metrics, the peer
//! metadata exchange that lets both sides of a hop name each other, and the access log.

mod access_log;
mod access_log_writer;
mod exposition;
mod extra;
mod health;
mod histogram;
mod identity;
mod istio;
mod labels;
mod outcome_cache;
mod peer_metadata;
mod response_flags;

pub use access_log::{
    format_json, format_start_time, format_text, AccessLogEntry, AccessLogFormat,
};
pub use access_log_writer::{AccessLog, AccessLogThread, DEFAULT_ACCESS_LOG_QUEUE};
pub use exposition::{
    openmetrics_to_prometheus_text, Metrics, OPENMETRICS_CONTENT_TYPE, PROMETHEUS_TEXT_CONTENT_TYPE,
};
pub use extra::{ExtraMetric, ExtraMetrics, ExtraValue};
pub use health::{ActiveGuard, ListenerStats, PluginStats, ProxyMetrics};
pub use histogram::{AtomicHistogram, BucketLayout, DURATION_BUCKETS_MS, SIZE_BUCKETS_BYTES};
pub use identity::{
    spiffe_principal, DestinationService, EdgeSpec, PeerInfo, ProxyIdentity, ProxyKind,
    DEFAULT_CLUSTER,
};
pub use istio::{EdgeHandle, HttpRecord, IstioMetrics, DEFAULT_MAX_EDGES};
pub use labels::{
    HttpLabels, LabelValue, PeerLabels, Reporter, RequestProtocol, ResponseFlags, SecurityPolicy,
    TcpLabels,
};
pub use peer_metadata::{
    strip_peer_headers, PeerMetadata, PeerMetadataError, PeerNodeId, MAX_PEER_METADATA_LEN,
    PEER_METADATA, PEER_METADATA_HEADER, PEER_METADATA_ID, PEER_METADATA_ID_HEADER,
};
