//! Endpoint selection: least request (power of two choices, weighted), round robin,
//! random and ring hash, over the endpoints that are not ejected — or over all of
//! them in panic mode (healthy share below `minHealthPercent`).

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::router::snapshot::{Cluster, Endpoint, LoadBalancerPolicy};

use super::cluster::{ClusterState, EndpointSet};
use super::endpoint::{now_ms, EndpointState};
use super::error::UpstreamError;

/// Original-destination endpoints kept at most; idle ones are forgotten beyond this.
const MAX_ORIGINAL_DST: usize = 1024;

impl ClusterState {
    /// The endpoint for one request or connection. PASSTHROUGH clusters go to the
    /// downstream's original destination (Envoy's ORIGINAL_DST cluster) when known.
    pub fn choose(
        &self,
        cfg: &Cluster,
        hash: Option<u64>,
        original_dst: Option<SocketAddr>,
    ) -> Result<Arc<EndpointState>, UpstreamError> {
        if let (LoadBalancerPolicy::Passthrough, Some(dst)) = (&cfg.policy.lb, original_dst) {
            return Ok(self.original_dst_endpoint(dst));
        }
        let set = self.endpoints.load();
        let min_health = cfg
            .policy
            .outlier
            .as_ref()
            .map_or(0, |o| o.min_health_percent);
        let idx = pick(self, &set, &cfg.policy.lb, min_health, hash)?;
        Ok(set.list[idx].clone())
    }

    /// State per original destination, created on first use so its connections are
    /// pooled like any endpoint's; bounded by dropping idle ones.
    fn original_dst_endpoint(&self, dst: SocketAddr) -> Arc<EndpointState> {
        if let Some(ep) = self.original_dst.get(&dst) {
            return ep.clone();
        }
        if self.original_dst.len() >= MAX_ORIGINAL_DST {
            self.forget_idle_original_dst();
        }
        self.original_dst
            .entry(dst)
            .or_insert_with(|| {
                EndpointState::new(&Endpoint {
                    address: dst.to_string(),
                    labels: Default::default(),
                    weight: 1,
                    service_account: None,
                })
            })
            .clone()
    }

    pub fn forget_idle_original_dst(&self) {
        self.original_dst.retain(|_, ep| {
            ep.rq_active.load(Ordering::Relaxed) > 0 || ep.cx_active.load(Ordering::Relaxed) > 0
        });
    }
}

/// Picks an index into `set.list`. `hash` is the consistent-hash key, if any; without
/// one a hashing cluster picks at random, as Envoy does.
pub(crate) fn pick(
    state: &ClusterState,
    set: &EndpointSet,
    lb: &LoadBalancerPolicy,
    min_health_percent: u32,
    hash: Option<u64>,
) -> Result<usize, UpstreamError> {
    let eps = &set.list;
    if eps.is_empty() {
        return Err(state.no_healthy());
    }
    let now = now_ms();
    let healthy: Vec<bool> = eps.iter().map(|e| e.in_service(now)).collect();
    let healthy_count = healthy.iter().filter(|h| **h).count();
    let panic = min_health_percent > 0
        && (healthy_count as u64) * 100 < u64::from(min_health_percent) * eps.len() as u64;
    if healthy_count == 0 && !panic {
        return Err(state.no_healthy());
    }
    let usable = |i: usize| panic || healthy[i];
    let picked = match (lb, hash, set.ring.as_ref()) {
        (LoadBalancerPolicy::ConsistentHash(_), Some(h), Some(ring)) => ring.pick(h, usable),
        (LoadBalancerPolicy::RoundRobin, _, _) => round_robin(state, set, usable),
        (LoadBalancerPolicy::Random, _, _) | (LoadBalancerPolicy::ConsistentHash(_), _, _) => {
            weighted_random(set, &usable, None)
        }
        (LoadBalancerPolicy::LeastRequest | LoadBalancerPolicy::Passthrough, _, _) => {
            least_request(set, &usable)
        }
    };
    picked.ok_or_else(|| state.no_healthy())
}

fn round_robin(
    state: &ClusterState,
    set: &EndpointSet,
    usable: impl Fn(usize) -> bool,
) -> Option<usize> {
    let len = set.rr_schedule.len();
    if len == 0 {
        return None;
    }
    let start = state.rr_next.fetch_add(1, Ordering::Relaxed);
    (0..len)
        .map(|step| set.rr_schedule[(start + step) % len] as usize)
        .find(|i| usable(*i))
}

fn weighted_random(
    set: &EndpointSet,
    usable: &impl Fn(usize) -> bool,
    except: Option<usize>,
) -> Option<usize> {
    let ok = |i: usize| usable(i) && Some(i) != except;
    let total: u64 = (0..set.list.len())
        .filter(|i| ok(*i))
        .map(|i| set.list[i].weight())
        .sum();
    if total == 0 {
        return None;
    }
    let mut r = fastrand::u64(..total);
    for i in (0..set.list.len()).filter(|i| ok(*i)) {
        let w = set.list[i].weight();
        if r < w {
            return Some(i);
        }
        r -= w;
    }
    None
}

/// Two distinct weighted-random candidates; the one with fewer active requests per
/// unit of weight wins (Envoy's P2C; distinct so two endpoints always compare both).
fn least_request(set: &EndpointSet, usable: &impl Fn(usize) -> bool) -> Option<usize> {
    let a = weighted_random(set, usable, None)?;
    let Some(b) = weighted_random(set, usable, Some(a)) else {
        return Some(a);
    };
    let (ea, eb) = (&set.list[a], &set.list[b]);
    // active_a / w_a <= active_b / w_b, without division.
    if ea.rq_active() * eb.weight() <= eb.rq_active() * ea.weight() {
        Some(a)
    } else {
        Some(b)
    }
}
