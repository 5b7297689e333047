//! Kiali's graph, drawn from a real Prometheus: the demo's three proxies (real
//! `meshgate` processes) are scraped every second while traffic flows through the
//! gateway, and Kiali's own graph queries return the edges
//! istio-ingressgateway → temperature-api → temperature-service with labels Kiali
//! accepts, reported alike by both ends of each hop. A fault abort on one edge turns it
//! red by Kiali's rule (5xx ≥ 10%); gRPC failures the proxy answers itself are reported
//! as `response_code="200"` with their `grpc_response_status`.
//!
//! Needs the `prometheus` binary (see `support::prometheus`); without it the test prints
//! a loud SKIPPED message and passes.

// Test helpers outside #[test] functions unwrap too: a panic there is a failed test.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use support::demo::{wait_config_version, Demo};
use support::prometheus::{binary_or_skip, label, sample_value, Prometheus};

/// Ports apart from every other demo test's (`demo_mesh.rs`: 48080 and offset 40000),
/// below the kernel's ephemeral range (32768+) so no client socket holds one.
const GATEWAY_PORT: u16 = 29_480;
const PORT_OFFSET: u16 = 14_000;

/// Kiali's group-by list for graph queries.
const GROUP_BY: &str = "source_cluster,source_workload_namespace,source_workload,source_canonical_service,source_canonical_revision,destination_cluster,destination_service_namespace,destination_service,destination_service_name,destination_workload_namespace,destination_workload,destination_canonical_service,destination_canonical_revision,request_protocol,response_code,grpc_response_status,response_flags";

/// Kiali's three graph queries for namespace `ns`, as Kiali writes them: requests into
/// `ns` from outside it that no workload answered, requests `ns`'s workloads received,
/// and requests `ns`'s workloads sent.
fn kiali_queries(ns: &str) -> [String; 3] {
    [
        format!(
            r#"sum(rate(istio_requests_total{{reporter="source",source_workload_namespace!="{ns}",destination_workload_namespace="unknown",destination_workload="unknown",destination_service=~"^.+\\.{ns}\\..+$"}}[60s])) by ({GROUP_BY}) > 0"#
        ),
        format!(
            r#"sum(rate(istio_requests_total{{reporter="destination",destination_workload_namespace="{ns}"}}[60s])) by ({GROUP_BY}) > 0"#
        ),
        format!(
            r#"sum(rate(istio_requests_total{{reporter="source",source_workload_namespace="{ns}"}}[60s])) by ({GROUP_BY}) > 0"#
        ),
    ]
}

/// The share of an edge's requests matching `bad`, the way Kiali's edge health
/// computes it (`None` while the edge has no failures at all).
fn error_ratio(edge: &str, bad: &str) -> String {
    format!(
        "sum(rate(istio_requests_total{{{edge},{bad}}}[60s])) / sum(rate(istio_requests_total{{{edge}}}[60s]))"
    )
}

const GATEWAY_EDGE: &str = r#"reporter="source",source_workload_namespace="istio-system",source_workload="istio-ingressgateway",destination_service_namespace="default",destination_service_name="temperature-api""#;
const API_EDGE: &str = r#"reporter="source",source_workload_namespace="default",source_workload="temperature-api",destination_service_namespace="default",destination_service_name="temperature-service""#;

/// Every request delayed by 1 ms, half of them then aborted (Envoy flags: DI, DI,FI).
const GATEWAY_FAULT: &str = "  - name: temperature-api
    fault:
      delay:
        fixedDelay: 1ms
        percentage:
          value: 100
      abort:
        httpStatus: 503
        percentage:
          value: 50
    route:";

/// The mesh route to temperature-service: 30% aborted with gRPC UNAVAILABLE, and 30%
/// of the rest sent to a subset no DestinationRule defines (NC).
const MESH_FAULTS: &str = "  - name: temperature-service
    timeout: 5s
    fault:
      abort:
        grpcStatus: UNAVAILABLE
        percentage:
          value: 30
    route:
    - destination:
        host: temperature-service
        port:
          number: 8080
      weight: 70
    - destination:
        host: temperature-service
        subset: v9
        port:
          number: 8080
      weight: 30
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kiali_graph_queries_draw_the_demo_mesh() {
    let Some(binary) = binary_or_skip("kiali_graph_queries_draw_the_demo_mesh") else {
        return;
    };
    let started = Instant::now();
    let demo = Demo::start(
        env!("CARGO_BIN_EXE_meshgate"),
        GATEWAY_PORT,
        PORT_OFFSET,
        "kiali",
    )
    .await;
    let prom = Prometheus::start(&binary, &demo.metrics_targets());
    assert!(
        prom.wait_ready(Duration::from_secs(15)).await,
        "Prometheus never became ready:\n{}",
        prom.log()
    );
    let traffic = Traffic::start(demo.gateway_url(), Duration::from_millis(40), 3_000);
    let p = &prom;

    // 1. The healthy graph: both hops, each reported by both of its ends.
    let ns = kiali_queries("default");
    let gw_ns = kiali_queries("istio-system");
    let (ns, gw_ns) = (&ns, &gw_ns);
    let graph = eventually(
        "the healthy graph",
        Duration::from_secs(25),
        p,
        || async move {
            let unanswered = query(p, &ns[0]).await?;
            let inbound = query(p, &ns[1]).await?;
            let outbound = query(p, &ns[2]).await?;
            let gateway_out = query(p, &gw_ns[2]).await?;
            let ok = [("response_code", "200")];
            let gw_src = find(
                &gateway_out,
                &[
                    ("source_workload", "istio-ingressgateway"),
                    ("destination_workload", "temperature-api"),
                    ok[0],
                ],
            )?;
            let gw_dst = find(
                &inbound,
                &[
                    ("source_workload", "istio-ingressgateway"),
                    ("destination_workload", "temperature-api"),
                    ok[0],
                ],
            )?;
            let api_src = find(
                &outbound,
                &[
                    ("source_workload", "temperature-api"),
                    ("destination_workload", "temperature-service"),
                    ok[0],
                ],
            )?;
            let api_dst = find(
                &inbound,
                &[
                    ("source_workload", "temperature-api"),
                    ("destination_workload", "temperature-service"),
                    ok[0],
                ],
            )?;
            Ok((
                unanswered,
                [inbound, outbound, gateway_out].concat(),
                [gw_src, gw_dst, api_src, api_dst],
            ))
        },
    )
    .await;
    let (unanswered, all, [gw_src, gw_dst, api_src, api_dst]) = graph;
    eprintln!("healthy graph after {:?}", started.elapsed());
    for s in &all {
        kiali_accepts(s);
    }
    assert!(
        unanswered.is_empty(),
        "no request went unanswered yet, but Kiali would draw an unknown node: {unanswered:?}"
    );
    let temperature_api = [
        (
            "destination_service",
            "temperature-api.default.svc.cluster.local",
        ),
        ("destination_service_name", "temperature-api"),
        ("destination_service_namespace", "default"),
        ("destination_workload", "temperature-api"),
        ("destination_workload_namespace", "default"),
        ("destination_canonical_service", "temperature-api"),
        ("destination_canonical_revision", "v1"),
        ("destination_cluster", "Kubernetes"),
    ];
    expect_labels(
        &gw_src,
        &[
            &temperature_api[..],
            &[
                ("source_workload", "istio-ingressgateway"),
                ("source_workload_namespace", "istio-system"),
                ("source_canonical_service", "istio-ingressgateway"),
                ("source_canonical_revision", "latest"),
                ("source_cluster", "Kubernetes"),
                ("request_protocol", "http"),
                ("response_code", "200"),
                ("grpc_response_status", ""),
                ("response_flags", "-"),
            ],
        ]
        .concat(),
    );
    expect_labels(
        &api_src,
        &[
            ("source_workload", "temperature-api"),
            ("source_workload_namespace", "default"),
            ("source_canonical_service", "temperature-api"),
            ("source_canonical_revision", "v1"),
            ("source_cluster", "Kubernetes"),
            (
                "destination_service",
                "temperature-service.default.svc.cluster.local",
            ),
            ("destination_service_name", "temperature-service"),
            ("destination_service_namespace", "default"),
            ("destination_workload", "temperature-service"),
            ("destination_workload_namespace", "default"),
            ("destination_canonical_service", "temperature-service"),
            ("destination_canonical_revision", "v1"),
            ("destination_cluster", "Kubernetes"),
            ("request_protocol", "grpc"),
            ("response_code", "200"),
            ("grpc_response_status", "0"),
            ("response_flags", "-"),
        ],
    );
    // Both ends of a hop must agree on every label Kiali groups by, or it double-counts.
    assert_eq!(
        gw_src["metric"], gw_dst["metric"],
        "gateway → temperature-api"
    );
    assert_eq!(
        api_src["metric"], api_dst["metric"],
        "temperature-api → temperature-service"
    );

    // The proxies' own upstream health series, scraped beside Istio's.
    let pools = query(
        p,
        r#"meshgate_upstream_connections_total{cluster=~"outbound\\|.*temperature-(api|service).*"}"#,
    )
    .await
    .unwrap();
    assert!(
        pools.iter().any(|s| sample_value(s) >= 1.0),
        "no upstream connection counted towards the demo services: {pools:?}"
    );

    let healthy = query(p, &error_ratio(GATEWAY_EDGE, r#"response_code=~"5.""#))
        .await
        .unwrap();
    assert!(
        healthy.iter().all(|s| sample_value(s) < 0.1),
        "the healthy edge is already red: {healthy:?}"
    );
    let p95 = query(
        p,
        r#"histogram_quantile(0.95, sum(rate(istio_request_duration_milliseconds_bucket{reporter="source"}[30s])) by (le))"#,
    )
    .await
    .unwrap();
    assert_eq!(p95.len(), 1, "{p95:?}");
    let p95 = sample_value(&p95[0]);
    assert!(p95.is_finite() && p95 > 0.0, "p95 {p95} ms");
    eprintln!("p95 of source-reported requests: {p95} ms");

    // 2. A fault abort on gateway → temperature-api turns that edge red (5xx ≥ 10%),
    //    and the aborted requests still name the service they were routed to.
    let original_gateway = demo.read_config("gateway.yaml");
    let faulty = original_gateway.replace("  - name: temperature-api\n    route:", GATEWAY_FAULT);
    assert_ne!(
        faulty, original_gateway,
        "the demo's gateway route changed shape"
    );
    demo.write_config("gateway.yaml", &faulty);
    let gateway_metrics = demo.metrics_targets()[0].1;
    assert!(
        wait_config_version(gateway_metrics, 2, Duration::from_secs(10)).await,
        "the gateway did not load the fault"
    );
    let fault_started = Instant::now();
    let red = eventually(
        "the red gateway edge",
        Duration::from_secs(20),
        p,
        || async move {
            let unanswered = query(p, &ns[0]).await?;
            let aborted = find(
                &unanswered,
                &[
                    ("source_workload", "istio-ingressgateway"),
                    ("response_code", "503"),
                ],
            )?;
            let ratio = query(p, &error_ratio(GATEWAY_EDGE, r#"response_code=~"5..""#)).await?;
            let ratio = ratio.first().map(sample_value).unwrap_or(0.0);
            if ratio <= 0.10 {
                return Err(format!("5xx ratio {ratio} not above 10% yet"));
            }
            // The delayed requests that went through are still answered by the api.
            let sent = query(p, &gw_ns[2]).await?;
            find(
                &sent,
                &[
                    ("destination_workload", "temperature-api"),
                    ("response_code", "200"),
                    ("response_flags", "DI"),
                ],
            )?;
            Ok((aborted, ratio))
        },
    )
    .await;
    let (aborted, ratio) = red;
    eprintln!(
        "gateway edge red after {:?}: 5xx ratio {ratio:.2}",
        fault_started.elapsed()
    );
    kiali_accepts(&aborted);
    expect_labels(
        &aborted,
        &[
            &temperature_api[..3],
            &[
                ("destination_workload", "unknown"),
                ("destination_workload_namespace", "unknown"),
                ("source_workload_namespace", "istio-system"),
                ("request_protocol", "http"),
                ("response_code", "503"),
                ("response_flags", "DI,FI"),
            ],
        ]
        .concat(),
    );

    // 3. gRPC failures the api's sidecar answers itself (a gRPC abort, a subset nobody
    //    defined): response_code 200 with the gRPC status, red by the gRPC rule only.
    let mesh = demo.read_config("mesh.yaml");
    let start = mesh.find("  - name: temperature-service\n").unwrap();
    let end = mesh[start..].find("---").unwrap() + start;
    demo.write_config(
        "mesh.yaml",
        &format!("{}{MESH_FAULTS}{}", &mesh[..start], &mesh[end..]),
    );
    demo.write_config("gateway.yaml", &original_gateway);
    let grpc = eventually(
        "the gRPC failures",
        Duration::from_secs(20),
        p,
        || async move {
            let outbound = query(p, &ns[2]).await?;
            let want = |flag| {
                [
                    ("source_workload", "temperature-api"),
                    (
                        "destination_service",
                        "temperature-service.default.svc.cluster.local",
                    ),
                    ("response_flags", flag),
                ]
            };
            let aborted = find(&outbound, &want("FI"))?;
            let no_cluster = find(&outbound, &want("NC"))?;
            let grpc_ratio = query(
                p,
                &error_ratio(API_EDGE, r#"grpc_response_status=~"[1-9]|1[0-6]""#),
            )
            .await?;
            let grpc_ratio = grpc_ratio.first().map(sample_value).unwrap_or(0.0);
            if grpc_ratio <= 0.10 {
                return Err(format!("gRPC error ratio {grpc_ratio} not above 10% yet"));
            }
            let http_5xx = query(p, &error_ratio(API_EDGE, r#"response_code=~"5..""#)).await?;
            Ok((aborted, no_cluster, grpc_ratio, http_5xx))
        },
    )
    .await;
    let (aborted, no_cluster, grpc_ratio, http_5xx) = grpc;
    eprintln!("api edge gRPC error ratio {grpc_ratio:.2}");
    for (series, flag) in [(&aborted, "FI"), (&no_cluster, "NC")] {
        kiali_accepts(series);
        expect_labels(
            series,
            &[
                ("destination_service_name", "temperature-service"),
                ("destination_service_namespace", "default"),
                ("destination_workload", "unknown"),
                ("request_protocol", "grpc"),
                ("response_code", "200"),
                ("grpc_response_status", "14"),
                ("response_flags", flag),
            ],
        );
    }
    assert!(
        http_5xx.is_empty(),
        "proxy-made gRPC failures must not count as HTTP 5xx: {http_5xx:?}"
    );

    // 4. The proxies' own health metrics, scraped alongside: every reload counted, and
    //    the connections each proxy accepted (pooled by its callers, so still open).
    assert!(
        wait_config_version(gateway_metrics, 3, Duration::from_secs(10)).await,
        "the gateway did not load the restored route"
    );
    let health = eventually(
        "the proxies' own metrics",
        Duration::from_secs(10),
        p,
        || async move {
            let per_job = |q: &'static str| async move {
                let r = query(p, q).await?;
                Ok::<_, String>(
                    r.iter()
                        .map(|s| (label(s, "job").to_string(), sample_value(s)))
                        .collect::<BTreeMap<String, f64>>(),
                )
            };
            let versions = per_job("meshgate_config_version").await?;
            if versions.len() < 3 || versions.values().any(|v| *v < 3.0) {
                return Err(format!("versions scraped so far: {versions:?}"));
            }
            Ok([
                per_job("up").await?,
                versions,
                per_job(r#"meshgate_config_reloads_total{result="ok"}"#).await?,
                per_job("sum by (job) (meshgate_downstream_connections_total)").await?,
                per_job("sum by (job) (meshgate_downstream_connections_active)").await?,
                per_job(r#"istio_build{component="proxy"}"#).await?,
            ])
        },
    )
    .await;
    let [up, versions, reloads, accepted, open, build] = health;
    eprintln!("config versions {versions:?}, reloads {reloads:?}, connections accepted {accepted:?}, open {open:?}");
    let jobs = ["gateway", "temperature-api", "temperature-service"];
    for (name, m) in [
        ("up", &up),
        ("versions", &versions),
        ("reloads", &reloads),
        ("accepted", &accepted),
        ("open", &open),
        ("build", &build),
    ] {
        assert_eq!(
            m.keys().map(String::as_str).collect::<Vec<_>>(),
            jobs,
            "{name}: {m:?}"
        );
    }
    assert!(up.values().all(|v| *v == 1.0), "{up:?}");
    assert!(build.values().all(|v| *v == 1.0), "{build:?}");
    // The initial load plus at least the two edits every proxy saw.
    assert!(reloads.values().all(|v| *v >= 3.0), "{reloads:?}");
    assert!(versions.values().all(|v| *v >= 3.0), "{versions:?}");
    assert!(accepted.values().all(|v| *v >= 1.0), "{accepted:?}");
    assert!(open.values().all(|v| *v >= 1.0), "{open:?}");

    let statuses = traffic.stop().await;
    eprintln!(
        "done after {:?}; gateway answers {statuses:?}",
        started.elapsed()
    );
    assert!(statuses.get(&200).copied().unwrap_or(0) > 0, "{statuses:?}");
    drop(demo);
}

/// Polls `check` every 500 ms until it returns Ok, failing the test (with the last
/// reason and Prometheus' log) after `limit`.
async fn eventually<T, F, Fut>(what: &str, limit: Duration, prom: &Prometheus, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let start = Instant::now();
    let mut last = String::from("never checked");
    while start.elapsed() < limit {
        tokio::time::sleep(Duration::from_millis(500)).await;
        match check().await {
            Ok(v) => return v,
            Err(e) => last = e,
        }
    }
    panic!(
        "{what}: not there within {limit:?}: {last}\nprometheus log:\n{}",
        prom.log()
    );
}

async fn query(p: &Prometheus, promql: &str) -> Result<Vec<Value>, String> {
    p.query(promql)
        .await
        .ok_or_else(|| format!("Prometheus did not answer {promql}"))
}

/// The one series whose labels include all of `want`.
fn find(series: &[Value], want: &[(&str, &str)]) -> Result<Value, String> {
    let found: Vec<&Value> = series
        .iter()
        .filter(|s| want.iter().all(|(k, v)| label(s, k) == *v))
        .collect();
    match found.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(format!(
            "no series with {want:?} among {:?}",
            series.iter().map(|s| &s["metric"]).collect::<Vec<_>>()
        )),
        many => Err(format!("{} series with {want:?}: {many:?}", many.len())),
    }
}

/// Kiali skips series missing any label it groups by (gRPC status only for gRPC).
fn kiali_accepts(series: &Value) {
    for name in GROUP_BY.split(',') {
        let grpc_only = name == "grpc_response_status";
        if grpc_only && label(series, "request_protocol") != "grpc" {
            continue;
        }
        assert!(
            !label(series, name).is_empty(),
            "Kiali would skip this series, {name} is empty: {}",
            series["metric"]
        );
    }
}

fn expect_labels(series: &Value, want: &[(&str, &str)]) {
    for (name, value) in want {
        assert_eq!(
            label(series, name),
            *value,
            "{name} in {}",
            series["metric"]
        );
    }
}

/// Requests through the gateway, one every `every`, at most `max`, until stopped.
struct Traffic {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<BTreeMap<u16, u64>>,
}

impl Traffic {
    fn start(url: String, every: Duration, max: u64) -> Traffic {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let task = tokio::spawn(async move {
            let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
            let uri: http::Uri = url.parse().unwrap();
            let mut statuses = BTreeMap::new();
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            for _ in 0..max {
                if flag.load(Ordering::Relaxed) {
                    break;
                }
                tick.tick().await;
                let status =
                    match tokio::time::timeout(Duration::from_secs(10), client.get(uri.clone()))
                        .await
                    {
                        Ok(Ok(resp)) => {
                            let status = resp.status().as_u16();
                            let _ = resp.into_body().collect().await;
                            status
                        }
                        _ => 0,
                    };
                *statuses.entry(status).or_insert(0) += 1;
            }
            statuses
        });
        Traffic { stop, task }
    }

    async fn stop(self) -> BTreeMap<u16, u64> {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.unwrap()
    }
}
