//! Builds the guest plugins in `plugins/testdata` for wasm32-wasip1 (once per process)
//! and hands out their bytes. Needs the `wasm32-wasip1` target
//! (`rustup target add wasm32-wasip1`, which scripts/test.sh runs).

#![allow(dead_code, clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, OnceLock};

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A target directory of its own, so this nested build never waits on the lock of
/// the build running the tests.
fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir).join("wasm-plugins"),
        None => workspace_root().join("target").join("wasm-plugins"),
    }
}

fn build_all() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let manifest = workspace_root().join("plugins/testdata/Cargo.toml");
            let target = target_dir();
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let output = Command::new(cargo)
                .args([
                    "build",
                    "--release",
                    "--target",
                    "wasm32-wasip1",
                    "--manifest-path",
                ])
                .arg(&manifest)
                .env("CARGO_TARGET_DIR", &target)
                .env_remove("RUSTFLAGS")
                .env_remove("CARGO_ENCODED_RUSTFLAGS")
                .output()
                .expect("run cargo to build the test plugins");
            assert!(
                output.status.success(),
                "building test plugins failed (is the wasm32-wasip1 target installed?):\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
            target.join("wasm32-wasip1").join("release")
        })
        .clone()
}

/// The compiled module of test plugin `name` (a crate in plugins/testdata).
pub fn wasm(name: &str) -> Arc<[u8]> {
    let path = build_all().join(format!("{name}.wasm"));
    std::fs::read(&path)
        .unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
        .into()
}

/// The path of the built module, for tests that load through a WasmPlugin `url`.
pub fn wasm_path(name: &str) -> PathBuf {
    build_all().join(format!("{name}.wasm"))
}

/// The compiled example plugin `crate_name` (a crate in `plugins/`), built once per
/// process like the test plugins.
pub fn example_wasm_path(crate_name: &str) -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    let dir = BUILT
        .get_or_init(|| {
            let manifest = workspace_root().join("plugins/Cargo.toml");
            let target = target_dir().join("examples");
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let output = Command::new(cargo)
                .args([
                    "build",
                    "--release",
                    "--target",
                    "wasm32-wasip1",
                    "--workspace",
                    "--manifest-path",
                ])
                .arg(&manifest)
                .env("CARGO_TARGET_DIR", &target)
                .env_remove("RUSTFLAGS")
                .env_remove("CARGO_ENCODED_RUSTFLAGS")
                .output()
                .expect("run cargo to build the example plugins");
            assert!(
                output.status.success(),
                "building example plugins failed:\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
            target.join("wasm32-wasip1").join("release")
        })
        .clone();
    dir.join(format!("{}.wasm", crate_name.replace('-', "_")))
}
