//! `meshgate plugin build`: a release build for wasm32-wasip1 with cargo, then the
//! module's sha256 and a WasmPlugin that loads it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// One `.wasm` the build produced.
#[derive(Debug, Clone)]
pub struct BuiltPlugin {
    /// Kubernetes-style name (`unit-guard` for `unit_guard.wasm`).
    pub name: String,
    pub wasm: PathBuf,
    pub sha256: String,
}

/// Builds the crate (or every cdylib of the workspace) at `dir`. Cargo's progress and
/// errors go to stderr as usual.
pub fn build_plugins(dir: &Path) -> Result<Vec<BuiltPlugin>, String> {
    let manifest = if dir.is_file() {
        dir.to_path_buf()
    } else {
        dir.join("Cargo.toml")
    };
    if !manifest.is_file() {
        return Err(format!("{}: no Cargo.toml here", dir.display()));
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip1",
            "--message-format=json-render-diagnostics",
            "--manifest-path",
        ])
        .arg(&manifest)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !out.status.success() {
        return Err(
            "cargo build failed (see above; `rustup target add wasm32-wasip1` if the target is missing)"
                .into(),
        );
    }
    let mut built = Vec::new();
    for wasm in wasm_artifacts(&out.stdout) {
        let bytes = std::fs::read(&wasm).map_err(|e| format!("{}: {e}", wasm.display()))?;
        let stem = wasm
            .file_stem()
            .map(|s| s.to_string_lossy().replace('_', "-"))
            .unwrap_or_default();
        built.push(BuiltPlugin {
            name: stem,
            sha256: crate::wasm::sha256_hex(&bytes),
            wasm,
        });
    }
    if built.is_empty() {
        return Err(format!(
            "{} built no .wasm: the crate needs `crate-type = [\"cdylib\"]` under [lib]",
            manifest.display()
        ));
    }
    Ok(built)
}

/// Every `.wasm` file in cargo's JSON messages.
fn wasm_artifacts(messages: &[u8]) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for line in String::from_utf8_lossy(messages).lines() {
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if msg["reason"] != "compiler-artifact" {
            continue;
        }
        for f in msg["filenames"].as_array().into_iter().flatten() {
            if let Some(f) = f.as_str().filter(|f| f.ends_with(".wasm")) {
                found.push(PathBuf::from(f));
            }
        }
    }
    found
}

/// A WasmPlugin for the gateway that loads `plugin` from its local file.
pub fn wasmplugin_yaml(plugin: &BuiltPlugin) -> String {
    let path = std::path::absolute(&plugin.wasm).unwrap_or_else(|_| plugin.wasm.clone());
    format!(
        "apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata:
  name: {name}
  namespace: istio-system
spec:
  selector:
    matchLabels:
      istio: ingressgateway
  url: file://{path}
  sha256: {sha}
  pluginConfig: {{}}
",
        name = plugin.name,
        path = path.display(),
        sha = plugin.sha256,
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn artifacts_are_read_from_cargo_messages() {
        let msgs = br#"{"reason":"compiler-artifact","filenames":["/t/wasm32-wasip1/release/unit_guard.wasm","/t/x.rlib"]}
{"reason":"build-finished","success":true}
not json"#;
        assert_eq!(
            wasm_artifacts(msgs),
            vec![PathBuf::from("/t/wasm32-wasip1/release/unit_guard.wasm")]
        );
    }

    #[test]
    fn the_snippet_is_a_wasmplugin_meshgate_loads() {
        let p = BuiltPlugin {
            name: "unit-guard".into(),
            wasm: "/t/unit_guard.wasm".into(),
            sha256: "ab".repeat(32),
        };
        let yaml = wasmplugin_yaml(&p);
        let mut loaded = crate::config::Loaded::default();
        crate::config::load::load_str(&yaml, std::path::Path::new("snippet.yaml"), &mut loaded);
        assert!(loaded.diagnostics.is_empty(), "{:?}", loaded.diagnostics);
        let plugin = &loaded.config.wasm_plugins[0];
        assert_eq!(plugin.spec.url, "file:///t/unit_guard.wasm");
        assert_eq!(plugin.spec.sha256.as_deref(), Some(p.sha256.as_str()));
    }
}
