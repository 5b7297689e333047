//! Passive health checking (Envoy's consecutive-5xx and consecutive-gateway-error
//! detectors): outcomes of real requests eject endpoints for `baseEjectionTime ×
//! ejections`, never more than `maxEjectionPercent` of the cluster at once.

use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::router::snapshot::OutlierPolicy;

use super::cluster::ClusterState;
use super::endpoint::{now_ms, EndpointState};

/// Envoy's default `max_ejection_time`: the backoff never ejects for longer (unless
/// the base time itself is longer).
const MAX_EJECTION_TIME: Duration = Duration::from_secs(300);

/// What one attempt on an endpoint came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Response headers arrived with this status.
    Status(u16),
    /// Connect failure, reset or timeout: Envoy counts these as gateway errors (503/504).
    LocalFailure,
    /// A timeout: a gateway error too, also counted as `rq_timeout`.
    Timeout,
}

impl ClusterState {
    pub fn record(&self, ep: &EndpointState, outcome: Outcome) {
        let (is_5xx, is_gateway) = match outcome {
            Outcome::Status(s) => (s >= 500, matches!(s, 502..=504)),
            Outcome::LocalFailure => (true, true),
            Outcome::Timeout => {
                ep.stats.rq_timeout.fetch_add(1, Ordering::Relaxed);
                (true, true)
            }
        };
        let counter = if is_5xx {
            &ep.stats.rq_error
        } else {
            &ep.stats.rq_success
        };
        counter.fetch_add(1, Ordering::Relaxed);

        let cfg = self.config.load();
        let Some(policy) = cfg.policy.outlier.as_ref() else {
            return;
        };
        let o = &ep.outlier;
        if !is_5xx {
            o.consecutive_5xx.store(0, Ordering::Relaxed);
            o.consecutive_gateway.store(0, Ordering::Relaxed);
            return;
        }
        let c5 = o.consecutive_5xx.fetch_add(1, Ordering::AcqRel) + 1;
        let gw = if is_gateway {
            o.consecutive_gateway.fetch_add(1, Ordering::AcqRel) + 1
        } else {
            o.consecutive_gateway.store(0, Ordering::Relaxed);
            0
        };
        let trip_5xx = policy.consecutive_5xx > 0 && c5 >= policy.consecutive_5xx;
        let trip_gw =
            policy.consecutive_gateway_errors > 0 && gw >= policy.consecutive_gateway_errors;
        if trip_5xx || trip_gw {
            self.eject(ep, policy);
        }
    }

    /// Envoy's rule: eject only if `100 × (ejected + 1) / endpoints ≤ maxEjectionPercent`.
    /// The consecutive counters restart either way, as in Envoy.
    fn eject(&self, ep: &EndpointState, policy: &OutlierPolicy) {
        let _serial = match self.eject_lock.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let now = now_ms();
        ep.outlier.consecutive_5xx.store(0, Ordering::Relaxed);
        ep.outlier.consecutive_gateway.store(0, Ordering::Relaxed);
        if ep.is_ejected(now) {
            return;
        }
        let total = self.endpoints.load().list.len() as u64;
        let ejected = self.ejected_count(now) as u64;
        if total == 0
            || 100 * (ejected + 1) > u64::from(policy.max_ejection_percent.min(100)) * total
        {
            self.stats
                .ejections_overflow
                .fetch_add(1, Ordering::Relaxed);
            return;
        }
        let backoff = decayed_backoff(ep, policy.interval, now) + 1;
        ep.outlier.backoff.store(backoff, Ordering::Relaxed);
        let cap = MAX_EJECTION_TIME.max(policy.base_ejection_time);
        let duration = policy.base_ejection_time.saturating_mul(backoff).min(cap);
        ep.outlier
            .ejected_until
            .store(now + duration.as_millis().max(1) as u64, Ordering::Release);
        ep.outlier.ejections_total.fetch_add(1, Ordering::Relaxed);
        self.stats
            .ejections_enforced_total
            .fetch_add(1, Ordering::Relaxed);
    }
}

/// Envoy lowers the backoff multiplier by one for every interval an endpoint stays in
/// service; doing it here, at the next ejection, gives the same result without a timer.
fn decayed_backoff(ep: &EndpointState, interval: Duration, now: u64) -> u32 {
    let backoff = ep.outlier.backoff.load(Ordering::Relaxed);
    let since = ep.outlier.last_unejected.load(Ordering::Relaxed);
    let interval_ms = interval.as_millis().max(1) as u64;
    if backoff == 0 || since == 0 {
        return backoff;
    }
    let healthy_intervals = now.saturating_sub(since) / interval_ms;
    backoff.saturating_sub(healthy_intervals.min(u64::from(u32::MAX)) as u32)
}
