//! The raw shape of every resource Meshgate reads: Istio's networking, security and
//! extensions APIs and Kubernetes `Service`/`Endpoints`, exactly as users write them.
//!
//! Field names are Istio's camelCase; the older snake_case spellings are accepted as
//! aliases. Durations and other strings with inner syntax stay strings here: they are
//! checked during validation/compile, where an error can name the field's line.

use std::collections::BTreeMap;

use serde::Deserialize;

pub type Labels = BTreeMap<String, String>;

/// `metadata` of any object.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectMeta {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub labels: Labels,
    #[serde(default)]
    pub annotations: Labels,
}

// ---------------------------------------------------------------- Gateway

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewaySpec {
    #[serde(default)]
    pub selector: Labels,
    #[serde(default)]
    pub servers: Vec<Server>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Server {
    pub port: ServerPort,
    #[serde(default)]
    pub bind: Option<String>,
    #[serde(default)]
    pub hosts: Vec<String>,
    #[serde(default)]
    pub tls: Option<ServerTls>,
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerPort {
    pub number: u32,
    #[serde(default)]
    pub protocol: String,
    #[serde(default)]
    pub name: String,
    #[serde(default, alias = "target_port")]
    pub target_port: Option<u32>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerTls {
    #[serde(default, alias = "https_redirect")]
    pub https_redirect: bool,
    /// PASSTHROUGH | SIMPLE | MUTUAL | AUTO_PASSTHROUGH | ISTIO_MUTUAL | OPTIONAL_MUTUAL
    #[serde(default)]
    pub mode: Option<String>,
    #[serde(default, alias = "server_certificate")]
    pub server_certificate: Option<String>,
    #[serde(default, alias = "private_key")]
    pub private_key: Option<String>,
    #[serde(default, alias = "ca_certificates")]
    pub ca_certificates: Option<String>,
    #[serde(default, alias = "credential_name")]
    pub credential_name: Option<String>,
    #[serde(default, alias = "subject_alt_names")]
    pub subject_alt_names: Vec<String>,
    #[serde(default, alias = "min_protocol_version")]
    pub min_protocol_version: Option<String>,
    #[serde(default, alias = "max_protocol_version")]
    pub max_protocol_version: Option<String>,
    #[serde(default, alias = "cipher_suites")]
    pub cipher_suites: Vec<String>,
}

// ---------------------------------------------------------------- VirtualService

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VirtualServiceSpec {
    #[serde(default)]
    pub hosts: Vec<String>,
    #[serde(default)]
    pub gateways: Vec<String>,
    #[serde(default)]
    pub http: Vec<HttpRoute>,
    #[serde(default)]
    pub tcp: Vec<TcpRoute>,
    #[serde(default)]
    pub tls: Vec<TlsRoute>,
    #[serde(default, alias = "export_to")]
    pub export_to: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpRoute {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, rename = "match")]
    pub matches: Vec<HttpMatchRequest>,
    #[serde(default)]
    pub route: Vec<HttpRouteDestination>,
    #[serde(default)]
    pub redirect: Option<HttpRedirect>,
    #[serde(default, alias = "direct_response")]
    pub direct_response: Option<HttpDirectResponse>,
    #[serde(default)]
    pub delegate: Option<Delegate>,
    #[serde(default)]
    pub rewrite: Option<HttpRewrite>,
    #[serde(default)]
    pub timeout: Option<String>,
    #[serde(default)]
    pub retries: Option<HttpRetry>,
    #[serde(default)]
    pub fault: Option<HttpFault>,
    #[serde(default)]
    pub mirror: Option<Destination>,
    #[serde(default, alias = "mirror_percentage")]
    pub mirror_percentage: Option<Percent>,
    /// Deprecated integer form of `mirrorPercentage`.
    #[serde(default, alias = "mirror_percent")]
    pub mirror_percent: Option<u32>,
    #[serde(default)]
    pub mirrors: Vec<HttpMirrorPolicy>,
    #[serde(default, alias = "cors_policy")]
    pub cors_policy: Option<CorsPolicy>,
    #[serde(default)]
    pub headers: Option<Headers>,
}

/// One `match` entry: every field set must hold (AND); entries are OR'ed.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpMatchRequest {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub uri: Option<StringMatch>,
    #[serde(default)]
    pub scheme: Option<StringMatch>,
    #[serde(default)]
    pub method: Option<StringMatch>,
    #[serde(default)]
    pub authority: Option<StringMatch>,
    #[serde(default)]
    pub headers: BTreeMap<String, StringMatch>,
    #[serde(default)]
    pub port: Option<u32>,
    #[serde(default, alias = "source_labels")]
    pub source_labels: Labels,
    #[serde(default)]
    pub gateways: Vec<String>,
    #[serde(default, alias = "query_params")]
    pub query_params: BTreeMap<String, StringMatch>,
    #[serde(default, alias = "ignore_uri_case")]
    pub ignore_uri_case: bool,
    #[serde(default, alias = "without_headers")]
    pub without_headers: BTreeMap<String, StringMatch>,
    #[serde(default, alias = "source_namespace")]
    pub source_namespace: Option<String>,
}

/// `{exact|prefix|regex: ...}`; all empty (`{}`) means "present".
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub struct StringMatch {
    #[serde(default)]
    pub exact: Option<String>,
    #[serde(default)]
    pub prefix: Option<String>,
    #[serde(default)]
    pub regex: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpRouteDestination {
    pub destination: Destination,
    #[serde(default)]
    pub weight: Option<i64>,
    #[serde(default)]
    pub headers: Option<Headers>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Destination {
    #[serde(default)]
    pub host: String,
    #[serde(default)]
    pub subset: Option<String>,
    #[serde(default)]
    pub port: Option<PortSelector>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct PortSelector {
    #[serde(default)]
    pub number: u32,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpRedirect {
    #[serde(default)]
    pub uri: Option<String>,
    #[serde(default)]
    pub authority: Option<String>,
    #[serde(default)]
    pub port: Option<u32>,
    /// FROM_PROTOCOL_DEFAULT | FROM_REQUEST_PORT
    #[serde(default, alias = "derive_port")]
    pub derive_port: Option<String>,
    #[serde(default)]
    pub scheme: Option<String>,
    #[serde(default, alias = "redirect_code")]
    pub redirect_code: Option<u32>,
    /// Replaces the matched uri prefix (as `rewrite.uri` does) instead of the whole path.
    #[serde(default, alias = "prefix_rewrite")]
    pub prefix_rewrite: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct HttpDirectResponse {
    pub status: u32,
    #[serde(default)]
    pub body: Option<HttpBody>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct HttpBody {
    #[serde(default)]
    pub string: Option<String>,
    /// base64, as in the protobuf JSON mapping.
    #[serde(default)]
    pub bytes: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Delegate {
    pub name: String,
    #[serde(default)]
    pub namespace: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpRewrite {
    #[serde(default)]
    pub uri: Option<String>,
    #[serde(default)]
    pub authority: Option<String>,
    #[serde(default, alias = "uri_regex_rewrite")]
    pub uri_regex_rewrite: Option<RegexRewrite>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct RegexRewrite {
    #[serde(rename = "match")]
    pub pattern: String,
    #[serde(default)]
    pub rewrite: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpRetry {
    #[serde(default)]
    pub attempts: i64,
    #[serde(default, alias = "per_try_timeout")]
    pub per_try_timeout: Option<String>,
    #[serde(default, alias = "retry_on")]
    pub retry_on: Option<String>,
    #[serde(default, alias = "retry_remote_localities")]
    pub retry_remote_localities: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct HttpFault {
    #[serde(default)]
    pub delay: Option<FaultDelay>,
    #[serde(default)]
    pub abort: Option<FaultAbort>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FaultDelay {
    #[serde(default, alias = "fixed_delay")]
    pub fixed_delay: Option<String>,
    #[serde(default)]
    pub percentage: Option<Percent>,
    /// Deprecated integer percent.
    #[serde(default)]
    pub percent: Option<u32>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FaultAbort {
    #[serde(default, alias = "http_status")]
    pub http_status: Option<u32>,
    /// gRPC status name (`UNAVAILABLE`) or number.
    #[serde(default, alias = "grpc_status")]
    pub grpc_status: Option<serde_yaml::Value>,
    #[serde(default)]
    pub percentage: Option<Percent>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq)]
pub struct Percent {
    #[serde(default)]
    pub value: f64,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct HttpMirrorPolicy {
    pub destination: Destination,
    #[serde(default)]
    pub percentage: Option<Percent>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CorsPolicy {
    #[serde(default, alias = "allow_origins")]
    pub allow_origins: Vec<StringMatch>,
    /// Deprecated exact-origin list.
    #[serde(default, alias = "allow_origin")]
    pub allow_origin: Vec<String>,
    #[serde(default, alias = "allow_methods")]
    pub allow_methods: Vec<String>,
    #[serde(default, alias = "allow_headers")]
    pub allow_headers: Vec<String>,
    #[serde(default, alias = "expose_headers")]
    pub expose_headers: Vec<String>,
    #[serde(default, alias = "max_age")]
    pub max_age: Option<String>,
    #[serde(default, alias = "allow_credentials")]
    pub allow_credentials: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Headers {
    #[serde(default)]
    pub request: Option<HeaderOperations>,
    #[serde(default)]
    pub response: Option<HeaderOperations>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct HeaderOperations {
    #[serde(default)]
    pub set: BTreeMap<String, String>,
    #[serde(default)]
    pub add: BTreeMap<String, String>,
    #[serde(default)]
    pub remove: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct TcpRoute {
    #[serde(default, rename = "match")]
    pub matches: Vec<L4Match>,
    #[serde(default)]
    pub route: Vec<RouteDestination>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct L4Match {
    #[serde(default, alias = "destination_subnets")]
    pub destination_subnets: Vec<String>,
    #[serde(default)]
    pub port: Option<u32>,
    #[serde(default, alias = "source_labels")]
    pub source_labels: Labels,
    #[serde(default)]
    pub gateways: Vec<String>,
    #[serde(default, alias = "source_namespace")]
    pub source_namespace: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct TlsRoute {
    #[serde(default, rename = "match")]
    pub matches: Vec<TlsMatch>,
    #[serde(default)]
    pub route: Vec<RouteDestination>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TlsMatch {
    #[serde(default, alias = "sni_hosts")]
    pub sni_hosts: Vec<String>,
    #[serde(default, alias = "destination_subnets")]
    pub destination_subnets: Vec<String>,
    #[serde(default)]
    pub port: Option<u32>,
    #[serde(default, alias = "source_labels")]
    pub source_labels: Labels,
    #[serde(default)]
    pub gateways: Vec<String>,
    #[serde(default, alias = "source_namespace")]
    pub source_namespace: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct RouteDestination {
    pub destination: Destination,
    #[serde(default)]
    pub weight: Option<i64>,
}

// ---------------------------------------------------------------- DestinationRule

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DestinationRuleSpec {
    #[serde(default)]
    pub host: String,
    #[serde(default, alias = "traffic_policy")]
    pub traffic_policy: Option<TrafficPolicy>,
    #[serde(default)]
    pub subsets: Vec<Subset>,
    #[serde(default, alias = "export_to")]
    pub export_to: Vec<String>,
    #[serde(default, alias = "workload_selector")]
    pub workload_selector: Option<WorkloadSelector>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrafficPolicy {
    #[serde(default, alias = "load_balancer")]
    pub load_balancer: Option<LoadBalancer>,
    #[serde(default, alias = "connection_pool")]
    pub connection_pool: Option<ConnectionPool>,
    #[serde(default, alias = "outlier_detection")]
    pub outlier_detection: Option<OutlierDetection>,
    #[serde(default)]
    pub tls: Option<ClientTls>,
    #[serde(default, alias = "port_level_settings")]
    pub port_level_settings: Vec<PortTrafficPolicy>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortTrafficPolicy {
    #[serde(default)]
    pub port: Option<PortSelector>,
    #[serde(default, alias = "load_balancer")]
    pub load_balancer: Option<LoadBalancer>,
    #[serde(default, alias = "connection_pool")]
    pub connection_pool: Option<ConnectionPool>,
    #[serde(default, alias = "outlier_detection")]
    pub outlier_detection: Option<OutlierDetection>,
    #[serde(default)]
    pub tls: Option<ClientTls>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Subset {
    pub name: String,
    #[serde(default)]
    pub labels: Labels,
    #[serde(default, alias = "traffic_policy", rename = "trafficPolicy")]
    pub traffic_policy: Option<TrafficPolicy>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadBalancer {
    /// LEAST_REQUEST | ROUND_ROBIN | RANDOM | PASSTHROUGH | LEAST_CONN (alias)
    #[serde(default)]
    pub simple: Option<String>,
    #[serde(default, alias = "consistent_hash")]
    pub consistent_hash: Option<ConsistentHash>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsistentHash {
    #[serde(default, alias = "http_header_name")]
    pub http_header_name: Option<String>,
    #[serde(default, alias = "http_cookie")]
    pub http_cookie: Option<HttpCookie>,
    #[serde(default, alias = "use_source_ip")]
    pub use_source_ip: Option<bool>,
    #[serde(default, alias = "http_query_parameter_name")]
    pub http_query_parameter_name: Option<String>,
    #[serde(default, alias = "ring_hash")]
    pub ring_hash: Option<RingHash>,
    #[serde(default)]
    pub maglev: Option<Maglev>,
    #[serde(default, alias = "minimum_ring_size")]
    pub minimum_ring_size: Option<u64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct HttpCookie {
    pub name: String,
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub ttl: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RingHash {
    #[serde(default, alias = "minimum_ring_size")]
    pub minimum_ring_size: Option<u64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Maglev {
    #[serde(default, alias = "table_size")]
    pub table_size: Option<u64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ConnectionPool {
    #[serde(default)]
    pub tcp: Option<TcpSettings>,
    #[serde(default)]
    pub http: Option<HttpSettings>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TcpSettings {
    #[serde(default, alias = "max_connections")]
    pub max_connections: Option<u32>,
    #[serde(default, alias = "connect_timeout")]
    pub connect_timeout: Option<String>,
    #[serde(default, alias = "idle_timeout")]
    pub idle_timeout: Option<String>,
    #[serde(default, alias = "max_connection_duration")]
    pub max_connection_duration: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpSettings {
    #[serde(
        default,
        alias = "http1_max_pending_requests",
        rename = "http1MaxPendingRequests"
    )]
    pub http1_max_pending_requests: Option<u32>,
    #[serde(default, alias = "http2_max_requests", rename = "http2MaxRequests")]
    pub http2_max_requests: Option<u32>,
    #[serde(default, alias = "max_requests_per_connection")]
    pub max_requests_per_connection: Option<u32>,
    #[serde(default, alias = "max_retries")]
    pub max_retries: Option<u32>,
    #[serde(default, alias = "idle_timeout")]
    pub idle_timeout: Option<String>,
    /// DEFAULT | DO_NOT_UPGRADE | UPGRADE
    #[serde(default, alias = "h2_upgrade_policy", rename = "h2UpgradePolicy")]
    pub h2_upgrade_policy: Option<String>,
    #[serde(default, alias = "use_client_protocol")]
    pub use_client_protocol: Option<bool>,
    #[serde(default, alias = "max_concurrent_streams")]
    pub max_concurrent_streams: Option<u32>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OutlierDetection {
    #[serde(
        default,
        rename = "consecutive5xxErrors",
        alias = "consecutive_5xx_errors",
        alias = "consecutiveErrors",
        alias = "consecutive_errors"
    )]
    pub consecutive_5xx_errors: Option<u32>,
    #[serde(default, alias = "consecutive_gateway_errors")]
    pub consecutive_gateway_errors: Option<u32>,
    #[serde(default)]
    pub interval: Option<String>,
    #[serde(default, alias = "base_ejection_time")]
    pub base_ejection_time: Option<String>,
    #[serde(default, alias = "max_ejection_percent")]
    pub max_ejection_percent: Option<u32>,
    #[serde(default, alias = "min_health_percent")]
    pub min_health_percent: Option<u32>,
    #[serde(default, alias = "split_external_local_origin_errors")]
    pub split_external_local_origin_errors: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientTls {
    /// DISABLE | SIMPLE | MUTUAL | ISTIO_MUTUAL
    #[serde(default)]
    pub mode: Option<String>,
    #[serde(default, alias = "client_certificate")]
    pub client_certificate: Option<String>,
    #[serde(default, alias = "private_key")]
    pub private_key: Option<String>,
    #[serde(default, alias = "ca_certificates")]
    pub ca_certificates: Option<String>,
    #[serde(default, alias = "credential_name")]
    pub credential_name: Option<String>,
    #[serde(default, alias = "subject_alt_names")]
    pub subject_alt_names: Vec<String>,
    #[serde(default)]
    pub sni: Option<String>,
    #[serde(default, alias = "insecure_skip_verify")]
    pub insecure_skip_verify: Option<bool>,
}

// ---------------------------------------------------------------- ServiceEntry

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceEntrySpec {
    #[serde(default)]
    pub hosts: Vec<String>,
    #[serde(default)]
    pub addresses: Vec<String>,
    #[serde(default)]
    pub ports: Vec<ServiceEntryPort>,
    /// MESH_EXTERNAL | MESH_INTERNAL
    #[serde(default)]
    pub location: Option<String>,
    /// NONE | STATIC | DNS | DNS_ROUND_ROBIN
    #[serde(default)]
    pub resolution: Option<String>,
    #[serde(default)]
    pub endpoints: Vec<WorkloadEntry>,
    #[serde(default, alias = "export_to")]
    pub export_to: Vec<String>,
    #[serde(default, alias = "workload_selector")]
    pub workload_selector: Option<WorkloadSelector>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceEntryPort {
    pub number: u32,
    #[serde(default)]
    pub protocol: Option<String>,
    #[serde(default)]
    pub name: String,
    #[serde(default, alias = "target_port")]
    pub target_port: Option<u32>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadEntry {
    #[serde(default)]
    pub address: String,
    /// Port name → port number on this endpoint.
    #[serde(default)]
    pub ports: BTreeMap<String, u32>,
    #[serde(default)]
    pub labels: Labels,
    #[serde(default)]
    pub network: Option<String>,
    #[serde(default)]
    pub locality: Option<String>,
    #[serde(default)]
    pub weight: Option<u32>,
    #[serde(default, alias = "service_account")]
    pub service_account: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadSelector {
    #[serde(default, alias = "match_labels")]
    pub match_labels: Labels,
}

// ---------------------------------------------------------------- security.istio.io

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PeerAuthenticationSpec {
    #[serde(default)]
    pub selector: Option<WorkloadSelector>,
    #[serde(default)]
    pub mtls: Option<MutualTls>,
    #[serde(default, alias = "port_level_mtls")]
    pub port_level_mtls: BTreeMap<u32, MutualTls>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct MutualTls {
    /// UNSET | DISABLE | PERMISSIVE | STRICT
    #[serde(default)]
    pub mode: Option<String>,
}

// ---------------------------------------------------------------- extensions.istio.io

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WasmPluginSpec {
    #[serde(default)]
    pub selector: Option<WorkloadSelector>,
    #[serde(default, alias = "target_refs")]
    pub target_refs: Vec<PolicyTargetReference>,
    #[serde(default, alias = "target_ref")]
    pub target_ref: Option<PolicyTargetReference>,
    #[serde(default)]
    pub url: String,
    #[serde(default)]
    pub sha256: Option<String>,
    #[serde(default, alias = "image_pull_policy")]
    pub image_pull_policy: Option<String>,
    #[serde(default, alias = "image_pull_secret")]
    pub image_pull_secret: Option<String>,
    /// Passed to the plugin as JSON.
    #[serde(default, alias = "plugin_config")]
    pub plugin_config: Option<serde_json::Value>,
    #[serde(default, alias = "plugin_name")]
    pub plugin_name: Option<String>,
    /// AUTHN | AUTHZ | STATS | UNSPECIFIED_PHASE
    #[serde(default)]
    pub phase: Option<String>,
    #[serde(default)]
    pub priority: Option<i64>,
    /// FAIL_CLOSE | FAIL_OPEN | FAIL_RELOAD
    #[serde(default, alias = "fail_strategy")]
    pub fail_strategy: Option<String>,
    #[serde(default, alias = "vm_config")]
    pub vm_config: Option<VmConfig>,
    #[serde(default, rename = "match")]
    pub matches: Vec<TrafficSelector>,
    /// HTTP | NETWORK
    #[serde(default, rename = "type")]
    pub plugin_type: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct PolicyTargetReference {
    #[serde(default)]
    pub group: Option<String>,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub namespace: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct VmConfig {
    #[serde(default)]
    pub env: Vec<EnvVar>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvVar {
    pub name: String,
    #[serde(default)]
    pub value: Option<String>,
    /// INLINE | HOST
    #[serde(default, alias = "value_from")]
    pub value_from: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct TrafficSelector {
    /// UNDEFINED | CLIENT | SERVER | CLIENT_AND_SERVER
    #[serde(default)]
    pub mode: Option<String>,
    #[serde(default)]
    pub ports: Vec<PortSelector>,
}

// ---------------------------------------------------------------- Kubernetes core/v1

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceSpec {
    #[serde(default)]
    pub selector: Labels,
    #[serde(default)]
    pub ports: Vec<KubeServicePort>,
    #[serde(default, rename = "clusterIP")]
    pub cluster_ip: Option<String>,
    #[serde(default, rename = "type")]
    pub service_type: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KubeServicePort {
    #[serde(default)]
    pub name: Option<String>,
    pub port: u32,
    /// A number or the name of a container port.
    #[serde(default)]
    pub target_port: Option<serde_yaml::Value>,
    #[serde(default)]
    pub protocol: Option<String>,
    #[serde(default)]
    pub app_protocol: Option<String>,
}

/// `Endpoints` has no `spec`: its `subsets` sit at the top level of the object.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct EndpointsBody {
    #[serde(default)]
    pub subsets: Vec<EndpointSubset>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointSubset {
    #[serde(default)]
    pub addresses: Vec<EndpointAddress>,
    #[serde(default)]
    pub ports: Vec<EndpointPort>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointAddress {
    pub ip: String,
    #[serde(default)]
    pub hostname: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointPort {
    #[serde(default)]
    pub name: Option<String>,
    pub port: u32,
    #[serde(default)]
    pub protocol: Option<String>,
    #[serde(default)]
    pub app_protocol: Option<String>,
}
