//! The process-wide metrics registry and its two text encodings: OpenMetrics (what
//! prometheus-client writes, and what Prometheus asks for first) and the classic
//! Prometheus 0.0.4 text format for clients that ask only for `text/plain`.

use std::sync::Arc;

use prometheus_client::registry::Registry;

use super::extra::{ExtraMetrics, ExtraSources};
use super::health::ProxyMetrics;
use super::istio::IstioMetrics;

pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";
pub const PROMETHEUS_TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Every metric this process exposes. Build once at start-up and share (`Arc`).
pub struct Metrics {
    registry: Registry,
    pub istio: IstioMetrics,
    pub proxy: ProxyMetrics,
    extras: ExtraSources,
    own: ExtraSources,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// `version` becomes `istio_build{component="proxy",tag=version}`.
    pub fn new(version: &str) -> Metrics {
        let mut registry = Registry::default();
        let istio = IstioMetrics::new(&mut registry, version);
        let proxy = ProxyMetrics::new(&mut registry);
        let extras = ExtraSources::default();
        registry.register_collector(Box::new(extras.clone()));
        let own = ExtraSources::proxy_owned();
        registry.register_collector(Box::new(own.clone()));
        Metrics {
            registry,
            istio,
            proxy,
            extras,
            own,
        }
    }

    /// Like [`Metrics::new`], with a different bound on distinct edges.
    pub fn with_max_edges(version: &str, max_edges: usize) -> Metrics {
        let m = Metrics::new(version);
        Metrics {
            istio: m.istio.with_max_edges(max_edges),
            ..m
        }
    }

    /// Adds a source of run-time-defined metrics (wasm plugins), encoded at each scrape.
    pub fn add_extra(&self, source: Arc<dyn ExtraMetrics>) {
        self.extras.add(source);
    }

    /// Adds a source of the proxy's own `meshgate_*` metrics read at scrape time (the
    /// upstream clusters' connection, circuit-breaker and outlier counters).
    pub fn add_proxy_source(&self, source: Arc<dyn ExtraMetrics>) {
        self.own.add(source);
    }

    /// The OpenMetrics exposition, ending with `# EOF`.
    pub fn encode_openmetrics(&self) -> String {
        let mut out = String::with_capacity(64 * 1024);
        // Writing into a String cannot fail; an error would come from a metric's own
        // encoder, and then the partial text is still the best answer we have.
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::warn!(error = %e, "metrics encoding failed");
        }
        out
    }

    /// The Prometheus 0.0.4 text exposition.
    pub fn encode_prometheus_text(&self) -> String {
        openmetrics_to_prometheus_text(&self.encode_openmetrics())
    }
}

/// Converts prometheus-client's OpenMetrics output to the 0.0.4 text format: counters
/// are described under their `_total` sample name, and `# UNIT` / `# EOF` go away.
/// Sample lines are the same in both formats for the metric types used here.
pub fn openmetrics_to_prometheus_text(openmetrics: &str) -> String {
    let mut out = String::with_capacity(openmetrics.len());
    let mut pending_help: Option<(&str, &str)> = None;
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            pending_help = Some((name, help));
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, "untyped"));
            let (name, kind) = match kind {
                "counter" => (format!("{name}_total"), "counter"),
                "unknown" => (name.to_string(), "untyped"),
                other => (name.to_string(), other),
            };
            if let Some((_, help)) = pending_help.take() {
                out.push_str(&format!("# HELP {name} {help}\n"));
            }
            out.push_str(&format!("# TYPE {name} {kind}\n"));
            continue;
        }
        if let Some((name, help)) = pending_help.take() {
            out.push_str(&format!("# HELP {name} {help}\n"));
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_renamed_for_text_format() {
        let om = "# HELP istio_requests Requests.\n# TYPE istio_requests counter\n\
                  istio_requests_total{a=\"b\"} 3\n# HELP g A gauge.\n# TYPE g gauge\ng 1\n# EOF\n";
        let text = openmetrics_to_prometheus_text(om);
        assert_eq!(
            text,
            "# HELP istio_requests_total Requests.\n# TYPE istio_requests_total counter\n\
             istio_requests_total{a=\"b\"} 3\n# HELP g A gauge.\n# TYPE g gauge\ng 1\n"
        );
    }
}
