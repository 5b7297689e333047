//! Maps one admin request to its response. Everything here runs on the admin thread.

use bytes::Bytes;
use http::header::{ACCEPT, ALLOW, CONTENT_TYPE};
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::Full;

use super::AdminRoutes;
use crate::telemetry::{OPENMETRICS_CONTENT_TYPE, PROMETHEUS_TEXT_CONTENT_TYPE};

const TEXT: &str = "text/plain; charset=utf-8";
const JSON: &str = "application/json";

fn reply(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(body.into()));
    *resp.status_mut() = status;
    if let Ok(v) = content_type.parse() {
        resp.headers_mut().insert(CONTENT_TYPE, v);
    }
    resp
}

fn json(value: &serde_json::Value) -> Response<Full<Bytes>> {
    match serde_json::to_vec_pretty(value) {
        Ok(body) => reply(StatusCode::OK, JSON, body),
        Err(e) => reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            TEXT,
            format!("cannot encode JSON: {e}\n"),
        ),
    }
}

/// OpenMetrics unless the client asks for `text/plain` without also accepting
/// OpenMetrics (Prometheus lists OpenMetrics first; curl sends `*/*`).
fn wants_prometheus_text(headers: &HeaderMap) -> bool {
    let accept = headers
        .get_all(ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join(",");
    accept.contains("text/plain") && !accept.contains("application/openmetrics-text")
}

/// The endpoints this port serves, for `/`.
fn index(routes: &AdminRoutes) -> String {
    let mut out = String::from("meshgate admin endpoints:\n");
    let mut add = |path: &str, what: &str| out.push_str(&format!("  {path:<18} {what}\n"));
    add("/", "this list");
    if routes.metrics.is_some() {
        add(
            "/stats/prometheus",
            "metrics (OpenMetrics; Prometheus text if only text/plain is accepted)",
        );
    }
    if routes.readiness.is_some() {
        add(
            "/healthz/ready",
            "200 when ready to serve traffic, 503 before",
        );
    }
    if routes.state.is_some() {
        add("/config_dump", "live configuration (JSON)");
        add("/clusters", "upstream clusters and their endpoints");
        add(
            "/reload_status",
            "outcome of the last configuration reload (JSON)",
        );
    }
    out
}

pub(super) fn handle<B>(routes: &AdminRoutes, req: &Request<B>) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut resp = reply(
            StatusCode::METHOD_NOT_ALLOWED,
            TEXT,
            "only GET and HEAD are supported\n",
        );
        resp.headers_mut()
            .insert(ALLOW, http::HeaderValue::from_static("GET, HEAD"));
        return resp;
    }
    let not_found = || {
        reply(
            StatusCode::NOT_FOUND,
            TEXT,
            format!("no such endpoint; see /\n\n{}", index(routes)),
        )
    };
    match req.uri().path() {
        "/" => reply(StatusCode::OK, TEXT, index(routes)),
        "/stats/prometheus" => match &routes.metrics {
            Some(m) if wants_prometheus_text(req.headers()) => reply(
                StatusCode::OK,
                PROMETHEUS_TEXT_CONTENT_TYPE,
                m.encode_prometheus_text(),
            ),
            Some(m) => reply(
                StatusCode::OK,
                OPENMETRICS_CONTENT_TYPE,
                m.encode_openmetrics(),
            ),
            None => not_found(),
        },
        "/healthz/ready" => match &routes.readiness {
            Some(r) if r.is_ready() => reply(StatusCode::OK, TEXT, "ready\n"),
            Some(_) => reply(StatusCode::SERVICE_UNAVAILABLE, TEXT, "not ready\n"),
            None => not_found(),
        },
        "/config_dump" => match &routes.state {
            Some(s) => json(&s.config_dump()),
            None => not_found(),
        },
        "/clusters" => match &routes.state {
            Some(s) => reply(StatusCode::OK, TEXT, s.clusters()),
            None => not_found(),
        },
        "/reload_status" => match routes.state.as_ref().map(|s| s.reload_status()) {
            Some(Some(status)) => json(&status),
            Some(None) => reply(
                StatusCode::NOT_FOUND,
                TEXT,
                "this proxy does not track reloads\n",
            ),
            None => not_found(),
        },
        _ => not_found(),
    }
}
