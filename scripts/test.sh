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

step "cargo clippy convene-sdk (wasm32: the browser code, -D warnings)"
# The SDK's browser modules only build for wasm32, so the host clippy above skips them.
cargo clippy -p convene-sdk --target wasm32-unknown-unknown --all-targets -- -D warnings

step "build SDK (wasm-bindgen)"
bash scripts/build-sdk.sh

step "cargo test"
cargo test --workspace

step "schema tests (schemathesis: the OpenAPI document against the server)"
bash scripts/schema-test.sh 30

step "fuzz targets (decoder, session core, token parser; 10 s each)"
bash scripts/fuzz.sh 10

step "SDK tests in headless Chromium (wasm-bindgen-test)"
CHROMEDRIVER=/usr/bin/chromedriver \
    CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner \
    cargo test -p convene-sdk --target wasm32-unknown-unknown

step "load tool smoke run (tiny N, so it cannot rot)"
cargo build -p convene-server -p convene-load
./target/debug/convene-load --spawn ./target/debug/convene --members 20 --concurrency 10

step "load tool smoke run against Janus (2 publishers, 2 subscribers)"
bash bench/janus-smoke.sh ./target/debug/convene-load

step "end-to-end tests (tests/: real server, headless Chromium)"
CONVENE_BIN="$ROOT/target/debug/convene" npm test --workspace tests
