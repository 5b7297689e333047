//! A lock-free histogram for the request path. prometheus-client's `Histogram` takes a
//! write lock on every observation (and a scrape holds the read lock while encoding);
//! this one is an array of atomic counters, so recording is a few relaxed atomic adds
//! and never waits for a scrape.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use prometheus_client::encoding::{EncodeMetric, MetricEncoder};
use prometheus_client::metrics::{MetricType, TypedMetric};

/// Envoy's default histogram buckets, in milliseconds.
pub const DURATION_BUCKETS_MS: [f64; 19] = [
    0.5, 1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 30000.0,
    60000.0, 300000.0, 600000.0, 1800000.0, 3600000.0,
];

/// Byte-size buckets, decades from 1 B to 1 GB.
pub const SIZE_BUCKETS_BYTES: [f64; 10] = [
    1.0, 10.0, 100.0, 1000.0, 10000.0, 100000.0, 1e6, 1e7, 1e8, 1e9,
];

/// Bucket bounds in integer units (µs for durations, bytes for sizes) and how to print
/// them: a bound of `raw` units is exposed as `raw / divisor`.
#[derive(Debug)]
pub struct BucketLayout {
    raw_bounds: Vec<u64>,
    shown_bounds: Vec<f64>,
    divisor: f64,
}

impl BucketLayout {
    /// `bounds` in the exposed unit; `divisor` raw units per exposed unit (1000 for
    /// milliseconds recorded in microseconds).
    pub fn new(bounds: &[f64], divisor: u64) -> Arc<BucketLayout> {
        let divisor_f = divisor as f64;
        Arc::new(BucketLayout {
            raw_bounds: bounds
                .iter()
                .map(|b| (b * divisor_f).round() as u64)
                .collect(),
            shown_bounds: bounds.to_vec(),
            divisor: divisor_f,
        })
    }

    pub fn durations_ms() -> Arc<BucketLayout> {
        BucketLayout::new(&DURATION_BUCKETS_MS, 1000)
    }

    pub fn sizes_bytes() -> Arc<BucketLayout> {
        BucketLayout::new(&SIZE_BUCKETS_BYTES, 1)
    }
}

/// Cheap to clone (one `Arc`); clones record into the same series.
#[derive(Clone, Debug)]
pub struct AtomicHistogram {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    layout: Arc<BucketLayout>,
    /// Per-bucket (non-cumulative) counts; the last one is `+Inf`.
    counts: Box<[AtomicU64]>,
    /// Sum of observations in raw units.
    sum: AtomicU64,
}

impl AtomicHistogram {
    pub fn new(layout: Arc<BucketLayout>) -> Self {
        let counts = (0..=layout.raw_bounds.len())
            .map(|_| AtomicU64::new(0))
            .collect();
        AtomicHistogram {
            inner: Arc::new(Inner {
                layout,
                counts,
                sum: AtomicU64::new(0),
            }),
        }
    }

    /// Record `raw` units (µs or bytes). A value equal to a bound falls in that bucket
    /// (`le` is inclusive).
    #[inline]
    pub fn observe_raw(&self, raw: u64) {
        let i = self.inner.layout.raw_bounds.partition_point(|b| *b < raw);
        self.inner.counts[i].fetch_add(1, Ordering::Relaxed);
        self.inner.sum.fetch_add(raw, Ordering::Relaxed);
    }

    /// Total observations so far.
    pub fn count(&self) -> u64 {
        self.inner
            .counts
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .sum()
    }

    /// Sum in the exposed unit.
    pub fn sum(&self) -> f64 {
        self.inner.sum.load(Ordering::Relaxed) as f64 / self.inner.layout.divisor
    }
}

impl TypedMetric for AtomicHistogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for AtomicHistogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let layout = &self.inner.layout;
        let mut buckets = Vec::with_capacity(self.inner.counts.len());
        let mut count = 0;
        for (i, c) in self.inner.counts.iter().enumerate() {
            let n = c.load(Ordering::Relaxed);
            count += n;
            // f64::MAX is how the encoder spells `+Inf`.
            buckets.push((layout.shown_bounds.get(i).copied().unwrap_or(f64::MAX), n));
        }
        // `count` is the sum of the buckets just read, so `_count` always equals the
        // `+Inf` bucket even while requests are being recorded.
        encoder.encode_histogram::<()>(self.sum(), count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_inclusive_and_sum_is_scaled() {
        let h = AtomicHistogram::new(BucketLayout::durations_ms());
        h.observe_raw(500); // 0.5 ms: first bucket
        h.observe_raw(501); // just above: second bucket
        h.observe_raw(7_200_000_000); // 2 h: +Inf
        let counts: Vec<u64> = h
            .inner
            .counts
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect();
        assert_eq!(counts[0], 1);
        assert_eq!(counts[1], 1);
        assert_eq!(counts[DURATION_BUCKETS_MS.len()], 1);
        assert_eq!(h.count(), 3);
        assert!((h.sum() - (0.5 + 0.501 + 7_200_000.0)).abs() < 1e-6);
    }
}
