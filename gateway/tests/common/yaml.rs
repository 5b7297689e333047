//! Istio YAML for the tests, built the way the Istio task pages write it, with the
//! backends' loopback ports filled in.

/// A Gateway `NAME` with one server on port 80 (HTTP) for `hosts`.
pub fn http_gateway(name: &str, hosts: &[&str]) -> String {
    format!(
        "apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: {name}
spec:
  selector:
    istio: ingressgateway
  servers:
  - port:
      number: 80
      name: http
      protocol: HTTP
    hosts: [{}]
---
",
        quoted(hosts)
    )
}

/// `'a', 'b'`
pub fn quoted(items: &[&str]) -> String {
    items
        .iter()
        .map(|h| format!("'{h}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A ServiceEntry for `HOST.default.svc.cluster.local` (or `host` as is when it has a
/// dot) on `port`/`protocol`, one loopback endpoint per `(version, local port)`.
pub fn service(host: &str, port: u16, protocol: &str, endpoints: &[(&str, u16)]) -> String {
    let fqdn = if host.contains('.') {
        host.to_string()
    } else {
        format!("{host}.default.svc.cluster.local")
    };
    let name = host.replace('.', "-");
    let port_name = protocol.to_ascii_lowercase();
    let mut eps = String::new();
    for (version, local) in endpoints {
        eps.push_str(&format!(
            "  - address: 127.0.0.1
    ports:
      {port_name}: {local}
    labels:
      app: {name}
      version: {version}
"
        ));
    }
    format!(
        "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: {name}
spec:
  hosts:
  - {fqdn}
  location: MESH_INTERNAL
  resolution: STATIC
  ports:
  - number: {port}
    name: {port_name}
    protocol: {protocol}
  endpoints:
{eps}---
"
    )
}

/// A DestinationRule for `host` with one subset per version (label `version`) and an
/// optional `trafficPolicy` body (YAML indented by 4 spaces).
pub fn destination_rule(host: &str, versions: &[&str], traffic_policy: &str) -> String {
    let name = host.replace('.', "-");
    let mut subsets = String::new();
    for v in versions {
        subsets.push_str(&format!(
            "  - name: {v}
    labels:
      version: {v}
"
        ));
    }
    let policy = if traffic_policy.is_empty() {
        String::new()
    } else {
        format!("  trafficPolicy:\n{traffic_policy}")
    };
    format!(
        "apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: {name}
spec:
  host: {host}
{policy}  subsets:
{subsets}---
"
    )
}

/// A VirtualService `NAME` for `hosts` bound to `gateways`, with `http`/`tcp`/`tls`
/// rules given as YAML (the list under the key, indented by 2 spaces).
pub fn virtual_service(name: &str, hosts: &[&str], gateways: &[&str], rules: &str) -> String {
    format!(
        "apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: {name}
spec:
  hosts: [{}]
  gateways: [{}]
{rules}---
",
        quoted(hosts),
        quoted(gateways)
    )
}

/// One `servers[]` entry on port 443.
pub fn tls_server(name: &str, host: &str, mode: &str, credential: Option<&str>) -> String {
    let protocol = if mode == "PASSTHROUGH" {
        "TLS"
    } else {
        "HTTPS"
    };
    let credential = credential
        .map(|c| format!("      credentialName: {c}\n"))
        .unwrap_or_default();
    format!(
        "  - port:
      number: 443
      name: {name}
      protocol: {protocol}
    tls:
      mode: {mode}
{credential}    hosts:
    - \"{host}\"
"
    )
}

pub fn tls_gateway(servers: &[String]) -> String {
    format!(
        "apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: mygateway
spec:
  selector:
    istio: ingressgateway
  servers:
{}---
",
        servers.concat()
    )
}

/// httpbin (or another backend) on port 8000 routed for `host` through `mygateway`.
pub fn http_route(svc: &str, backend: &super::Backend, host: &str) -> String {
    service(svc, 8000, "HTTP", &[("v1", backend.port())])
        + &virtual_service(
            svc,
            &[host],
            &["mygateway"],
            &format!(
                "  http:
  - route:
    - destination:
        port:
          number: 8000
        host: {svc}
"
            ),
        )
}
