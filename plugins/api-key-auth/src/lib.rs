//! Lets a request through only with a known API key in a configurable header; answers
//! `401` with `WWW-Authenticate` otherwise. The key header is not forwarded upstream;
//! the key's name is, as `x-api-key-name`.

use meshgate_sdk::metrics::Counter;
use meshgate_sdk::prelude::*;

#[derive(Deserialize)]
#[serde(untagged)]
enum KeyEntry {
    /// `"k-123"`
    Bare(String),
    /// `{"name": "mobile-app", "key": "k-123"}`
    Named { name: String, key: String },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Config {
    keys: Vec<KeyEntry>,
    #[serde(default = "default_header")]
    header: String,
    #[serde(default = "default_realm")]
    realm: String,
    /// Forward the key header upstream too (default: strip it).
    #[serde(default)]
    forward_key: bool,
}

fn default_header() -> String {
    "x-api-key".into()
}

fn default_realm() -> String {
    "meshgate".into()
}

struct ApiKeyAuth {
    keys: Vec<(String, Vec<u8>)>,
    header: String,
    challenge: String,
    forward_key: bool,
    allowed: Counter,
    denied: Counter,
}

/// Compares without returning early, so response time does not reveal how much of a
/// guessed key was right.
fn same(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for (i, x) in a.iter().enumerate() {
        diff |= usize::from(x ^ b.get(i).copied().unwrap_or(!x));
    }
    diff == 0
}

impl ApiKeyAuth {
    fn deny(&self, error: &str) -> Decision {
        self.denied.increment(1);
        Reply::json(401, &json!({ "error": error }))
            .header("www-authenticate", self.challenge.clone())
            .into()
    }
}

impl Plugin for ApiKeyAuth {
    type Config = Config;

    fn configure(config: Config) -> Result<Self> {
        if config.keys.is_empty() {
            meshgate_sdk::bail!("keys: no keys configured, every request would be denied");
        }
        let mut keys = Vec::new();
        for (i, entry) in config.keys.into_iter().enumerate() {
            let (name, key) = match entry {
                KeyEntry::Bare(key) => (format!("key-{i}"), key),
                KeyEntry::Named { name, key } => (name, key),
            };
            if key.len() < 8 {
                meshgate_sdk::bail!("keys[{i}] ({name}): shorter than 8 characters");
            }
            keys.push((name, key.into_bytes()));
        }
        Ok(ApiKeyAuth {
            keys,
            challenge: format!(
                "ApiKey realm=\"{}\", header=\"{}\"",
                config.realm, config.header
            ),
            header: config.header.to_ascii_lowercase(),
            forward_key: config.forward_key,
            allowed: Counter::define("api_key_auth_allowed")?,
            denied: Counter::define("api_key_auth_denied")?,
        })
    }

    fn on_request(&self, req: &mut Request) -> Result<Decision> {
        let Some(presented) = req.header(&self.header) else {
            return Ok(self.deny("missing API key"));
        };
        // Every key is compared, matching or not, for the same reason as `same`.
        let name = self.keys.iter().fold(None, |found, (name, key)| {
            if same(presented.as_bytes(), key) {
                Some(name.clone())
            } else {
                found
            }
        });
        let Some(name) = name else {
            meshgate_sdk::log::info!("denied a request with an unknown API key");
            return Ok(self.deny("invalid API key"));
        };
        if !self.forward_key {
            req.remove_header(&self.header)?;
        }
        req.set_header("x-api-key-name", &name)?;
        self.allowed.increment(1);
        Ok(Decision::Continue)
    }
}

meshgate_sdk::plugin!(ApiKeyAuth);
