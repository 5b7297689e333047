//! `meshgate plugin check`: what a module imports and exports, against what this host
//! links and calls, and what would not work (would not load, or would trap when called).

use std::collections::BTreeSet;
use std::fmt;

use wasmparser::{ExternalKind, Parser, Payload, TypeRef, ValType};

use crate::wasm::{host_imports, precompile};

/// Exports a proxy-wasm module may have that announce its ABI version.
const ABI_EXPORTS: [&str; 3] = [
    "proxy_abi_version_0_2_1",
    "proxy_abi_version_0_2_0",
    "proxy_abi_version_0_1_0",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Import {
    pub module: String,
    pub name: String,
    /// `func(i32, i32) -> i32`, `memory`, `table`, `global`, `tag`.
    pub kind: String,
    /// The host links it (always false for non-functions: the host provides none).
    pub provided: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Export {
    pub name: String,
    pub kind: String,
}

/// What `check` found. `problems` are what would not work; `notes` are worth knowing.
#[derive(Debug, Clone, Default)]
pub struct ModuleReport {
    pub size: usize,
    pub sha256: String,
    pub abi: Option<String>,
    pub imports: Vec<Import>,
    pub exports: Vec<Export>,
    pub problems: Vec<String>,
    pub notes: Vec<String>,
}

impl ModuleReport {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Reads `wasm` and reports on it. `Err` when it is not a wasm module at all.
pub fn check_module(wasm: &[u8]) -> Result<ModuleReport, String> {
    let mut report = ModuleReport {
        size: wasm.len(),
        sha256: crate::wasm::sha256_hex(wasm),
        ..Default::default()
    };
    let (imports, exports, has_start) = read_module(wasm)?;
    let provided: BTreeSet<(String, String)> = host_imports().into_iter().collect();
    for (module, name, kind, is_func) in imports {
        let known = is_func && provided.contains(&(module.clone(), name.clone()));
        if !is_func {
            report.problems.push(format!(
                "imports {module}.{name} ({kind}): the host provides no {kind}s, so the module cannot load"
            ));
        } else if !known {
            report.problems.push(format!(
                "imports {module}.{name}, which this host does not provide: the plugin loads, \
                 but traps (failing per its failStrategy) as soon as it calls it"
            ));
        }
        report.imports.push(Import {
            module,
            name,
            kind,
            provided: known,
        });
    }
    report.exports = exports;
    let exported = |n: &str| report.exports.iter().any(|e| e.name == n);
    report.abi = ABI_EXPORTS
        .iter()
        .find(|n| exported(n))
        .map(|n| n.trim_start_matches("proxy_abi_version_").replace('_', "."));
    let mut problems = Vec::new();
    if report.abi.is_none() {
        problems.push(
            "exports no proxy_abi_version_0_2_1 (or 0_2_0, 0_1_0): not built with a proxy-wasm SDK; \
             the host refuses to load it"
                .to_string(),
        );
    }
    if !exported("memory") {
        problems.push("exports no memory: the host cannot pass it data".to_string());
    }
    if !exported("proxy_on_memory_allocate") && !exported("malloc") {
        problems.push(
            "exports neither proxy_on_memory_allocate nor malloc: the host cannot hand it \
             headers, bodies or config"
                .to_string(),
        );
    }
    if !exported("proxy_on_context_create") {
        problems.push(
            "exports no proxy_on_context_create: the host cannot create its root or HTTP contexts"
                .to_string(),
        );
    }
    if !exported("_initialize") && !exported("_start") && !has_start {
        report.notes.push(
            "no _initialize, _start or start section: fine if the module needs no set-up".into(),
        );
    }
    if !exported("proxy_on_configure") {
        report
            .notes
            .push("no proxy_on_configure: the plugin never reads its pluginConfig".into());
    }
    let callbacks = [
        "proxy_on_request_headers",
        "proxy_on_request_body",
        "proxy_on_response_headers",
        "proxy_on_response_body",
    ];
    if !callbacks.iter().any(|c| exported(c)) {
        report.notes.push(
            "exports no HTTP callbacks (proxy_on_request_headers, ...): it never sees traffic"
                .into(),
        );
    }
    report.problems.extend(problems);
    // Linking catches what names alone cannot (a known import with another signature).
    if report.abi.is_some() {
        if let Err(e) = precompile(wasm) {
            report
                .problems
                .push(format!("the host would not load it: {e}"));
        }
    }
    Ok(report)
}

type Imports = Vec<(String, String, String, bool)>;

fn read_module(wasm: &[u8]) -> Result<(Imports, Vec<Export>, bool), String> {
    let bad = |e: wasmparser::BinaryReaderError| format!("not a valid wasm module: {e}");
    let mut types: Vec<String> = Vec::new();
    let mut imports = Vec::new();
    let mut exports = Vec::new();
    let mut has_start = false;
    for payload in Parser::new(0).parse_all(wasm) {
        match payload.map_err(bad)? {
            Payload::Version {
                encoding: wasmparser::Encoding::Component,
                ..
            } => {
                return Err("a wasm component, not a core module: proxy-wasm plugins are core modules (build for wasm32-wasip1)".into())
            }
            Payload::TypeSection(reader) => {
                for group in reader {
                    for ty in group.map_err(bad)?.into_types() {
                        types.push(match ty.composite_type.inner {
                            wasmparser::CompositeInnerType::Func(f) => signature(f.params(), f.results()),
                            _ => "non-function type".into(),
                        });
                    }
                }
            }
            Payload::ImportSection(reader) => {
                for import in reader.into_imports() {
                    let import = import.map_err(bad)?;
                    let (kind, is_func) = match import.ty {
                        TypeRef::Func(i) | TypeRef::FuncExact(i) => (
                            types
                                .get(i as usize)
                                .cloned()
                                .unwrap_or_else(|| "func".into()),
                            true,
                        ),
                        TypeRef::Memory(_) => ("memory".into(), false),
                        TypeRef::Table(_) => ("table".into(), false),
                        TypeRef::Global(_) => ("global".into(), false),
                        TypeRef::Tag(_) => ("tag".into(), false),
                    };
                    imports.push((
                        import.module.to_string(),
                        import.name.to_string(),
                        kind,
                        is_func,
                    ));
                }
            }
            Payload::ExportSection(reader) => {
                for export in reader {
                    let export = export.map_err(bad)?;
                    let kind = match export.kind {
                        ExternalKind::Func | ExternalKind::FuncExact => "func",
                        ExternalKind::Memory => "memory",
                        ExternalKind::Table => "table",
                        ExternalKind::Global => "global",
                        ExternalKind::Tag => "tag",
                    };
                    exports.push(Export {
                        name: export.name.to_string(),
                        kind: kind.into(),
                    });
                }
            }
            Payload::StartSection { .. } => has_start = true,
            _ => {}
        }
    }
    Ok((imports, exports, has_start))
}

fn signature(params: &[ValType], results: &[ValType]) -> String {
    let list = |v: &[ValType]| {
        v.iter()
            .map(|t| t.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match results {
        [] => format!("func({})", list(params)),
        [one] => format!("func({}) -> {one}", list(params)),
        many => format!("func({}) -> ({})", list(params), list(many)),
    }
}

impl fmt::Display for ModuleReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "module: {} bytes, sha256 {}", self.size, self.sha256)?;
        writeln!(
            f,
            "proxy-wasm ABI: {}",
            self.abi.as_deref().unwrap_or("none found")
        )?;
        writeln!(f, "\nimports ({}):", self.imports.len())?;
        for i in &self.imports {
            let mark = if i.provided { "ok     " } else { "MISSING" };
            writeln!(f, "  {mark} {}.{}  {}", i.module, i.name, i.kind)?;
        }
        writeln!(f, "\nexports ({}):", self.exports.len())?;
        for e in &self.exports {
            writeln!(f, "  {} ({})", e.name, e.kind)?;
        }
        if !self.notes.is_empty() {
            writeln!(f, "\nnotes:")?;
            for n in &self.notes {
                writeln!(f, "  - {n}")?;
            }
        }
        if self.problems.is_empty() {
            write!(
                f,
                "\nOK: every import is provided and the host can load and run it"
            )
        } else {
            writeln!(f, "\nproblems ({}):", self.problems.len())?;
            for p in &self.problems {
                writeln!(f, "  - {p}")?;
            }
            write!(f, "\nNOT OK: {} problem(s) above", self.problems.len())
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// An empty module: valid wasm, but nothing a proxy-wasm host needs.
    const EMPTY_MODULE: &[u8] = b"\0asm\x01\0\0\0";

    #[test]
    fn an_empty_module_lacks_abi_memory_and_allocator() {
        let r = check_module(EMPTY_MODULE).unwrap();
        assert!(!r.ok());
        let all = r.problems.join("\n");
        assert!(all.contains("proxy_abi_version_0_2_1"), "{all}");
        assert!(all.contains("exports no memory"), "{all}");
        assert!(all.contains("proxy_on_memory_allocate nor malloc"), "{all}");
        assert!(r.to_string().contains("NOT OK"), "{r}");
    }

    #[test]
    fn garbage_is_an_error_not_a_report() {
        let e = check_module(b"not wasm at all").unwrap_err();
        assert!(e.starts_with("not a valid wasm module"), "{e}");
        assert!(check_module(b"").is_err());
    }

    #[test]
    fn the_host_lists_proxy_and_wasi_imports() {
        let names = host_imports();
        for want in [
            ("env", "proxy_log"),
            ("env", "proxy_http_call"),
            ("env", "proxy_send_local_response"),
            ("wasi_snapshot_preview1", "fd_write"),
            ("wasi_unstable", "proc_exit"),
        ] {
            assert!(
                names.contains(&(want.0.to_string(), want.1.to_string())),
                "{want:?}"
            );
        }
    }
}
