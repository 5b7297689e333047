//! One `http[]` entry of a VirtualService → an HttpRule: its match entries and
//! exactly one action (route, redirect, direct response) or a delegate reference.

use super::cluster::{resolve_target, RouteKind, Target, TargetReq};
use super::matcher::{request_match, RegexCache};
use super::services::Services;
use super::{problem, rule_parts, Checked, Problem, CODE_INVALID, CODE_WEIGHT};
use crate::config::hosts::expand_host;
use crate::config::{Destination, HttpRoute, ResourceMeta};
use crate::router::snapshot::*;

/// What compiling one VirtualService needs and collects besides its rules.
pub(super) struct RuleCx<'a> {
    pub services: &'a Services,
    pub regexes: &'a mut RegexCache,
    /// Destinations to build clusters for once the VirtualService is accepted.
    pub targets: Vec<TargetReq>,
    /// Said about the VirtualService only if it is accepted.
    pub warnings: Vec<Problem>,
}

#[allow(clippy::large_enum_variant)] // short-lived, compile time only
pub(super) enum RuleDraft {
    Rule(HttpRule),
    /// `delegate`: replaced by the delegate's rules, with these match entries AND'ed in.
    Delegate {
        index: usize,
        matches: Vec<RequestMatch>,
        target: String,
    },
}

impl RuleCx<'_> {
    pub fn destination(
        &mut self,
        d: &Destination,
        ns: &str,
        at: &str,
        kind: RouteKind,
    ) -> Checked<Target> {
        if d.host.trim().is_empty() {
            return Err(problem(
                CODE_INVALID,
                format!("{at}.host"),
                "destination host is required",
            ));
        }
        let host = expand_host(&d.host, ns);
        let port = d.port.as_ref().map(|p| p.number).filter(|n| *n != 0);
        if port.is_some_and(|p| p > 65535) {
            return Err(problem(
                CODE_INVALID,
                format!("{at}.port.number"),
                "port is outside 1-65535",
            ));
        }
        let (target, warning) =
            resolve_target(self.services, &host, port, d.subset.as_deref(), kind);
        if let Some((code, msg)) = warning {
            self.warnings.push(problem(code, at, msg));
        }
        self.targets.push(TargetReq {
            target: target.clone(),
            field: at.to_string(),
        });
        Ok(target)
    }

    /// Weighted destinations: one destination without weight takes everything; the
    /// weights are relative shares and must not add up to 0.
    pub fn weighted<'d>(
        &mut self,
        dests: impl ExactSizeIterator<
            Item = (
                &'d Destination,
                Option<i64>,
                Option<&'d Option<crate::config::Headers>>,
            ),
        >,
        ns: &str,
        at: &str,
        kind: RouteKind,
    ) -> Checked<(Vec<WeightedDestination>, u32)> {
        let single = dests.len() == 1;
        let mut out = Vec::new();
        let mut total: u32 = 0;
        for (j, (d, weight, headers)) in dests.enumerate() {
            let here = format!("{at}[{j}]");
            let weight = match weight {
                None if single => 100,
                None => 0,
                Some(w) => u32::try_from(w).map_err(|_| {
                    problem(
                        CODE_WEIGHT,
                        format!("{here}.weight"),
                        format!("weight {w} must be between 0 and {}", u32::MAX),
                    )
                })?,
            };
            total = total.checked_add(weight).ok_or_else(|| {
                problem(
                    CODE_WEIGHT,
                    format!("{here}.weight"),
                    "weights add up to more than 2^32",
                )
            })?;
            let target = self.destination(d, ns, &format!("{here}.destination"), kind)?;
            out.push(WeightedDestination {
                cluster: target.name,
                host: target.host,
                subset: target.subset,
                port: Some(target.port),
                weight,
                headers: match headers {
                    Some(h) => rule_parts::headers(h, &format!("{here}.headers"))?,
                    None => HeaderOps::default(),
                },
            });
        }
        if out.is_empty() {
            return Err(problem(
                CODE_INVALID,
                at,
                "a route needs at least one destination",
            ));
        }
        if total == 0 {
            return Err(problem(
                CODE_WEIGHT,
                at,
                "route weights add up to 0: give at least one destination a weight",
            ));
        }
        Ok((out, total))
    }
}

pub(super) fn http_rule(
    r: &HttpRoute,
    i: usize,
    meta: &ResourceMeta,
    cx: &mut RuleCx<'_>,
) -> Checked<RuleDraft> {
    let ns = meta.namespace.as_str();
    let at = format!("spec.http[{i}]");
    let f = |s: &str| format!("{at}.{s}");
    let mut matches = Vec::new();
    for (j, m) in r.matches.iter().enumerate() {
        matches.push(request_match(
            m,
            &f(&format!("match[{j}]")),
            ns,
            cx.regexes,
        )?);
    }
    let actions = [
        !r.route.is_empty(),
        r.redirect.is_some(),
        r.direct_response.is_some(),
        r.delegate.is_some(),
    ];
    match actions.iter().filter(|a| **a).count() {
        1 => {}
        0 => {
            return Err(problem(
                CODE_INVALID,
                at,
                "a rule needs one of route, redirect, directResponse, delegate",
            ))
        }
        _ => {
            return Err(problem(
                CODE_INVALID,
                at,
                "a rule takes only one of route, redirect, directResponse, delegate",
            ))
        }
    }
    if r.fault.is_some() && (r.redirect.is_some() || r.direct_response.is_some()) {
        return Err(problem(
            CODE_INVALID,
            f("fault"),
            "fault cannot be combined with redirect or directResponse",
        ));
    }
    if r.rewrite.is_some() && r.redirect.is_some() {
        return Err(problem(
            CODE_INVALID,
            f("rewrite"),
            "rewrite cannot be combined with redirect",
        ));
    }
    if let Some(d) = &r.delegate {
        let target = format!("{}/{}", d.namespace.as_deref().unwrap_or(ns), d.name);
        return Ok(RuleDraft::Delegate {
            index: i,
            matches,
            target,
        });
    }
    let action = if let Some(rd) = &r.redirect {
        RuleAction::Redirect(rule_parts::redirect(rd, &f("redirect"))?)
    } else if let Some(dr) = &r.direct_response {
        RuleAction::DirectResponse(rule_parts::direct_response(dr, &f("directResponse"))?)
    } else {
        RuleAction::Route(route_action(r, ns, &at, cx)?)
    };
    Ok(RuleDraft::Rule(HttpRule {
        virtual_service: format!("{ns}/{}", meta.name),
        index: i.to_string(),
        name: r.name.clone(),
        matches,
        action,
        origin: meta.locate(&at),
        delegate: None,
    }))
}

fn route_action(r: &HttpRoute, ns: &str, at: &str, cx: &mut RuleCx<'_>) -> Checked<RouteAction> {
    let f = |s: &str| format!("{at}.{s}");
    let dests = r
        .route
        .iter()
        .map(|d| (&d.destination, d.weight, Some(&d.headers)));
    let (destinations, total_weight) = cx.weighted(dests, ns, &f("route"), RouteKind::Http)?;
    let timeout = match &r.timeout {
        // `0s` turns the route timeout off, as in Envoy.
        Some(t) => Some(rule_parts::duration(t, &f("timeout"))?).filter(|d| !d.is_zero()),
        None => None,
    };
    let mut mirrors = Vec::new();
    if let Some(m) = &r.mirror {
        let fraction = match (r.mirror_percentage, r.mirror_percent) {
            (Some(p), _) => p.value,
            (None, Some(p)) => f64::from(p),
            (None, None) => 100.0,
        };
        mirrors.push(mirror(m, fraction, ns, &f("mirror"), cx)?);
    }
    for (j, m) in r.mirrors.iter().enumerate() {
        let fraction = m.percentage.map(|p| p.value).unwrap_or(100.0);
        mirrors.push(mirror(
            &m.destination,
            fraction,
            ns,
            &f(&format!("mirrors[{j}].destination")),
            cx,
        )?);
    }
    Ok(RouteAction {
        destinations,
        total_weight,
        rewrite: r
            .rewrite
            .as_ref()
            .map(|rw| rule_parts::rewrite(rw, &f("rewrite"), cx.regexes))
            .transpose()?,
        timeout,
        retries: match &r.retries {
            Some(rt) => rule_parts::retries(rt, &f("retries"))?,
            None => RetryPolicy::default(),
        },
        fault: r
            .fault
            .as_ref()
            .map(|ft| rule_parts::fault(ft, &f("fault")))
            .transpose()?,
        mirrors,
        cors: r
            .cors_policy
            .as_ref()
            .map(|c| rule_parts::cors(c, &f("corsPolicy"), cx.regexes))
            .transpose()?,
        headers: rule_parts::headers(&r.headers, &f("headers"))?,
    })
}

fn mirror(
    d: &Destination,
    percent: f64,
    ns: &str,
    at: &str,
    cx: &mut RuleCx<'_>,
) -> Checked<Mirror> {
    if !(0.0..=100.0).contains(&percent) {
        return Err(problem(
            CODE_INVALID,
            at,
            format!("mirror percentage {percent} is outside 0-100"),
        ));
    }
    let t = cx.destination(d, ns, at, RouteKind::Http)?;
    Ok(Mirror {
        cluster: t.name,
        host: t.host,
        fraction: percent / 100.0,
    })
}
