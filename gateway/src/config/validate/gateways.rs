//! Gateway servers: a known protocol, TLS settings that fit it, and port names unique
//! on each gateway workload.

use super::{checks::*, enum_value, report};
use crate::config::{ConfigSet, Diagnostic, GatewaySpec, Res, ResourceMeta, Server};

/// Protocols Istio accepts on a Gateway server or ServiceEntry port (any case).
pub const PROTOCOLS: &[&str] = &[
    "HTTP", "HTTPS", "GRPC", "GRPC-WEB", "HTTP2", "TCP", "TLS", "MONGO", "REDIS", "MYSQL",
];
pub const SERVER_TLS_MODES: &[&str] = &[
    "PASSTHROUGH",
    "SIMPLE",
    "MUTUAL",
    "AUTO_PASSTHROUGH",
    "ISTIO_MUTUAL",
    "OPTIONAL_MUTUAL",
];

pub(super) fn check(config: &ConfigSet, out: &mut Vec<Diagnostic>) {
    for gw in &config.gateways {
        for (i, server) in gw.spec.servers.iter().enumerate() {
            server_checks(&gw.meta, &format!("spec.servers[{i}]"), server, out);
        }
        port_names(config, gw, out);
    }
    for se in &config.service_entries {
        for (i, port) in se.spec.ports.iter().enumerate() {
            if let Some(p) = port.protocol.as_deref() {
                protocol(&se.meta, &format!("spec.ports[{i}].protocol"), p, out);
            }
        }
    }
}

/// Reports a protocol Istio does not know; returns it upper-cased when known.
fn protocol(
    meta: &ResourceMeta,
    field: &str,
    p: &str,
    out: &mut Vec<Diagnostic>,
) -> Option<String> {
    let upper = p.trim().to_ascii_uppercase();
    if PROTOCOLS.contains(&upper.as_str()) {
        return Some(upper);
    }
    let msg = if upper.is_empty() {
        "the port has no protocol: set one of HTTP, HTTPS, GRPC, HTTP2, TCP or TLS".to_string()
    } else {
        format!("unknown protocol {p:?}: use one of HTTP, HTTPS, GRPC, GRPC-WEB, HTTP2, TCP, TLS, MONGO, REDIS or MYSQL")
    };
    report(out, &UNKNOWN_PROTOCOL, meta, field, msg);
    None
}

fn server_checks(meta: &ResourceMeta, at: &str, server: &Server, out: &mut Vec<Diagnostic>) {
    let proto = protocol(
        meta,
        &format!("{at}.port.protocol"),
        &server.port.protocol,
        out,
    );
    let tls_field = format!("{at}.tls");
    let mode = server.tls.as_ref().and_then(|t| t.mode.as_deref());
    let mode_field = format!("{tls_field}.mode");
    let mode_ok = enum_value(
        &UNKNOWN_TLS_MODE,
        meta,
        &mode_field,
        mode,
        SERVER_TLS_MODES,
        out,
    );
    let Some(proto) = proto else { return };
    let terminates = matches!(proto.as_str(), "HTTPS" | "TLS");
    match &server.tls {
        None if terminates => {
            let msg = format!("this {proto} server needs tls settings: add tls with mode SIMPLE and credentialName (or mode PASSTHROUGH to forward TLS untouched)");
            report(out, &SERVER_TLS_MISSING, meta, at, msg);
        }
        None => {}
        Some(tls) if terminates => {
            let mode = if mode_ok {
                mode.unwrap_or("SIMPLE")
            } else {
                return;
            };
            if matches!(mode, "PASSTHROUGH" | "AUTO_PASSTHROUGH" | "ISTIO_MUTUAL") {
                return;
            }
            let has = |v: &Option<String>| v.as_deref().is_some_and(|s| !s.trim().is_empty());
            if has(&tls.credential_name) {
                return;
            }
            let msg = if !has(&tls.server_certificate) {
                format!("tls mode {mode} terminates TLS but names no certificate: set credentialName (a secret with tls.crt and tls.key), or serverCertificate and privateKey")
            } else if !has(&tls.private_key) {
                "serverCertificate is set without privateKey: set privateKey, or use credentialName"
                    .to_string()
            } else if mode.ends_with("MUTUAL") && !has(&tls.ca_certificates) {
                format!("tls mode {mode} verifies client certificates but names no CA: set caCertificates, or use credentialName with a ca.crt")
            } else {
                return;
            };
            report(out, &SERVER_CERT_MISSING, meta, &tls_field, msg);
        }
        Some(tls) => {
            let sets_more = tls.mode.is_some()
                || tls.credential_name.is_some()
                || tls.server_certificate.is_some()
                || tls.private_key.is_some()
                || tls.ca_certificates.is_some();
            if sets_more {
                let msg = format!("a plain {proto} server only uses tls.httpsRedirect; the other tls settings are ignored: change the protocol to HTTPS to terminate TLS, or remove them");
                report(out, &PLAIN_SERVER_TLS, meta, &tls_field, msg);
            }
        }
    }
}

/// Port names must be unique within a Gateway, and mean one port number across the
/// Gateways that select the same workload (Istio merges their servers).
fn port_names(config: &ConfigSet, gw: &Res<GatewaySpec>, out: &mut Vec<Diagnostic>) {
    let meta = &gw.meta;
    for (i, server) in gw.spec.servers.iter().enumerate() {
        let name = server.port.name.as_str();
        if name.is_empty() {
            continue;
        }
        let field = format!("spec.servers[{i}].port.name");
        let earlier = gw.spec.servers[..i]
            .iter()
            .position(|s| s.port.name == name);
        if let Some(j) = earlier {
            let first = &gw.spec.servers[j].port;
            let msg = format!("port name {name:?} is already used by spec.servers[{j}] (port {}) of this Gateway: give each server port a unique name", first.number);
            report(out, &DUPLICATE_PORT_NAME, meta, &field, msg);
            continue;
        }
        // Against Gateways written earlier on the same workload, so each pair is said once.
        let this_index = config.gateways.iter().position(|g| std::ptr::eq(g, gw));
        let others = config.gateways[..this_index.unwrap_or(0)]
            .iter()
            .filter(|g| g.spec.selector == gw.spec.selector);
        for other in others {
            let first_use = other.spec.servers.iter().find(|s| s.port.name == name);
            let clash = first_use.filter(|s| {
                s.port.number != server.port.number
                    || !s.port.protocol.eq_ignore_ascii_case(&server.port.protocol)
            });
            if let Some(s) = clash {
                let selector: Vec<String> = gw
                    .spec
                    .selector
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                let msg = format!("port name {name:?} also names port {} ({}) on Gateway {}/{}, which selects the same workload ({}): Istio merges the servers and keeps only one; give each port a distinct name", s.port.number, s.port.protocol, other.meta.namespace, other.meta.name, selector.join(","));
                report(out, &DUPLICATE_PORT_NAME, meta, &field, msg);
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;

    fn gw(name: &str, servers: &str) -> String {
        format!("apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {{name: {name}}}\nspec:\n  selector: {{istio: ingressgateway}}\n  servers:\n{servers}---\n")
    }

    #[test]
    fn protocols_and_tls_settings() {
        let d = analyze_yaml(&gw("g", "  - port: {number: 80, name: http, protocol: HTTP}\n    hosts: [\"*\"]\n    tls: {httpsRedirect: true, mode: SIMPLE}\n  - port: {number: 443, name: https, protocol: HTTPS}\n    hosts: [\"*\"]\n  - port: {number: 8443, name: https-2, protocol: https}\n    hosts: [\"*\"]\n    tls: {mode: SIMPLE}\n  - port: {number: 9443, name: tls, protocol: TLS}\n    hosts: [\"*\"]\n    tls: {mode: passthrough}\n  - port: {number: 9000, name: quic, protocol: QUIC}\n    hosts: [\"*\"]\n  - port: {number: 9001, name: m, protocol: HTTPS}\n    hosts: [\"*\"]\n    tls: {mode: MUTUAL, serverCertificate: /c.pem, privateKey: /k.pem}\n"));
        assert_eq!(
            with_code(&d, "MG0116"),
            ["9 spec.servers[0].tls: a plain HTTP server only uses tls.httpsRedirect; the other tls settings are ignored: change the protocol to HTTPS to terminate TLS, or remove them"]
        );
        assert_eq!(
            with_code(&d, "MG0114"),
            ["10 spec.servers[1]: this HTTPS server needs tls settings: add tls with mode SIMPLE and credentialName (or mode PASSTHROUGH to forward TLS untouched)"]
        );
        assert_eq!(
            with_code(&d, "MG0115"),
            [
                "14 spec.servers[2].tls: tls mode SIMPLE terminates TLS but names no certificate: set credentialName (a secret with tls.crt and tls.key), or serverCertificate and privateKey",
                "22 spec.servers[5].tls: tls mode MUTUAL verifies client certificates but names no CA: set caCertificates, or use credentialName with a ca.crt",
            ]
        );
        assert_eq!(
            with_code(&d, "MG0124"),
            ["17 spec.servers[3].tls.mode: unknown mode \"passthrough\": use PASSTHROUGH (values are upper-case)"]
        );
        assert_eq!(
            with_code(&d, "MG0128"),
            ["18 spec.servers[4].port.protocol: unknown protocol \"QUIC\": use one of HTTP, HTTPS, GRPC, GRPC-WEB, HTTP2, TCP, TLS, MONGO, REDIS or MYSQL"]
        );
    }

    #[test]
    fn good_servers_pass() {
        let d = analyze_yaml(&gw("g", "  - port: {number: 80, name: http, protocol: HTTP}\n    hosts: [\"*\"]\n    tls: {httpsRedirect: true}\n  - port: {number: 443, name: https, protocol: HTTPS}\n    hosts: [a.example.com]\n    tls: {mode: SIMPLE, credentialName: a-cert}\n  - port: {number: 443, name: https-b, protocol: HTTPS}\n    hosts: [b.example.com]\n    tls: {mode: MUTUAL, serverCertificate: /c.pem, privateKey: /k.pem, caCertificates: /ca.pem}\n  - port: {number: 9443, name: tls, protocol: TLS}\n    hosts: [\"*\"]\n    tls: {mode: PASSTHROUGH}\n  - port: {number: 31400, name: tcp, protocol: TCP}\n    hosts: [\"*\"]\n"));
        assert!(d.is_empty(), "{d:#?}");
    }

    #[test]
    fn port_names_unique_per_gateway_and_workload() {
        let mut text = gw("a", "  - port: {number: 80, name: http, protocol: HTTP}\n    hosts: [\"*\"]\n  - port: {number: 8080, name: http, protocol: HTTP}\n    hosts: [\"*\"]\n");
        text += &gw("b", "  - port: {number: 80, name: http, protocol: HTTP}\n    hosts: [\"*\"]\n  - port: {number: 8081, name: web, protocol: HTTP}\n    hosts: [\"*\"]\n");
        text += &gw(
            "c",
            "  - port: {number: 8082, name: web, protocol: HTTP}\n    hosts: [\"*\"]\n",
        );
        text += "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: other-workload}\nspec:\n  selector: {istio: egressgateway}\n  servers:\n  - port: {number: 9999, name: web, protocol: HTTP}\n    hosts: [\"*\"]\n";
        let d = analyze_yaml(&text);
        assert_eq!(
            with_code(&d, "MG0109"),
            [
                "9 spec.servers[1].port.name: port name \"http\" is already used by spec.servers[0] (port 80) of this Gateway: give each server port a unique name",
                "29 spec.servers[0].port.name: port name \"web\" also names port 8081 (HTTP) on Gateway default/b, which selects the same workload (istio=ingressgateway): Istio merges the servers and keeps only one; give each port a distinct name",
            ]
        );
    }
}
