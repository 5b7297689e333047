use meshgate_plugin_test::{PluginHarness, Request, Response};
use serde_json::json;

fn harness(config: serde_json::Value) -> PluginHarness {
    PluginHarness::load(meshgate_plugin_test::this_plugin!(), config).unwrap()
}

#[test]
fn unknown_units_are_rejected_with_json() {
    let h = harness(json!({}));
    let out = h.request(Request::get("/?from=Rankine&to=Kelvin&temperature=1"));
    let reply = out.local();
    assert_eq!(reply.status, 400);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(reply.json(), json!({"error": "unsupported unit 'Rankine'"}));

    let out = h.request(Request::get("/?from=Celsius&to=R%C3%A9aumur&temperature=1"));
    assert_eq!(
        out.local().json(),
        json!({"error": "unsupported unit 'Réaumur'"})
    );
}

#[test]
fn known_units_pass_in_any_case_and_reach_the_upstream() {
    let h = harness(json!({}));
    let out = h.exchange(
        Request::get("/?from=celsius&to=KELVIN&temperature=150"),
        Response::ok().body(r#"{"value":423.15,"unit":"Kelvin"}"#),
    );
    assert!(out.local_response.is_none(), "{out:?}");
    assert_eq!(
        out.forwarded().path,
        "/?from=celsius&to=KELVIN&temperature=150"
    );
    assert_eq!(out.client_response().status, 200);
}

#[test]
fn missing_units_are_left_to_the_backend() {
    let h = harness(json!({}));
    let out = h.request(Request::get("/?temperature=150"));
    assert!(out.upstream_request.is_some());
}

#[test]
fn units_and_params_come_from_config() {
    let h = harness(json!({"units": ["Rankine"], "params": ["unit"]}));
    assert!(h
        .request(Request::get("/?unit=rankine"))
        .upstream_request
        .is_some());
    assert_eq!(h.request(Request::get("/?unit=Kelvin")).local().status, 400);
    // `from` is no longer checked.
    assert!(h
        .request(Request::get("/?from=Nope"))
        .upstream_request
        .is_some());
}

#[test]
fn a_bad_config_fails_the_load_with_a_clear_log() {
    let wasm = meshgate_plugin_test::this_plugin!();
    let err = PluginHarness::load(&wasm, json!({"units": "Celsius"}))
        .err()
        .unwrap();
    assert!(
        err.logs.iter().any(|l| l
            .message
            .contains("invalid pluginConfig: units: invalid type: string")),
        "{err}"
    );
    let err = PluginHarness::load(&wasm, json!({"units": []}))
        .err()
        .unwrap();
    assert!(err.to_string().contains("at least one unit"), "{err}");
}
