#!/usr/bin/env bash
# Fuzzes the config loader and analyzer (fuzz/fuzz_targets/load_yaml.rs).
# Usage: ./scripts/fuzz.sh [seconds]      (default 180; needs `cargo install cargo-fuzz`)
# The pinned stable toolchain runs cargo-fuzz with RUSTC_BOOTSTRAP=1. The crate has no
# unsafe code, so the target builds without AddressSanitizer (-s none) and keeps debug
# assertions and overflow checks on; a panic is a crash, saved under fuzz/artifacts/.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-180}"
mkdir -p fuzz/corpus/load_yaml
RUSTC_BOOTSTRAP=1 cargo fuzz run load_yaml -s none \
  fuzz/corpus/load_yaml tests/fixtures/analyze tests/fixtures/seed -- \
  -max_total_time="$seconds" -max_len=16384 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
