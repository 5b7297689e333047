//! Istio durations (`1h`, `1m`, `1s`, `500ms`, `0.5s`, `1.5h`; protobuf JSON style),
//! minimum 1ms, as the API documents.

use std::time::Duration;

/// Parses an Istio duration; the error says what was expected.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (num, unit_secs) = if let Some(n) = t.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = t.strip_suffix("us").or_else(|| t.strip_suffix("µs")) {
        (n, 0.000_001)
    } else if let Some(n) = t.strip_suffix("ns") {
        (n, 0.000_000_001)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60.0)
    } else if let Some(n) = t.strip_suffix('h') {
        (n, 3600.0)
    } else {
        return Err(format!(
            "invalid duration {text:?}: expected a number with a unit, e.g. 500ms, 0.5s, 1m, 1h"
        ));
    };
    let value: f64 = num
        .parse()
        .ok()
        .filter(|v: &f64| v.is_finite() && *v >= 0.0 && !num.starts_with('+'))
        .ok_or_else(|| {
            format!("invalid duration {text:?}: expected a non-negative number before the unit")
        })?;
    let secs = value * unit_secs;
    if secs > 0.0 && secs < 0.001 {
        return Err(format!("invalid duration {text:?}: the minimum is 1ms"));
    }
    if secs > 315_576_000_000.0 {
        return Err(format!("invalid duration {text:?}: too large"));
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn istio_forms() {
        assert_eq!(parse_duration("0.5s"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn rejects_with_reason() {
        assert!(parse_duration("10")
            .expect_err("rejected")
            .contains("with a unit"));
        assert!(parse_duration("abc s").is_err());
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("100us")
            .expect_err("rejected")
            .contains("minimum is 1ms"));
    }
}
