#!/usr/bin/env bash
# Schema-driven tests of the admin REST API: schemathesis (tests/schema) generates
# requests from the server's own OpenAPI document and checks that every request the
# document allows is accepted, every one it forbids is refused, and none gets a 5xx.
# Installs schemathesis into target/schemathesis-venv when missing, starts the server
# (target/debug/convene, built if needed) on a free loopback port with a temporary
# data dir (its admin-key guessing limit raised: the run sends wrong keys on purpose),
# and stops it at the end.
#
#   bash scripts/schema-test.sh [MAX_EXAMPLES_PER_OPERATION [ST_RUN_OPTION...]]  (default: 30)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="$ROOT/target/schemathesis-venv"
BIN="$ROOT/target/debug/convene"

log() { echo "schema-test: $*"; }

if ! "$VENV/bin/st" --version 2>/dev/null | grep -q "4.32.5"; then
    log "installing schemathesis into $VENV"
    if ! python3 -m venv "$VENV" 2>/dev/null; then
        # Debian's python3 needs its venv module from a package of its own.
        SUDO=()
        [[ "$(id -u)" -eq 0 ]] || SUDO=(sudo)
        "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y python3-venv
        python3 -m venv "$VENV"
    fi
    "$VENV/bin/pip" install --quiet --disable-pip-version-check -r tests/schema/requirements.txt
fi
[[ -x "$BIN" ]] || cargo build -q -p convene-server

PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
DATA="$(mktemp -d)"
KEY="schema-test-admin-key-$RANDOM$RANDOM"
LOG="$DATA/server.log"
# The run creates webhook endpoints with made-up hosts: their deliveries go to a proxy
# on a closed loopback port, so nothing (not even a DNS query) leaves the machine.
HTTP_PROXY=http://127.0.0.1:9 HTTPS_PROXY=http://127.0.0.1:9 NO_PROXY= \
    CONVENE_ADMIN_KEY="$KEY" CONVENE_ADMIN_KEY_FAILURES=1000000 CONVENE_MEDIA_IP=127.0.0.1 CONVENE_MEDIA_PORT=0 \
    CONVENE_LOG="convene=warn,warn" \
    "$BIN" serve --listen "127.0.0.1:$PORT" --data-dir "$DATA/data" >"$LOG" 2>&1 &
SERVER=$!
cleanup() {
    kill "$SERVER" 2>/dev/null || true
    wait "$SERVER" 2>/dev/null || true
    rm -rf "$DATA"
}
trap cleanup EXIT

export ST_BASE_URL="http://127.0.0.1:$PORT" API_TOKEN="$KEY" NO_PROXY="127.0.0.1,localhost"
status=0
timeout 600 "$VENV/bin/st" --config-file tests/schema/schemathesis.toml run \
    --max-examples "${1:-30}" "${@:2}" "$ST_BASE_URL/v1/openapi.json" || status=$?
if grep -q "panicked" "$LOG"; then
    log "the server panicked:"
    grep -A5 "panicked" "$LOG" | head -40
    status=1
fi
if ! kill -0 "$SERVER" 2>/dev/null; then
    log "the server died during the run"
    tail -20 "$LOG"
    status=1
fi
exit "$status"
