#!/usr/bin/env bash
# `npm start`: builds the browser SDK, publishes it under www/sdk/, then runs the
# server (`convene serve`). Extra arguments are passed on to `convene serve`.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

# Browser tests are not run here, so chromium is not needed.
CONVENE_SKIP_CHROMIUM=1 bash scripts/ensure-toolchain.sh
bash scripts/build-sdk.sh

echo "start: copying client-wasm/pkg/ to www/sdk/"
rm -rf www/sdk
mkdir -p www/sdk
cp -R client-wasm/pkg/. www/sdk/

exec cargo run --release -p convene-server --bin convene -- serve "$@"
