//! Where routes send traffic: every destination host should be a known service and
//! every subset defined by a DestinationRule, or the proxy answers 503 (UH / NC).

use std::collections::{BTreeSet, HashMap};

use super::{checks::*, join_names, report};
use crate::config::hosts::{expand_host, wildcard_matches};
use crate::config::{ConfigSet, Destination, DestinationRuleSpec, Diagnostic, Res, ResourceMeta};

pub(super) fn check(config: &ConfigSet, out: &mut Vec<Diagnostic>) {
    let known = KnownHosts::new(config);
    let rules = RuleIndex::new(config);
    for vs in &config.virtual_services {
        let meta = &vs.meta;
        let mut dests: Vec<(String, &Destination)> = Vec::new();
        for (i, rule) in vs.spec.http.iter().enumerate() {
            for (j, r) in rule.route.iter().enumerate() {
                dests.push((
                    format!("spec.http[{i}].route[{j}].destination"),
                    &r.destination,
                ));
            }
            if let Some(m) = &rule.mirror {
                dests.push((format!("spec.http[{i}].mirror"), m));
            }
            for (j, m) in rule.mirrors.iter().enumerate() {
                dests.push((
                    format!("spec.http[{i}].mirrors[{j}].destination"),
                    &m.destination,
                ));
            }
        }
        for (i, rule) in vs.spec.tcp.iter().enumerate() {
            for (j, r) in rule.route.iter().enumerate() {
                dests.push((
                    format!("spec.tcp[{i}].route[{j}].destination"),
                    &r.destination,
                ));
            }
        }
        for (i, rule) in vs.spec.tls.iter().enumerate() {
            for (j, r) in rule.route.iter().enumerate() {
                dests.push((
                    format!("spec.tls[{i}].route[{j}].destination"),
                    &r.destination,
                ));
            }
        }
        for (at, dest) in dests {
            destination(&rules, &known, meta, &at, dest, out);
        }
    }
}

fn destination(
    index: &RuleIndex,
    known: &KnownHosts,
    meta: &ResourceMeta,
    at: &str,
    dest: &Destination,
    out: &mut Vec<Diagnostic>,
) {
    if dest.host.trim().is_empty() {
        let msg = "this destination has no host: name the service, e.g. reviews or reviews.prod.svc.cluster.local";
        report(
            out,
            &DESTINATION_WITHOUT_HOST,
            meta,
            &format!("{at}.host"),
            msg,
        );
        return;
    }
    let host = expand_host(&dest.host, &meta.namespace);
    if !host.starts_with('*') && !known.contains(&host) {
        let msg = format!("no ServiceEntry or Service defines host {host}: requests will get 503 UH; add a Service or ServiceEntry for it, or correct the host");
        report(out, &UNKNOWN_HOST, meta, &format!("{at}.host"), msg);
    }
    let Some(subset) = dest.subset.as_deref().filter(|s| !s.is_empty()) else {
        return;
    };
    let rules = index.for_host(&host);
    let defined = rules
        .iter()
        .any(|r| r.spec.subsets.iter().any(|s| s.name == subset));
    if defined {
        return;
    }
    let known_subsets = match rules.as_slice() {
        [] => "no DestinationRule for that host defines subsets".to_string(),
        _ => rules
            .iter()
            .map(|r| {
                let names: Vec<&str> = r.spec.subsets.iter().map(|s| s.name.as_str()).collect();
                let what = if names.is_empty() {
                    "no subsets".to_string()
                } else {
                    join_names(&names)
                };
                format!(
                    "DestinationRule {}/{} defines {what}",
                    r.meta.namespace, r.meta.name
                )
            })
            .fold(Vec::<String>::new(), |mut seen, s| {
                if !seen.contains(&s) {
                    seen.push(s);
                }
                seen
            })
            .join("; "),
    };
    let fix = match rules.first() {
        Some(r) => format!(
            "add subset {subset} to DestinationRule {}/{}",
            r.meta.namespace, r.meta.name
        ),
        None => format!("add a DestinationRule for host {host} with subset {subset}"),
    };
    let msg = format!(
        "subset {subset:?} of host {host} is not defined ({known_subsets}), so Istio answers 503 NC on this route: {fix} or route to an existing subset"
    );
    report(out, &UNKNOWN_SUBSET, meta, &format!("{at}.subset"), msg);
}

/// DestinationRules by the host they apply to, built once per analysis so lookups
/// stay cheap with thousands of rules.
struct RuleIndex<'a> {
    exact: HashMap<String, Vec<&'a Res<DestinationRuleSpec>>>,
    wildcards: Vec<(String, &'a Res<DestinationRuleSpec>)>,
}

impl<'a> RuleIndex<'a> {
    fn new(config: &'a ConfigSet) -> Self {
        let mut exact: HashMap<String, Vec<_>> = HashMap::new();
        let mut wildcards = Vec::new();
        for r in config
            .destination_rules
            .iter()
            .filter(|r| !r.spec.host.is_empty())
        {
            let host = expand_host(&r.spec.host, &r.meta.namespace);
            if host.starts_with('*') {
                wildcards.push((host, r));
            } else {
                exact.entry(host).or_default().push(r);
            }
        }
        RuleIndex { exact, wildcards }
    }

    /// The rules that apply to `host`, as Istio picks them: those naming it exactly,
    /// else those with the most specific wildcard covering it.
    fn for_host(&self, host: &str) -> Vec<&'a Res<DestinationRuleSpec>> {
        if let Some(rules) = self.exact.get(host) {
            return rules.clone();
        }
        let covering: Vec<_> = self
            .wildcards
            .iter()
            .filter(|(w, _)| wildcard_matches(w, host))
            .collect();
        let longest = covering.iter().map(|(w, _)| w.len()).max().unwrap_or(0);
        covering
            .into_iter()
            .filter(|(w, _)| w.len() == longest)
            .map(|(_, r)| *r)
            .collect()
    }
}

/// Hosts that have endpoints somewhere in the config: Services, Endpoints and
/// ServiceEntries (whose hosts may be wildcards).
struct KnownHosts {
    exact: BTreeSet<String>,
    wildcards: Vec<String>,
}

impl KnownHosts {
    fn new(config: &ConfigSet) -> Self {
        let mut exact = BTreeSet::new();
        let mut wildcards = Vec::new();
        let kube = |m: &ResourceMeta| expand_host(&m.name, &m.namespace);
        exact.extend(config.services.iter().map(|s| kube(&s.meta)));
        exact.extend(config.endpoints.iter().map(|e| kube(&e.meta)));
        for se in &config.service_entries {
            for h in &se.spec.hosts {
                let raw = h.trim().to_ascii_lowercase();
                if raw.starts_with('*') {
                    wildcards.push(raw);
                } else {
                    exact.insert(expand_host(&raw, &se.meta.namespace));
                    exact.insert(raw);
                }
            }
        }
        KnownHosts { exact, wildcards }
    }

    fn contains(&self, host: &str) -> bool {
        self.exact.contains(host) || self.wildcards.iter().any(|w| wildcard_matches(w, host))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;

    const DR: &str = "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: reviews}\nspec:\n  host: reviews\n  subsets:\n  - {name: v1, labels: {version: v1}}\n  - {name: v2, labels: {version: v2}}\n---\n";

    fn vs(body: &str) -> String {
        format!("{SERVICES}{DR}apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: reviews}}\nspec:\n  hosts: [reviews]\n{body}")
    }

    #[test]
    fn unknown_subset_names_the_existing_ones() {
        let d = analyze_yaml(&vs("  http:\n  - route:\n    - destination: {host: reviews, subset: v3}\n    mirror: {host: ratings, subset: v2}\n"));
        assert_eq!(
            with_code(&d, "MG0104"),
            [
                "29 spec.http[0].route[0].destination.subset: subset \"v3\" of host reviews.default.svc.cluster.local is not defined (DestinationRule default/reviews defines v1 and v2), so Istio answers 503 NC on this route: add subset v3 to DestinationRule default/reviews or route to an existing subset",
                "30 spec.http[0].mirror.subset: subset \"v2\" of host ratings.default.svc.cluster.local is not defined (no DestinationRule for that host defines subsets), so Istio answers 503 NC on this route: add a DestinationRule for host ratings.default.svc.cluster.local with subset v2 or route to an existing subset",
            ]
        );
    }

    #[test]
    fn defined_subsets_pass_including_fqdn_and_wildcard_rules() {
        let d = analyze_yaml(&vs("  http:\n  - route:\n    - destination: {host: reviews.default.svc.cluster.local, subset: v2}\n      weight: 50\n    - destination: {host: api.example.com, subset: blue}\n      weight: 50\n---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: ext}\nspec:\n  host: \"*.example.com\"\n  subsets: [{name: blue}]\n---\napiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: ext}\nspec:\n  hosts: [\"*.example.com\"]\n  ports: [{number: 443, name: https, protocol: HTTPS}]\n"));
        assert!(with_code(&d, "MG0104").is_empty(), "{d:#?}");
        assert!(with_code(&d, "MG0108").is_empty(), "{d:#?}");
    }

    #[test]
    fn unknown_and_missing_hosts() {
        let d = analyze_yaml(&vs("  http:\n  - route:\n    - destination: {host: details}\n    mirrors: [{destination: {host: \"*.mirror.example\"}}]\n  tcp:\n  - route: [{destination: {host: \"\"}}]\n  tls:\n  - match: [{sniHosts: [reviews]}]\n    route: [{destination: {host: db.example.com}}]\n"));
        assert_eq!(
            with_code(&d, "MG0108"),
            [
                "29 spec.http[0].route[0].destination.host: no ServiceEntry or Service defines host details.default.svc.cluster.local: requests will get 503 UH; add a Service or ServiceEntry for it, or correct the host",
                "35 spec.tls[0].route[0].destination.host: no ServiceEntry or Service defines host db.example.com: requests will get 503 UH; add a Service or ServiceEntry for it, or correct the host",
            ]
        );
        assert_eq!(
            with_code(&d, "MG0129"),
            ["32 spec.tcp[0].route[0].destination.host: this destination has no host: name the service, e.g. reviews or reviews.prod.svc.cluster.local"]
        );
    }
}
