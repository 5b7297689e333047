//! Consistent hashing: the ring over a cluster's endpoints and the per-request hash key
//! (header, cookie, source IP or query parameter), including the cookie the proxy
//! generates when a TTL is configured and the client sent none.

use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, HeaderValue, Uri};

use crate::router::snapshot::HashPolicy;

use super::endpoint::EndpointState;
use super::SendContext;

/// Points per unit of weight while the ring stays under `MAX_RING`. Keeping it
/// independent of the endpoint count means removing an endpoint moves only the keys
/// that were on it (Istio's default minimumRingSize is 1024 for the whole ring).
const POINTS_PER_WEIGHT: u64 = 1024;
const MAX_RING: u64 = 65_536;

/// FNV-1a followed by a 64-bit finalizer: stable across builds and processes, so every
/// proxy replica maps a key to the same endpoint.
pub(crate) fn stable_hash(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in part.iter() {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        // Separator so ("ab","c") and ("a","bc") differ.
        h ^= 0xff;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

#[derive(Debug, Default)]
pub(crate) struct Ring {
    /// (point hash, endpoint index), sorted by hash.
    points: Vec<(u64, u32)>,
}

impl Ring {
    pub fn build(endpoints: &[Arc<EndpointState>]) -> Ring {
        let total: u64 = endpoints.iter().map(|e| e.weight()).sum();
        if total == 0 {
            return Ring::default();
        }
        let per_weight = if total * POINTS_PER_WEIGHT <= MAX_RING {
            POINTS_PER_WEIGHT
        } else {
            (MAX_RING / total).max(1)
        };
        let mut points = Vec::new();
        for (idx, ep) in endpoints.iter().enumerate() {
            let n = (ep.weight() * per_weight).min(MAX_RING);
            for i in 0..n {
                let h = stable_hash(&[ep.address.as_bytes(), &i.to_le_bytes()]);
                points.push((h, idx as u32));
            }
        }
        points.sort_unstable();
        Ring { points }
    }

    /// The first endpoint clockwise from `hash` that `usable` accepts; skipping an
    /// ejected endpoint sends its keys to its ring neighbours only.
    pub fn pick(&self, hash: u64, usable: impl Fn(usize) -> bool) -> Option<usize> {
        if self.points.is_empty() {
            return None;
        }
        let start = self.points.partition_point(|(h, _)| *h < hash);
        let len = self.points.len();
        let mut rejected_last = None;
        for step in 0..len {
            let idx = self.points[(start + step) % len].1 as usize;
            if rejected_last == Some(idx) {
                continue;
            }
            if usable(idx) {
                return Some(idx);
            }
            rejected_last = Some(idx);
        }
        None
    }
}

/// The hash for one request, plus the cookie to set when the proxy generated it.
#[derive(Debug, Default)]
pub(crate) struct HashKey {
    pub hash: Option<u64>,
    pub set_cookie: Option<HeaderValue>,
}

pub(crate) fn hash_key(
    policy: &HashPolicy,
    headers: &HeaderMap,
    uri: &Uri,
    ctx: &SendContext,
) -> HashKey {
    match policy {
        HashPolicy::Header(name) => {
            let mut values: Vec<&[u8]> =
                headers.get_all(name).iter().map(|v| v.as_bytes()).collect();
            values.sort_unstable();
            HashKey {
                hash: (!values.is_empty()).then(|| stable_hash(&values)),
                set_cookie: None,
            }
        }
        HashPolicy::Cookie { name, path, ttl } => {
            if let Some(value) = cookie_value(headers, name) {
                return HashKey {
                    hash: Some(stable_hash(&[value.as_bytes()])),
                    set_cookie: None,
                };
            }
            match ttl {
                Some(ttl) => {
                    let value = generated_cookie_value(ctx);
                    HashKey {
                        hash: Some(stable_hash(&[value.as_bytes()])),
                        set_cookie: set_cookie_header(name, &value, path.as_deref(), *ttl),
                    }
                }
                None => HashKey::default(),
            }
        }
        HashPolicy::SourceIp => HashKey {
            hash: ctx
                .source_addr
                .map(|a| stable_hash(&[a.ip().to_string().as_bytes()])),
            set_cookie: None,
        },
        HashPolicy::QueryParameter(param) => HashKey {
            hash: query_value(uri, param).map(|v| stable_hash(&[v.as_bytes()])),
            set_cookie: None,
        },
    }
}

/// The value of cookie `name` in any `Cookie` header; surrounding quotes are dropped.
fn cookie_value<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"'))
}

fn query_value<'u>(uri: &'u Uri, param: &str) -> Option<&'u str> {
    uri.query()?
        .split('&')
        .map(|kv| kv.split_once('=').unwrap_or((kv, "")))
        .find(|(k, _)| *k == param)
        .map(|(_, v)| v)
}

/// Like Envoy, derive the value from the downstream connection's addresses so parallel
/// requests of one connection agree on it; random when the addresses are unknown.
fn generated_cookie_value(ctx: &SendContext) -> String {
    let h = match (ctx.source_addr, ctx.local_addr) {
        (None, None) => fastrand::u64(..),
        (src, local) => stable_hash(&[
            src.map(|a| a.to_string()).unwrap_or_default().as_bytes(),
            local.map(|a| a.to_string()).unwrap_or_default().as_bytes(),
        ]),
    };
    format!("{h:016x}")
}

/// `NAME=VALUE; Path=P; Max-Age=TTL; HttpOnly`; a zero TTL makes a session cookie.
fn set_cookie_header(
    name: &str,
    value: &str,
    path: Option<&str>,
    ttl: Duration,
) -> Option<HeaderValue> {
    let mut s = format!("{name}={value}");
    if let Some(p) = path.filter(|p| !p.is_empty()) {
        s.push_str("; Path=");
        s.push_str(p);
    }
    if !ttl.is_zero() {
        s.push_str(&format!("; Max-Age={}", ttl.as_secs().max(1)));
    }
    s.push_str("; HttpOnly");
    HeaderValue::from_str(&s).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::router::snapshot::Endpoint;

    fn endpoints(addrs: &[&str]) -> Vec<Arc<EndpointState>> {
        addrs
            .iter()
            .map(|a| {
                EndpointState::new(&Endpoint {
                    address: a.to_string(),
                    labels: Default::default(),
                    weight: 1,
                    service_account: None,
                })
            })
            .collect()
    }

    fn owner(ring: &Ring, eps: &[Arc<EndpointState>], key: u32) -> String {
        let idx = ring
            .pick(stable_hash(&[&key.to_le_bytes()]), |_| true)
            .unwrap();
        eps[idx].address.clone()
    }

    #[test]
    fn removing_an_endpoint_moves_only_its_keys_and_spreads_evenly() {
        let all = endpoints(&["10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80", "10.0.0.4:80"]);
        let ring = Ring::build(&all);
        let before: Vec<String> = (0..4000).map(|k| owner(&ring, &all, k)).collect();
        for a in ["10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80", "10.0.0.4:80"] {
            let share = before.iter().filter(|o| *o == a).count();
            assert!((700..1300).contains(&share), "{a} got {share} of 4000");
        }
        let three = endpoints(&["10.0.0.1:80", "10.0.0.2:80", "10.0.0.4:80"]);
        let ring3 = Ring::build(&three);
        for (k, old) in before.iter().enumerate() {
            let new = owner(&ring3, &three, k as u32);
            if old != "10.0.0.3:80" {
                assert_eq!(&new, old, "key {k} moved although its endpoint stayed");
            }
        }
    }

    #[test]
    fn skipping_an_endpoint_sends_its_keys_elsewhere_and_keeps_the_rest() {
        let all = endpoints(&["a:1", "b:1", "c:1"]);
        let ring = Ring::build(&all);
        for k in 0..500u32 {
            let h = stable_hash(&[&k.to_le_bytes()]);
            let first = ring.pick(h, |_| true).unwrap();
            let skipped = ring.pick(h, |i| i != 1).unwrap();
            assert_ne!(skipped, 1);
            if first != 1 {
                assert_eq!(first, skipped);
            }
        }
        assert_eq!(ring.pick(1, |_| false), None);
    }

    #[test]
    fn cookie_and_query_keys() {
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::COOKIE,
            HeaderValue::from_static("a=1; user=\"bob\""),
        );
        assert_eq!(cookie_value(&headers, "user"), Some("bob"));
        assert_eq!(cookie_value(&headers, "missing"), None);
        let uri: Uri = "/p?x=1&user=ann&flag".parse().unwrap();
        assert_eq!(query_value(&uri, "user"), Some("ann"));
        assert_eq!(query_value(&uri, "flag"), Some(""));
        let c = set_cookie_header("sess", "abc", Some("/"), Duration::from_secs(60)).unwrap();
        assert_eq!(c, "sess=abc; Path=/; Max-Age=60; HttpOnly");
        let session = set_cookie_header("sess", "abc", None, Duration::ZERO).unwrap();
        assert_eq!(session, "sess=abc; HttpOnly");
    }
}
