#!/usr/bin/env bash
# `npm start`: builds the browser SDK (published under www/sdk/), then runs the
# server (`convene serve`). Extra arguments are passed on to `convene serve`.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

# Browser tests are not run here, so chromium is not needed.
CONVENE_SKIP_CHROMIUM=1 bash scripts/ensure-toolchain.sh
# Builds the SDK and publishes it to www/sdk/, where the pages load it from.
bash scripts/build-sdk.sh

exec cargo run --release -p convene-server --bin convene -- serve "$@"
