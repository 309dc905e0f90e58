#!/usr/bin/env bash
# `npm test`: the full check run by CI (.ci/run). Stops at the first failure.
# The last step is node's test runner, so its summary ends the output.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

step() { printf '\n==================== %s ====================\n' "$*"; }

step "toolchain"
bash scripts/ensure-toolchain.sh

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (host, all targets, -D warnings)"
cargo clippy --workspace --all-targets -- -D warnings

step "cargo build convene-sdk (wasm32, must be warning-free)"
# Not RUSTFLAGS=-Dwarnings: that would invalidate the build cache for everything.
WASM_LOG="$(mktemp)"
trap 'rm -f "$WASM_LOG"' EXIT
cargo build -p convene-sdk --target wasm32-unknown-unknown 2>&1 | tee "$WASM_LOG"
if grep -q '^warning' "$WASM_LOG"; then
    echo "test: the wasm32 build of convene-sdk has warnings (see above)" >&2
    exit 1
fi

step "build SDK (wasm-bindgen, wasm-opt)"
bash scripts/build-sdk.sh

step "cargo test"
cargo test --workspace

step "load tool smoke run (tiny N, so it cannot rot)"
cargo build -p convene-server -p convene-load
./target/debug/convene-load --spawn ./target/debug/convene --members 20 --concurrency 10

step "node tests (tests/)"
npm test --workspace tests
