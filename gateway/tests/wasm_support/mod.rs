//! Shared helpers for the wasm host tests.

#![allow(dead_code, clippy::unwrap_used)]

pub mod plugins;

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode};
use meshgate::wasm::{
    FailStrategy, NoCallouts, PluginChain, PluginSpec, RequestLine, Stream, StreamInfo, Verdict,
};

pub fn spec(name: &str, plugin: &str) -> PluginSpec {
    let mut s = PluginSpec::new(name, plugins::wasm(plugin));
    s.vm_id = name.to_string();
    s
}

pub fn spec_with(name: &str, plugin: &str, config: &str, fail: FailStrategy) -> PluginSpec {
    let mut s = spec(name, plugin);
    s.config = config.as_bytes().to_vec();
    s.fail_strategy = fail;
    s
}

pub fn chain(specs: Vec<PluginSpec>) -> PluginChain {
    PluginChain::new(specs, Arc::new(NoCallouts)).unwrap_or_else(|e| panic!("chain: {e:?}"))
}

pub fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(
            http::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    h
}

pub fn get<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).map(|v| v.to_str().unwrap())
}

/// Runs request headers (end of stream) through a new stream of `chain`.
pub async fn request(
    chain: &PluginChain,
    pairs: &[(&str, &str)],
    path: &str,
) -> (Stream, Verdict, HeaderMap, RequestLine) {
    let mut stream = chain.new_stream(StreamInfo::default());
    let mut h = headers(pairs);
    let mut line = RequestLine::new("GET", "http", "example.com", path);
    let v = stream.on_request_headers(&mut h, &mut line, true).await;
    (stream, v, h, line)
}

pub fn expect_local(v: Verdict) -> meshgate::wasm::LocalResponse {
    match v {
        Verdict::LocalResponse(r) => r,
        other => panic!("expected a local response, got {other:?}"),
    }
}

pub async fn response(
    stream: &mut Stream,
    pairs: &[(&str, &str)],
    status: u16,
) -> (Verdict, HeaderMap, StatusCode) {
    let mut h = headers(pairs);
    let mut s = StatusCode::from_u16(status).unwrap();
    let v = stream.on_response_headers(&mut h, &mut s, false).await;
    let mut body = Bytes::new();
    let _ = stream.on_response_body(&mut body, true).await;
    (v, h, s)
}
