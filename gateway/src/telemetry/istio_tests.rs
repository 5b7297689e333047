use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::telemetry::{
    ExtraMetric, ExtraMetrics, ExtraValue, Metrics, ProxyIdentity, ProxyKind, SecurityPolicy,
};

/// The value of the one sample named `name` whose line contains every `labels` pair.
fn sample(text: &str, name: &str, labels: &[&str]) -> f64 {
    let hits: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .filter(|l| labels.iter().all(|p| l.contains(p)))
        .collect();
    assert_eq!(hits.len(), 1, "{name} {labels:?} matched {hits:#?}");
    hits[0].rsplit(' ').next().unwrap().parse().unwrap()
}

fn service() -> Arc<DestinationService> {
    Arc::new(DestinationService::from_fqdn(
        "temperature-api.default.svc.cluster.local",
        "default",
    ))
}

fn api_peer() -> Arc<PeerInfo> {
    let labels = BTreeMap::from([("app".to_string(), "temperature-api".to_string())]);
    Arc::new(PeerInfo::from_labels(
        "temperature-api-v1",
        "default",
        &labels,
        None,
    ))
}

#[test]
fn records_requests_with_every_istio_label() {
    let metrics = Metrics::new("1.2.3");
    let gw = ProxyIdentity::default_gateway();
    let edge = metrics
        .istio
        .edge(&gw.outbound_edge(Some(api_peer()), service()));
    let ok = HttpRecord {
        response_code: 200,
        duration: Duration::from_micros(3_000),
        request_bytes: 120,
        response_bytes: 2_000,
        ..HttpRecord::default()
    };
    metrics.istio.record_http(&edge, &ok);
    metrics.istio.record_http(&edge, &ok);
    let failed = HttpRecord {
        response_code: 503,
        flags: ResponseFlags::NO_HEALTHY_UPSTREAM,
        duration: Duration::from_micros(200),
        ..HttpRecord::default()
    };
    metrics.istio.record_http(&edge, &failed);

    let text = metrics.encode_openmetrics();
    let all_labels = [
        "reporter=\"source\"",
        "source_workload=\"istio-ingressgateway\"",
        "source_workload_namespace=\"istio-system\"",
        "source_principal=\"unknown\"",
        "source_app=\"istio-ingressgateway\"",
        "source_version=\"unknown\"",
        "source_canonical_service=\"istio-ingressgateway\"",
        "source_canonical_revision=\"latest\"",
        "source_cluster=\"Kubernetes\"",
        "destination_workload=\"temperature-api-v1\"",
        "destination_workload_namespace=\"default\"",
        "destination_principal=\"unknown\"",
        "destination_app=\"temperature-api\"",
        "destination_version=\"unknown\"",
        "destination_service=\"temperature-api.default.svc.cluster.local\"",
        "destination_service_name=\"temperature-api\"",
        "destination_service_namespace=\"default\"",
        "destination_canonical_service=\"temperature-api\"",
        "destination_canonical_revision=\"latest\"",
        "destination_cluster=\"Kubernetes\"",
        "request_protocol=\"http\"",
        "response_code=\"200\"",
        "grpc_response_status=\"\"",
        "response_flags=\"-\"",
        "connection_security_policy=\"unknown\"",
    ];
    assert_eq!(sample(&text, "istio_requests_total", &all_labels), 2.0);
    let line = text
        .lines()
        .find(|l| l.starts_with("istio_requests_total{"))
        .unwrap();
    assert_eq!(
        line.matches("=\"").count(),
        25,
        "exactly the 25 Istio labels: {line}"
    );
    assert_eq!(
        sample(
            &text,
            "istio_requests_total",
            &["response_code=\"503\"", "response_flags=\"UH\""]
        ),
        1.0
    );
    let ok200 = ["response_code=\"200\""];
    assert_eq!(
        sample(&text, "istio_request_duration_milliseconds_count", &ok200),
        2.0
    );
    assert_eq!(
        sample(&text, "istio_request_duration_milliseconds_sum", &ok200),
        6.0
    );
    assert_eq!(
        sample(
            &text,
            "istio_request_duration_milliseconds_bucket",
            &["code=\"200\"", "le=\"1.0\""]
        ),
        0.0
    );
    assert_eq!(
        sample(
            &text,
            "istio_request_duration_milliseconds_bucket",
            &["code=\"200\"", "le=\"5.0\""]
        ),
        2.0
    );
    assert_eq!(
        sample(
            &text,
            "istio_request_duration_milliseconds_bucket",
            &["code=\"200\"", "le=\"+Inf\""]
        ),
        2.0
    );
    assert_eq!(
        sample(
            &text,
            "istio_response_bytes_bucket",
            &["code=\"200\"", "le=\"1000.0\""]
        ),
        0.0
    );
    assert_eq!(
        sample(
            &text,
            "istio_response_bytes_bucket",
            &["code=\"200\"", "le=\"10000.0\""]
        ),
        2.0
    );
    assert_eq!(sample(&text, "istio_request_bytes_sum", &ok200), 240.0);
    assert!(text.contains("# TYPE istio_requests counter\n"));
    assert!(text.contains("# TYPE istio_request_duration_milliseconds histogram\n"));
    assert!(text.contains("istio_build{component=\"proxy\",tag=\"1.2.3\"} 1\n"));
    assert!(text.ends_with("# EOF\n"));
}

#[test]
fn grpc_tcp_and_inbound_series() {
    let metrics = Metrics::new("dev");
    let sidecar = ProxyIdentity::new((*api_peer()).clone(), ProxyKind::Sidecar);
    let spec = sidecar.inbound_edge(None, service(), true);
    assert_eq!(spec.security, SecurityPolicy::MutualTls);
    let edge = metrics.istio.edge(&spec);
    let content_type = http::HeaderValue::from_static("application/grpc+proto");
    let protocol = RequestProtocol::from_content_type(Some(&content_type));
    let generated = HttpRecord {
        protocol,
        response_code: 200,
        grpc_status: Some(14),
        ..HttpRecord::default()
    };
    metrics.istio.record_http(&edge, &generated);
    let weird = HttpRecord {
        protocol,
        response_code: 200,
        grpc_status: Some(999),
        ..HttpRecord::default()
    };
    metrics.istio.record_http(&edge, &weird);
    // The same edge carries plain HTTP too.
    let plain = HttpRecord {
        response_code: 204,
        ..HttpRecord::default()
    };
    metrics.istio.record_http(&edge, &plain);
    metrics.istio.record_grpc_messages(&edge, 3, 5);
    metrics.istio.record_tcp_opened(&edge);
    metrics
        .istio
        .record_tcp_bytes(&edge, ResponseFlags::NONE, 100, 40);
    metrics
        .istio
        .record_tcp_closed(&edge, ResponseFlags::DOWNSTREAM_CONNECTION_TERMINATION);

    let text = metrics.encode_openmetrics();
    let inbound = [
        "reporter=\"destination\"",
        "source_workload=\"unknown\"",
        "connection_security_policy=\"mutual_tls\"",
    ];
    let grpc = [
        &inbound[..],
        &["request_protocol=\"grpc\"", "grpc_response_status=\"14\""],
    ]
    .concat();
    assert_eq!(sample(&text, "istio_requests_total", &grpc), 1.0);
    assert_eq!(
        sample(
            &text,
            "istio_requests_total",
            &["request_protocol=\"http\"", "response_code=\"204\""]
        ),
        1.0
    );
    assert_eq!(
        sample(
            &text,
            "istio_requests_total",
            &["grpc_response_status=\"2\""]
        ),
        1.0
    );
    // Message counters carry L_PEER only.
    assert_eq!(
        sample(&text, "istio_request_messages_total", &inbound[..2]),
        3.0
    );
    assert_eq!(
        sample(&text, "istio_response_messages_total", &inbound[..2]),
        5.0
    );
    let tcp = ["request_protocol=\"tcp\"", "response_flags=\"-\""];
    assert_eq!(
        sample(&text, "istio_tcp_connections_opened_total", &tcp),
        1.0
    );
    assert_eq!(sample(&text, "istio_tcp_sent_bytes_total", &tcp), 100.0);
    assert_eq!(sample(&text, "istio_tcp_received_bytes_total", &tcp), 40.0);
    assert_eq!(
        sample(
            &text,
            "istio_tcp_connections_closed_total",
            &["response_flags=\"DC\""]
        ),
        1.0
    );
}

#[test]
fn edges_are_shared_and_bounded() {
    let metrics = Metrics::with_max_edges("dev", 2);
    let gw = ProxyIdentity::default_gateway();
    let spec =
        |fqdn: &str| gw.outbound_edge(None, Arc::new(DestinationService::from_fqdn(fqdn, "x")));
    let a = metrics.istio.edge(&spec("a.ns.svc.cluster.local"));
    assert!(Arc::ptr_eq(
        &a,
        &metrics.istio.edge(&spec("a.ns.svc.cluster.local"))
    ));
    metrics.istio.edge(&spec("b.ns.svc.cluster.local"));
    let c = metrics.istio.edge(&spec("c.ns.svc.cluster.local"));
    let d = metrics.istio.edge(&spec("d.ns.svc.cluster.local"));
    assert!(Arc::ptr_eq(&c, &d), "past the bound, edges fold into one");
    assert_eq!(c.labels().destination_service.as_str(), "unknown");
    assert_eq!(c.labels().source_workload.as_str(), "unknown");
    assert_eq!(metrics.istio.edge_count(), 3);
}

#[test]
fn many_outcomes_on_one_edge_are_all_counted() {
    let metrics = Metrics::new("dev");
    let edge = metrics
        .istio
        .edge(&ProxyIdentity::default_gateway().outbound_edge(None, service()));
    for code in 100..300u16 {
        let r = HttpRecord {
            response_code: code,
            ..HttpRecord::default()
        };
        metrics.istio.record_http(&edge, &r);
        metrics.istio.record_http(&edge, &r);
    }
    let text = metrics.encode_openmetrics();
    assert_eq!(
        sample(&text, "istio_requests_total", &["response_code=\"101\""]),
        2.0
    );
    assert_eq!(
        sample(&text, "istio_requests_total", &["response_code=\"299\""]),
        2.0
    );
}

struct Plugin;

impl ExtraMetrics for Plugin {
    fn collect(&self, out: &mut Vec<ExtraMetric>) {
        let m = |name: &str, labels: &[(&str, &str)], value| ExtraMetric {
            name: name.into(),
            help: "from a plugin\nsecond line".into(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            value,
        };
        out.push(m(
            "plugin.hits_total",
            &[("path", "/a\"b")],
            ExtraValue::Counter(7),
        ));
        out.push(m(
            "plugin.hits_total",
            &[("path", "/c")],
            ExtraValue::Counter(1),
        ));
        out.push(m(
            "plugin.hits_total",
            &[("path", "/c")],
            ExtraValue::Counter(9),
        ));
        out.push(m("plugin_queue", &[], ExtraValue::Gauge(-3)));
        out.push(m(
            "plugin_latency",
            &[],
            ExtraValue::Histogram {
                buckets: vec![(1.0, 2), (10.0, 1)],
                count: 4,
                sum: 25.5,
            },
        ));
        out.push(m("istio_requests_total", &[], ExtraValue::Counter(1)));
        out.push(m("plugin_hits_total", &[], ExtraValue::Gauge(1)));
    }
}

#[test]
fn plugin_metrics_are_appended_safely() {
    let metrics = Metrics::new("dev");
    metrics.add_extra(Arc::new(Plugin));
    let text = metrics.encode_openmetrics();
    assert!(text.contains("# TYPE plugin_hits counter\n"));
    assert!(text.contains("plugin_hits_total{path=\"/a\\\"b\"} 7\n"));
    assert_eq!(text.matches("plugin_hits_total{path=\"/c\"}").count(), 1);
    assert!(text.contains("plugin_queue -3\n"));
    assert!(text.contains("plugin_latency_bucket{le=\"+Inf\"} 4\n"));
    assert!(text.contains("plugin_latency_bucket{le=\"10.0\"} 3\n"));
    assert!(!text.contains("istio_requests_total 1"));
    assert!(!text.contains("from a plugin\nsecond"));
    assert!(text.ends_with("# EOF\n"));
}
