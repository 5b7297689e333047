//! The analyzer: semantic checks over a loaded ConfigSet (what `meshgate analyze`
//! reports), each with a stable code, the resource, the field's file:line and what to
//! change. Works on any ConfigSet, even one that would not compile into a snapshot.

mod binding;
mod checks;
mod destinations;
mod gateways;
mod policies;
mod regexes;
mod rules;
mod values;

pub use binding::resolve_gateway;
pub use checks::*;
pub use gateways::{PROTOCOLS, SERVER_TLS_MODES};
pub use policies::{CLIENT_TLS_MODES, LOAD_BALANCERS, MTLS_MODES};
pub use regexes::compile_check;

use super::{ConfigSet, Diagnostic, Origin, ResourceMeta};

/// Runs every check over `config`. Messages come sorted by file, line and column.
pub fn analyze(config: &ConfigSet) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    regexes::check(config, &mut out);
    rules::check(config, &mut out);
    values::check(config, &mut out);
    destinations::check(config, &mut out);
    binding::check(config, &mut out);
    gateways::check(config, &mut out);
    policies::check(config, &mut out);
    sort_diagnostics(&mut out);
    out
}

/// Orders messages by where they were written (messages without a place first), then
/// by code, so output is stable whatever order the checks ran in.
pub fn sort_diagnostics(diags: &mut [Diagnostic]) {
    diags.sort_by(|a, b| {
        let key = |d: &Diagnostic| {
            d.origin
                .as_ref()
                .map(|o| (o.file.as_ref().clone(), o.line, o.column))
        };
        key(a).cmp(&key(b)).then_with(|| a.code.cmp(b.code))
    });
}

/// Adds one message about `field` of the resource `meta` to `out`.
fn report(
    out: &mut Vec<Diagnostic>,
    check: &Check,
    meta: &ResourceMeta,
    field: &str,
    message: impl Into<String>,
) {
    out.push(
        Diagnostic::new(check.code, check.severity, message)
            .at(locate(meta, field))
            .resource(meta.display_name())
            .field(field),
    );
}

/// Where `path` (written with Istio's camelCase names) is in the file: the exact field,
/// else its snake_case spelling (accepted by the loader), else the nearest ancestor.
fn locate(meta: &ResourceMeta, path: &str) -> Origin {
    let exact = |p: &str| {
        let entries = &meta.fields.entries;
        entries
            .binary_search_by(|(k, _, _)| k.as_str().cmp(p))
            .ok()
            .map(|i| Origin {
                file: meta.fields.file.clone(),
                line: entries[i].1,
                column: entries[i].2,
            })
    };
    exact(path)
        .or_else(|| exact(&snake_case(path)))
        .unwrap_or_else(|| meta.locate(path))
}

/// `spec.http[0].directResponse.status` → `spec.http[0].direct_response.status`.
fn snake_case(path: &str) -> String {
    let mut s = String::with_capacity(path.len() + 8);
    for c in path.chars() {
        if c.is_ascii_uppercase() {
            s.push('_');
            s.push(c.to_ascii_lowercase());
        } else {
            s.push(c);
        }
    }
    s
}

/// Reports `value` at `field` when it is set and not an Istio duration.
fn duration(meta: &ResourceMeta, field: &str, value: Option<&str>, out: &mut Vec<Diagnostic>) {
    if let Some(text) = value {
        if let Err(why) = super::parse_duration(text) {
            report(out, &INVALID_DURATION, meta, field, why);
        }
    }
}

/// Reports a percentage outside 0..=100 (NaN included).
fn percent(meta: &ResourceMeta, field: &str, value: Option<f64>, out: &mut Vec<Diagnostic>) {
    if let Some(v) = value {
        if !(0.0..=100.0).contains(&v) {
            report(
                out,
                &PERCENT_OUT_OF_RANGE,
                meta,
                field,
                format!("{v} is not a percentage: write a number from 0 to 100"),
            );
        }
    }
}

/// Reports `value` when set and not one of `allowed` (Istio enums are upper-case and
/// case-sensitive); true when it is absent or allowed.
fn enum_value(
    check: &Check,
    meta: &ResourceMeta,
    field: &str,
    value: Option<&str>,
    allowed: &[&str],
    out: &mut Vec<Diagnostic>,
) -> bool {
    let Some(v) = value else { return true };
    if allowed.contains(&v) {
        return true;
    }
    let what = match field.rsplit('.').next() {
        Some("simple") => "load balancer",
        Some(last) => last,
        None => field,
    };
    let msg = match allowed.iter().find(|a| a.eq_ignore_ascii_case(v.trim())) {
        Some(a) => format!("unknown {what} {v:?}: use {a} (values are upper-case)"),
        None => format!("unknown {what} {v:?}: use one of {}", or_names(allowed)),
    };
    report(out, check, meta, field, msg);
    false
}

/// `a, b or c`.
fn or_names(names: &[&str]) -> String {
    match names {
        [init @ .., last] if !init.is_empty() => format!("{} or {last}", init.join(", ")),
        _ => names.join(""),
    }
}

/// `a`, `a and b`, `a, b and c`.
fn join_names<S: AsRef<str>>(names: &[S]) -> String {
    match names {
        [] => String::new(),
        [one] => one.as_ref().to_string(),
        [init @ .., last] => format!(
            "{} and {}",
            init.iter()
                .map(|s| s.as_ref())
                .collect::<Vec<_>>()
                .join(", "),
            last.as_ref()
        ),
    }
}

#[cfg(test)]
pub(crate) mod testutil {
    use std::path::Path;

    use crate::config::load::{load_str, Loaded};
    use crate::config::Diagnostic;

    /// Loads `text` as `test.yaml` and analyzes it; loader errors fail the test so a
    /// typo in a test's YAML cannot pass silently.
    pub fn analyze_yaml(text: &str) -> Vec<Diagnostic> {
        let mut out = Loaded::default();
        load_str(text, Path::new("test.yaml"), &mut out);
        let errors: Vec<_> = out.errors().map(|d| d.to_string()).collect();
        assert!(errors.is_empty(), "test YAML does not load: {errors:?}");
        super::analyze(&out.config)
    }

    /// The messages with `code`, as `line field: message`.
    pub fn with_code(diags: &[Diagnostic], code: &str) -> Vec<String> {
        diags
            .iter()
            .filter(|d| d.code == code)
            .map(|d| {
                format!(
                    "{} {}: {}",
                    d.origin.as_ref().map(|o| o.line).unwrap_or(0),
                    d.field.as_deref().unwrap_or(""),
                    d.message
                )
            })
            .collect()
    }

    pub const SERVICES: &str = "apiVersion: v1\nkind: Service\nmetadata: {name: reviews}\nspec:\n  ports: [{port: 9080, name: http}]\n---\napiVersion: v1\nkind: Service\nmetadata: {name: ratings}\nspec:\n  ports: [{port: 9080, name: http}]\n---\n";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_names_like_a_sentence() {
        assert_eq!(join_names::<&str>(&[]), "");
        assert_eq!(join_names(&["a"]), "a");
        assert_eq!(join_names(&["a", "b"]), "a and b");
        assert_eq!(join_names(&["a", "b", "c"]), "a, b and c");
        assert_eq!(
            snake_case("spec.http[0].directResponse"),
            "spec.http[0].direct_response"
        );
    }
}
