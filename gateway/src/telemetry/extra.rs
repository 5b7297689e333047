//! Metrics defined at run time by others (proxy-wasm plugins' `define_metric`), appended
//! to every scrape under their own names. Names and values come from plugins, so they
//! are sanitized here: one bad name must not make Prometheus reject the whole scrape.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, RwLock};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, MetricEncoder};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;

use super::labels::LabelValue;

/// A source of extra metrics, asked for its current values at every scrape.
pub trait ExtraMetrics: Send + Sync + 'static {
    /// Push one entry per series. Entries sharing a name form one metric family.
    fn collect(&self, out: &mut Vec<ExtraMetric>);
}

#[derive(Clone, Debug, PartialEq)]
pub struct ExtraMetric {
    /// Exposed name. Characters outside `[a-zA-Z0-9_:]` become `_`; a counter's trailing
    /// `_total` is dropped (the encoder adds it). Names starting with `istio_` or
    /// `meshgate_` are skipped: they belong to the proxy.
    pub name: String,
    pub help: String,
    pub labels: Vec<(String, String)>,
    pub value: ExtraValue,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ExtraValue {
    Counter(u64),
    Gauge(i64),
    /// `buckets`: (upper bound, observations in that bucket alone), ascending;
    /// observations above the last bound are `count` minus their sum.
    Histogram {
        buckets: Vec<(f64, u64)>,
        count: u64,
        sum: f64,
    },
}

impl ExtraValue {
    fn same_kind(&self, other: &ExtraValue) -> bool {
        std::mem::discriminant(self) == std::mem::discriminant(other)
    }

    fn metric_type(&self) -> MetricType {
        match self {
            ExtraValue::Counter(_) => MetricType::Counter,
            ExtraValue::Gauge(_) => MetricType::Gauge,
            ExtraValue::Histogram { .. } => MetricType::Histogram,
        }
    }
}

/// The registered collector; sources are added at any time with [`ExtraSources::add`].
/// Plugins' sources may not use the proxy's prefixes; the proxy's own (read at scrape
/// time from its runtime state) must.
#[derive(Clone, Default)]
pub struct ExtraSources {
    sources: Arc<RwLock<Vec<Arc<dyn ExtraMetrics>>>>,
    proxy_owned: bool,
}

impl std::fmt::Debug for ExtraSources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ExtraSources")
    }
}

impl ExtraSources {
    /// Sources of the proxy's own `meshgate_*` metrics.
    pub fn proxy_owned() -> ExtraSources {
        ExtraSources {
            sources: Arc::default(),
            proxy_owned: true,
        }
    }

    pub fn add(&self, source: Arc<dyn ExtraMetrics>) {
        self.sources
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push(source);
    }

    fn snapshot(&self) -> Vec<ExtraMetric> {
        let mut out = Vec::new();
        for source in self
            .sources
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            source.collect(&mut out);
        }
        out
    }
}

fn sanitize_name(raw: &str) -> String {
    let mut name: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        name.insert(0, '_');
    }
    name
}

fn sanitize_label_name(raw: &str) -> String {
    sanitize_name(raw).replace(':', "_")
}

fn sanitize_help(raw: &str) -> String {
    raw.chars()
        .map(|c| if c.is_control() || c == '\\' { ' ' } else { c })
        .collect()
}

impl Collector for ExtraSources {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        // Group by final name; the first entry decides a family's type and help.
        let mut families: BTreeMap<String, Vec<ExtraMetric>> = BTreeMap::new();
        for mut m in self.snapshot() {
            let mut name = sanitize_name(&m.name);
            if matches!(m.value, ExtraValue::Counter(_)) {
                if let Some(stripped) = name.strip_suffix("_total") {
                    name = stripped.to_string();
                }
            }
            let reserved = name.starts_with("istio_") || name.starts_with("meshgate_");
            if name.is_empty() || reserved != self.proxy_owned {
                continue;
            }
            m.name = name.clone();
            families.entry(name).or_default().push(m);
        }
        let counters: HashSet<String> = families
            .iter()
            .filter(|(_, s)| matches!(s[0].value, ExtraValue::Counter(_)))
            .map(|(n, _)| format!("{n}_total"))
            .collect();
        for (name, samples) in families {
            let first = &samples[0].value;
            if !matches!(first, ExtraValue::Counter(_)) && counters.contains(&name) {
                continue; // `x_total` would collide with counter `x`'s samples
            }
            let help = sanitize_help(&samples[0].help);
            let mut family = encoder.encode_descriptor(&name, &help, None, first.metric_type())?;
            let mut seen = HashSet::new();
            let mut unlabeled = None;
            for m in samples.iter().filter(|m| m.value.same_kind(first)) {
                let labels: Vec<(String, LabelValue)> = m
                    .labels
                    .iter()
                    .map(|(k, v)| (sanitize_label_name(k), LabelValue::new(v)))
                    .filter(|(k, _)| !k.is_empty() && k != "le")
                    .collect();
                if !seen.insert(labels.clone()) {
                    continue; // a duplicate series would make the exposition invalid
                }
                if labels.is_empty() {
                    // Encoded last, straight on the family: an empty label set would
                    // print as `{}` (and `{le="1.0",}` for buckets).
                    unlabeled = Some(&m.value);
                    continue;
                }
                encode_value(&m.value, family.encode_family(&labels)?)?;
            }
            if let Some(value) = unlabeled {
                encode_value(value, family)?;
            }
        }
        Ok(())
    }
}

fn encode_value(value: &ExtraValue, sample: MetricEncoder) -> Result<(), std::fmt::Error> {
    match value {
        ExtraValue::Counter(v) => ConstCounter::new(*v).encode(sample),
        ExtraValue::Gauge(v) => ConstGauge::new(*v).encode(sample),
        ExtraValue::Histogram {
            buckets,
            count,
            sum,
        } => {
            let mut all: Vec<(f64, u64)> = buckets
                .iter()
                .filter(|(b, _)| b.is_finite())
                .copied()
                .collect();
            all.sort_by(|a, b| a.0.total_cmp(&b.0));
            let finite: u64 = all.iter().map(|(_, n)| n).sum();
            let count = (*count).max(finite);
            all.push((f64::MAX, count - finite));
            let mut sample = sample;
            sample.encode_histogram::<()>(*sum, count, &all, None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_sanitized() {
        assert_eq!(sanitize_name("wasm.filter-hits"), "wasm_filter_hits");
        assert_eq!(sanitize_name("9lives"), "_9lives");
        assert_eq!(sanitize_label_name("a:b"), "a_b");
        assert_eq!(sanitize_help("line\nbreak\\"), "line break ");
    }
}
