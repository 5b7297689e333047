//! The shape of VirtualService rules: one action per rule, no rule hidden behind a
//! catch-all, and weights that can send traffic somewhere.

use super::{checks::*, join_names, report};
use crate::config::{ConfigSet, Diagnostic, HttpMatchRequest, HttpRoute, ResourceMeta};

pub(super) fn check(config: &ConfigSet, out: &mut Vec<Diagnostic>) {
    for vs in &config.virtual_services {
        let meta = &vs.meta;
        for (i, rule) in vs.spec.http.iter().enumerate() {
            actions(meta, &format!("spec.http[{i}]"), rule, out);
            let weights: Vec<Option<i64>> = rule.route.iter().map(|d| d.weight).collect();
            route_weights(meta, &format!("spec.http[{i}].route"), &weights, out);
        }
        for (i, rule) in vs.spec.tcp.iter().enumerate() {
            let at = format!("spec.tcp[{i}].route");
            if rule.route.is_empty() {
                let msg = "this tcp rule has no route, so matching connections are closed: add a route with a destination";
                report(out, &NO_ACTION, meta, &format!("spec.tcp[{i}]"), msg);
            }
            let weights: Vec<Option<i64>> = rule.route.iter().map(|d| d.weight).collect();
            route_weights(meta, &at, &weights, out);
        }
        for (i, rule) in vs.spec.tls.iter().enumerate() {
            if rule.route.is_empty() {
                let msg = "this tls rule has no route, so matching connections are closed: add a route with a destination";
                report(out, &NO_ACTION, meta, &format!("spec.tls[{i}]"), msg);
            }
            let weights: Vec<Option<i64>> = rule.route.iter().map(|d| d.weight).collect();
            route_weights(meta, &format!("spec.tls[{i}].route"), &weights, out);
        }
        let http_catch_all = vs
            .spec
            .http
            .iter()
            .position(|r| r.matches.is_empty() || r.matches.iter().any(matches_everything));
        if let Some(i) = http_catch_all {
            let later: Vec<String> = (i + 1..vs.spec.http.len())
                .map(|j| rule_label("http", j, vs.spec.http[j].name.as_deref()))
                .collect();
            unreachable(meta, "http", i, &later, out);
        }
        let tcp_catch_all = vs.spec.tcp.iter().position(|r| {
            r.matches.is_empty()
                || r.matches.iter().any(|m| {
                    m.destination_subnets.is_empty()
                        && m.port.is_none()
                        && m.source_labels.is_empty()
                        && m.gateways.is_empty()
                        && m.source_namespace.is_none()
                })
        });
        if let Some(i) = tcp_catch_all {
            let later: Vec<String> = (i + 1..vs.spec.tcp.len())
                .map(|j| rule_label("tcp", j, None))
                .collect();
            unreachable(meta, "tcp", i, &later, out);
        }
    }
}

/// `spec.http[2] ("v2")`
fn rule_label(list: &str, i: usize, name: Option<&str>) -> String {
    match name {
        Some(n) => format!("spec.{list}[{i}] {n:?}"),
        None => format!("spec.{list}[{i}]"),
    }
}

fn unreachable(
    meta: &ResourceMeta,
    list: &str,
    i: usize,
    later: &[String],
    out: &mut Vec<Diagnostic>,
) {
    if later.is_empty() {
        return;
    }
    let hidden = if later.len() == 1 {
        "the rule after it never matches".to_string()
    } else {
        format!("the {} rules after it never match", later.len())
    };
    let msg = format!(
        "this rule matches every request, so {hidden} ({}): move this rule last or give it a match",
        join_names(later)
    );
    report(
        out,
        &UNREACHABLE_RULE,
        meta,
        &format!("spec.{list}[{i}]"),
        msg,
    );
}

/// A match entry that holds for every request: no condition at all, or only a
/// `prefix: /` on the path (every path starts with `/`).
fn matches_everything(m: &HttpMatchRequest) -> bool {
    let only_root_prefix = matches!(&m.uri, Some(u) if u.prefix.as_deref() == Some("/") && u.exact.is_none() && u.regex.is_none());
    (m.uri.is_none() || only_root_prefix)
        && m.scheme.is_none()
        && m.method.is_none()
        && m.authority.is_none()
        && m.headers.is_empty()
        && m.port.is_none()
        && m.source_labels.is_empty()
        && m.gateways.is_empty()
        && m.query_params.is_empty()
        && m.without_headers.is_empty()
        && m.source_namespace.is_none()
}

fn actions(meta: &ResourceMeta, at: &str, rule: &HttpRoute, out: &mut Vec<Diagnostic>) {
    let set: Vec<&str> = [
        ("route", !rule.route.is_empty()),
        ("redirect", rule.redirect.is_some()),
        ("directResponse", rule.direct_response.is_some()),
        ("delegate", rule.delegate.is_some()),
    ]
    .into_iter()
    .filter_map(|(name, present)| present.then_some(name))
    .collect();
    if set.is_empty() {
        let msg = "this rule has no action: add a route, redirect, directResponse or delegate";
        report(out, &NO_ACTION, meta, at, msg);
    } else if set.len() > 1 {
        let msg = format!(
            "this rule sets {}, but a rule takes exactly one action: keep one, or split the rule in two",
            join_names(&set)
        );
        report(
            out,
            &CONFLICTING_ACTIONS,
            meta,
            &format!("{at}.{}", set[1]),
            msg,
        );
    }
    if rule.fault.is_some() {
        for (name, present) in [
            ("redirect", rule.redirect.is_some()),
            ("directResponse", rule.direct_response.is_some()),
        ] {
            if present {
                let msg = format!("fault injection cannot be combined with {name}: the fault applies only to routed requests; move the fault to a rule with a route");
                report(out, &INCOMPATIBLE_FIELDS, meta, &format!("{at}.fault"), msg);
            }
        }
    }
    if rule.rewrite.is_some() && rule.redirect.is_some() {
        let msg = "rewrite cannot be combined with redirect: a redirect already sets the new uri and authority; remove rewrite";
        report(
            out,
            &INCOMPATIBLE_FIELDS,
            meta,
            &format!("{at}.rewrite"),
            msg,
        );
    }
}

/// Weights are relative shares. A lone destination without a weight takes everything;
/// otherwise an unset weight counts as 0.
fn route_weights(
    meta: &ResourceMeta,
    at: &str,
    weights: &[Option<i64>],
    out: &mut Vec<Diagnostic>,
) {
    if weights.is_empty() {
        return;
    }
    let mut negative = false;
    for (j, w) in weights.iter().enumerate() {
        if let Some(w) = w.filter(|w| *w < 0) {
            negative = true;
            let msg = format!("weight {w} is negative: weights are shares of traffic, 0 or more");
            report(
                out,
                &NEGATIVE_WEIGHT,
                meta,
                &format!("{at}[{j}].weight"),
                msg,
            );
        }
    }
    if negative || (weights.len() == 1 && weights[0].is_none()) {
        return;
    }
    let total: i64 = weights
        .iter()
        .map(|w| w.unwrap_or(0))
        .fold(0, i64::saturating_add);
    if total == 0 {
        let msg = if weights.len() == 1 {
            "the only destination has weight 0, so no request can be routed: remove the weight or set it above 0".to_string()
        } else {
            format!("the weights of these {} destinations add up to 0, so no request can be routed: give at least one a positive weight", weights.len())
        };
        report(out, &ZERO_TOTAL_WEIGHT, meta, at, msg);
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;

    fn vs(body: &str) -> String {
        format!("{SERVICES}apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: reviews}}\nspec:\n  hosts: [reviews]\n{body}")
    }

    #[test]
    fn weights_total_zero_and_negative() {
        let d = analyze_yaml(&vs("  http:\n  - route:\n    - destination: {host: reviews}\n      weight: 0\n  - route:\n    - destination: {host: reviews}\n    - destination: {host: ratings}\n  - route:\n    - destination: {host: reviews}\n      weight: -10\n    - destination: {host: ratings}\n      weight: 110\n  tcp:\n  - route:\n    - destination: {host: reviews}\n      weight: 0\n    - destination: {host: ratings}\n      weight: 0\n"));
        assert_eq!(
            with_code(&d, "MG0102"),
            [
                "19 spec.http[0].route: the only destination has weight 0, so no request can be routed: remove the weight or set it above 0",
                "22 spec.http[1].route: the weights of these 2 destinations add up to 0, so no request can be routed: give at least one a positive weight",
                "31 spec.tcp[0].route: the weights of these 2 destinations add up to 0, so no request can be routed: give at least one a positive weight",
            ]
        );
        assert_eq!(
            with_code(&d, "MG0103"),
            ["27 spec.http[2].route[0].weight: weight -10 is negative: weights are shares of traffic, 0 or more"]
        );
    }

    #[test]
    fn usual_weights_pass() {
        let d = analyze_yaml(&vs("  http:\n  - route:\n    - destination: {host: reviews}\n  - route:\n    - destination: {host: reviews}\n      weight: 100\n  - route:\n    - destination: {host: reviews}\n      weight: 90\n    - destination: {host: ratings}\n      weight: 0\n"));
        assert!(with_code(&d, "MG0102").is_empty(), "{d:#?}");
        assert!(with_code(&d, "MG0103").is_empty(), "{d:#?}");
    }

    #[test]
    fn catch_all_hides_later_rules() {
        let d = analyze_yaml(&vs("  http:\n  - match: [{headers: {end-user: {exact: jason}}}]\n    route: [{destination: {host: reviews}}]\n  - name: everyone\n    match: [{uri: {exact: /x}}, {name: any}]\n    route: [{destination: {host: reviews}}]\n  - name: v2\n    route: [{destination: {host: ratings}}]\n  - route: [{destination: {host: ratings}}]\n"));
        assert_eq!(
            with_code(&d, "MG0110"),
            ["21 spec.http[1]: this rule matches every request, so the 2 rules after it never match (spec.http[2] \"v2\" and spec.http[3]): move this rule last or give it a match"]
        );
        let d = analyze_yaml(&vs("  http:\n  - fault: {abort: {httpStatus: 500, percentage: {value: 100}}}\n    route: [{destination: {host: reviews}}]\n  - match: [{uri: {prefix: /}}]\n    route: [{destination: {host: ratings}}]\n"));
        assert_eq!(with_code(&d, "MG0110").len(), 1, "{d:#?}");
        let d = analyze_yaml(&vs("  tcp:\n  - route: [{destination: {host: reviews}}]\n  - match: [{port: 27017}]\n    route: [{destination: {host: ratings}}]\n"));
        assert_eq!(
            with_code(&d, "MG0110"),
            ["19 spec.tcp[0]: this rule matches every request, so the rule after it never matches (spec.tcp[1]): move this rule last or give it a match"]
        );
    }

    #[test]
    fn catch_all_last_passes() {
        let d = analyze_yaml(&vs("  http:\n  - match: [{uri: {prefix: /api}}, {method: {exact: POST}}]\n    route: [{destination: {host: reviews}}]\n  - route: [{destination: {host: ratings}}]\n"));
        assert!(with_code(&d, "MG0110").is_empty(), "{d:#?}");
    }

    #[test]
    fn conflicting_incompatible_and_missing_actions() {
        let d = analyze_yaml(&vs("  http:\n  - route: [{destination: {host: reviews}}]\n    redirect: {uri: /new}\n    rewrite: {uri: /x}\n  - directResponse: {status: 503}\n    fault: {abort: {httpStatus: 500}}\n  - name: empty\n    timeout: 1s\n  tls:\n  - match: [{sniHosts: [reviews]}]\n"));
        assert_eq!(
            with_code(&d, "MG0111"),
            ["20 spec.http[0].redirect: this rule sets route and redirect, but a rule takes exactly one action: keep one, or split the rule in two"]
        );
        assert_eq!(
            with_code(&d, "MG0112"),
            [
                "21 spec.http[0].rewrite: rewrite cannot be combined with redirect: a redirect already sets the new uri and authority; remove rewrite",
                "23 spec.http[1].fault: fault injection cannot be combined with directResponse: the fault applies only to routed requests; move the fault to a rule with a route",
            ]
        );
        assert_eq!(
            with_code(&d, "MG0113"),
            [
                "24 spec.http[2]: this rule has no action: add a route, redirect, directResponse or delegate",
                "27 spec.tls[0]: this tls rule has no route, so matching connections are closed: add a route with a destination",
            ]
        );
    }

    #[test]
    fn one_action_each_passes() {
        let d = analyze_yaml(&vs("  http:\n  - match: [{uri: {prefix: /old}}]\n    redirect: {uri: /new}\n  - match: [{uri: {prefix: /down}}]\n    directResponse: {status: 503}\n  - fault: {delay: {fixedDelay: 1s, percentage: {value: 10}}}\n    rewrite: {uri: /}\n    route: [{destination: {host: reviews}}]\n"));
        for code in ["MG0111", "MG0112", "MG0113"] {
            assert!(with_code(&d, code).is_empty(), "{code}: {d:#?}");
        }
    }
}
