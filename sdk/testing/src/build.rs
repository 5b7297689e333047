//! Building a plugin crate for wasm32-wasip1 from inside a test: once per crate per
//! test process, into a target directory of its own so it never waits on the lock of
//! the build that runs the tests.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

use anyhow::{bail, Context};

/// Builds the crate at `crate_dir` (release, wasm32-wasip1) and returns the `.wasm`
/// path. Panics with cargo's output when the build fails: meant for tests.
pub fn build_plugin(crate_dir: impl AsRef<Path>) -> PathBuf {
    match try_build_plugin(crate_dir.as_ref()) {
        Ok(p) => p,
        Err(e) => panic!("{e:#}"),
    }
}

/// [`build_plugin`] returning the failure instead of panicking.
///
/// The target directory is `$MESHGATE_PLUGIN_TARGET_DIR` when set, else `wasm-plugins`
/// inside the crate's own target directory (which honours `CARGO_TARGET_DIR`).
pub fn try_build_plugin(crate_dir: &Path) -> anyhow::Result<PathBuf> {
    static BUILT: OnceLock<Mutex<HashMap<PathBuf, Result<PathBuf, String>>>> = OnceLock::new();
    let dir = crate_dir
        .canonicalize()
        .with_context(|| format!("plugin crate {}", crate_dir.display()))?;
    // Held across the build: parallel tests of one crate wait for the one build.
    let mut built = BUILT
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let result = built
        .entry(dir.clone())
        .or_insert_with(|| build(&dir).map_err(|e| format!("{e:#}")))
        .clone();
    result.map_err(anyhow::Error::msg)
}

fn cargo() -> Command {
    let mut c = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    // Flags meant for the host (target-cpu, sanitizers...) do not apply to wasm.
    c.env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET");
    c
}

fn target_dir(manifest: &Path) -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("MESHGATE_PLUGIN_TARGET_DIR") {
        return Ok(PathBuf::from(dir));
    }
    let out = cargo()
        .args([
            "metadata",
            "--no-deps",
            "--format-version",
            "1",
            "--manifest-path",
        ])
        .arg(manifest)
        .output()
        .context("running cargo metadata")?;
    if !out.status.success() {
        bail!(
            "cargo metadata for {} failed:\n{}",
            manifest.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let meta: serde_json::Value =
        serde_json::from_slice(&out.stdout).context("reading cargo metadata")?;
    let Some(target) = meta["target_directory"].as_str() else {
        bail!("cargo metadata has no target_directory");
    };
    Ok(PathBuf::from(target).join("wasm-plugins"))
}

fn build(dir: &Path) -> anyhow::Result<PathBuf> {
    let manifest = dir.join("Cargo.toml");
    let target = target_dir(&manifest)?;
    let out = cargo()
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip1",
            "--message-format=json-render-diagnostics",
            "--manifest-path",
        ])
        .arg(&manifest)
        .env("CARGO_TARGET_DIR", &target)
        .output()
        .context("running cargo build")?;
    if !out.status.success() {
        bail!(
            "building {} for wasm32-wasip1 failed (is the target installed? \
             `rustup target add wasm32-wasip1`):\n{}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    wasm_artifact(&out.stdout, &manifest)
        .with_context(|| format!("{} built no .wasm: is it a cdylib?", dir.display()))
}

/// The `.wasm` file cargo reported for the crate at `manifest`.
pub(crate) fn wasm_artifact(messages: &[u8], manifest: &Path) -> Option<PathBuf> {
    let manifest = manifest.canonicalize().ok()?;
    String::from_utf8_lossy(messages)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact")
        .filter(|m| {
            m["manifest_path"]
                .as_str()
                .and_then(|p| Path::new(p).canonicalize().ok())
                .is_some_and(|p| p == manifest)
        })
        .flat_map(|m| {
            m["filenames"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter_map(|f| f.as_str().map(PathBuf::from))
        })
        .find(|f| f.extension().is_some_and(|e| e == "wasm"))
}
