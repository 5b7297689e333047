//! A token bucket per client (a header's value, or the client IP) kept in the proxy's
//! shared data, so every instance and thread draws from the same bucket. Over the
//! limit: `429` with `retry-after`. Allowed responses carry `x-ratelimit-remaining`.

use std::time::{Duration, UNIX_EPOCH};

use meshgate_sdk::prelude::*;
use meshgate_sdk::shared;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Config {
    /// Bucket size: how many requests may come at once.
    capacity: u32,
    /// Tokens added per `interval`.
    refill: u32,
    /// Refill interval in milliseconds (default one second).
    #[serde(default = "one_second")]
    interval_ms: u64,
    /// Limit per value of this header (e.g. `x-api-key-name`); per client IP when unset
    /// or when a request lacks it.
    #[serde(default)]
    key_header: Option<String>,
}

fn one_second() -> u64 {
    1000
}

struct RateLimit {
    capacity: f64,
    /// Tokens per nanosecond.
    rate: f64,
    key_header: Option<String>,
}

/// A bucket as stored: tokens (f64 bits) and the time they were counted (ns), LE.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Bucket {
    tokens: f64,
    at_ns: u64,
}

impl Bucket {
    fn decode(bytes: &[u8]) -> Option<Bucket> {
        let tokens = f64::from_bits(u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?));
        let at_ns = u64::from_le_bytes(bytes.get(8..16)?.try_into().ok()?);
        tokens.is_finite().then_some(Bucket { tokens, at_ns })
    }

    fn encode(&self) -> Vec<u8> {
        let mut v = self.tokens.to_bits().to_le_bytes().to_vec();
        v.extend_from_slice(&self.at_ns.to_le_bytes());
        v
    }
}

/// What one request got from the bucket.
enum Take {
    Allowed { remaining: u64 },
    Limited { retry_after: Duration },
}

impl RateLimit {
    /// Refills the bucket up to `now` and takes one token if there is one.
    fn take(&self, stored: Option<&[u8]>, now_ns: u64) -> (Bucket, Take) {
        let mut b = stored.and_then(Bucket::decode).unwrap_or(Bucket {
            tokens: self.capacity,
            at_ns: now_ns,
        });
        let elapsed = now_ns.saturating_sub(b.at_ns) as f64;
        b.tokens = (b.tokens + elapsed * self.rate).min(self.capacity);
        b.at_ns = now_ns.max(b.at_ns);
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            (
                b,
                Take::Allowed {
                    remaining: b.tokens as u64,
                },
            )
        } else {
            let wait_ns = (1.0 - b.tokens) / self.rate;
            (
                b,
                Take::Limited {
                    retry_after: Duration::from_nanos(wait_ns.ceil() as u64),
                },
            )
        }
    }

    fn key(&self, req: &Request) -> String {
        if let Some(value) = self.key_header.as_deref().and_then(|h| req.header(h)) {
            return format!("local-rate-limit:h:{value}");
        }
        match req.client_ip() {
            Some(ip) => format!("local-rate-limit:ip:{ip}"),
            None => "local-rate-limit:unknown-client".into(),
        }
    }
}

impl Plugin for RateLimit {
    type Config = Config;
    // A broken bucket must not take the API down with it.
    const ON_ERROR: OnError = OnError::Continue;

    fn configure(config: Config) -> Result<Self> {
        if config.capacity == 0 {
            meshgate_sdk::bail!("capacity: must be at least 1");
        }
        if config.refill == 0 || config.interval_ms == 0 {
            meshgate_sdk::bail!(
                "refill and intervalMs: must be at least 1, or a bucket never refills"
            );
        }
        Ok(RateLimit {
            capacity: f64::from(config.capacity),
            rate: f64::from(config.refill) / (config.interval_ms as f64 * 1e6),
            key_header: config.key_header,
        })
    }

    fn on_request(&self, req: &mut Request) -> Result<Decision> {
        let now = meshgate_sdk::now()?;
        let now_ns = now
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let key = self.key(req);
        let take = shared::update(&key, |stored| {
            let (bucket, take) = self.take(stored, now_ns);
            Ok((bucket.encode(), take))
        })?;
        match take {
            Take::Allowed { remaining } => {
                req.set_var("remaining", remaining.to_string());
                Ok(Decision::Continue)
            }
            Take::Limited { retry_after } => {
                let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
                Ok(Reply::json(429, &json!({"error": "rate limit exceeded"}))
                    .header("retry-after", secs.max(1).to_string())
                    .header("x-ratelimit-remaining", "0")
                    .into())
            }
        }
    }

    fn on_response(&self, resp: &mut Response) -> Result<Decision> {
        if let Some(remaining) = resp.var("remaining").map(str::to_string) {
            resp.set_header("x-ratelimit-remaining", &remaining)?;
        }
        Ok(Decision::Continue)
    }
}

meshgate_sdk::plugin!(RateLimit);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_refill_at_the_configured_rate_and_cap() {
        let rl = RateLimit {
            capacity: 2.0,
            rate: 1.0 / 1e9,
            key_header: None,
        };
        let (b, t) = rl.take(None, 1_000);
        assert!(matches!(t, Take::Allowed { remaining: 1 }));
        let (b, _) = rl.take(Some(&b.encode()), 1_000);
        let (b, t) = rl.take(Some(&b.encode()), 1_000);
        let Take::Limited { retry_after } = t else {
            panic!("empty bucket")
        };
        assert_eq!(retry_after, Duration::from_secs(1));
        // Half a second later half a token is back: still limited, half a second to go.
        let (_, t) = rl.take(Some(&b.encode()), 500_001_000);
        let Take::Limited { retry_after } = t else {
            panic!("half a token")
        };
        assert_eq!(retry_after, Duration::from_millis(500));
        // Much later the bucket is full again but not more than full.
        let (b, t) = rl.take(Some(&b.encode()), 100_000_000_000);
        assert!(matches!(t, Take::Allowed { remaining: 1 }));
        assert_eq!(b.tokens, 1.0);
        // Garbage in shared data reads as a fresh bucket.
        assert!(Bucket::decode(&[1, 2, 3]).is_none());
    }
}
