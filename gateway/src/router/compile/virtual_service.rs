//! VirtualServices: hosts expanded in their namespace, gateways normalized, rules
//! compiled, delegates (one level) inlined with the parent's match AND'ed in.
//! A VirtualService with any bad rule is rejected whole, alone.

use std::collections::HashMap;
use std::sync::Arc;

use super::cluster::TargetReq;
use super::http::{http_rule, RuleCx, RuleDraft};
use super::l4::{tcp_rule, tls_rule, Narrowed};
use super::matcher::{gateway_ref, merge_delegate, RegexCache};
use super::services::Services;
use super::{problem, Checked, CODE_DELEGATE, CODE_INVALID};
use crate::config::hosts::expand_host;
use crate::config::*;
use crate::router::snapshot::{HttpRule, TcpRule, TlsRule};

pub(super) struct CompiledVs<'c> {
    pub res: &'c Res<VirtualServiceSpec>,
    /// `ns/name`
    pub name: String,
    pub hosts: Vec<String>,
    /// `ns/name` or `mesh`.
    pub gateways: Vec<String>,
    pub http: Vec<Arc<HttpRule>>,
    pub tcp: Vec<Narrowed<TcpRule>>,
    pub tls: Vec<Narrowed<TlsRule>>,
    pub targets: Vec<TargetReq>,
}

impl CompiledVs<'_> {
    pub fn namespace(&self) -> &str {
        &self.res.meta.namespace
    }
}

struct Draft<'c> {
    vs: CompiledVs<'c>,
    drafts: Vec<RuleDraft>,
    warnings: Vec<super::Problem>,
}

fn draft<'c>(
    res: &'c Res<VirtualServiceSpec>,
    services: &Services,
    regexes: &mut RegexCache,
) -> Checked<Draft<'c>> {
    let meta = &res.meta;
    let ns = meta.namespace.as_str();
    let mut hosts = Vec::new();
    for (i, h) in res.spec.hosts.iter().enumerate() {
        if h.trim().is_empty() {
            return Err(problem(
                CODE_INVALID,
                format!("spec.hosts[{i}]"),
                "a host cannot be empty",
            ));
        }
        hosts.push(expand_host(h, ns));
    }
    let gateways = if res.spec.gateways.is_empty() {
        vec!["mesh".to_string()]
    } else {
        res.spec
            .gateways
            .iter()
            .map(|g| gateway_ref(g, ns))
            .collect()
    };
    let mut cx = RuleCx {
        services,
        regexes,
        targets: Vec::new(),
        warnings: Vec::new(),
    };
    let mut drafts = Vec::new();
    for (i, r) in res.spec.http.iter().enumerate() {
        drafts.push(http_rule(r, i, meta, &mut cx)?);
    }
    let mut tcp = Vec::new();
    for (i, r) in res.spec.tcp.iter().enumerate() {
        tcp.push(tcp_rule(r, i, meta, &mut cx)?);
    }
    let mut tls = Vec::new();
    for (i, r) in res.spec.tls.iter().enumerate() {
        tls.push(tls_rule(r, i, meta, &mut cx)?);
    }
    Ok(Draft {
        vs: CompiledVs {
            res,
            name: format!("{ns}/{}", meta.name),
            hosts,
            gateways,
            http: Vec::new(),
            tcp,
            tls,
            targets: cx.targets,
        },
        drafts,
        warnings: cx.warnings,
    })
}

/// Compiles every VirtualService; rejected ones are reported in `diags` and left out.
pub(super) fn compile_all<'c>(
    config: &'c ConfigSet,
    services: &Services,
    regexes: &mut RegexCache,
    diags: &mut Vec<Diagnostic>,
) -> Vec<CompiledVs<'c>> {
    let mut drafts = Vec::new();
    for res in &config.virtual_services {
        match draft(res, services, regexes) {
            Ok(d) => drafts.push(d),
            Err(p) => diags.push(p.diagnostic(&res.meta, Severity::Error)),
        }
    }
    // Delegates first: VirtualServices without hosts, whose rules parents inline.
    let mut delegates: HashMap<String, Vec<Arc<HttpRule>>> = HashMap::new();
    let mut out = Vec::new();
    let (children, parents): (Vec<_>, Vec<_>) =
        drafts.into_iter().partition(|d| d.vs.hosts.is_empty());
    for mut d in children {
        let mut rules = Vec::new();
        let mut nested = None;
        for rd in d.drafts.drain(..) {
            match rd {
                RuleDraft::Rule(r) => rules.push(Arc::new(r)),
                RuleDraft::Delegate { index, .. } => nested = Some(index),
            }
        }
        if let Some(i) = nested {
            let p = problem(
                CODE_DELEGATE,
                format!("spec.http[{i}].delegate"),
                "a delegate VirtualService cannot delegate again (one level only)",
            );
            diags.push(p.diagnostic(&d.vs.res.meta, Severity::Error));
            continue;
        }
        delegates.insert(d.vs.name.clone(), rules.clone());
        d.vs.http = rules;
        emit_warnings(&d, diags);
        out.push(d.vs);
    }
    for mut d in parents {
        for rd in std::mem::take(&mut d.drafts) {
            match rd {
                RuleDraft::Rule(r) => d.vs.http.push(Arc::new(r)),
                RuleDraft::Delegate {
                    index,
                    matches,
                    target,
                } => match delegates.get(&target) {
                    Some(child) => {
                        d.vs.http
                            .extend(inline(&d.vs.name, index, &matches, &target, child))
                    }
                    None => {
                        let why = if config.virtual_services.iter().any(|v| {
                            format!("{}/{}", v.meta.namespace, v.meta.name) == target
                                && !v.spec.hosts.is_empty()
                        }) {
                            format!("delegate {target} has hosts: a delegate VirtualService must have none; rule skipped")
                        } else {
                            format!("delegate {target} is not a valid VirtualService here; rule skipped")
                        };
                        d.warnings.push(problem(
                            CODE_DELEGATE,
                            format!("spec.http[{index}].delegate"),
                            why,
                        ));
                    }
                },
            }
        }
        emit_warnings(&d, diags);
        out.push(d.vs);
    }
    out
}

fn emit_warnings(d: &Draft<'_>, diags: &mut Vec<Diagnostic>) {
    for w in &d.warnings {
        diags.push(w.clone().diagnostic(&d.vs.res.meta, Severity::Warning));
    }
}

/// The delegate's rules in the parent's place: each child match entry AND'ed with
/// each parent entry; a child rule none of whose entries can hold is left out.
fn inline(
    parent: &str,
    index: usize,
    parent_matches: &[crate::router::snapshot::RequestMatch],
    child_name: &str,
    child: &[Arc<HttpRule>],
) -> Vec<Arc<HttpRule>> {
    let mut out = Vec::new();
    for (j, rule) in child.iter().enumerate() {
        let matches = match (parent_matches.is_empty(), rule.matches.is_empty()) {
            (true, _) => rule.matches.clone(),
            (false, true) => parent_matches.to_vec(),
            (false, false) => {
                let merged: Vec<_> = parent_matches
                    .iter()
                    .flat_map(|p| {
                        rule.matches
                            .iter()
                            .filter_map(move |c| merge_delegate(p, c))
                    })
                    .collect();
                if merged.is_empty() {
                    continue;
                }
                merged
            }
        };
        out.push(Arc::new(HttpRule {
            virtual_service: parent.to_string(),
            index: format!("{index}/{j}"),
            name: rule.name.clone(),
            matches,
            action: rule.action.clone(),
            origin: rule.origin.clone(),
            delegate: Some(child_name.to_string()),
        }));
    }
    out
}
