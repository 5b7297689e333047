//! Every regex a VirtualService can hold must compile as RE2: a bad one is rejected
//! here with the compiler's reason instead of breaking a route at runtime.

use std::collections::BTreeMap;

use super::{report, INVALID_REGEX};
use crate::config::{ConfigSet, Diagnostic, ResourceMeta, StringMatch};

pub(super) fn check(config: &ConfigSet, out: &mut Vec<Diagnostic>) {
    for vs in &config.virtual_services {
        let meta = &vs.meta;
        for (i, rule) in vs.spec.http.iter().enumerate() {
            let rule_path = format!("spec.http[{i}]");
            for (m, entry) in rule.matches.iter().enumerate() {
                let at = format!("{rule_path}.match[{m}]");
                let single = [
                    ("uri", &entry.uri),
                    ("scheme", &entry.scheme),
                    ("method", &entry.method),
                    ("authority", &entry.authority),
                ];
                for (name, sm) in single {
                    if let Some(sm) = sm {
                        string_match(meta, &format!("{at}.{name}"), sm, out);
                    }
                }
                keyed(meta, &format!("{at}.headers"), &entry.headers, out);
                keyed(meta, &format!("{at}.queryParams"), &entry.query_params, out);
                keyed(
                    meta,
                    &format!("{at}.withoutHeaders"),
                    &entry.without_headers,
                    out,
                );
            }
            if let Some(rr) = rule
                .rewrite
                .as_ref()
                .and_then(|r| r.uri_regex_rewrite.as_ref())
            {
                let field = format!("{rule_path}.rewrite.uriRegexRewrite.match");
                pattern(meta, &field, &rr.pattern, out);
            }
            if let Some(cors) = &rule.cors_policy {
                for (o, sm) in cors.allow_origins.iter().enumerate() {
                    let field = format!("{rule_path}.corsPolicy.allowOrigins[{o}]");
                    string_match(meta, &field, sm, out);
                }
            }
        }
    }
}

fn keyed(
    meta: &ResourceMeta,
    at: &str,
    map: &BTreeMap<String, StringMatch>,
    out: &mut Vec<Diagnostic>,
) {
    for (key, sm) in map {
        string_match(meta, &format!("{at}.{key}"), sm, out);
    }
}

fn string_match(meta: &ResourceMeta, at: &str, sm: &StringMatch, out: &mut Vec<Diagnostic>) {
    if let Some(re) = &sm.regex {
        pattern(meta, &format!("{at}.regex"), re, out);
    }
}

fn pattern(meta: &ResourceMeta, field: &str, re: &str, out: &mut Vec<Diagnostic>) {
    if let Err(why) = compile_check(re) {
        report(out, &INVALID_REGEX, meta, field, why);
    }
}

/// Ok when `re` compiles; otherwise one sentence with the compiler's reason and the fix.
pub fn compile_check(re: &str) -> Result<(), String> {
    if re.is_empty() {
        return Err(
            "the regex is empty: write a pattern, or use prefix/exact to match anything"
                .to_string(),
        );
    }
    match regex::Regex::new(re) {
        Ok(_) => Ok(()),
        Err(e) => Err(format!(
            "regex {re:?} does not compile ({}): write RE2 syntax (no look-around or backreferences; escape literal characters such as ( [ . with \\)",
            reason(&e)
        )),
    }
}

/// The regex crate's multi-line error (pattern, caret, `error: ...`) as one short phrase.
fn reason(e: &regex::Error) -> String {
    let text = e.to_string();
    text.lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("error: "))
        .map(str::to_string)
        .unwrap_or_else(|| text.lines().last().unwrap_or("").trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;

    fn vs(rule: &str) -> String {
        format!("{SERVICES}apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: reviews}}\nspec:\n  hosts: [reviews]\n  http:\n{rule}")
    }

    #[test]
    fn bad_regexes_everywhere_are_reported_with_line_and_reason() {
        let d = analyze_yaml(&vs("  - match:\n    - uri: {regex: \"/api/(v1\"}\n      headers:\n        x-user: {regex: \"[a-\"}\n      queryParams:\n        q: {regex: \"(?<=a)b\"}\n      withoutHeaders:\n        x-debug: {regex: \"\"}\n    rewrite:\n      uriRegexRewrite: {match: \"a{2,1}\", rewrite: /x}\n    corsPolicy:\n      allowOrigins:\n      - regex: \"*.example.com\"\n    route:\n    - destination: {host: reviews}\n"));
        let got = with_code(&d, "MG0101");
        assert_eq!(got.len(), 6, "{got:#?}");
        assert!(got[0].starts_with("20 spec.http[0].match[0].uri.regex: regex \"/api/(v1\" does not compile (unclosed group)"), "{}", got[0]);
        assert!(
            got[1].starts_with("22 spec.http[0].match[0].headers.x-user.regex:"),
            "{}",
            got[1]
        );
        assert!(got[2].contains("look-around"), "{}", got[2]);
        assert!(
            got[3].contains("withoutHeaders.x-debug.regex: the regex is empty"),
            "{}",
            got[3]
        );
        assert!(
            got[4].starts_with("28 spec.http[0].rewrite.uriRegexRewrite.match:"),
            "{}",
            got[4]
        );
        assert!(
            got[5].starts_with("31 spec.http[0].corsPolicy.allowOrigins[0].regex:"),
            "{}",
            got[5]
        );
        assert!(got[5].contains("repetition operator missing expression"));
    }

    #[test]
    fn valid_regexes_pass() {
        let d = analyze_yaml(&vs("  - match:\n    - uri: {regex: \"/api/v[0-9]+/.*\"}\n      method: {regex: \"GET|HEAD\"}\n      authority: {regex: \"(?i)shop\\\\.example\\\\.com\"}\n    rewrite:\n      uriRegexRewrite: {match: \"^/api/(.*)$\", rewrite: \"/\\\\1\"}\n    route:\n    - destination: {host: reviews}\n"));
        assert!(with_code(&d, "MG0101").is_empty(), "{d:#?}");
    }
}
