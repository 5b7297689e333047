//! `meshgate plugin`: `check` against real modules, and the whole author workflow:
//! `new` → `cargo test` in the generated crate → `build` → `check`.

#![allow(clippy::unwrap_used)]

#[path = "wasm_support/plugins.rs"]
mod plugins;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A private copy of the binary under test: a shared target dir may get another
/// build's `meshgate` while the long test runs.
fn binary() -> &'static Path {
    static COPY: OnceLock<PathBuf> = OnceLock::new();
    COPY.get_or_init(|| {
        let copy = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("plugin-cli-meshgate-{}", std::process::id()));
        std::fs::copy(env!("CARGO_BIN_EXE_meshgate"), &copy).unwrap();
        copy
    })
}

fn meshgate(args: &[&str]) -> Output {
    Command::new(binary()).args(args).output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("meshgate-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn check_flags_an_import_the_host_lacks() {
    let path = plugins::wasm_path("bogus_import");
    let out = meshgate(&["plugin", "check", path.to_str().unwrap()]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(
        t.contains("MISSING env.proxy_bogus_function  func(i32) -> i32"),
        "{t}"
    );
    assert!(t.contains("traps"), "{t}");
    assert!(t.contains("ok      env.proxy_log"), "{t}");
}

#[test]
fn check_passes_an_sdk_built_module() {
    let path = plugins::wasm_path("header_add");
    let out = meshgate(&["plugin", "check", path.to_str().unwrap()]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(t.contains("proxy-wasm ABI: 0.2.1"), "{t}");
    assert!(t.contains("OK: every import is provided"), "{t}");
}

#[test]
fn check_explains_modules_that_cannot_work() {
    let dir = temp_dir("check");
    let empty = dir.join("empty.wasm");
    std::fs::write(&empty, b"\0asm\x01\0\0\0").unwrap();
    let out = meshgate(&["plugin", "check", empty.to_str().unwrap()]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("exports no proxy_abi_version_0_2_1"), "{t}");
    assert!(t.contains("exports no memory"), "{t}");

    let garbage = dir.join("garbage.wasm");
    std::fs::write(&garbage, b"#!/bin/sh\n").unwrap();
    let out = meshgate(&["plugin", "check", garbage.to_str().unwrap()]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(2), "{t}");
    assert!(t.contains("not a valid wasm module"), "{t}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Runs `cmd` with output to a file, killing it after `limit`.
fn run_bounded(mut cmd: Command, log: &Path, limit: Duration) -> (bool, String) {
    let file = std::fs::File::create(log).unwrap();
    let mut child = cmd
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let ok = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.success();
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break false;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    (ok, std::fs::read_to_string(log).unwrap_or_default())
}

/// The generated crate must build and pass its own test unchanged, offline, pinned to
/// the versions this workspace uses.
#[test]
fn a_new_plugin_builds_passes_its_test_and_checks_clean() {
    let dir = temp_dir("new");
    let out = meshgate(&[
        "plugin",
        "new",
        "hello-guard",
        "--dir",
        dir.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let krate = dir.join("hello-guard");
    assert!(krate.join("wasmplugin.yaml").is_file());

    // Share the workspace's target dir so registry crates are not rebuilt.
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut test = Command::new(&cargo);
    test.args(["test", "--offline"])
        .current_dir(&krate)
        .env("CARGO_TARGET_DIR", &target)
        .env_remove("RUSTFLAGS");
    let (ok, log) = run_bounded(test, &dir.join("test.log"), Duration::from_secs(1500));
    assert!(
        ok,
        "cargo test in the generated crate failed or timed out:\n{log}"
    );
    assert!(log.contains("test result: ok. 3 passed"), "{log}");

    let out = Command::new(binary())
        .args(["plugin", "build", krate.to_str().unwrap()])
        .env("CARGO_TARGET_DIR", target.join("wasm-plugins"))
        .output()
        .unwrap();
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    let wasm = target.join("wasm-plugins/wasm32-wasip1/release/hello_guard.wasm");
    let sha = meshgate::wasm::sha256_hex(&std::fs::read(&wasm).unwrap());
    assert!(t.contains(&format!("sha256: {sha}")), "{t}");
    assert!(
        t.contains(&format!("url: file://{}", wasm.display())),
        "{t}"
    );
    assert!(
        t.contains("kind: WasmPlugin") && t.contains("name: hello-guard"),
        "{t}"
    );

    let out = meshgate(&["plugin", "check", wasm.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Every example's WasmPlugin is valid Istio YAML Meshgate loads without complaint.
#[test]
fn example_wasmplugins_load_cleanly() {
    let plugins = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins");
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&plugins).unwrap() {
        let yaml = entry.unwrap().path().join("wasmplugin.yaml");
        if yaml.is_file() {
            files.push(yaml);
        }
    }
    assert_eq!(files.len(), 4, "{files:?}");
    let loaded = meshgate::config::load_paths(&files);
    assert!(loaded.diagnostics.is_empty(), "{:?}", loaded.diagnostics);
    assert_eq!(loaded.config.wasm_plugins.len(), 4);
    for p in &loaded.config.wasm_plugins {
        assert!(p.spec.plugin_config.is_some(), "{}", p.meta.name);
    }
}
