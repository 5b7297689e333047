//! `meshgate analyze` as users run it: the real binary on the fixtures under
//! tests/fixtures, checking every printed line and the exit status.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use meshgate::config::validate::CHECKS;

/// The repository root: fixture paths in messages are written relative to it.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("gateway/ has a parent")
        .to_path_buf()
}

fn analyze(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_meshgate"))
        .arg("analyze")
        .args(args)
        .current_dir(root())
        .output()
        .expect("meshgate runs")
}

fn stdout_lines(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

const SEED: &str = "tests/fixtures/seed/seed.yaml";
const SEED_WARNING: &str = "Warning [MG0107] (VirtualService default/temperature-api tests/fixtures/seed/seed.yaml:96) spec.hosts[0]: host \"temperature-api\" means temperature-api.default.svc.cluster.local, so on Gateway default/api-gateway only requests with \"Host: temperature-api.default.svc.cluster.local\" match and a request to the gateway's IP or external name gets 404 NR: add the external host name (or \"*\") to spec.hosts";

#[test]
fn seed_passes_with_the_host_header_warning() {
    let out = analyze(&[SEED]);
    assert_eq!(
        stdout_lines(&out),
        [SEED_WARNING, "✔ No errors, 1 warning in 1 file."]
    );
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn verbose_adds_the_skipped_kinds() {
    let out = analyze(&["-v", SEED]);
    assert_eq!(
        stdout_lines(&out),
        [
            "Info [MG0004] (tests/fixtures/seed/seed.yaml:4) skipped apps/v1 Deployment: not a kind Meshgate reads",
            "Info [MG0004] (tests/fixtures/seed/seed.yaml:39) skipped apps/v1 Deployment: not a kind Meshgate reads",
            SEED_WARNING,
            "✔ No errors, 1 warning in 1 file.",
        ]
    );
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn fail_on_warning_fails_the_seed() {
    let out = analyze(&["--fail-on", "warning", SEED]);
    assert_eq!(
        stdout_lines(&out),
        [SEED_WARNING, "Error: 0 errors, 1 warning in 1 file."]
    );
    assert_eq!(out.status.code(), Some(79));
}

#[test]
fn json_output_is_one_parseable_array() {
    let out = analyze(&["-o", "json", SEED]);
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is JSON");
    let expected = serde_json::json!([{
        "code": "MG0107",
        "level": "Warning",
        "resource": "VirtualService default/temperature-api",
        "file": "tests/fixtures/seed/seed.yaml",
        "line": 96,
        "column": 5,
        "field": "spec.hosts[0]",
        "message": SEED_WARNING.split_once("spec.hosts[0]: ").map(|(_, m)| m).unwrap(),
    }]);
    assert_eq!(v, expected);
    // The summary goes to stderr so stdout stays machine-readable.
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "✔ No errors, 1 warning in 1 file."
    );
    let out = analyze(&["-o", "json", "tests/fixtures/analyze/missing-subset.yaml"]);
    assert_eq!(out.status.code(), Some(79));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is JSON");
    assert_eq!(v[0]["code"], "MG0104");
    assert_eq!(v[0]["level"], "Error");
    assert_eq!(v[0]["line"], 27);
}

/// (fixture, exit status, every stdout line)
const FIXTURES: &[(&str, i32, &[&str])] = &[
    (
        "bad-direct-status.yaml",
        79,
        &[
            "Error [MG0120] (VirtualService default/maintenance tests/fixtures/analyze/bad-direct-status.yaml:10) spec.http[0].directResponse.status: status 999 is not an HTTP status: use 200 to 599",
            "Error: 1 error, 0 warnings in 1 file.",
        ],
    ),
    (
        "bad-duration.yaml",
        79,
        &[
            "Error [MG0117] (VirtualService default/ratings tests/fixtures/analyze/bad-duration.yaml:15) spec.http[0].timeout: invalid duration \"10\": expected a number with a unit, e.g. 500ms, 0.5s, 1m, 1h",
            "Error [MG0117] (VirtualService default/ratings tests/fixtures/analyze/bad-duration.yaml:18) spec.http[0].retries.perTryTimeout: invalid duration \"100us\": the minimum is 1ms",
            "Error [MG0117] (DestinationRule default/ratings tests/fixtures/analyze/bad-duration.yaml:29) spec.trafficPolicy.connectionPool.tcp.connectTimeout: invalid duration \"5 seconds\": expected a non-negative number before the unit",
            "Error [MG0117] (DestinationRule default/ratings tests/fixtures/analyze/bad-duration.yaml:32) spec.trafficPolicy.outlierDetection.baseEjectionTime: invalid duration \"three minutes\": expected a non-negative number before the unit",
            "Error: 4 errors, 0 warnings in 1 file.",
        ],
    ),
    (
        "bad-percentage.yaml",
        79,
        &[
            "Error [MG0118] (VirtualService default/ratings tests/fixtures/analyze/bad-percentage.yaml:18) spec.http[0].fault.abort.percentage.value: 150 is not a percentage: write a number from 0 to 100",
            "Error [MG0118] (VirtualService default/ratings tests/fixtures/analyze/bad-percentage.yaml:20) spec.http[0].mirrorPercentage.value: -5 is not a percentage: write a number from 0 to 100",
            "Error: 2 errors, 0 warnings in 1 file.",
        ],
    ),
    (
        "bad-redirect-code.yaml",
        79,
        &[
            "Error [MG0119] (VirtualService default/web tests/fixtures/analyze/bad-redirect-code.yaml:11) spec.http[0].redirect.redirectCode: redirectCode 200 is not a redirect status: use 301, 302, 303, 307 or 308",
            "Error: 1 error, 0 warnings in 1 file.",
        ],
    ),
    (
        "cluster-host-on-gateway.yaml",
        0,
        &[
            "Warning [MG0107] (VirtualService shop/ratings tests/fixtures/analyze/cluster-host-on-gateway.yaml:22) spec.hosts[0]: host \"ratings.shop.svc.cluster.local\" is an in-cluster name, so on Gateway shop/public only requests with \"Host: ratings.shop.svc.cluster.local\" match and a request to the gateway's IP or external name gets 404 NR: add the external host name (or \"*\") to spec.hosts",
            "✔ No errors, 1 warning in 1 file.",
        ],
    ),
    (
        "conflicting-actions.yaml",
        79,
        &[
            "Error [MG0111] (VirtualService default/reviews tests/fixtures/analyze/conflicting-actions.yaml:17) spec.http[0].redirect: this rule sets route and redirect, but a rule takes exactly one action: keep one, or split the rule in two",
            "Error: 1 error, 0 warnings in 1 file.",
        ],
    ),
    (
        "destination-rule-without-host.yaml",
        79,
        &[
            "Error [MG0126] (DestinationRule default/ratings tests/fixtures/analyze/destination-rule-without-host.yaml:5) spec.host: this DestinationRule has no host, so it applies to nothing: set spec.host to the service it configures, e.g. reviews",
            "Error: 1 error, 0 warnings in 1 file.",
        ],
    ),
    (
        "destination-without-host.yaml",
        79,
        &[
            "Error [MG0129] (VirtualService default/ratings tests/fixtures/analyze/destination-without-host.yaml:10) spec.http[0].route[0].destination.host: this destination has no host: name the service, e.g. reviews or reviews.prod.svc.cluster.local",
            "Error: 1 error, 0 warnings in 1 file.",
        ],
    ),
    (
        "duplicate-destination-rule.yaml",
        0,
        &[
            "Warning [MG0127] (DestinationRule default/ratings-circuit-breaker tests/fixtures/analyze/duplicate-destination-rule.yaml:14) spec.host: DestinationRule default/ratings (tests/fixtures/analyze/duplicate-destination-rule.yaml:2) already configures host ratings.default.svc.cluster.local in this namespace: Istio merges the two, and where both set the traffic policy or a subset of the same name only the first applies; keep one DestinationRule per host",
            "✔ No errors, 1 warning in 1 file.",
        ],
    ),
    (
        "duplicate-port-name.yaml",
        79,
        &[
            "Error [MG0109] (Gateway default/public tests/fixtures/analyze/duplicate-port-name.yaml:11) spec.servers[1].port.name: port name \"https\" is already used by spec.servers[0] (port 443) of this Gateway: give each server port a unique name",
            "Error: 1 error, 0 warnings in 1 file.",
        ],
    ),
    (
        "host-not-on-gateway.yaml",
        0,
        &[
            "Warning [MG0106] (VirtualService default/httpbin tests/fixtures/analyze/host-not-on-gateway.yaml:23) spec.gateways[0]: no host of this VirtualService (httpbin.example.org) matches a server host of Gateway default/httpbin-gateway (httpbin.example.com), so requests through that gateway never reach it (404 NR): add one of the gateway's hosts to spec.hosts, or this host to the gateway",
            "✔ No errors, 1 warning in 1 file.",
        ],
    ),
    (
        "http-server-with-tls.yaml",
        0,
        &[
            "Warning [MG0116] (Gateway default/web tests/fixtures/analyze/http-server-with-tls.yaml:10) spec.servers[0].tls: a plain HTTP server only uses tls.httpsRedirect; the other tls settings are ignored: change the protocol to HTTPS to terminate TLS, or remove them",
            "✔ No errors, 1 warning in 1 file.",
        ],
    ),
    (
        "https-without-tls.yaml",
        79,
        &[
            "Error [MG0114] (Gateway default/secure tests/fixtures/analyze/https-without-tls.yaml:8) spec.servers[0]: this HTTPS server needs tls settings: add tls with mode SIMPLE and credentialName (or mode PASSTHROUGH to forward TLS untouched)",
            "Error: 1 error, 0 warnings in 1 file.",
        ],
    ),
    (
        "incompatible-fields.yaml",
        79,
        &[
            "Error [MG0112] (VirtualService default/static tests/fixtures/analyze/incompatible-fields.yaml:11) spec.http[0].rewrite: rewrite cannot be combined with redirect: a redirect already sets the new uri and authority; remove rewrite",
            "Error [MG0112] (VirtualService default/static tests/fixtures/analyze/incompatible-fields.yaml:14) spec.http[1].fault: fault injection cannot be combined with directResponse: the fault applies only to routed requests; move the fault to a rule with a route",
            "Error: 2 errors, 0 warnings in 1 file.",
        ],
    ),
    (
        "incomplete-fault.yaml",
        79,
        &[
            "Error [MG0121] (VirtualService default/ratings tests/fixtures/analyze/incomplete-fault.yaml:16) spec.http[0].fault.delay: delay without fixedDelay injects nothing: set fixedDelay, e.g. 5s",
            "Error [MG0121] (VirtualService default/ratings tests/fixtures/analyze/incomplete-fault.yaml:18) spec.http[0].fault.abort: abort without httpStatus or grpcStatus injects nothing: set httpStatus (e.g. 503) or grpcStatus (e.g. UNAVAILABLE)",
            "Error: 2 errors, 0 warnings in 1 file.",
        ],
    ),
    (
        "invalid-regex.yaml",
        79,
        &[
            "Error [MG0101] (VirtualService default/reviews tests/fixtures/analyze/invalid-regex.yaml:17) spec.http[0].match[0].uri.regex: regex \"/api/(v1|v2\" does not compile (unclosed group): write RE2 syntax (no look-around or backreferences; escape literal characters such as ( [ . with \\)",
            "Error [MG0101] (VirtualService default/reviews tests/fixtures/analyze/invalid-regex.yaml:20) spec.http[0].match[1].headers.cookie.regex: regex \"(?<=user=)jason\" does not compile (look-around, including look-ahead and look-behind, is not supported): write RE2 syntax (no look-around or backreferences; escape literal characters such as ( [ . with \\)",
            "Error: 2 errors, 0 warnings in 1 file.",
        ],
    ),
    (
        "missing-delegate.yaml",
        79,
        &[
            "Error [MG0130] (VirtualService default/bookinfo tests/fixtures/analyze/missing-delegate.yaml:10) spec.http[0].delegate: delegate names VirtualService bookinfo/reviews-routes, which does not exist, so requests on this rule get 404 NR: create it or correct name and namespace",
            "Error: 1 error, 0 warnings in 1 file.",
        ],
    ),
    (
        "missing-gateway.yaml",
        79,
        &[
            "Error [MG0105] (VirtualService default/httpbin tests/fixtures/analyze/missing-gateway.yaml:24) spec.gateways[0]: Gateway default/httpbin-gateway does not exist (Gateways defined: istio-system/httpbin-gateway), so this VirtualService is not served there: write ns/name (a bare name means namespace default) or \"mesh\" for sidecars",
            "Error: 1 error, 0 warnings in 1 file.",
        ],
    ),
    (
        "missing-subset.yaml",
        79,
        &[
            "Error [MG0104] (VirtualService default/reviews tests/fixtures/analyze/missing-subset.yaml:27) spec.http[0].route[0].destination.subset: subset \"v3\" of host reviews.default.svc.cluster.local is not defined (DestinationRule default/reviews defines v1 and v2), so Istio answers 503 NC on this route: add subset v3 to DestinationRule default/reviews or route to an existing subset",
            "Error: 1 error, 0 warnings in 1 file.",
        ],
    ),
    (
        "negative-retries.yaml",
        79,
        &[
            "Error [MG0122] (VirtualService default/ratings tests/fixtures/analyze/negative-retries.yaml:16) spec.http[0].retries.attempts: attempts -1 is negative: write 0 to turn retries off, or the number of retries",
            "Error: 1 error, 0 warnings in 1 file.",
        ],
    ),
    (
        "negative-weight.yaml",
        79,
        &[
            "Error [MG0103] (VirtualService default/reviews tests/fixtures/analyze/negative-weight.yaml:28) spec.http[0].route[1].weight: weight -10 is negative: weights are shares of traffic, 0 or more",
            "Error: 1 error, 0 warnings in 1 file.",
        ],
    ),
    (
        "no-action.yaml",
        79,
        &[
            "Error [MG0113] (VirtualService default/reviews tests/fixtures/analyze/no-action.yaml:15) spec.http[0]: this rule has no action: add a route, redirect, directResponse or delegate",
            "Error: 1 error, 0 warnings in 1 file.",
        ],
    ),
    (
        "tls-without-certificate.yaml",
        79,
        &[
            "Error [MG0115] (Gateway default/secure tests/fixtures/analyze/tls-without-certificate.yaml:10) spec.servers[0].tls: tls mode SIMPLE terminates TLS but names no certificate: set credentialName (a secret with tls.crt and tls.key), or serverCertificate and privateKey",
            "Error: 1 error, 0 warnings in 1 file.",
        ],
    ),
    (
        "unknown-host.yaml",
        0,
        &[
            "Warning [MG0108] (VirtualService default/reviews tests/fixtures/analyze/unknown-host.yaml:16) spec.http[0].route[0].destination.host: no ServiceEntry or Service defines host reveiws.default.svc.cluster.local: requests will get 503 UH; add a Service or ServiceEntry for it, or correct the host",
            "✔ No errors, 1 warning in 1 file.",
        ],
    ),
    (
        "unknown-load-balancer.yaml",
        79,
        &[
            "Error [MG0123] (DestinationRule default/ratings tests/fixtures/analyze/unknown-load-balancer.yaml:9) spec.trafficPolicy.loadBalancer.simple: unknown load balancer \"LEAST_LATENCY\": use one of UNSPECIFIED, LEAST_REQUEST, LEAST_CONN, ROUND_ROBIN, RANDOM or PASSTHROUGH",
            "Error: 1 error, 0 warnings in 1 file.",
        ],
    ),
    (
        "unknown-protocol.yaml",
        79,
        &[
            "Error [MG0128] (Gateway default/edge tests/fixtures/analyze/unknown-protocol.yaml:8) spec.servers[0].port.protocol: unknown protocol \"QUIC\": use one of HTTP, HTTPS, GRPC, GRPC-WEB, HTTP2, TCP, TLS, MONGO, REDIS or MYSQL",
            "Error [MG0128] (Gateway default/edge tests/fixtures/analyze/unknown-protocol.yaml:10) spec.servers[1].port.protocol: the port has no protocol: set one of HTTP, HTTPS, GRPC, HTTP2, TCP or TLS",
            "Error: 2 errors, 0 warnings in 1 file.",
        ],
    ),
    (
        "unknown-tls-mode.yaml",
        79,
        &[
            "Error [MG0124] (Gateway default/passthrough tests/fixtures/analyze/unknown-tls-mode.yaml:10) spec.servers[0].tls.mode: unknown mode \"PASS_THROUGH\": use one of PASSTHROUGH, SIMPLE, MUTUAL, AUTO_PASSTHROUGH, ISTIO_MUTUAL or OPTIONAL_MUTUAL",
            "Error [MG0124] (DestinationRule default/ratings tests/fixtures/analyze/unknown-tls-mode.yaml:18) spec.trafficPolicy.tls.mode: unknown mode \"istio_mutual\": use ISTIO_MUTUAL (values are upper-case)",
            "Error [MG0124] (PeerAuthentication istio-system/default tests/fixtures/analyze/unknown-tls-mode.yaml:24) spec.mtls.mode: unknown mode \"STRICTER\": use one of UNSET, DISABLE, PERMISSIVE or STRICT",
            "Error: 3 errors, 0 warnings in 1 file.",
        ],
    ),
    (
        "unreachable-rule.yaml",
        0,
        &[
            "Warning [MG0110] (VirtualService default/reviews tests/fixtures/analyze/unreachable-rule.yaml:24) spec.http[0]: this rule matches every request, so the rule after it never matches (spec.http[1] \"jason\"): move this rule last or give it a match",
            "✔ No errors, 1 warning in 1 file.",
        ],
    ),
    (
        "virtual-service-without-hosts.yaml",
        79,
        &[
            "Error [MG0125] (VirtualService default/ratings tests/fixtures/analyze/virtual-service-without-hosts.yaml:12) spec.hosts: this VirtualService has no hosts, so no request can reach it: list the hosts it serves in spec.hosts (only a delegate named by another VirtualService goes without hosts)",
            "Error: 1 error, 0 warnings in 1 file.",
        ],
    ),
    (
        "zero-weights.yaml",
        79,
        &[
            "Error [MG0102] (VirtualService default/reviews tests/fixtures/analyze/zero-weights.yaml:24) spec.http[0].route: the weights of these 2 destinations add up to 0, so no request can be routed: give at least one a positive weight",
            "Error: 1 error, 0 warnings in 1 file.",
        ],
    ),
];

#[test]
fn each_broken_fixture_prints_its_lines() {
    for (file, code, lines) in FIXTURES {
        let path = format!("tests/fixtures/analyze/{file}");
        let out = analyze(&[&path]);
        assert_eq!(stdout_lines(&out), *lines, "{file}");
        assert_eq!(out.status.code(), Some(*code), "{file}");
    }
}

#[test]
fn many_problems_in_one_file() {
    let out = analyze(&["tests/fixtures/analyze/many-problems.yaml"]);
    assert_eq!(
        stdout_lines(&out),
        [
            "Error [MG0105] (VirtualService default/bookinfo tests/fixtures/analyze/many-problems.yaml:35) spec.gateways[1]: Gateway istio-system/bookinfo-gateway does not exist (Gateways defined: default/bookinfo-gateway), so this VirtualService is not served there: write ns/name (a bare name means namespace default) or \"mesh\" for sidecars",
            "Error [MG0101] (VirtualService default/bookinfo tests/fixtures/analyze/many-problems.yaml:39) spec.http[0].match[1].uri.regex: regex \"/static/(.*\" does not compile (unclosed group): write RE2 syntax (no look-around or backreferences; escape literal characters such as ( [ . with \\)",
            "Warning [MG0003] (VirtualService default/bookinfo tests/fixtures/analyze/many-problems.yaml:42) spec.http[0].retry: unknown field (ignored)",
            "Warning [MG0110] (VirtualService default/reviews tests/fixtures/analyze/many-problems.yaml:59) spec.http[0]: this rule matches every request, so the rule after it never matches (spec.http[1]): move this rule last or give it a match",
            "Error [MG0104] (VirtualService default/reviews tests/fixtures/analyze/many-problems.yaml:65) spec.http[1].route[0].destination.subset: subset \"v3\" of host reviews.default.svc.cluster.local is not defined (DestinationRule default/reviews defines v1 and v2), so Istio answers 503 NC on this route: add subset v3 to DestinationRule default/reviews or route to an existing subset",
            "Error [MG0117] (VirtualService default/reviews tests/fixtures/analyze/many-problems.yaml:66) spec.http[1].timeout: invalid duration \"10\": expected a number with a unit, e.g. 500ms, 0.5s, 1m, 1h",
            "Error [MG0002] (VirtualService default/ratings tests/fixtures/analyze/many-problems.yaml:76) spec.http[0].route[0].weight: expected integer, got \"ten\"",
            "Error: 5 errors, 2 warnings in 1 file.",
        ]
    );
    assert_eq!(out.status.code(), Some(79));
}

#[test]
fn a_folder_of_fixtures_exercises_every_check() {
    let out = analyze(&["tests/fixtures/analyze"]);
    assert_eq!(out.status.code(), Some(79));
    let text = String::from_utf8_lossy(&out.stdout);
    for check in CHECKS {
        assert!(
            text.contains(&format!("[{}]", check.code)),
            "{} ({}) never reported:\n{text}",
            check.code,
            check.summary
        );
    }
    let files = std::fs::read_dir(root().join("tests/fixtures/analyze"))
        .expect("fixtures")
        .count();
    let summary = text.lines().last().unwrap_or("");
    assert!(summary.starts_with("Error: "), "{summary}");
    assert!(
        summary.ends_with(&format!(" in {files} files.")),
        "{summary}"
    );
}

#[test]
fn a_missing_path_is_an_error_and_bad_flags_are_usage_errors() {
    let out = analyze(&["tests/fixtures/none.yaml"]);
    assert_eq!(
        stdout_lines(&out),
        [
            "Error [MG0006] tests/fixtures/none.yaml: no such file or folder",
            "Error: 1 error, 0 warnings in 0 files.",
        ]
    );
    assert_eq!(out.status.code(), Some(79));
    let out = analyze(&["--fail-on", "fatal", SEED]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--fail-on"));
    let out = analyze(&[]);
    assert_eq!(out.status.code(), Some(2));
}
