use std::io::Write;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, UNIX_EPOCH};

use prometheus_client::metrics::counter::Counter;

use super::*;
use crate::telemetry::access_log_writer::AccessLog;

fn entry() -> AccessLogEntry {
    let mut e = AccessLogEntry::new(UNIX_EPOCH + Duration::from_millis(1_732_579_200_123));
    e.method = Some(Method::GET);
    e.path = Some(HeaderValue::from_static("/api/temperature?city=Oslo"));
    e.protocol = Some("HTTP/1.1");
    e.response_code = 503;
    e.response_flags = ResponseFlags::UPSTREAM_CONNECTION_FAILURE;
    e.response_code_details = Some("upstream_reset_before_response_started".into());
    e.bytes_received = 12;
    e.bytes_sent = 91;
    e.duration = Duration::from_micros(4_700);
    e.upstream_service_time = None;
    let mut headers = HeaderMap::new();
    headers.insert("user-agent", HeaderValue::from_static("curl/8.5.0"));
    headers.insert("x-request-id", HeaderValue::from_static("9b1c"));
    headers.insert("host", HeaderValue::from_static("temperature.example.com"));
    e.set_request_headers(&headers);
    e.upstream_host = Some("10.1.0.7:8080".parse().unwrap());
    e.upstream_cluster = Some("outbound|8080||temperature-api.default.svc.cluster.local".into());
    e.downstream_local_address = Some("10.1.0.2:8080".parse().unwrap());
    e.downstream_remote_address = Some("10.1.0.1:51234".parse().unwrap());
    e.route_name = Some("default/temperature.0".into());
    e
}

#[test]
fn start_time_is_utc_with_milliseconds() {
    let mut s = String::new();
    format_start_time(
        &mut s,
        UNIX_EPOCH + Duration::from_millis(1_732_579_200_123),
    );
    assert_eq!(s, "2024-11-26T00:00:00.123Z");
    s.clear();
    format_start_time(&mut s, UNIX_EPOCH + Duration::from_secs(951_782_400)); // leap day
    assert_eq!(s, "2000-02-29T00:00:00.000Z");
}

#[test]
fn text_line_matches_istio_default_format() {
    let mut out = String::new();
    format_text(&mut out, &entry());
    assert_eq!(
        out,
        "[2024-11-26T00:00:00.123Z] \"GET /api/temperature?city=Oslo HTTP/1.1\" 503 UF \
         upstream_reset_before_response_started - \"-\" 12 91 4 - \"-\" \"curl/8.5.0\" \
         \"9b1c\" \"temperature.example.com\" \"10.1.0.7:8080\" \
         outbound|8080||temperature-api.default.svc.cluster.local - 10.1.0.2:8080 \
         10.1.0.1:51234 - default/temperature.0\n"
    );
}

#[test]
fn json_line_has_istio_keys_and_types() {
    let mut out = String::new();
    format_json(&mut out, &entry());
    assert!(out.ends_with('\n'));
    let v: serde_json::Value = serde_json::from_str(out.trim_end()).unwrap();
    assert_eq!(v["method"], "GET");
    assert_eq!(v["response_code"], 503);
    assert_eq!(v["response_flags"], "UF");
    assert_eq!(v["duration"], 4);
    assert_eq!(v["upstream_service_time"], serde_json::Value::Null);
    assert_eq!(v["authority"], "temperature.example.com");
    assert_eq!(v["downstream_remote_address"], "10.1.0.1:51234");
    assert_eq!(v.as_object().unwrap().len(), 24);
}

/// A sink that blocks every write until released, like a stdout nobody reads.
struct GatedSink {
    gate: Arc<Mutex<mpsc::Receiver<()>>>,
    written: Arc<Mutex<Vec<u8>>>,
    opened: bool,
}

impl Write for GatedSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if !self.opened {
            let _ = self.gate.lock().unwrap().recv();
            self.opened = true;
        }
        self.written.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_blocked_sink_drops_and_counts_instead_of_blocking() {
    let (release, gate) = mpsc::channel();
    let written = Arc::new(Mutex::new(Vec::new()));
    let sink = GatedSink {
        gate: Arc::new(Mutex::new(gate)),
        written: written.clone(),
        opened: false,
    };
    let dropped = Counter::default();
    let (log, thread) =
        AccessLog::spawn(AccessLogFormat::Text, Box::new(sink), 4, dropped.clone()).unwrap();
    let started = Instant::now();
    let accepted = (0..1000).filter(|_| log.log(entry())).count();
    // 1000 attempts against a stuck writer: bounded work, no waiting on the sink.
    assert!(started.elapsed() < Duration::from_secs(5));
    // The writer drains the queue until its first flush blocks; after that only the
    // 4 queue slots are accepted.
    assert!(accepted < 1000, "accepted {accepted}");
    assert_eq!(dropped.get(), (1000 - accepted) as u64);
    release.send(()).unwrap();
    drop(log);
    thread.join();
    let text = String::from_utf8(written.lock().unwrap().clone()).unwrap();
    assert_eq!(text.lines().count(), accepted);
}
