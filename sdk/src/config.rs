//! Reading `pluginConfig`: the SDK's own `onError` key, then the plugin's typed config,
//! with errors that name the offending field.

use serde::de::DeserializeOwned;

/// What the SDK does when a plugin callback returns `Err`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnError {
    /// Answer `500` with `{"error":"plugin error"}` (the details go to the proxy's log).
    Deny,
    /// Let the request or response through unchanged from that point.
    Continue,
}

/// The key in `pluginConfig` that overrides [`crate::Plugin::ON_ERROR`]:
/// `"onError": "deny" | "continue"`. It is removed before the plugin's own config is
/// read, so configs with `#[serde(deny_unknown_fields)]` still work.
pub const ON_ERROR_KEY: &str = "onError";

/// Parses raw `pluginConfig` bytes into the plugin's config and the error mode.
pub fn parse<C: DeserializeOwned>(raw: &[u8], default: OnError) -> Result<(C, OnError), String> {
    let text = std::str::from_utf8(raw).map_err(|e| format!("not UTF-8: {e}"))?;
    let mut value: serde_json::Value = if text.trim().is_empty() {
        serde_json::Value::Object(Default::default())
    } else {
        serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?
    };
    let mut on_error = default;
    if let Some(map) = value.as_object_mut() {
        if let Some(v) = map.remove(ON_ERROR_KEY) {
            on_error = match v.as_str() {
                Some("deny") => OnError::Deny,
                Some("continue") => OnError::Continue,
                _ => {
                    return Err(format!(
                        "{ON_ERROR_KEY}: expected \"deny\" or \"continue\", got {v}"
                    ))
                }
            };
        }
    }
    let empty = value.as_object().is_some_and(|m| m.is_empty());
    match deserialize::<C>(value) {
        Ok(c) => Ok((c, on_error)),
        // `()` and `Option<_>` configs are written as no config at all.
        Err(first) if empty => deserialize::<C>(serde_json::Value::Null)
            .map(|c| (c, on_error))
            .map_err(|_| first),
        Err(e) => Err(e),
    }
}

fn deserialize<C: DeserializeOwned>(value: serde_json::Value) -> Result<C, String> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        if path == "." {
            e.inner().to_string()
        } else {
            format!("{path}: {}", e.inner())
        }
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Limits {
        #[serde(default)]
        burst: u32,
        keys: Vec<String>,
    }

    #[test]
    fn errors_name_the_field() {
        let e = parse::<Limits>(br#"{"keys": ["a", 7]}"#, OnError::Deny).unwrap_err();
        assert!(e.starts_with("keys[1]: invalid type: integer `7`"), "{e}");
        let e = parse::<Limits>(br#"{"keys": [], "brust": 1}"#, OnError::Deny).unwrap_err();
        assert!(e.contains("unknown field `brust`"), "{e}");
        let e = parse::<Limits>(b"{", OnError::Deny).unwrap_err();
        assert!(e.starts_with("not valid JSON"), "{e}");
    }

    #[test]
    fn on_error_is_taken_out_before_the_plugin_config() {
        let (c, mode) =
            parse::<Limits>(br#"{"keys": ["k"], "onError": "continue"}"#, OnError::Deny).unwrap();
        assert_eq!(
            c,
            Limits {
                burst: 0,
                keys: vec!["k".into()]
            }
        );
        assert_eq!(mode, OnError::Continue);
        assert!(
            parse::<Limits>(br#"{"keys": [], "onError": "open"}"#, OnError::Deny)
                .unwrap_err()
                .contains("\"deny\" or \"continue\"")
        );
    }

    #[test]
    fn empty_config_fits_unit_and_defaults() {
        #[derive(Deserialize, Default)]
        #[serde(default)]
        struct WithDefaults {
            n: u32,
        }
        assert_eq!(parse::<()>(b"", OnError::Deny).unwrap().1, OnError::Deny);
        assert_eq!(parse::<WithDefaults>(b" ", OnError::Deny).unwrap().0.n, 0);
        assert!(parse::<Limits>(b"", OnError::Deny)
            .unwrap_err()
            .contains("missing field `keys`"));
    }
}
