//! Field values inside VirtualService rules: durations, percentages, status codes,
//! fault injection and retries, each checked against what Istio accepts.

use super::{checks::*, duration, percent, report};
use crate::config::{ConfigSet, Diagnostic, HttpRoute, ResourceMeta};

pub(super) fn check(config: &ConfigSet, out: &mut Vec<Diagnostic>) {
    for vs in &config.virtual_services {
        for (i, rule) in vs.spec.http.iter().enumerate() {
            http_rule(&vs.meta, &format!("spec.http[{i}]"), rule, out);
        }
    }
}

fn http_rule(meta: &ResourceMeta, at: &str, rule: &HttpRoute, out: &mut Vec<Diagnostic>) {
    duration(meta, &format!("{at}.timeout"), rule.timeout.as_deref(), out);
    if let Some(retries) = &rule.retries {
        let per_try = retries.per_try_timeout.as_deref();
        duration(meta, &format!("{at}.retries.perTryTimeout"), per_try, out);
        if retries.attempts < 0 {
            let msg = format!(
                "attempts {} is negative: write 0 to turn retries off, or the number of retries",
                retries.attempts
            );
            report(
                out,
                &NEGATIVE_RETRIES,
                meta,
                &format!("{at}.retries.attempts"),
                msg,
            );
        }
    }
    if let Some(cors) = &rule.cors_policy {
        let max_age = cors.max_age.as_deref();
        duration(meta, &format!("{at}.corsPolicy.maxAge"), max_age, out);
    }
    if let Some(fault) = &rule.fault {
        if let Some(delay) = &fault.delay {
            let f = format!("{at}.fault.delay");
            match &delay.fixed_delay {
                Some(d) => duration(meta, &format!("{f}.fixedDelay"), Some(d), out),
                None => {
                    let msg = "delay without fixedDelay injects nothing: set fixedDelay, e.g. 5s";
                    report(out, &INCOMPLETE_FAULT, meta, &f, msg);
                }
            }
            let p = delay.percentage.map(|p| p.value);
            percent(meta, &format!("{f}.percentage.value"), p, out);
            let old = delay.percent.map(f64::from);
            percent(meta, &format!("{f}.percent"), old, out);
        }
        if let Some(abort) = &fault.abort {
            let f = format!("{at}.fault.abort");
            match (abort.http_status, &abort.grpc_status) {
                (None, None) => {
                    let msg = "abort without httpStatus or grpcStatus injects nothing: set httpStatus (e.g. 503) or grpcStatus (e.g. UNAVAILABLE)";
                    report(out, &INCOMPLETE_FAULT, meta, &f, msg);
                }
                (Some(s), _) if !(200..=599).contains(&s) => {
                    let msg = format!("httpStatus {s} is not an HTTP status: use 200 to 599");
                    report(
                        out,
                        &INCOMPLETE_FAULT,
                        meta,
                        &format!("{f}.httpStatus"),
                        msg,
                    );
                }
                _ => {}
            }
            let p = abort.percentage.map(|p| p.value);
            percent(meta, &format!("{f}.percentage.value"), p, out);
        }
    }
    let mirror_pct = rule.mirror_percentage.map(|p| p.value);
    percent(
        meta,
        &format!("{at}.mirrorPercentage.value"),
        mirror_pct,
        out,
    );
    let old = rule.mirror_percent.map(f64::from);
    percent(meta, &format!("{at}.mirrorPercent"), old, out);
    for (m, mirror) in rule.mirrors.iter().enumerate() {
        let p = mirror.percentage.map(|p| p.value);
        percent(meta, &format!("{at}.mirrors[{m}].percentage.value"), p, out);
    }
    if let Some(code) = rule.redirect.as_ref().and_then(|r| r.redirect_code) {
        if !matches!(code, 301 | 302 | 303 | 307 | 308) {
            let msg = format!(
                "redirectCode {code} is not a redirect status: use 301, 302, 303, 307 or 308"
            );
            report(
                out,
                &INVALID_REDIRECT_CODE,
                meta,
                &format!("{at}.redirect.redirectCode"),
                msg,
            );
        }
    }
    if let Some(dr) = &rule.direct_response {
        if !(200..=599).contains(&dr.status) {
            let msg = format!("status {} is not an HTTP status: use 200 to 599", dr.status);
            report(
                out,
                &INVALID_DIRECT_STATUS,
                meta,
                &format!("{at}.directResponse.status"),
                msg,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;

    fn vs(body: &str) -> String {
        format!("{SERVICES}apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: reviews}}\nspec:\n  hosts: [reviews]\n  http:\n{body}")
    }

    #[test]
    fn bad_values_are_reported() {
        let d = analyze_yaml(&vs("  - timeout: \"10\"\n    retries: {attempts: -1, perTryTimeout: 2 seconds}\n    corsPolicy: {maxAge: 24h}\n    fault:\n      delay: {percentage: {value: 150}}\n      abort: {percentage: {value: -1}}\n    mirrorPercentage: {value: 100.5}\n    route: [{destination: {host: reviews}}]\n  - redirect: {uri: /x, redirectCode: 200}\n  - directResponse: {status: 600}\n  - fault:\n      abort: {httpStatus: 99, percentage: {value: 1}}\n    route: [{destination: {host: reviews}}]\n"));
        assert_eq!(
            with_code(&d, "MG0117"),
            [
                "19 spec.http[0].timeout: invalid duration \"10\": expected a number with a unit, e.g. 500ms, 0.5s, 1m, 1h",
                "20 spec.http[0].retries.perTryTimeout: invalid duration \"2 seconds\": expected a non-negative number before the unit",
            ]
        );
        assert_eq!(
            with_code(&d, "MG0122"),
            ["20 spec.http[0].retries.attempts: attempts -1 is negative: write 0 to turn retries off, or the number of retries"]
        );
        assert_eq!(
            with_code(&d, "MG0118"),
            [
                "23 spec.http[0].fault.delay.percentage.value: 150 is not a percentage: write a number from 0 to 100",
                "24 spec.http[0].fault.abort.percentage.value: -1 is not a percentage: write a number from 0 to 100",
                "25 spec.http[0].mirrorPercentage.value: 100.5 is not a percentage: write a number from 0 to 100",
            ]
        );
        assert_eq!(
            with_code(&d, "MG0121"),
            [
                "23 spec.http[0].fault.delay: delay without fixedDelay injects nothing: set fixedDelay, e.g. 5s",
                "24 spec.http[0].fault.abort: abort without httpStatus or grpcStatus injects nothing: set httpStatus (e.g. 503) or grpcStatus (e.g. UNAVAILABLE)",
                "30 spec.http[3].fault.abort.httpStatus: httpStatus 99 is not an HTTP status: use 200 to 599",
            ]
        );
        assert_eq!(
            with_code(&d, "MG0119"),
            ["27 spec.http[1].redirect.redirectCode: redirectCode 200 is not a redirect status: use 301, 302, 303, 307 or 308"]
        );
        assert_eq!(
            with_code(&d, "MG0120"),
            ["28 spec.http[2].directResponse.status: status 600 is not an HTTP status: use 200 to 599"]
        );
    }

    #[test]
    fn good_values_pass() {
        let d = analyze_yaml(&vs("  - timeout: 0.5s\n    retries: {attempts: 0, perTryTimeout: 100ms}\n    corsPolicy: {maxAge: 24h}\n    fault:\n      delay: {fixedDelay: 7s, percent: 100}\n      abort: {grpcStatus: UNAVAILABLE, percentage: {value: 0.1}}\n    mirrors: [{destination: {host: ratings}, percentage: {value: 100}}]\n    route: [{destination: {host: reviews}}]\n  - redirect: {uri: /x, redirectCode: 308}\n  - directResponse: {status: 200}\n"));
        let bad: Vec<_> = d.iter().filter(|d| d.is_error()).collect();
        assert!(bad.is_empty(), "{bad:#?}");
    }
}
