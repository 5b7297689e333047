//! Process logging: proxy and plugin events to stderr at the level the operator asks for.

use std::str::FromStr;

use anyhow::{bail, Context};
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::prelude::*;

/// Istio's proxies log at `warning` unless told otherwise (`--proxyLogLevel`).
pub const DEFAULT_LEVEL: &str = "warn";

/// Where a filter can come from, most specific first: `--log-level`, `MESHGATE_LOG`,
/// `RUST_LOG`. The syntax is `LEVEL` or `LEVEL,target=LEVEL,...`, e.g.
/// `warn,meshgate::wasm=debug` (levels: off, error, warn, info, debug, trace).
pub fn filter_spec(flag: Option<&str>) -> String {
    flag.map(str::to_string)
        .or_else(|| std::env::var("MESHGATE_LOG").ok())
        .or_else(|| std::env::var("RUST_LOG").ok())
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_LEVEL.to_string())
}

/// Parses a filter spec; Envoy's `warning` and `critical` are accepted as aliases.
pub fn parse_filter(spec: &str) -> anyhow::Result<Targets> {
    let normalized: Vec<String> = spec
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(|d| match d.rsplit_once('=') {
            Some((target, level)) => format!("{target}={}", envoy_alias(level)),
            None => envoy_alias(d).to_string(),
        })
        .collect();
    if normalized.is_empty() {
        bail!("empty log filter");
    }
    let expected = || {
        format!("log filter {spec:?}: expected LEVEL or LEVEL,target=LEVEL (levels: off, error, warn, info, debug, trace)")
    };
    // `Targets` reads a bare word as a target enabled at every level; here a bare
    // word must be a level (a typo should not turn on trace logging).
    for d in normalized.iter().filter(|d| !d.contains('=')) {
        if LevelFilter::from_str(d).is_err() {
            bail!("{}: {d:?} is not a level", expected());
        }
    }
    Targets::from_str(&normalized.join(",")).with_context(expected)
}

fn envoy_alias(level: &str) -> &str {
    match level {
        "warning" => "warn",
        "critical" => "error",
        other => other,
    }
}

/// Installs the stderr logger for this process. Called once, before any role starts.
pub fn init(flag: Option<&str>) -> anyhow::Result<()> {
    let filter = parse_filter(&filter_spec(flag))?;
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(true);
    // A second init (tests calling into the CLI) keeps the first subscriber.
    let _ = tracing_subscriber::registry()
        .with(layer.with_filter(filter))
        .try_init();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::Level;

    #[test]
    fn levels_and_targets_parse() {
        let f = parse_filter("warning,meshgate::wasm=debug").expect("valid filter");
        assert!(f.would_enable("meshgate::wasm::plugin", &Level::DEBUG));
        assert!(!f.would_enable("meshgate::proxy", &Level::INFO));
        assert!(f.would_enable("meshgate::proxy", &Level::WARN));
    }

    #[test]
    fn bad_level_is_a_clear_error() {
        let e = parse_filter("loud").expect_err("not a level");
        assert!(format!("{e:#}").contains("log filter \"loud\""), "{e:#}");
    }
}
