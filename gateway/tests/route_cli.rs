//! `meshgate route` run as a user runs it, on the seed's config and Istio's traffic
//! management tasks: exact output and exit codes (0 routed, 1 no route, 2 config error).

use std::path::PathBuf;
use std::process::Command;

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn route(args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_meshgate"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .arg("route")
        .args(args)
        .output()
        .expect("meshgate runs");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

const BOOKINFO: &str = "tests/fixtures/bookinfo";

fn bookinfo(scenario: &str, args: &[&str]) -> Run {
    let common = format!("{BOOKINFO}/common");
    let scenario = format!("{BOOKINFO}/{scenario}");
    let mut all = vec!["--config", common.as_str(), "--config", scenario.as_str()];
    all.extend_from_slice(args);
    route(&all)
}

fn assert_lines(run: &Run, expected: &[&str]) {
    let got: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(got, expected, "stderr: {}", run.stderr);
}

#[test]
fn seed_request_by_ip_is_404_and_names_the_host_that_would_match() {
    let run = route(&[
        "--config",
        "tests/fixtures/seed",
        "GET",
        "http://10.0.0.5/?from=Celsius&to=Kelvin&temperature=150",
    ]);
    assert_eq!(run.code, 1);
    assert_eq!(
        run.stderr, "",
        "the seed config loads cleanly (Deployments are skipped silently)"
    );
    assert_lines(
        &run,
        &[
            "request: GET http://10.0.0.5/?from=Celsius&to=Kelvin&temperature=150",
            "server: Gateway default/api-gateway port 80 HTTP (http), hosts: *",
            "result: 404 NR",
            "why: no route: host '10.0.0.5' on gateway default/api-gateway port 80; hosts here: temperature-api.default.svc.cluster.local",
            "hosts here:",
            "  temperature-api.default.svc.cluster.local: VirtualService default/temperature-api",
            "hint: host \"temperature-api\" of VirtualService default/temperature-api is a short name for temperature-api.default.svc.cluster.local: only a request with Host: temperature-api.default.svc.cluster.local matches it",
        ],
    );
}

#[test]
fn seed_request_with_the_service_host_is_routed() {
    let run = route(&[
        "--config",
        "tests/fixtures/seed",
        "GET",
        "http://10.0.0.5/?from=Celsius&to=Kelvin&temperature=150",
        "-H",
        "Host: Temperature-API.default.svc.cluster.local",
    ]);
    assert_eq!(run.code, 0);
    assert_lines(
        &run,
        &[
            "request: GET http://Temperature-API.default.svc.cluster.local/?from=Celsius&to=Kelvin&temperature=150",
            "server: Gateway default/api-gateway port 80 HTTP (http), hosts: *",
            "virtual host: temperature-api.default.svc.cluster.local",
            "rule: http[0] of VirtualService default/temperature-api at tests/fixtures/seed/gateway.yaml:26:5",
            "matched: catch-all (no match conditions)",
            "destination: outbound|3000||temperature-api.default.svc.cluster.local weight 100 (100%)",
            "  endpoints: none (503 UH: no healthy upstream)",
            "timeout: none",
            "retries: 2 on connect-failure,refused-stream,unavailable,cancelled",
        ],
    );
}

#[test]
fn request_routing_sends_jason_to_v2_and_says_why_others_get_v1() {
    let file = "tests/fixtures/bookinfo/request-routing/virtual-service-reviews-test-v2.yaml";
    let jason = bookinfo(
        "request-routing",
        &[
            "--mesh",
            "GET",
            "http://reviews:9080/reviews/0",
            "-H",
            "end-user: jason",
        ],
    );
    assert_eq!(jason.code, 0);
    assert_lines(
        &jason,
        &[
            "request: GET http://reviews:9080/reviews/0",
            "mesh: sidecar outbound routing (VirtualServices bound to mesh)",
            "virtual host: reviews.default.svc.cluster.local",
            &format!("rule: http[0] of VirtualService default/reviews at {file}:9:5"),
            "matched: match[0]",
            "destination: outbound|9080|v2|reviews.default.svc.cluster.local weight 100 (100%)",
            "  endpoints: 127.0.0.1:19092, HTTP/1.1",
            "timeout: none",
            "retries: 2 on connect-failure,refused-stream,unavailable,cancelled",
        ],
    );
    let anonymous = bookinfo(
        "request-routing",
        &["--mesh", "GET", "http://reviews.default:9080/reviews/0"],
    );
    assert_eq!(anonymous.code, 0);
    let lines: Vec<&str> = anonymous.stdout.lines().collect();
    assert_eq!(
        lines[3],
        format!("not matched: http[0] of VirtualService default/reviews at {file}:9:5: header end-user: expected exact \"jason\", request has none")
    );
    assert_eq!(
        lines[4],
        format!("rule: http[1] of VirtualService default/reviews at {file}:17:5")
    );
    assert_eq!(
        lines[6],
        "destination: outbound|9080|v1|reviews.default.svc.cluster.local weight 100 (100%)"
    );
    assert_eq!(lines[7], "  endpoints: 127.0.0.1:19091, HTTP/1.1");
}

#[test]
fn traffic_shifting_shows_relative_weights() {
    let half = bookinfo(
        "traffic-shifting-50",
        &["--mesh", "GET", "http://reviews:9080/"],
    );
    assert_eq!(half.code, 0);
    let dests: Vec<&str> = half
        .stdout
        .lines()
        .filter(|l| l.starts_with("destination:"))
        .collect();
    assert_eq!(
        dests,
        [
            "destination: outbound|9080|v1|reviews.default.svc.cluster.local weight 50 (50%)",
            "destination: outbound|9080|v3|reviews.default.svc.cluster.local weight 50 (50%)",
        ]
    );
    let eighty = bookinfo(
        "traffic-shifting-80-20",
        &["--mesh", "GET", "http://reviews:9080/"],
    );
    let lines: Vec<&str> = eighty.stdout.lines().collect();
    assert!(lines.contains(
        &"destination: outbound|9080|v1|reviews.default.svc.cluster.local weight 80 (80%)"
    ));
    assert!(lines.contains(
        &"destination: outbound|9080|v2|reviews.default.svc.cluster.local weight 20 (20%)"
    ));
    assert!(lines.contains(&"  endpoints: 127.0.0.1:19092, HTTP/1.1"));
}

#[test]
fn fault_injection_delay_and_abort_apply_to_jason_only() {
    let delay = bookinfo(
        "fault-delay",
        &[
            "--mesh",
            "GET",
            "http://ratings:9080/ratings/0",
            "-H",
            "end-user: jason",
        ],
    );
    assert!(
        delay
            .stdout
            .lines()
            .any(|l| l == "fault: delay 7s for 100% of requests"),
        "{}",
        delay.stdout
    );
    let abort = bookinfo(
        "fault-abort",
        &[
            "--mesh",
            "GET",
            "http://ratings:9080/ratings/0",
            "-H",
            "end-user: jason",
        ],
    );
    assert!(
        abort
            .stdout
            .lines()
            .any(|l| l == "fault: abort 500 for 100% of requests"),
        "{}",
        abort.stdout
    );
    let other = bookinfo(
        "fault-abort",
        &["--mesh", "GET", "http://ratings:9080/ratings/0"],
    );
    assert_eq!(other.code, 0);
    assert!(!other.stdout.contains("fault:"), "{}", other.stdout);
    assert!(other
        .stdout
        .contains("rule: http[1] of VirtualService default/ratings"));
}

#[test]
fn request_timeout_is_shown() {
    let run = bookinfo("timeout", &["--mesh", "GET", "http://reviews:9080/"]);
    assert_eq!(run.code, 0);
    assert!(
        run.stdout.lines().any(|l| l == "timeout: 500ms"),
        "{}",
        run.stdout
    );
}

#[test]
fn mirroring_names_the_mirror_cluster_and_its_endpoints() {
    let run = route(&[
        "--config",
        "tests/fixtures/bookinfo/mirroring",
        "--mesh",
        "GET",
        "http://httpbin:8000/headers",
    ]);
    assert_eq!(run.code, 0);
    let lines: Vec<&str> = run.stdout.lines().collect();
    let at = lines
        .iter()
        .position(|l| *l == "mirror: outbound|8000|v2|httpbin.default.svc.cluster.local for 100% of requests (Host gets -shadow, response discarded)")
        .unwrap_or_else(|| panic!("{}", run.stdout));
    assert_eq!(lines[at + 1], "  endpoints: 127.0.0.1:18002, HTTP/1.1");
    assert!(lines.contains(
        &"destination: outbound|8000|v1|httpbin.default.svc.cluster.local weight 100 (100%)"
    ));
}

#[test]
fn ingress_gateway_task_status_and_delay_route_headers_does_not() {
    let cfg = "tests/fixtures/bookinfo/ingress-httpbin";
    for path in ["/status/200", "/delay/1"] {
        let run = route(&[
            "--config",
            cfg,
            "GET",
            &format!("http://httpbin.example.com{path}"),
        ]);
        assert_eq!(run.code, 0, "{path}: {}", run.stdout);
        assert!(run.stdout.contains("destination: outbound|8000||httpbin.default.svc.cluster.local weight 100 (100%)\n  endpoints: 127.0.0.1:18000, HTTP/1.1\n"));
    }
    let headers = route(&["--config", cfg, "GET", "http://httpbin.example.com/headers"]);
    assert_eq!(headers.code, 1);
    assert_lines(
        &headers,
        &[
            "request: GET http://httpbin.example.com/headers",
            "server: Gateway default/httpbin-gateway port 80 HTTP (http), hosts: httpbin.example.com",
            "virtual host: httpbin.example.com",
            "not matched: http[0] of VirtualService default/httpbin at tests/fixtures/bookinfo/ingress-httpbin/httpbin-gateway.yaml:27:5:",
            "  match[0] uri: expected prefix \"/status\", request has \"/headers\"",
            "  match[1] uri: expected prefix \"/delay\", request has \"/headers\"",
            "result: 404 NR",
            "why: no route: no rule of host 'httpbin.example.com' on gateway default/httpbin-gateway port 80 matched the request",
        ],
    );
    let other_host = route(&["--config", cfg, "GET", "http://example.com/status/200"]);
    assert_eq!(other_host.code, 1);
    assert!(other_host.stdout.contains("hint: a request with Host: httpbin.example.com would match VirtualService default/httpbin\n"));
    let wrong_port = route(&[
        "--config",
        cfg,
        "GET",
        "http://httpbin.example.com:8080/status/200",
    ]);
    assert_eq!(wrong_port.code, 1);
    assert!(
        wrong_port.stdout.contains("gateway ports: 80\n"),
        "{}",
        wrong_port.stdout
    );
}

#[test]
fn bookinfo_gateway_prefix_is_a_plain_string_prefix() {
    let cfg = "tests/fixtures/bookinfo/common";
    let run = route(&["--config", cfg, "GET", "http://192.168.49.2:8080/staticx"]);
    assert_eq!(run.code, 0);
    assert!(run.stdout.contains("matched: match[1]\n"), "{}", run.stdout);
    assert!(run
        .stdout
        .contains("  endpoints: 127.0.0.1:19080, HTTP/1.1\n"));
}

fn scratch(name: &str, text: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("meshgate-route-cli-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("config.yaml");
    std::fs::write(&file, text).expect("write config");
    file
}

#[test]
fn config_errors_are_reported_first_and_exit_2_while_the_rest_still_routes() {
    let file = scratch(
        "errors",
        "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: gw}\nspec:\n  servers:\n  - port: {number: 80, name: http, protocol: HTTP}\n    hosts: ['*']\n---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: bad}\nspec:\n  hosts: [bad.example]\n  gateways: [gw]\n  http:\n  - match:\n    - headers:\n        x-id: {regex: '[0-9'}\n    route:\n    - destination: {host: a}\n---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: good}\nspec:\n  hosts: [good.example]\n  gateways: [gw]\n  http:\n  - directResponse: {status: 204}\n",
    );
    let path = file.to_string_lossy().into_owned();
    let run = route(&["--config", &path, "GET", "http://good.example/"]);
    assert_eq!(run.code, 2);
    let first = run.stderr.lines().next().unwrap_or_default();
    assert_eq!(
        first,
        format!("error: {path}:18:16: VirtualService default/bad: spec.http[0].match[0].headers.x-id.regex: invalid regex \"[0-9\": unclosed character class")
    );
    assert!(
        run.stdout.contains("result: direct response 204 \"\"\n"),
        "{}",
        run.stdout
    );
    let _ = std::fs::remove_dir_all(file.parent().expect("dir"));
}

#[test]
fn bad_arguments_exit_2() {
    let run = route(&["--config", "tests/fixtures/seed", "GET", "not-a-url"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("is not an absolute URL"),
        "{}",
        run.stderr
    );
    let missing = route(&["--config", "tests/fixtures/nope", "GET", "http://a/"]);
    assert_eq!(missing.code, 2);
    assert!(
        missing
            .stderr
            .contains("tests/fixtures/nope: no such file or folder"),
        "{}",
        missing.stderr
    );
}
