#!/usr/bin/env bash
# Smoke test of the Janus path of convene-load, for `npm test`: starts Janus with the
# bench's loopback-only config, 2 publishers (audio+video) and 2 subscribers for 2 s.
# Fails if any member fails to join or any receiver gets no media. ~10 s.
#   bench/janus-smoke.sh [path/to/convene-load]   (default: the debug build)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$(mktemp /tmp/convene-janus-smoke.XXXXXX.json)"
trap 'rm -f "$OUT"' EXIT
CONVENE_LOAD_BIN="${1:-$ROOT/target/debug/convene-load}" RUN_TIMEOUT=60 \
    bash "$ROOT/bench/run.sh" janus "$OUT" --kind av --publishers 2 --subscribers 2 --seconds 2
