use meshgate_plugin_test::{MetricValue, PluginHarness, Request};
use serde_json::json;

fn harness(config: serde_json::Value) -> PluginHarness {
    PluginHarness::load(meshgate_plugin_test::this_plugin!(), config).unwrap()
}

fn counter(h: &PluginHarness, name: &str) -> u64 {
    match h.metric(name) {
        Some(MetricValue::Counter(n)) => n,
        other => panic!("{name}: {other:?}"),
    }
}

#[test]
fn missing_and_wrong_keys_get_401_with_a_challenge() {
    let h = harness(json!({"keys": ["secret-key-1"]}));
    let denied_before = counter(&h, "api_key_auth_denied");
    let out = h.request(Request::get("/"));
    let r = out.local();
    assert_eq!(r.status, 401);
    assert_eq!(
        r.header("www-authenticate"),
        Some(r#"ApiKey realm="meshgate", header="x-api-key""#)
    );
    assert_eq!(r.json(), json!({"error": "missing API key"}));

    let out = h.request(Request::get("/").header("x-api-key", "secret-key-2"));
    assert_eq!(out.local().json(), json!({"error": "invalid API key"}));
    assert!(
        out.plugin_logs()
            .iter()
            .any(|l| l.contains("unknown API key")),
        "{:?}",
        out.logs
    );
    // Metrics are process-wide: other tests may add to them concurrently.
    assert!(counter(&h, "api_key_auth_denied") >= denied_before + 2);
}

#[test]
fn a_valid_key_passes_without_the_key_and_with_its_name() {
    let h = harness(json!({
        "keys": ["bare-key-000", {"name": "mobile", "key": "mobile-key-1"}],
        "header": "Authorization-Key",
        "realm": "temps"
    }));
    let out = h.request(Request::get("/").header("authorization-key", "mobile-key-1"));
    let up = out.forwarded();
    assert_eq!(up.header("authorization-key"), None);
    assert_eq!(up.header("x-api-key-name"), Some("mobile"));
    let out = h.request(Request::get("/").header("authorization-key", "bare-key-000"));
    assert_eq!(out.forwarded().header("x-api-key-name"), Some("key-0"));
    // The configured header is the one read: the default one means nothing here.
    let out = h.request(Request::get("/").header("x-api-key", "mobile-key-1"));
    assert_eq!(
        out.local().header("www-authenticate"),
        Some(r#"ApiKey realm="temps", header="Authorization-Key""#)
    );
    assert!(counter(&h, "api_key_auth_allowed") >= 2);
}

#[test]
fn forward_key_keeps_the_header() {
    let h = harness(json!({"keys": ["secret-key-1"], "forwardKey": true}));
    let out = h.request(Request::get("/").header("x-api-key", "secret-key-1"));
    assert_eq!(out.forwarded().header("x-api-key"), Some("secret-key-1"));
}

#[test]
fn configs_without_usable_keys_are_rejected() {
    let wasm = meshgate_plugin_test::this_plugin!();
    for (config, expect) in [
        (json!({"keys": []}), "no keys configured"),
        (
            json!({"keys": ["short"]}),
            "keys[0] (key-0): shorter than 8",
        ),
        (json!({}), "missing field `keys`"),
    ] {
        let err = PluginHarness::load(&wasm, config).err().unwrap();
        assert!(err.to_string().contains(expect), "{expect}: {err}");
    }
}
