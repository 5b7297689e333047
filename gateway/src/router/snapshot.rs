//! The compiled routing table: an immutable value built from valid resources and
//! published whole. listeners → servers → virtual hosts → ordered rules → clusters.
//! Nothing here is mutated after compile; the request path only reads it.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use regex::Regex;

/// A compiled regex shared by every rule that uses its pattern. Shared by `Arc`, not
/// by `Regex::clone`: a clone gets its own cache pool (2 KiB, and 4 KiB more per
/// thread once it has matched), which at 10,000 rules is tens of MiB.
pub type SharedRegex = std::sync::Arc<Regex>;

use crate::config::{Labels, Origin, Res, WasmPluginSpec};

pub type ClusterName = Arc<str>;

#[derive(Debug, Default)]
pub struct Snapshot {
    /// Increases by one per successful compile+swap.
    pub version: u64,
    /// Gateway listeners keyed by the Gateway server port number (80, 443, ...). The
    /// local bind port comes from `--port-map` at listen time.
    pub listeners: BTreeMap<u32, Listener>,
    /// VirtualServices bound to the `mesh` gateway, for sidecar outbound routing, keyed
    /// like a gateway server with hosts `*`.
    pub mesh: VirtualHostTable,
    /// Every cluster any rule, mirror or service can reach: `outbound|PORT|SUBSET|HOST`.
    pub clusters: HashMap<ClusterName, Arc<Cluster>>,
    /// Services known from ServiceEntry / Service+Endpoints, by FQDN: used when no
    /// VirtualService applies (sidecar outbound) and to resolve ports.
    pub services: HashMap<String, Arc<ServiceInfo>>,
    /// WasmPlugins, passed through unchanged for the wasm host.
    pub wasm_plugins: Vec<Res<WasmPluginSpec>>,
    /// PeerAuthentication policies (namespace, selector, mode) for sidecar inbound.
    pub peer_authentications: Vec<PeerAuthPolicy>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerProtocol {
    Http,
    Https,
    Http2,
    Grpc,
    Tcp,
    Tls,
}

/// All Gateway servers that share one port.
#[derive(Debug, Default)]
pub struct Listener {
    pub port: u32,
    pub servers: Vec<Arc<GatewayServer>>,
}

#[derive(Debug)]
pub struct GatewayServer {
    /// `istio-system/api-gateway`
    pub gateway: String,
    /// Gateway selector, e.g. `istio: ingressgateway`.
    pub selector: Labels,
    /// `port.name`
    pub port_name: String,
    pub port: u32,
    pub protocol: ServerProtocol,
    /// Server hosts with any `ns/` prefix removed, lower-cased.
    pub hosts: Vec<String>,
    pub tls: Option<ServerTlsPolicy>,
    /// `tls.httpsRedirect` on a plain HTTP server: 301 every request to https.
    pub https_redirect: bool,
    /// HTTP routing for HTTP/HTTPS/HTTP2/GRPC servers.
    pub vhosts: VirtualHostTable,
    /// `tcp[]` rules of bound VirtualServices (TCP servers, or TLS servers that terminate).
    pub tcp_rules: Vec<Arc<TcpRule>>,
    /// `tls[]` rules of bound VirtualServices (PASSTHROUGH servers route on SNI).
    pub tls_rules: Vec<Arc<TlsRule>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerTlsMode {
    Passthrough,
    Simple,
    Mutual,
    OptionalMutual,
    IstioMutual,
    AutoPassthrough,
}

#[derive(Debug, Clone)]
pub struct ServerTlsPolicy {
    pub mode: ServerTlsMode,
    /// `credentialName`, resolved under `--credentials DIR`.
    pub credential_name: Option<String>,
    /// File paths when given inline instead of `credentialName`.
    pub server_certificate: Option<String>,
    pub private_key: Option<String>,
    pub ca_certificates: Option<String>,
    pub subject_alt_names: Vec<String>,
    /// TLS 1.2 unless TLSV1_3 is asked for.
    pub min_tls13: bool,
}

/// Host → virtual host: exact (hash), then the longest wildcard suffix, then `*`.
#[derive(Debug, Default)]
pub struct VirtualHostTable {
    pub vhosts: Vec<Arc<VirtualHost>>,
    /// Lower-cased exact host → index into `vhosts`.
    pub exact: HashMap<String, usize>,
    /// `*.example.com` stored as (".example.com", idx), longest suffix first.
    pub suffix: Vec<(String, usize)>,
    pub catch_all: Option<usize>,
}

#[derive(Debug)]
pub struct VirtualHost {
    /// The domain this vhost answers (`reviews.default.svc.cluster.local`, `*.example.com`, `*`).
    pub domain: String,
    /// First match wins; rules of several VirtualServices merged with catch-alls last.
    pub rules: Vec<Arc<HttpRule>>,
}

#[derive(Debug)]
pub struct HttpRule {
    /// `default/reviews`
    pub virtual_service: String,
    /// Index in that VirtualService's `http[]` (for delegates: `parent[i]/child[j]`).
    pub index: String,
    pub name: Option<String>,
    /// OR of AND-groups; empty means catch-all.
    pub matches: Vec<RequestMatch>,
    pub action: RuleAction,
    pub origin: Origin,
    /// For a rule inserted through `delegate`: the delegate VirtualService (`ns/name`)
    /// whose `http[]` entry this is; `index` is then `parent/child`.
    pub delegate: Option<String>,
}

/// One `match[]` entry; every present condition must hold.
#[derive(Debug, Default, Clone)]
pub struct RequestMatch {
    pub name: Option<String>,
    pub uri: Option<Matcher>,
    pub scheme: Option<Matcher>,
    pub method: Option<Matcher>,
    pub authority: Option<Matcher>,
    /// Header names lower-cased.
    pub headers: Vec<(http::HeaderName, Matcher)>,
    pub without_headers: Vec<(http::HeaderName, Matcher)>,
    pub query_params: Vec<(String, Matcher)>,
    pub port: Option<u32>,
    /// Gateways this entry is limited to (`ns/name` or `mesh`); empty = the VS's own.
    pub gateways: Vec<String>,
    pub source_labels: Labels,
    pub source_namespace: Option<String>,
}

/// A compiled string matcher. Regexes are anchored (whole-string) and compiled once.
#[derive(Debug, Clone)]
pub enum Matcher {
    Exact(String),
    Prefix(String),
    Regex(SharedRegex),
    /// `{}`: the value must be present (headers only).
    Present,
    /// Exact/prefix compared ASCII-case-insensitively (`ignoreUriCase`); stored lower-cased.
    ExactIgnoreCase(String),
    PrefixIgnoreCase(String),
}

/// Built once per rule at compile; the request path only borrows it, so the size
/// difference between variants costs nothing per request.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub enum RuleAction {
    Route(RouteAction),
    Redirect(Redirect),
    DirectResponse(DirectResponse),
}

#[derive(Clone, Debug, Default)]
pub struct RouteAction {
    /// Relative weights; `total_weight > 0` is guaranteed by compile.
    pub destinations: Vec<WeightedDestination>,
    pub total_weight: u32,
    pub rewrite: Option<Rewrite>,
    /// `None`: no route timeout (Istio's default).
    pub timeout: Option<Duration>,
    pub retries: RetryPolicy,
    pub fault: Option<Fault>,
    pub mirrors: Vec<Mirror>,
    pub cors: Option<Cors>,
    /// Rule-level header operations.
    pub headers: HeaderOps,
}

#[derive(Clone, Debug)]
pub struct WeightedDestination {
    pub cluster: ClusterName,
    /// FQDN
    pub host: String,
    pub subset: Option<String>,
    pub port: Option<u32>,
    pub weight: u32,
    pub headers: HeaderOps,
}

#[derive(Debug, Default, Clone)]
pub struct HeaderOps {
    pub request: HeaderOperations,
    pub response: HeaderOperations,
}

#[derive(Debug, Default, Clone)]
pub struct HeaderOperations {
    pub set: Vec<(http::HeaderName, http::HeaderValue)>,
    pub add: Vec<(http::HeaderName, http::HeaderValue)>,
    pub remove: Vec<http::HeaderName>,
}

#[derive(Debug, Clone)]
pub struct Rewrite {
    /// Replaces the matched prefix (or the whole path for exact/regex matches).
    pub uri: Option<String>,
    pub authority: Option<String>,
    pub uri_regex: Option<(SharedRegex, String)>,
}

#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Retries after the first try (Istio's `attempts`). 0 = off.
    pub attempts: u32,
    pub per_try_timeout: Option<Duration>,
    /// Envoy retry-on conditions, e.g. `connect-failure`, `5xx`, or bare codes.
    pub retry_on: Vec<RetryOn>,
}

impl Default for RetryPolicy {
    /// Istio ≥1.24: 2 retries on connect-failure, refused-stream, unavailable, cancelled.
    fn default() -> Self {
        RetryPolicy {
            attempts: 2,
            per_try_timeout: None,
            retry_on: vec![
                RetryOn::ConnectFailure,
                RetryOn::RefusedStream,
                RetryOn::Unavailable,
                RetryOn::Cancelled,
            ],
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetryOn {
    FiveXx,
    GatewayError,
    Reset,
    ConnectFailure,
    RefusedStream,
    Retriable4xx,
    RetriableStatusCodes,
    /// gRPC status conditions (checked on `grpc-status`).
    Cancelled,
    DeadlineExceeded,
    ResourceExhausted,
    Unavailable,
    Internal,
    Status(u16),
}

#[derive(Debug, Clone)]
pub struct Fault {
    /// (delay, fraction 0.0..=1.0)
    pub delay: Option<(Duration, f64)>,
    pub abort: Option<FaultAbort>,
}

#[derive(Debug, Clone)]
pub struct FaultAbort {
    /// HTTP status (for gRPC aborts: 200 with `grpc_status`).
    pub http_status: u16,
    pub grpc_status: Option<u32>,
    /// 0.0..=1.0; a missing percentage is 0.
    pub fraction: f64,
}

#[derive(Debug, Clone)]
pub struct Mirror {
    pub cluster: ClusterName,
    pub host: String,
    /// 0.0..=1.0 (default 1.0).
    pub fraction: f64,
}

#[derive(Debug, Clone)]
pub struct Cors {
    pub allow_origins: Vec<Matcher>,
    pub allow_methods: String,
    pub allow_headers: String,
    pub expose_headers: String,
    pub max_age: Option<Duration>,
    pub allow_credentials: bool,
}

#[derive(Debug, Clone)]
pub struct Redirect {
    pub uri: Option<String>,
    pub prefix_rewrite: Option<String>,
    pub authority: Option<String>,
    pub port: Option<u32>,
    pub derive_port_from_request: bool,
    pub scheme: Option<String>,
    /// 301 by default.
    pub code: u16,
}

#[derive(Debug, Clone)]
pub struct DirectResponse {
    pub status: u16,
    pub body: bytes::Bytes,
}

#[derive(Debug)]
pub struct TcpRule {
    pub virtual_service: String,
    pub index: usize,
    /// Empty = all connections.
    pub ports: Vec<u32>,
    pub destinations: Vec<WeightedDestination>,
    pub total_weight: u32,
}

#[derive(Debug)]
pub struct TlsRule {
    pub virtual_service: String,
    pub index: usize,
    /// SNI hosts (exact or `*.suffix`), lower-cased.
    pub sni_hosts: Vec<String>,
    pub ports: Vec<u32>,
    pub destinations: Vec<WeightedDestination>,
    pub total_weight: u32,
}

/// What an upstream speaks, from the service port's protocol or name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamProtocol {
    Http1,
    /// HTTP/2 (h2c in plaintext, ALPN h2 over TLS): HTTP2 and GRPC ports.
    Http2,
    Tcp,
    Tls,
    /// Use whatever the downstream spoke (`useClientProtocol`).
    Client,
}

/// `outbound|PORT|SUBSET|HOST` with its resolved endpoints and policy.
#[derive(Debug)]
pub struct Cluster {
    pub name: ClusterName,
    pub host: String,
    pub port: u32,
    pub subset: Option<String>,
    pub protocol: UpstreamProtocol,
    pub endpoints: Vec<Endpoint>,
    /// DNS resolution: the address is resolved at connect time.
    pub dns: bool,
    pub policy: ClusterPolicy,
    /// Set when the cluster exists only to answer 503 NC (subset not defined, ...).
    pub missing: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Endpoint {
    /// IP:port, or host:port when `dns`.
    pub address: String,
    pub labels: Labels,
    pub weight: u32,
    /// The workload's service account, if known (for mesh identity checks).
    pub service_account: Option<String>,
}

impl Endpoint {
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        self.address.parse().ok()
    }
}

#[derive(Debug, Clone, Default)]
pub struct ClusterPolicy {
    pub lb: LoadBalancerPolicy,
    pub max_connections: Option<u32>,
    pub connect_timeout: Option<Duration>,
    pub idle_timeout: Option<Duration>,
    pub max_pending_requests: Option<u32>,
    pub max_requests: Option<u32>,
    pub max_requests_per_connection: Option<u32>,
    pub max_retries: Option<u32>,
    pub outlier: Option<OutlierPolicy>,
    pub tls: Option<UpstreamTls>,
}

#[derive(Debug, Clone, Default)]
pub enum LoadBalancerPolicy {
    #[default]
    LeastRequest,
    RoundRobin,
    Random,
    Passthrough,
    ConsistentHash(HashPolicy),
}

#[derive(Debug, Clone)]
pub enum HashPolicy {
    Header(http::HeaderName),
    Cookie {
        name: String,
        path: Option<String>,
        ttl: Option<Duration>,
    },
    SourceIp,
    QueryParameter(String),
}

#[derive(Debug, Clone)]
pub struct OutlierPolicy {
    pub consecutive_5xx: u32,
    pub consecutive_gateway_errors: u32,
    pub interval: Duration,
    pub base_ejection_time: Duration,
    pub max_ejection_percent: u32,
    pub min_health_percent: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamTlsMode {
    Disable,
    Simple,
    Mutual,
    IstioMutual,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamTls {
    pub mode: UpstreamTlsMode,
    pub credential_name: Option<String>,
    pub client_certificate: Option<String>,
    pub private_key: Option<String>,
    pub ca_certificates: Option<String>,
    pub subject_alt_names: Vec<String>,
    pub sni: Option<String>,
    pub insecure_skip_verify: bool,
}

#[derive(Debug)]
pub struct ServiceInfo {
    pub host: String,
    pub namespace: String,
    /// (port, protocol, port name)
    pub ports: Vec<(u32, UpstreamProtocol, String)>,
    pub endpoints: Vec<Endpoint>,
    pub dns: bool,
}

#[derive(Debug, Clone)]
pub struct PeerAuthPolicy {
    pub namespace: String,
    pub selector: Option<Labels>,
    /// STRICT | PERMISSIVE | DISABLE
    pub mode: String,
    pub port_modes: Vec<(u32, String)>,
}

/// What the proxy needs from a request to route it; borrowed, built per request
/// without allocating.
#[derive(Debug, Clone, Copy)]
pub struct RequestView<'a> {
    pub method: &'a str,
    /// `http` or `https`
    pub scheme: &'a str,
    /// Host header / :authority as received (case and port as sent).
    pub authority: &'a str,
    /// Path with query, as received.
    pub path_and_query: &'a str,
    pub headers: &'a http::HeaderMap,
    /// The Gateway server port (80) or the service port for sidecars.
    pub port: u32,
    /// Labels and namespace of the calling workload (sidecar outbound), for
    /// `sourceLabels` / `sourceNamespace`.
    pub source_labels: Option<&'a Labels>,
    pub source_namespace: Option<&'a str>,
}

/// The answer of a route lookup.
#[derive(Debug)]
pub enum RouteDecision<'s> {
    Matched {
        server: Option<&'s Arc<GatewayServer>>,
        vhost: &'s Arc<VirtualHost>,
        rule: &'s Arc<HttpRule>,
    },
    /// `httpsRedirect` server.
    HttpsRedirect { server: &'s Arc<GatewayServer> },
    /// 404 NR: no virtual host matched the Host, or no rule in it matched.
    NoRoute(NoRoute<'s>),
}

#[derive(Debug)]
pub struct NoRoute<'s> {
    pub server: Option<&'s Arc<GatewayServer>>,
    /// Some(vhost) when the host matched but no rule did.
    pub vhost: Option<&'s Arc<VirtualHost>>,
}
