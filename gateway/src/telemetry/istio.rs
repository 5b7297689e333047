//! Istio's standard metrics (`istio_*`) and the request-path recording API.
//!
//! Recording is built around [`EdgeHandle`]: everything fixed about a hop (both peers,
//! the service, the security policy) is resolved once into shared label values, and
//! each outcome seen on the edge (protocol, code, gRPC status, flags) caches its counter
//! and histogram handles. Recording a request is then a lock-free lookup in a short
//! list and a few relaxed atomic adds; it never takes the `Family` lock a scrape holds
//! (only an outcome's first request does, to create its series).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use dashmap::DashMap;
use foldhash::fast::RandomState;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::histogram::{AtomicHistogram, BucketLayout};
use super::identity::{DestinationService, EdgeSpec, PeerInfo};
use super::labels::{
    BuildLabels, HttpLabels, LabelValue, PeerLabels, RequestProtocol, ResponseFlags,
    SharedPeerLabels, TcpLabels,
};
use super::outcome_cache::OutcomeCache;

/// Distinct edges kept before new ones are folded into an all-`unknown` edge. Peer
/// metadata comes from request headers, so without a bound a client could grow the
/// series set without limit.
pub const DEFAULT_MAX_EDGES: usize = 10_000;
/// gRPC status codes above this are recorded as 2 (UNKNOWN), bounding the label.
const MAX_GRPC_STATUS: u32 = 16;

/// One finished HTTP or gRPC request, as the proxy saw it.
///
/// For gRPC failures the proxy generates itself (no route, no healthy upstream,
/// timeout, fault abort on a gRPC request) it answers Trailers-Only with HTTP 200 and a
/// `grpc-status`; record exactly what was sent: `response_code: 200` and
/// `grpc_status: Some(14)` (or the status sent). Kiali then colours the edge by the gRPC
/// status, as with Envoy.
#[derive(Clone, Copy, Debug, Default)]
pub struct HttpRecord {
    /// `Grpc` for requests with an `application/grpc*` content-type (see
    /// [`RequestProtocol::from_content_type`]), else `Http`.
    pub protocol: RequestProtocol,
    /// HTTP status sent downstream; `0` when no response was sent.
    pub response_code: u16,
    /// `grpc-status` sent downstream (trailers, or headers for Trailers-Only); `None`
    /// for non-gRPC requests. Values above 16 are recorded as 2 (UNKNOWN).
    pub grpc_status: Option<u32>,
    pub flags: ResponseFlags,
    /// From the first request byte received to the last response byte sent.
    pub duration: Duration,
    /// Request headers + body bytes received from downstream.
    pub request_bytes: u64,
    /// Response headers + body bytes sent downstream.
    pub response_bytes: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct OutcomeKey {
    protocol: RequestProtocol,
    code: u16,
    grpc: Option<u8>,
    flags: ResponseFlags,
}

#[derive(Clone)]
struct HttpSeries {
    requests: Counter,
    duration: AtomicHistogram,
    request_bytes: AtomicHistogram,
    response_bytes: AtomicHistogram,
}

#[derive(Clone)]
struct TcpSeries {
    sent: Counter,
    received: Counter,
    opened: Counter,
    closed: Counter,
}

#[derive(Clone, Debug)]
struct HistogramCtor(Arc<BucketLayout>);

impl MetricConstructor<AtomicHistogram> for HistogramCtor {
    fn new_metric(&self) -> AtomicHistogram {
        AtomicHistogram::new(self.0.clone())
    }
}

type HistogramFamily<L> = Family<L, AtomicHistogram, HistogramCtor>;

struct Families {
    requests: Family<HttpLabels, Counter>,
    duration: HistogramFamily<HttpLabels>,
    request_bytes: HistogramFamily<HttpLabels>,
    response_bytes: HistogramFamily<HttpLabels>,
    request_messages: Family<SharedPeerLabels, Counter>,
    response_messages: Family<SharedPeerLabels, Counter>,
    tcp_sent: Family<TcpLabels, Counter>,
    tcp_received: Family<TcpLabels, Counter>,
    tcp_opened: Family<TcpLabels, Counter>,
    tcp_closed: Family<TcpLabels, Counter>,
}

/// A pre-resolved hop (both peers, the service, the security policy). One handle
/// serves HTTP, gRPC and TCP traffic on that hop. Obtain with [`IstioMetrics::edge`] and keep it with the route or
/// connection it belongs to.
pub struct EdgeHandle {
    peer: SharedPeerLabels,
    security: &'static str,
    http: OutcomeCache<OutcomeKey, HttpSeries>,
    tcp: OutcomeCache<ResponseFlags, TcpSeries>,
    messages: OnceLock<(Counter, Counter)>,
}

impl std::fmt::Debug for EdgeHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EdgeHandle")
            .field("peer", &self.peer.0)
            .finish_non_exhaustive()
    }
}

impl EdgeHandle {
    pub fn labels(&self) -> &PeerLabels {
        &self.peer.0
    }
}

/// The `istio_*` metric families. Created once per process with [`IstioMetrics::new`].
pub struct IstioMetrics {
    families: Families,
    edges: DashMap<EdgeSpec, Arc<EdgeHandle>, RandomState>,
    max_edges: usize,
    overflow_warned: AtomicBool,
}

impl IstioMetrics {
    /// Registers every `istio_*` family in `registry`, and `istio_build` = 1 with
    /// `component="proxy"`, `tag=version`.
    pub fn new(registry: &mut Registry, version: &str) -> IstioMetrics {
        let durations = HistogramCtor(BucketLayout::durations_ms());
        let sizes = HistogramCtor(BucketLayout::sizes_bytes());
        let families = Families {
            requests: Family::default(),
            duration: Family::new_with_constructor(durations),
            request_bytes: Family::new_with_constructor(sizes.clone()),
            response_bytes: Family::new_with_constructor(sizes),
            request_messages: Family::default(),
            response_messages: Family::default(),
            tcp_sent: Family::default(),
            tcp_received: Family::default(),
            tcp_opened: Family::default(),
            tcp_closed: Family::default(),
        };
        let f = &families;
        registry.register("istio_requests", "Requests completed", f.requests.clone());
        registry.register(
            "istio_request_duration_milliseconds",
            "Request duration in milliseconds",
            f.duration.clone(),
        );
        registry.register(
            "istio_request_bytes",
            "Request size in bytes",
            f.request_bytes.clone(),
        );
        registry.register(
            "istio_response_bytes",
            "Response size in bytes",
            f.response_bytes.clone(),
        );
        registry.register(
            "istio_request_messages",
            "gRPC messages sent by the client",
            f.request_messages.clone(),
        );
        registry.register(
            "istio_response_messages",
            "gRPC messages sent by the server",
            f.response_messages.clone(),
        );
        registry.register(
            "istio_tcp_sent_bytes",
            "Bytes sent to the downstream (response direction) on TCP connections",
            f.tcp_sent.clone(),
        );
        registry.register(
            "istio_tcp_received_bytes",
            "Bytes received from the downstream (request direction) on TCP connections",
            f.tcp_received.clone(),
        );
        registry.register(
            "istio_tcp_connections_opened",
            "TCP connections opened",
            f.tcp_opened.clone(),
        );
        registry.register(
            "istio_tcp_connections_closed",
            "TCP connections closed",
            f.tcp_closed.clone(),
        );

        let build: Family<BuildLabels, Gauge> = Family::default();
        build
            .get_or_create(&BuildLabels {
                component: "proxy",
                tag: version.to_string(),
            })
            .set(1);
        registry.register("istio_build", "Proxy build information", build);

        IstioMetrics {
            families,
            edges: DashMap::with_hasher(RandomState::default()),
            max_edges: DEFAULT_MAX_EDGES,
            overflow_warned: AtomicBool::new(false),
        }
    }

    /// Changes the edge bound (tests, or operators with very large meshes).
    pub fn with_max_edges(mut self, max_edges: usize) -> Self {
        self.max_edges = max_edges;
        self
    }

    /// The handle for `spec`, created on first use. Cache the result per route and
    /// destination (or per inbound connection and peer); this lookup hashes the spec.
    /// Past the edge bound, new specs share one edge whose peers and service are
    /// `unknown` (a warning is logged once).
    pub fn edge(&self, spec: &EdgeSpec) -> Arc<EdgeHandle> {
        if let Some(e) = self.edges.get(spec) {
            return e.clone();
        }
        if self.edges.len() >= self.max_edges {
            if !self.overflow_warned.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    max_edges = self.max_edges,
                    "too many distinct metric edges; further peers are reported as unknown"
                );
            }
            let cluster = spec.source.cluster.as_str();
            let unknown = Arc::new(PeerInfo::unknown(cluster));
            let overflow = EdgeSpec {
                source: unknown.clone(),
                destination: unknown,
                service: Arc::new(DestinationService::default()),
                ..spec.clone()
            };
            return self
                .edges
                .entry(overflow.clone())
                .or_insert_with(|| new_edge(&overflow))
                .clone();
        }
        self.edges
            .entry(spec.clone())
            .or_insert_with(|| new_edge(spec))
            .clone()
    }

    /// Number of distinct edges created so far.
    pub fn edge_count(&self) -> usize {
        self.edges.len()
    }

    /// Records one finished HTTP/gRPC request on `edge`: `istio_requests_total`, the
    /// duration histogram and both size histograms.
    #[inline]
    pub fn record_http(&self, edge: &EdgeHandle, record: &HttpRecord) {
        let key = OutcomeKey {
            protocol: record.protocol,
            code: record.response_code,
            grpc: record
                .grpc_status
                .map(|s| if s > MAX_GRPC_STATUS { 2 } else { s as u8 }),
            flags: record.flags,
        };
        let micros = u64::try_from(record.duration.as_micros()).unwrap_or(u64::MAX);
        edge.http.with(
            key,
            || self.http_series(edge, key),
            |s| {
                s.requests.inc();
                s.duration.observe_raw(micros);
                s.request_bytes.observe_raw(record.request_bytes);
                s.response_bytes.observe_raw(record.response_bytes);
            },
        );
    }

    /// Adds gRPC message counts (`istio_request_messages_total`,
    /// `istio_response_messages_total`); call as messages flow or once at stream end.
    pub fn record_grpc_messages(
        &self,
        edge: &EdgeHandle,
        request_messages: u64,
        response_messages: u64,
    ) {
        let (req, resp) = edge.messages.get_or_init(|| {
            (
                self.families
                    .request_messages
                    .get_or_create(&edge.peer)
                    .clone(),
                self.families
                    .response_messages
                    .get_or_create(&edge.peer)
                    .clone(),
            )
        });
        req.inc_by(request_messages);
        resp.inc_by(response_messages);
    }

    /// A TCP connection was opened (flags are `-` at open time).
    pub fn record_tcp_opened(&self, edge: &EdgeHandle) {
        self.with_tcp(edge, ResponseFlags::NONE, |s| {
            s.opened.inc();
        });
    }

    /// Bytes moved since the last report: `sent` toward the downstream (response
    /// direction), `received` from it. Call every few seconds and at close.
    pub fn record_tcp_bytes(
        &self,
        edge: &EdgeHandle,
        flags: ResponseFlags,
        sent: u64,
        received: u64,
    ) {
        self.with_tcp(edge, flags, |s| {
            s.sent.inc_by(sent);
            s.received.inc_by(received);
        });
    }

    /// A TCP connection closed, with the flags that describe how.
    pub fn record_tcp_closed(&self, edge: &EdgeHandle, flags: ResponseFlags) {
        self.with_tcp(edge, flags, |s| {
            s.closed.inc();
        });
    }

    fn with_tcp(&self, edge: &EdgeHandle, flags: ResponseFlags, f: impl FnOnce(&TcpSeries)) {
        edge.tcp.with(flags, || self.tcp_series(edge, flags), f)
    }

    #[cold]
    fn http_series(&self, edge: &EdgeHandle, key: OutcomeKey) -> HttpSeries {
        let labels = HttpLabels {
            request_protocol: key.protocol.as_str(),
            response_code: key.code,
            grpc_response_status: key.grpc,
            response_flags: LabelValue::new(&key.flags.to_string()),
            connection_security_policy: edge.security,
            peer: edge.peer.clone(),
        };
        let f = &self.families;
        HttpSeries {
            requests: f.requests.get_or_create(&labels).clone(),
            duration: f.duration.get_or_create(&labels).clone(),
            request_bytes: f.request_bytes.get_or_create(&labels).clone(),
            response_bytes: f.response_bytes.get_or_create(&labels).clone(),
        }
    }

    #[cold]
    fn tcp_series(&self, edge: &EdgeHandle, flags: ResponseFlags) -> TcpSeries {
        let labels = TcpLabels {
            request_protocol: RequestProtocol::Tcp.as_str(),
            response_flags: LabelValue::new(&flags.to_string()),
            connection_security_policy: edge.security,
            peer: edge.peer.clone(),
        };
        let f = &self.families;
        TcpSeries {
            sent: f.tcp_sent.get_or_create(&labels).clone(),
            received: f.tcp_received.get_or_create(&labels).clone(),
            opened: f.tcp_opened.get_or_create(&labels).clone(),
            closed: f.tcp_closed.get_or_create(&labels).clone(),
        }
    }
}

fn new_edge(spec: &EdgeSpec) -> Arc<EdgeHandle> {
    let peer = PeerLabels::new(
        spec.reporter,
        &spec.source,
        &spec.destination,
        &spec.service,
    );
    Arc::new(EdgeHandle {
        peer: SharedPeerLabels(Arc::new(peer)),
        security: spec.security.as_str(),
        http: OutcomeCache::new(),
        tcp: OutcomeCache::new(),
        messages: OnceLock::new(),
    })
}

#[cfg(test)]
#[path = "istio_tests.rs"]
mod tests;
