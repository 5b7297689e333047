use meshgate_plugin_test::{PluginHarness, Request, Response};
use serde_json::json;

fn harness(config: serde_json::Value) -> PluginHarness {
    PluginHarness::load(meshgate_plugin_test::this_plugin!(), config).unwrap()
}

#[test]
fn request_and_response_headers_are_set_added_and_removed() {
    let h = harness(json!({
        "request": {"set": {"x-env": "demo"}, "add": {"via": "meshgate"}, "remove": ["x-debug"]},
        "response": {"set": {"cache-control": "no-store"}, "remove": ["server"]}
    }));
    let out = h.exchange(
        Request::get("/")
            .header("x-env", "prod")
            .header("via", "1.1 edge")
            .header("x-debug", "1"),
        Response::ok()
            .header("server", "temperature-api")
            .header("cache-control", "max-age=60")
            .body("{}"),
    );
    let up = out.forwarded();
    assert_eq!(up.header_all("x-env"), ["demo"]);
    assert_eq!(up.header_all("via"), ["1.1 edge", "meshgate"]);
    assert_eq!(up.header("x-debug"), None);
    let down = out.client_response();
    assert_eq!(down.header("cache-control"), Some("no-store"));
    assert_eq!(down.header("server"), None);
    assert_eq!(down.body_text(), "{}");
}

#[test]
fn an_empty_config_changes_nothing() {
    let h = harness(serde_json::Value::Null);
    let out = h.exchange(
        Request::get("/").header("a", "1"),
        Response::ok().header("b", "2"),
    );
    assert_eq!(out.forwarded().header("a"), Some("1"));
    assert_eq!(out.client_response().header("b"), Some("2"));
}

#[test]
fn invalid_header_names_and_values_reject_the_config() {
    let wasm = meshgate_plugin_test::this_plugin!();
    let err = PluginHarness::load(&wasm, json!({"request": {"set": {"bad name": "x"}}}))
        .err()
        .unwrap();
    assert!(
        err.to_string()
            .contains(r#"request: "bad name" is not a valid header name"#),
        "{err}"
    );
    let err = PluginHarness::load(&wasm, json!({"response": {"add": {"x": "a\r\nb: c"}}}))
        .err()
        .unwrap();
    assert!(err.to_string().contains("line break"), "{err}");
    let err = PluginHarness::load(&wasm, json!({"requests": {}}))
        .err()
        .unwrap();
    assert!(
        err.to_string().contains("unknown field `requests`"),
        "{err}"
    );
}
