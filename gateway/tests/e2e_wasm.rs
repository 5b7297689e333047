//! WasmPlugins in `meshgate gateway`: plugins built from source with the proxy-wasm
//! SDK, selected by Istio's WasmPlugin resource, editing requests and responses,
//! answering requests themselves, failing per failStrategy, and hot-reloaded.
#![allow(clippy::unwrap_used)]

mod common;
mod wasm_support;

use common::yaml::{http_gateway, service, virtual_service};
use std::time::Duration;

use common::{eventually, Backend, Gateway, Http};

fn wasm_plugin(name: &str, file: &str, extra: &str) -> String {
    format!(
        "apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata:
  name: {name}
  namespace: istio-system
spec:
  selector:
    matchLabels:
      istio: ingressgateway
  url: file://{}
{extra}---
",
        wasm_support::plugins::wasm_path(file).display()
    )
}

fn routes(backend: &Backend) -> String {
    http_gateway("gw", &["*"])
        + &service("web", 8000, "HTTP", &[("v1", backend.port())])
        + &virtual_service(
            "web",
            &["*"],
            &["gw"],
            "  http:\n  - route:\n    - destination:\n        host: web\n        port:\n          number: 8000\n",
        )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugins_edit_deny_fail_and_reload_in_the_gateway() {
    let backend = Backend::start("web").await;
    let base = routes(&backend);
    let yaml = base.clone()
        + &wasm_plugin(
            "add",
            "header_add",
            "  phase: STATS\n  pluginConfig:\n    value: from-wasm\n",
        )
        + &wasm_plugin("deny", "deny", "  phase: AUTHZ\n")
        + &wasm_plugin("count", "counter", "");
    let gw = Gateway::with_config(&yaml).start().await;
    let http = Http::new();
    let url = gw.url(80, "/hello");

    // The header plugin edits the request the upstream sees and the response the client sees.
    let r = http.get(&url, Some("web.example"), &[]).await;
    assert_eq!(r.status, 200, "{}\n{}", r.body, gw.log());
    assert!(
        r.upstream_header("x-wasm-request").is_some(),
        "request header missing: {}",
        r.body
    );
    assert!(
        r.headers.contains_key("x-wasm-response"),
        "response header missing: {:?}",
        r.headers
    );

    // Metrics a plugin defines are scraped under its own names.
    let scrape = http.get(&gw.metrics_url(), None, &[]).await;
    assert!(
        scrape
            .body
            .lines()
            .any(|l| l.starts_with("wasmtest_requests_total") && !l.ends_with(" 0")),
        "plugin counter missing from /stats/prometheus:\n{}",
        scrape.body
    );

    // The AUTHZ plugin answers by itself; the upstream never sees that request.
    let before = backend.requests();
    let r = http
        .get(&url, Some("web.example"), &[("x-deny", "no ticket")])
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(r.headers["x-denied-by"], "wasm");
    assert_eq!(
        backend.requests(),
        before,
        "a denied request reached the upstream"
    );

    // A trapping plugin with FAIL_CLOSE fails the request with 503; the gateway lives on.
    gw.write_config(&(base.clone() + &wasm_plugin("trap", "trap", "  failStrategy: FAIL_CLOSE\n")));
    let closed = eventually(Duration::from_secs(10), || async {
        http.get(&url, Some("web.example"), &[("x-crash", "1")])
            .await
            .status
            == 503
    })
    .await;
    assert!(closed, "FAIL_CLOSE trap did not give 503:\n{}", gw.log());
    // As in Envoy, a crashed plugin with FAIL_CLOSE stays failed (closed) until it is
    // reloaded, while the gateway itself keeps serving.
    let r = http.get(&url, Some("web.example"), &[]).await;
    assert_eq!(
        r.status, 503,
        "a crashed FAIL_CLOSE plugin must keep failing closed: {}",
        r.body
    );

    // FAIL_RELOAD: the next request gets a fresh VM.
    gw.write_config(
        &(base.clone() + &wasm_plugin("trap", "trap", "  failStrategy: FAIL_RELOAD\n")),
    );
    let reloaded = eventually(Duration::from_secs(10), || async {
        http.get(&url, Some("web.example"), &[]).await.status == 200
    })
    .await;
    assert!(
        reloaded,
        "new config with FAIL_RELOAD not applied:\n{}",
        gw.log()
    );
    let r = http
        .get(&url, Some("web.example"), &[("x-crash", "1")])
        .await;
    assert_eq!(r.status, 503, "{}", r.body);
    let r = http.get(&url, Some("web.example"), &[]).await;
    assert_eq!(
        r.status, 200,
        "FAIL_RELOAD must start a fresh VM for the next request: {}",
        r.body
    );

    // FAIL_OPEN: the same trap is skipped and the request goes through.
    gw.write_config(&(base.clone() + &wasm_plugin("trap", "trap", "  failStrategy: FAIL_OPEN\n")));
    let open = eventually(Duration::from_secs(10), || async {
        http.get(&url, Some("web.example"), &[("x-crash", "1")])
            .await
            .status
            == 200
    })
    .await;
    assert!(open, "FAIL_OPEN trap was not skipped:\n{}", gw.log());

    // Removing the plugins removes their effect.
    gw.write_config(&base);
    let gone = eventually(Duration::from_secs(10), || async {
        http.get(&url, Some("web.example"), &[("x-deny", "x")])
            .await
            .status
            == 200
    })
    .await;
    assert!(gone, "removed plugin still answers:\n{}", gw.log());
}

/// The example plugins from `plugins/`, built with the SDK, running in the gateway as
/// their WasmPlugin YAML configures them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn example_plugins_guard_the_gateway() {
    let backend = Backend::start("api").await;
    let example = |name: &str, file: &str, extra: &str| {
        format!(
            "apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata:
  name: {name}
  namespace: istio-system
spec:
  selector:
    matchLabels:
      istio: ingressgateway
  url: file://{}
{extra}---
",
            wasm_support::plugins::example_wasm_path(file).display()
        )
    };
    let yaml = routes(&backend)
        + &example(
            "unit-guard",
            "unit-guard",
            "  phase: AUTHZ\n  pluginConfig:\n    units: [Celsius, Fahrenheit, Kelvin]\n    params: [from, to]\n",
        )
        + &example(
            "api-key-auth",
            "api-key-auth",
            "  phase: AUTHN\n  failStrategy: FAIL_CLOSE\n  pluginConfig:\n    header: x-api-key\n    realm: temperatures\n    keys:\n    - name: demo-client\n      key: demo-key\n",
        );
    let gw = Gateway::with_config(&yaml).start().await;
    let http = Http::new();
    let ok = gw.url(80, "/?from=Celsius&to=Kelvin&temperature=150");
    let bad = gw.url(80, "/?from=Celsius&to=Rankine&temperature=150");

    let r = http.get(&ok, Some("api.example"), &[]).await;
    assert_eq!(
        r.status,
        401,
        "no key must be refused: {}\n{}",
        r.body,
        gw.log()
    );
    assert!(
        r.headers.contains_key("www-authenticate"),
        "{:?}",
        r.headers
    );

    let key = [("x-api-key", "demo-key")];
    let r = http.get(&ok, Some("api.example"), &key).await;
    assert_eq!(r.status, 200, "{}", r.body);

    let before = backend.requests();
    let r = http.get(&bad, Some("api.example"), &key).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("Rankine"), "{}", r.body);
    assert_eq!(
        backend.requests(),
        before,
        "an unsupported unit reached the upstream"
    );
}
