#!/usr/bin/env bash
# The project's test command: everything a change must pass.
# Usage: ./scripts/test.sh            (from the repository root)
set -euo pipefail
cd "$(dirname "$0")/.."

# RUSTUP_AUTO_INSTALL=0 on some machines: add the plugin target explicitly (a no-op when present).
rustup target add wasm32-wasip1 >/dev/null

# One target dir for both workspaces, so the plugins' harness reuses what the main
# build compiled (the same crates at the same versions).
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"

cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace

# The example plugins: their own workspace (cdylibs for wasm32-wasip1); their tests run
# on the host and load each built .wasm into Meshgate's wasm engine.
cargo fmt --manifest-path plugins/Cargo.toml --all -- --check
cargo clippy --manifest-path plugins/Cargo.toml --workspace --all-targets -- -D warnings
cargo test --manifest-path plugins/Cargo.toml --workspace
