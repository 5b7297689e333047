//! Loading: files and folders of multi-document YAML → typed resources in a ConfigSet,
//! with every problem reported as a Diagnostic naming file:line:column, the resource
//! and the field. A bad document is dropped on its own; the others load.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde_yaml::Value;

use super::diagnostic::{Diagnostic, Severity};
use super::yaml::{parse_documents, Document};
use super::*;

pub const CODE_SYNTAX: &str = "MG0001";
pub const CODE_SCHEMA: &str = "MG0002";
pub const CODE_UNKNOWN_FIELD: &str = "MG0003";
pub const CODE_SKIPPED_KIND: &str = "MG0004";
pub const CODE_IDENTITY: &str = "MG0005";
pub const CODE_IO: &str = "MG0006";

/// The outcome of loading: the resources that parsed, and everything said about them.
#[derive(Debug, Default)]
pub struct Loaded {
    pub config: ConfigSet,
    pub diagnostics: Vec<Diagnostic>,
    /// Every file read, in order (what a watcher should watch).
    pub files: Vec<PathBuf>,
}

impl Loaded {
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| d.is_error())
    }
}

/// Loads every path: a file, or a folder whose `*.yaml`/`*.yml` files are read in name order.
pub fn load_paths(paths: &[PathBuf]) -> Loaded {
    let mut out = Loaded::default();
    for file in expand_paths(paths, &mut out.diagnostics) {
        match std::fs::read_to_string(&file) {
            Ok(text) => load_str(&text, &file, &mut out),
            Err(e) => out.diagnostics.push(Diagnostic::new(
                CODE_IO,
                Severity::Error,
                format!("cannot read {}: {e}", file.display()),
            )),
        }
    }
    out
}

/// The files `paths` stands for (folders expanded, not recursively), in a stable order.
pub fn expand_paths(paths: &[PathBuf], diags: &mut Vec<Diagnostic>) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            match std::fs::read_dir(path) {
                Ok(rd) => {
                    let mut found: Vec<PathBuf> = rd
                        .filter_map(|e| e.ok().map(|e| e.path()))
                        .filter(|p| p.is_file() && is_yaml(p))
                        .collect();
                    found.sort();
                    files.extend(found);
                }
                Err(e) => diags.push(Diagnostic::new(
                    CODE_IO,
                    Severity::Error,
                    format!("cannot read folder {}: {e}", path.display()),
                )),
            }
        } else if path.exists() {
            files.push(path.clone());
        } else {
            diags.push(Diagnostic::new(
                CODE_IO,
                Severity::Error,
                format!("{}: no such file or folder", path.display()),
            ));
        }
    }
    files
}

fn is_yaml(p: &Path) -> bool {
    matches!(
        p.extension().and_then(|e| e.to_str()),
        Some("yaml") | Some("yml")
    )
}

/// Loads one file's text (named `file` in messages) into `out`.
pub fn load_str(text: &str, file: &Path, out: &mut Loaded) {
    let file = Arc::new(file.to_path_buf());
    out.files.push(file.as_ref().clone());
    let (docs, syntax) = parse_documents(text);
    for doc in docs {
        load_document(doc, &file, out);
    }
    if let Some(e) = syntax {
        let origin = Origin {
            file: file.clone(),
            line: e.line,
            column: e.column,
        };
        out.diagnostics.push(
            Diagnostic::new(
                CODE_SYNTAX,
                Severity::Error,
                format!("YAML syntax error: {}", e.message),
            )
            .at(origin),
        );
    }
}

fn load_document(doc: Document, file: &Arc<PathBuf>, out: &mut Loaded) {
    let fields = Arc::new(FieldLines {
        file: file.clone(),
        entries: doc.fields,
    });
    let origin = Origin {
        file: file.clone(),
        line: doc.line,
        column: doc.column,
    };
    let diags = &mut out.diagnostics;
    let Value::Mapping(mut map) = doc.value else {
        diags.push(
            Diagnostic::new(
                CODE_SCHEMA,
                Severity::Error,
                "expected a Kubernetes object (a mapping with apiVersion and kind)",
            )
            .at(origin),
        );
        return;
    };
    let text = |m: &serde_yaml::Mapping, k: &str| {
        m.get(k).and_then(Value::as_str).unwrap_or("").to_string()
    };
    let api_version = text(&map, "apiVersion");
    let kind = text(&map, "kind");
    if kind == "List" {
        if let Some(Value::Sequence(items)) = map.remove("items") {
            for (i, item) in items.into_iter().enumerate() {
                let prefix = format!("items[{i}]");
                let entries = fields
                    .entries
                    .iter()
                    .filter_map(|(p, l, c)| {
                        p.strip_prefix(&prefix)
                            .map(|rest| (rest.trim_start_matches('.').to_string(), *l, *c))
                    })
                    .collect();
                let at = fields.locate(&prefix).unwrap_or_else(|| origin.clone());
                load_document(
                    Document {
                        value: item,
                        line: at.line,
                        column: at.column,
                        fields: entries,
                    },
                    file,
                    out,
                );
            }
        }
        return;
    }
    let group = api_version.split('/').next().unwrap_or("");
    let known: Option<&'static str> = match (group, kind.as_str()) {
        ("networking.istio.io", "Gateway") => Some("Gateway"),
        ("networking.istio.io", "VirtualService") => Some("VirtualService"),
        ("networking.istio.io", "DestinationRule") => Some("DestinationRule"),
        ("networking.istio.io", "ServiceEntry") => Some("ServiceEntry"),
        ("security.istio.io", "PeerAuthentication") => Some("PeerAuthentication"),
        ("extensions.istio.io", "WasmPlugin") => Some("WasmPlugin"),
        ("v1", "Service") => Some("Service"),
        ("v1", "Endpoints") => Some("Endpoints"),
        _ => None,
    };
    let Some(kind) = known else {
        let what = if kind.is_empty() {
            "a document without kind".to_string()
        } else {
            format!("{api_version} {kind}")
        };
        diags.push(
            Diagnostic::new(
                CODE_SKIPPED_KIND,
                Severity::Info,
                format!("skipped {what}: not a kind Meshgate reads"),
            )
            .at(origin),
        );
        return;
    };
    if group == "networking.istio.io"
        && !matches!(
            api_version.as_str(),
            "networking.istio.io/v1"
                | "networking.istio.io/v1beta1"
                | "networking.istio.io/v1alpha3"
        )
    {
        diags.push(
            Diagnostic::new(CODE_SCHEMA, Severity::Warning, format!("apiVersion {api_version} is not one Istio serves (v1, v1beta1, v1alpha3); read as v1"))
                .at(fields.locate("apiVersion").unwrap_or_else(|| origin.clone())),
        );
    }

    let metadata: ObjectMeta = match map.get("metadata").cloned() {
        Some(v) => match typed::<ObjectMeta>(
            v,
            "metadata",
            &fields,
            None,
            diags,
            &format!("{kind} <unnamed>"),
        ) {
            Some(m) => m,
            None => return,
        },
        None => ObjectMeta::default(),
    };
    let namespace = metadata
        .namespace
        .clone()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "default".to_string());
    let meta = ResourceMeta {
        kind,
        name: metadata.name.clone(),
        namespace,
        labels: metadata.labels,
        annotations: metadata.annotations,
        origin: origin.clone(),
        fields: fields.clone(),
    };
    let display = meta.display_name();
    if meta.name.is_empty() {
        diags.push(
            Diagnostic::new(CODE_IDENTITY, Severity::Error, "metadata.name is required")
                .at(fields.locate("metadata").unwrap_or(origin))
                .resource(format!("{kind} {}/<unnamed>", meta.namespace)),
        );
        return;
    }

    let cfg = &mut out.config;
    macro_rules! spec {
        ($ty:ty, $list:expr) => {{
            let v = map
                .remove("spec")
                .unwrap_or(Value::Mapping(Default::default()));
            if let Some(spec) = typed::<$ty>(v, "spec", &fields, Some(&meta), diags, &display) {
                $list.push(Res { meta, spec });
            }
        }};
    }
    match kind {
        "Gateway" => spec!(GatewaySpec, cfg.gateways),
        "VirtualService" => spec!(VirtualServiceSpec, cfg.virtual_services),
        "DestinationRule" => spec!(DestinationRuleSpec, cfg.destination_rules),
        "ServiceEntry" => spec!(ServiceEntrySpec, cfg.service_entries),
        "PeerAuthentication" => spec!(PeerAuthenticationSpec, cfg.peer_authentications),
        "WasmPlugin" => spec!(WasmPluginSpec, cfg.wasm_plugins),
        "Service" => spec!(ServiceSpec, cfg.services),
        "Endpoints" => {
            for k in ["apiVersion", "kind", "metadata"] {
                map.remove(k);
            }
            if let Some(spec) = typed::<EndpointsBody>(
                Value::Mapping(map),
                "",
                &fields,
                Some(&meta),
                diags,
                &display,
            ) {
                cfg.endpoints.push(Res { meta, spec });
            }
        }
        _ => {}
    }
}

/// Deserializes `value` (found at `prefix`) into `T`, reporting type errors with their
/// field path and line, and unknown fields as warnings.
fn typed<T: DeserializeOwned>(
    value: Value,
    prefix: &str,
    fields: &FieldLines,
    meta: Option<&ResourceMeta>,
    diags: &mut Vec<Diagnostic>,
    display: &str,
) -> Option<T> {
    let join = |p: &str| match (prefix.is_empty(), p.is_empty()) {
        (true, _) => p.to_string(),
        (false, true) => prefix.to_string(),
        (false, false) => format!("{prefix}.{p}"),
    };
    let locate = |p: &str| fields.locate(p).or_else(|| meta.map(|m| m.origin.clone()));
    let mut unknown: Vec<String> = Vec::new();
    let mut note_unknown = |path: serde_ignored::Path<'_>| unknown.push(field_path(&path));
    let de = serde_ignored::Deserializer::new(value, &mut note_unknown);
    let result: Result<T, _> = serde_path_to_error::deserialize(de);
    for p in unknown {
        let full = join(&p);
        let mut d = Diagnostic::new(
            CODE_UNKNOWN_FIELD,
            Severity::Warning,
            "unknown field (ignored)",
        )
        .resource(display)
        .field(full.clone());
        if let Some(o) = locate(&full) {
            d = d.at(o);
        }
        diags.push(d);
    }
    match result {
        Ok(v) => Some(v),
        Err(e) => {
            let inner = e.path().to_string();
            let inner = if inner == "." { String::new() } else { inner };
            let full = join(&inner);
            let mut d = Diagnostic::new(
                CODE_SCHEMA,
                Severity::Error,
                humanize(&e.into_inner().to_string()),
            )
            .resource(display)
            .field(if full.is_empty() {
                prefix.to_string()
            } else {
                full.clone()
            });
            if let Some(o) = locate(&full) {
                d = d.at(o);
            }
            diags.push(d);
            None
        }
    }
}

/// An ignored field's path in the same `http[0].retry` form the field-line map and
/// type errors use (serde_ignored itself prints `http.0.retry`).
fn field_path(path: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path;
    match path {
        Path::Root => String::new(),
        Path::Seq { parent, index } => format!("{}[{index}]", field_path(parent)),
        Path::Map { parent, key } => {
            let p = field_path(parent);
            if p.is_empty() {
                key.clone()
            } else {
                format!("{p}.{key}")
            }
        }
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => field_path(parent),
    }
}

/// serde's `invalid type: string "ten", expected i64` → `expected integer, got "ten"`.
fn humanize(msg: &str) -> String {
    let friendly = |t: &str| -> String {
        let t = t.trim();
        match t {
            "i64" | "i32" | "u32" | "u64" | "u16" | "u8" => "integer".into(),
            "f64" | "f32" => "number".into(),
            "a boolean" => "true or false".into(),
            "a sequence" => "a list".into(),
            "a string" => "a string".into(),
            _ if t.starts_with("struct ") || t.starts_with("a map") => "a mapping".into(),
            _ => t.to_string(),
        }
    };
    if let Some(rest) = msg
        .strip_prefix("invalid type: ")
        .or_else(|| msg.strip_prefix("invalid value: "))
    {
        if let Some((got, expected)) = rest.rsplit_once(", expected ") {
            let got = got
                .strip_prefix("string ")
                .or_else(|| got.strip_prefix("integer "))
                .or_else(|| got.strip_prefix("floating point "))
                .unwrap_or(got);
            let got = match got {
                "sequence" => "a list",
                "map" => "a mapping",
                "unit value" => "null",
                g => g,
            };
            return format!("expected {}, got {got}", friendly(expected));
        }
    }
    if let Some(f) = msg.strip_prefix("missing field ") {
        return format!("required field {} is missing", f.trim_matches('`'));
    }
    msg.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Loaded {
        let mut out = Loaded::default();
        load_str(text, Path::new("vs.yaml"), &mut out);
        out
    }

    #[test]
    fn type_error_names_file_line_resource_and_field() {
        let text = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: reviews\nspec:\n  hosts: [reviews]\n  http:\n  - route:\n    - destination: {host: reviews}\n  - route:\n    - destination:\n        host: reviews\n        subset: v2\n      weight: ten\n";
        let out = load(text);
        assert!(out.config.virtual_services.is_empty());
        let d = out.errors().next().expect("an error");
        assert_eq!(
            d.to_string(),
            "vs.yaml:14:7: VirtualService default/reviews: spec.http[1].route[0].weight: expected integer, got \"ten\""
        );
    }

    #[test]
    fn unknown_fields_warn_and_the_resource_still_loads() {
        let out = load("apiVersion: networking.istio.io/v1beta1\nkind: Gateway\nmetadata: {name: gw, namespace: istio-system}\nspec:\n  selectr: {istio: ingressgateway}\n  servers: []\n");
        assert_eq!(out.config.gateways.len(), 1);
        assert_eq!(out.config.gateways[0].meta.namespace, "istio-system");
        let w = &out.diagnostics[0];
        assert_eq!(w.severity, Severity::Warning);
        assert_eq!(
            w.to_string(),
            "vs.yaml:5:3: Gateway istio-system/gw: spec.selectr: unknown field (ignored)"
        );
    }

    #[test]
    fn unknown_fields_in_lists_are_named_and_located_like_other_fields() {
        let out = load("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: r}\nspec:\n  hosts: [r]\n  http:\n  - route: [{destination: {host: r}}]\n    retry: {attempts: 3}\n");
        assert_eq!(
            out.diagnostics[0].to_string(),
            "vs.yaml:8:5: VirtualService default/r: spec.http[0].retry: unknown field (ignored)"
        );
    }

    #[test]
    fn bad_document_is_dropped_alone() {
        let out = load("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: a}\nspec: {hosts: 3}\n---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: b}\nspec: {hosts: [b]}\n");
        assert_eq!(out.config.virtual_services.len(), 1);
        assert_eq!(out.config.virtual_services[0].meta.name, "b");
        assert_eq!(out.errors().count(), 1);
    }

    #[test]
    fn other_kinds_are_skipped_with_a_note_and_snake_case_is_accepted() {
        let out = load("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\n---\napiVersion: networking.istio.io/v1alpha3\nkind: DestinationRule\nmetadata: {name: r}\nspec:\n  host: r\n  traffic_policy:\n    outlier_detection: {consecutive_errors: 3}\n");
        assert_eq!(out.diagnostics[0].severity, Severity::Info);
        assert!(out.diagnostics[0].message.contains("apps/v1 Deployment"));
        let dr = &out.config.destination_rules[0].spec;
        let od = dr
            .traffic_policy
            .as_ref()
            .and_then(|t| t.outlier_detection.as_ref());
        assert_eq!(od.and_then(|o| o.consecutive_5xx_errors), Some(3));
        assert_eq!(out.diagnostics.len(), 1, "{:?}", out.diagnostics);
    }

    #[test]
    fn missing_name_and_endpoints_body() {
        let out = load("apiVersion: v1\nkind: Endpoints\nmetadata: {name: api}\nsubsets:\n- addresses: [{ip: 127.0.0.1}]\n  ports: [{port: 3000, name: http}]\n---\napiVersion: v1\nkind: Service\nmetadata: {}\nspec: {}\n");
        assert_eq!(
            out.config.endpoints[0].spec.subsets[0].addresses[0].ip,
            "127.0.0.1"
        );
        let e = out.errors().next().expect("missing name");
        assert!(e.to_string().contains("metadata.name is required"), "{e}");
    }
}
