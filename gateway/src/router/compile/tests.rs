//! Compile behaviour users rely on: one bad resource rejected alone with its line,
//! Istio defaults, delegates, clusters and their endpoints and policies.

use super::*;
use crate::router::testing::{compiled, request, GATEWAY};
use crate::router::RouteDecision;

const VS_HEAD: &str = "apiVersion: networking.istio.io/v1\nkind: VirtualService\n";

fn only_rule(s: &Snapshot) -> &HttpRule {
    &s.mesh.vhosts[0].rules[0]
}

fn route_action(rule: &HttpRule) -> &RouteAction {
    match &rule.action {
        RuleAction::Route(a) => a,
        other => panic!("not a route: {other:?}"),
    }
}

#[test]
fn an_invalid_regex_rejects_only_its_virtual_service_and_names_the_line() {
    let yaml = format!(
        "{GATEWAY}{VS_HEAD}metadata: {{name: bad}}\nspec:\n  hosts: [bad.example]\n  gateways: [gw]\n  http:\n  - match:\n    - uri:\n        regex: '/v[0-9'\n    route:\n    - destination: {{host: a}}\n---\n{VS_HEAD}metadata: {{name: good}}\nspec:\n  hosts: [good.example]\n  gateways: [gw]\n  http:\n  - route:\n    - destination: {{host: a}}\n"
    );
    let c = compiled(&yaml);
    let errors: Vec<_> = c.rejected.iter().filter(|d| d.is_error()).collect();
    assert_eq!(errors.len(), 1, "{:?}", c.rejected);
    let e = errors[0];
    assert_eq!(e.code, CODE_REGEX);
    let text = e.to_string();
    assert!(
        text.starts_with("test.yaml:19:9: VirtualService default/bad: spec.http[0].match[0].uri.regex: invalid regex \"/v[0-9\": "),
        "{text}"
    );
    let server = &c.snapshot.listeners[&80].servers[0];
    assert!(server.vhosts.exact.contains_key("good.example"));
    assert!(!server.vhosts.exact.contains_key("bad.example"));
}

#[test]
fn regexes_are_anchored_and_case_folding_applies_to_exact_and_prefix_only() {
    let c = compiled(&format!("{VS_HEAD}metadata: {{name: v}}\nspec:\n  hosts: [v]\n  http:\n  - match:\n    - uri: {{regex: '/api/v[0-9]+'}}\n      ignoreUriCase: true\n    - uri: {{prefix: /Static}}\n      ignoreUriCase: true\n    route:\n    - destination: {{host: v}}\n"));
    let rule = only_rule(&c.snapshot);
    assert_eq!(
        rule.matches[0]
            .uri
            .as_ref()
            .map(|m| m.to_string())
            .as_deref(),
        Some("regex \"/api/v[0-9]+\"")
    );
    assert!(matches!(&rule.matches[1].uri, Some(Matcher::PrefixIgnoreCase(p)) if p == "/static"));
    let q = request("GET", "http://v/api/v2/extra", &[]);
    assert!(!rule.matches[0].matches(&q.view(), Default::default()));
    let q = request("GET", "http://v/STATIC/app.js", &[]);
    assert!(rule.applies(&q.view(), Default::default()));
}

#[test]
fn a_fault_without_percentage_injects_nothing() {
    let c = compiled(&format!("{VS_HEAD}metadata: {{name: r}}\nspec:\n  hosts: [ratings]\n  http:\n  - fault:\n      abort: {{httpStatus: 500}}\n      delay: {{fixedDelay: 7s, percent: 50}}\n    route:\n    - destination: {{host: ratings}}\n"));
    let fault = route_action(only_rule(&c.snapshot))
        .fault
        .clone()
        .expect("fault");
    assert_eq!(fault.abort.expect("abort").fraction, 0.0);
    assert_eq!(fault.delay, Some((std::time::Duration::from_secs(7), 0.5)));
}

#[test]
fn weights_are_relative_and_a_zero_total_is_rejected() {
    let c = compiled(&format!("{VS_HEAD}metadata: {{name: r}}\nspec:\n  hosts: [reviews]\n  http:\n  - route:\n    - destination: {{host: reviews, subset: v1}}\n      weight: 1\n    - destination: {{host: reviews, subset: v2}}\n      weight: 3\n"));
    let a = route_action(only_rule(&c.snapshot));
    assert_eq!((a.total_weight, a.destinations[1].weight), (4, 3));
    let single = compiled(&format!("{VS_HEAD}metadata: {{name: r}}\nspec:\n  hosts: [reviews]\n  http:\n  - route:\n    - destination: {{host: reviews}}\n"));
    assert_eq!(route_action(only_rule(&single.snapshot)).total_weight, 100);
    let zero = compiled(&format!("{VS_HEAD}metadata: {{name: r}}\nspec:\n  hosts: [reviews]\n  http:\n  - route:\n    - destination: {{host: reviews, subset: v1}}\n      weight: 0\n    - destination: {{host: reviews, subset: v2}}\n"));
    let e = zero
        .rejected
        .iter()
        .find(|d| d.is_error())
        .expect("rejected");
    assert_eq!(e.code, CODE_WEIGHT);
    assert_eq!(e.field.as_deref(), Some("spec.http[0].route"));
    assert!(zero.snapshot.mesh.vhosts.is_empty());
}

#[test]
fn route_defaults_and_policies_compile() {
    let c = compiled(&format!("{VS_HEAD}metadata: {{name: r}}\nspec:\n  hosts: [reviews]\n  http:\n  - match: [{{uri: {{prefix: /}}, method: {{exact: GET}}}}]\n    timeout: 0.5s\n    retries: {{attempts: 3, perTryTimeout: 2s, retryOn: '5xx,connect-failure,503'}}\n    rewrite: {{uri: /v2}}\n    headers:\n      request: {{set: {{x-env: prod}}, remove: [x-debug]}}\n    corsPolicy:\n      allowOrigins: [{{exact: 'https://a.example'}}]\n      allowMethods: [GET, POST]\n      maxAge: 24h\n    mirrors:\n    - destination: {{host: reviews, subset: v2}}\n      percentage: {{value: 25}}\n    route:\n    - destination: {{host: reviews}}\n  - route:\n    - destination: {{host: reviews}}\n    retries: {{attempts: 0}}\n"));
    assert!(c.rejected.iter().all(|d| !d.is_error()), "{:?}", c.rejected);
    let rules = &c.snapshot.mesh.vhosts[0].rules;
    let a = route_action(&rules[0]);
    assert_eq!(a.timeout, Some(std::time::Duration::from_millis(500)));
    assert_eq!(a.retries.attempts, 3);
    assert_eq!(
        a.retries.retry_on,
        vec![
            RetryOn::FiveXx,
            RetryOn::ConnectFailure,
            RetryOn::Status(503)
        ]
    );
    assert_eq!(a.mirrors[0].fraction, 0.25);
    assert_eq!(
        &*a.mirrors[0].cluster,
        "outbound|80|v2|reviews.default.svc.cluster.local"
    );
    assert_eq!(
        a.cors.as_ref().map(|c| c.allow_methods.as_str()),
        Some("GET,POST")
    );
    assert_eq!(a.headers.request.set[0].1, "prod");
    let b = route_action(&rules[1]);
    assert_eq!(b.retries.attempts, 0);
    assert_eq!(b.timeout, None, "no route timeout by default");
    assert_eq!(RetryPolicy::default().attempts, 2);
}

#[test]
fn a_rule_needs_exactly_one_action() {
    let c = compiled(&format!("{VS_HEAD}metadata: {{name: r}}\nspec:\n  hosts: [r]\n  http:\n  - redirect: {{uri: /x}}\n    directResponse: {{status: 200}}\n"));
    let e = c.rejected.iter().find(|d| d.is_error()).expect("rejected");
    assert_eq!(
        e.message,
        "a rule takes only one of route, redirect, directResponse, delegate"
    );
    let c = compiled(&format!("{VS_HEAD}metadata: {{name: r}}\nspec:\n  hosts: [r]\n  http:\n  - redirect: {{uri: /x, redirectCode: 305}}\n"));
    assert!(c
        .rejected
        .iter()
        .any(|d| d.is_error() && d.message.contains("305")));
}

#[test]
fn delegate_rules_are_inlined_with_the_parent_match_anded_in() {
    let yaml = format!(
        "{VS_HEAD}metadata: {{name: bookinfo}}\nspec:\n  hosts: [bookinfo.example]\n  http:\n  - match: [{{uri: {{prefix: /reviews}}}}]\n    delegate: {{name: reviews-child}}\n  - match: [{{uri: {{prefix: /missing}}}}]\n    delegate: {{name: nope}}\n---\n{VS_HEAD}metadata: {{name: reviews-child}}\nspec:\n  http:\n  - match: [{{headers: {{end-user: {{exact: jason}}}}}}]\n    route:\n    - destination: {{host: reviews, subset: v2}}\n  - match: [{{uri: {{prefix: /other}}}}]\n    route:\n    - destination: {{host: reviews, subset: v3}}\n  - route:\n    - destination: {{host: reviews, subset: v1}}\n"
    );
    let c = compiled(&yaml);
    let warn = c
        .rejected
        .iter()
        .find(|d| d.code == CODE_DELEGATE)
        .expect("missing delegate reported");
    assert_eq!(warn.severity, Severity::Warning);
    let vh = &c.snapshot.mesh.vhosts[0];
    // The /other child rule cannot hold within /reviews: it is left out.
    assert_eq!(
        vh.rules.len(),
        2,
        "{:?}",
        vh.rules.iter().map(|r| &r.index).collect::<Vec<_>>()
    );
    assert_eq!(
        (vh.rules[0].index.as_str(), vh.rules[0].delegate.as_deref()),
        ("0/0", Some("default/reviews-child"))
    );
    let jason = request(
        "GET",
        "http://bookinfo.example/reviews/1",
        &["end-user: jason"],
    );
    let other_path = request(
        "GET",
        "http://bookinfo.example/ratings",
        &["end-user: jason"],
    );
    let bob = request("GET", "http://bookinfo.example/reviews/1", &[]);
    assert!(vh.rules[0].applies(&jason.view(), Default::default()));
    assert!(!vh.rules[0].applies(&other_path.view(), Default::default()));
    assert!(!vh.rules[0].applies(&bob.view(), Default::default()));
    assert!(vh.rules[1].applies(&bob.view(), Default::default()));
    assert_eq!(
        &*route_action(&vh.rules[1]).destinations[0].cluster,
        "outbound|80|v1|reviews.default.svc.cluster.local"
    );
}

#[test]
fn a_subset_defined_nowhere_gives_a_503_nc_cluster_and_a_warning() {
    let c = compiled(&format!("apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {{name: reviews}}\nspec:\n  hosts: [reviews.default.svc.cluster.local]\n  resolution: STATIC\n  ports: [{{number: 9080, name: http, protocol: HTTP}}]\n  endpoints: [{{address: 127.0.0.1, labels: {{version: v1}}}}]\n---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: reviews}}\nspec:\n  host: reviews\n  subsets: [{{name: v1, labels: {{version: v1}}}}]\n---\n{VS_HEAD}metadata: {{name: reviews}}\nspec:\n  hosts: [reviews]\n  http:\n  - route:\n    - destination: {{host: reviews, subset: v3}}\n"));
    let w = c
        .rejected
        .iter()
        .find(|d| d.code == CODE_SUBSET_MISSING)
        .expect("warned");
    assert_eq!(w.severity, Severity::Warning);
    assert_eq!(
        w.field.as_deref(),
        Some("spec.http[0].route[0].destination")
    );
    assert_eq!(w.origin.as_ref().map(|o| o.line), Some(24));
    let cl = &c.snapshot.clusters["outbound|9080|v3|reviews.default.svc.cluster.local"];
    assert!(
        cl.missing
            .as_deref()
            .is_some_and(|m| m.contains("has no subset v3")),
        "{:?}",
        cl.missing
    );
    // The route still compiles: at runtime it answers 503 NC.
    assert_eq!(c.snapshot.mesh.vhosts.len(), 1);
    let v1 = &c.snapshot.clusters["outbound|9080|v1|reviews.default.svc.cluster.local"];
    assert_eq!(v1.endpoints[0].address, "127.0.0.1:9080");
    assert!(v1.missing.is_none());
}

#[test]
fn an_unknown_destination_host_is_a_warning_and_a_missing_cluster() {
    let c = compiled(&format!("{VS_HEAD}metadata: {{name: x}}\nspec:\n  hosts: [x]\n  http:\n  - route:\n    - destination: {{host: nowhere.example}}\n"));
    assert!(c
        .rejected
        .iter()
        .any(|d| d.code == CODE_HOST_UNKNOWN && d.severity == Severity::Warning));
    assert!(c.snapshot.clusters["outbound|80||nowhere.example"]
        .missing
        .is_some());
}

#[test]
fn endpoints_from_service_entries_services_and_dns() {
    let yaml = "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: httpbin}
spec:
  hosts: [httpbin.default.svc.cluster.local]
  resolution: STATIC
  ports: [{number: 8000, name: http, protocol: HTTP}, {number: 9000, name: grpc-api, targetPort: 9443}]
  endpoints:
  - {address: 127.0.0.1, ports: {http: 18001}, labels: {version: v1}}
  - {address: '::1', labels: {version: v2}}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ext}
spec:
  hosts: [api.example.com]
  resolution: DNS
  ports: [{number: 443, name: tls, protocol: TLS}]
---
apiVersion: v1
kind: Service
metadata: {name: temperature-service}
spec:
  ports: [{port: 8080, name: http2-service, targetPort: 50051}]
---
apiVersion: v1
kind: Endpoints
metadata: {name: temperature-service}
subsets:
- addresses: [{ip: 127.0.0.2}, {ip: 127.0.0.3}]
  ports: [{name: http2-service, port: 50052}]
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  ports: [{port: 80, name: web, appProtocol: http, targetPort: 8080}, {port: 81, name: grpc}]
---
apiVersion: v1
kind: Endpoints
metadata: {name: web}
subsets:
- addresses: [{ip: 127.0.0.4}]
  ports: [{name: other, port: 1}, {name: other2, port: 2}]
";
    let c = compiled(yaml);
    let cl = |n: &str| {
        c.snapshot
            .clusters
            .get(n)
            .unwrap_or_else(|| panic!("no cluster {n}"))
            .clone()
    };
    let addrs = |n: &str| {
        cl(n)
            .endpoints
            .iter()
            .map(|e| e.address.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        addrs("outbound|8000||httpbin.default.svc.cluster.local"),
        ["127.0.0.1:18001", "[::1]:8000"]
    );
    assert_eq!(
        addrs("outbound|9000||httpbin.default.svc.cluster.local"),
        ["127.0.0.1:9443", "[::1]:9443"]
    );
    assert_eq!(
        cl("outbound|9000||httpbin.default.svc.cluster.local").protocol,
        UpstreamProtocol::Http2
    );
    let dns = cl("outbound|443||api.example.com");
    assert!(dns.dns);
    assert_eq!(dns.protocol, UpstreamProtocol::Tls);
    assert_eq!(
        addrs("outbound|443||api.example.com"),
        ["api.example.com:443"]
    );
    let temp = "outbound|8080||temperature-service.default.svc.cluster.local";
    assert_eq!(addrs(temp), ["127.0.0.2:50052", "127.0.0.3:50052"]);
    assert_eq!(
        cl(temp).protocol,
        UpstreamProtocol::Http2,
        "http2-service names an HTTP/2 port"
    );
    assert_eq!(
        addrs("outbound|80||web.default.svc.cluster.local"),
        ["127.0.0.4:8080"],
        "no port by name: targetPort"
    );
    assert_eq!(
        cl("outbound|80||web.default.svc.cluster.local").protocol,
        UpstreamProtocol::Http1
    );
    assert_eq!(
        cl("outbound|81||web.default.svc.cluster.local").protocol,
        UpstreamProtocol::Http2
    );
    let info = &c.snapshot.services["temperature-service.default.svc.cluster.local"];
    assert_eq!(
        info.ports,
        vec![(8080, UpstreamProtocol::Http2, "http2-service".to_string())]
    );
    assert!(c
        .snapshot
        .service_cluster("temperature-service:8080", 8080, None)
        .is_some());
}

#[test]
fn subset_policy_replaces_the_fields_it_sets() {
    let yaml = "apiVersion: v1
kind: Service
metadata: {name: reviews}
spec:
  ports: [{port: 9080, name: http}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  trafficPolicy:
    loadBalancer: {simple: ROUND_ROBIN}
    connectionPool:
      tcp: {maxConnections: 1, connectTimeout: 250ms}
      http: {http1MaxPendingRequests: 1, h2UpgradePolicy: UPGRADE}
    portLevelSettings:
    - port: {number: 9080}
      outlierDetection: {consecutive5xxErrors: 2}
  subsets:
  - name: v2
    labels: {version: v2}
    trafficPolicy:
      loadBalancer:
        consistentHash: {httpHeaderName: X-User}
";
    let c = compiled(yaml);
    let base = &c.snapshot.clusters["outbound|9080||reviews.default.svc.cluster.local"];
    assert!(matches!(base.policy.lb, LoadBalancerPolicy::RoundRobin));
    assert_eq!(base.policy.max_connections, Some(1));
    assert_eq!(
        base.policy.connect_timeout,
        Some(std::time::Duration::from_millis(250))
    );
    assert_eq!(
        base.policy
            .outlier
            .as_ref()
            .map(|o| (o.consecutive_5xx, o.max_ejection_percent)),
        Some((2, 10))
    );
    assert_eq!(
        base.protocol,
        UpstreamProtocol::Http2,
        "h2UpgradePolicy: UPGRADE"
    );
    let v2 = &c.snapshot.clusters["outbound|9080|v2|reviews.default.svc.cluster.local"];
    assert!(
        matches!(&v2.policy.lb, LoadBalancerPolicy::ConsistentHash(HashPolicy::Header(h)) if h == "x-user")
    );
    assert_eq!(
        v2.policy.max_pending_requests,
        Some(1),
        "unset subset fields keep the top level's"
    );

    let bad = compiled("apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: r}\nspec:\n  host: r\n  trafficPolicy:\n    connectionPool:\n      tcp: {connectTimeout: '10'}\n");
    let e = bad
        .rejected
        .iter()
        .find(|d| d.is_error())
        .expect("rejected");
    assert_eq!(e.code, CODE_DURATION);
    assert_eq!(
        e.field.as_deref(),
        Some("spec.trafficPolicy.connectionPool.tcp.connectTimeout")
    );
    assert_eq!(e.origin.as_ref().map(|o| o.line), Some(8));
}

#[test]
fn server_host_namespaces_filter_which_virtual_services_bind() {
    let yaml = "apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: istio-system}
spec:
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: ['prod/*.example.com', './local.example']
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: a, namespace: prod}
spec:
  hosts: [a.example.com]
  gateways: [istio-system/gw]
  http: [{route: [{destination: {host: a}}]}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: b, namespace: dev}
spec:
  hosts: [b.example.com]
  gateways: [istio-system/gw]
  http: [{route: [{destination: {host: b}}]}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: c, namespace: istio-system}
spec:
  hosts: [local.example]
  gateways: [gw]
  http: [{route: [{destination: {host: c}}]}]
";
    let c = compiled(yaml);
    let domains: Vec<&str> = c.snapshot.listeners[&80].servers[0]
        .vhosts
        .domains()
        .collect();
    assert_eq!(domains, ["a.example.com", "local.example"]);
    let q = request("GET", "http://a.example.com/", &[]);
    match c.snapshot.route(80, None, &q.view()) {
        RouteDecision::Matched { rule, .. } => {
            assert_eq!(
                &*route_action(rule).destinations[0].cluster,
                "outbound|80||a.prod.svc.cluster.local"
            )
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn match_gateways_narrow_a_rule_and_unknown_gateways_warn() {
    let yaml = format!("{GATEWAY}{VS_HEAD}metadata: {{name: v}}\nspec:\n  hosts: [v.example]\n  gateways: [gw, mesh, missing]\n  http:\n  - match: [{{gateways: [mesh]}}]\n    directResponse: {{status: 201}}\n  - directResponse: {{status: 202}}\n");
    let c = compiled(&yaml);
    assert!(c.rejected.iter().any(
        |d| d.code == CODE_GATEWAY_NOT_FOUND && d.field.as_deref() == Some("spec.gateways[2]")
    ));
    let on_gw = &c.snapshot.listeners[&80].servers[0].vhosts.vhosts[0].rules;
    assert_eq!(on_gw.len(), 1);
    assert_eq!(
        c.snapshot.mesh.vhosts[0].rules.len(),
        1,
        "the mesh-only entry is a catch-all there"
    );
}

#[test]
fn mesh_hosts_do_not_merge_and_the_first_virtual_service_wins() {
    let v = |n: &str, s: u16| {
        format!("{VS_HEAD}metadata: {{name: {n}}}\nspec:\n  hosts: [reviews]\n  http: [{{directResponse: {{status: {s}}}}}]\n---\n")
    };
    let c = compiled(&format!("{}{}", v("first", 201), v("second", 202)));
    assert!(c.rejected.iter().any(|d| d.code == CODE_MESH_CONFLICT
        && d.resource.as_deref() == Some("VirtualService default/second")));
    assert_eq!(
        c.snapshot.mesh.vhosts[0].rules[0].virtual_service,
        "default/first"
    );
}

#[test]
fn tcp_and_tls_rules_bind_to_their_servers() {
    let yaml = "apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  servers:
  - port: {number: 31400, name: tcp, protocol: TCP}
    hosts: ['*']
  - port: {number: 443, name: tls, protocol: TLS}
    hosts: ['*.example.com']
    tls: {mode: PASSTHROUGH}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: tcp-echo}
spec:
  hosts: ['*']
  gateways: [gw]
  tcp:
  - match: [{port: 31400}]
    route:
    - {destination: {host: tcp-echo, port: {number: 9000}, subset: v1}, weight: 80}
    - {destination: {host: tcp-echo, port: {number: 9000}, subset: v2}, weight: 20}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: nginx}
spec:
  hosts: [nginx.example.com]
  gateways: [gw]
  tls:
  - match: [{sniHosts: [nginx.example.com], port: 443}]
    route: [{destination: {host: my-nginx, port: {number: 443}}}]
";
    let c = compiled(yaml);
    let (_, tcp) = c.snapshot.route_tcp(31400, None).expect("tcp route");
    assert_eq!(
        (tcp.total_weight, tcp.ports.as_slice()),
        (100, &[31400][..])
    );
    assert_eq!(
        &*tcp.destinations[1].cluster,
        "outbound|9000|v2|tcp-echo.default.svc.cluster.local"
    );
    let (server, tls) = c
        .snapshot
        .route_tls(443, "NGINX.example.com")
        .expect("tls route");
    assert_eq!(
        server.tls.as_ref().map(|t| t.mode),
        Some(ServerTlsMode::Passthrough)
    );
    assert_eq!(tls.virtual_service, "default/nginx");
    assert!(c.snapshot.route_tls(443, "other.example.com").is_none());
}

#[test]
fn server_tls_settings_are_checked() {
    let gw = |tls: &str| {
        format!("apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {{name: gw}}\nspec:\n  servers:\n  - port: {{number: 443, name: https, protocol: HTTPS}}\n    hosts: ['*']\n{tls}")
    };
    let ok = compiled(&gw(
        "    tls: {mode: MUTUAL, credentialName: shop-cert, minProtocolVersion: TLSV1_3}\n",
    ));
    let tls = ok.snapshot.listeners[&443].servers[0]
        .tls
        .clone()
        .expect("tls");
    assert_eq!(
        (tls.mode, tls.credential_name.as_deref(), tls.min_tls13),
        (ServerTlsMode::Mutual, Some("shop-cert"), true)
    );
    let missing = compiled(&gw(""));
    assert!(missing
        .rejected
        .iter()
        .any(|d| d.is_error() && d.message == "a HTTPS server needs tls settings"));
    assert!(missing.snapshot.listeners.is_empty());
    let no_cert = compiled(&gw("    tls: {mode: SIMPLE}\n"));
    assert!(no_cert
        .rejected
        .iter()
        .any(|d| d.is_error() && d.message.contains("credentialName")));
}

#[test]
fn peer_authentications_and_wasm_plugins_pass_through() {
    let c = compiled("apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: default, namespace: istio-system}\nspec:\n  mtls: {mode: STRICT}\n  portLevelMtls: {8080: {mode: DISABLE}}\n---\napiVersion: extensions.istio.io/v1alpha1\nkind: WasmPlugin\nmetadata: {name: add-header}\nspec:\n  url: file:///plugins/add_header.wasm\n");
    let pa = &c.snapshot.peer_authentications[0];
    assert_eq!(
        (pa.namespace.as_str(), pa.mode.as_str()),
        ("istio-system", "STRICT")
    );
    assert_eq!(pa.port_modes, vec![(8080, "DISABLE".to_string())]);
    assert_eq!(
        c.snapshot.wasm_plugins[0].spec.url,
        "file:///plugins/add_header.wasm"
    );
    assert_eq!(c.snapshot.version, 1);
}
