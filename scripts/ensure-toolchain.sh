#!/usr/bin/env bash
# Makes sure everything needed to build and test Convene is installed:
# the wasm32 Rust target, the wasm-bindgen CLI matching Cargo.lock, chromium, firefox-esr,
# janus, postgresql, redis-server and coturn (for the tests; skipped with CONVENE_SKIP_CHROMIUM=1) and the npm
# dependencies. Idempotent; does nothing slow when all is present.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

log() { echo "ensure: $*"; }

# --- Rust wasm target -------------------------------------------------------
INSTALLED_TARGETS="$(rustup target list --installed)"
if grep -qx 'wasm32-unknown-unknown' <<<"$INSTALLED_TARGETS"; then
    log "rust target wasm32-unknown-unknown present"
else
    log "adding rust target wasm32-unknown-unknown"
    rustup target add wasm32-unknown-unknown
fi

# --- wasm-bindgen CLI (must match the library version in Cargo.lock) -------
WB_VERSION="$(awk '
    /^\[\[package\]\]/ { in_wb = 0 }
    /^name = "wasm-bindgen"$/ { in_wb = 1; next }
    in_wb && /^version = / { gsub(/"/, "", $3); print $3; exit }
' Cargo.lock)"
if [[ -z "$WB_VERSION" ]]; then
    echo "ensure: could not find the wasm-bindgen version in Cargo.lock" >&2
    exit 1
fi
if command -v wasm-bindgen >/dev/null 2>&1 \
    && [[ "$(wasm-bindgen --version 2>/dev/null)" == "wasm-bindgen $WB_VERSION" ]]; then
    log "wasm-bindgen $WB_VERSION present"
else
    log "installing wasm-bindgen-cli $WB_VERSION (this takes a few minutes)"
    # No --locked: it fails to resolve on this machine.
    cargo install wasm-bindgen-cli --version "$WB_VERSION"
fi

# --- System packages: chromium (+ driver) and janus --------------------------
APT_PACKAGES=()
if [[ ! -x /usr/bin/chromium ]]; then
    if [[ -n "${CONVENE_SKIP_CHROMIUM:-}" ]]; then
        log "chromium missing, skipped (CONVENE_SKIP_CHROMIUM set)"
    else
        APT_PACKAGES+=(chromium chromium-driver)
    fi
else
    log "chromium present"
fi
# Janus (a peer SFU): the load tool's Janus smoke run in `npm test`, and `npm run bench`.
if command -v janus >/dev/null 2>&1; then
    log "janus present"
elif [[ -n "${CONVENE_SKIP_CHROMIUM:-}" ]]; then
    log "janus missing, skipped (CONVENE_SKIP_CHROMIUM set: not testing)"
else
    APT_PACKAGES+=(janus)
fi
# Firefox ESR: tests/firefox.test.mjs runs the call in a second browser engine.
if [[ -x /usr/bin/firefox-esr ]]; then
    log "firefox-esr present"
elif [[ -n "${CONVENE_SKIP_CHROMIUM:-}" ]]; then
    log "firefox-esr missing, skipped (CONVENE_SKIP_CHROMIUM set: not testing)"
else
    APT_PACKAGES+=(firefox-esr)
fi
# PostgreSQL: the store suite (server/tests/store.rs) runs against a real one, started
# by the tests themselves in a temp dir on a free loopback port.
if compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || command -v initdb >/dev/null 2>&1; then
    log "postgresql present"
elif [[ -n "${CONVENE_SKIP_CHROMIUM:-}" ]]; then
    log "postgresql missing, skipped (CONVENE_SKIP_CHROMIUM set: not testing)"
else
    APT_PACKAGES+=(postgresql)
fi
# Redis: the cluster tests (server/tests/cluster.rs) run several nodes on a real one,
# each test starting its own redis-server on a free loopback port.
if command -v redis-server >/dev/null 2>&1; then
    log "redis-server present"
elif [[ -n "${CONVENE_SKIP_CHROMIUM:-}" ]]; then
    log "redis-server missing, skipped (CONVENE_SKIP_CHROMIUM set: not testing)"
else
    APT_PACKAGES+=(redis-server)
fi
# coturn: tests/turn.test.mjs relays a call through a real TURN server.
if command -v turnserver >/dev/null 2>&1; then
    log "coturn present"
elif [[ -n "${CONVENE_SKIP_CHROMIUM:-}" ]]; then
    log "coturn missing, skipped (CONVENE_SKIP_CHROMIUM set: not testing)"
else
    APT_PACKAGES+=(coturn)
fi
# tc (iproute2): tests/bandwidth.test.mjs caps one viewer's link on loopback (as root).
if command -v tc >/dev/null 2>&1; then
    log "tc present"
elif [[ -z "${CONVENE_SKIP_CHROMIUM:-}" ]]; then
    APT_PACKAGES+=(iproute2)
fi
# curl: tests/readme.test.mjs runs the README's walkthrough, which uses it.
if command -v curl >/dev/null 2>&1; then
    log "curl present"
elif [[ -z "${CONVENE_SKIP_CHROMIUM:-}" ]]; then
    APT_PACKAGES+=(curl)
fi
if ((${#APT_PACKAGES[@]} > 0)); then
    SUDO=()
    if [[ "$(id -u)" -ne 0 ]]; then
        if command -v sudo >/dev/null 2>&1; then
            SUDO=(sudo)
        else
            echo "ensure: need root or sudo to install: ${APT_PACKAGES[*]}" >&2
            exit 1
        fi
    fi
    log "installing ${APT_PACKAGES[*]} with apt-get"
    "${SUDO[@]}" apt-get update
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y "${APT_PACKAGES[@]}"
fi

# --- npm dependencies ---------------------------------------------------------
# With a lockfile: `npm ci` when node_modules is missing or older than it.
# `npm install` when there is no lockfile yet, or a package.json was edited
# after it (so the lockfile gets updated).
MANIFESTS=(package.json client-wasm/package.json tests/package.json)
manifest_newer_than_lock() {
    local m
    for m in "${MANIFESTS[@]}"; do
        [[ -f "$m" && "$m" -nt package-lock.json ]] && return 0
    done
    return 1
}
if [[ ! -f package-lock.json ]] || manifest_newer_than_lock; then
    log "npm install"
    npm install --no-audit --no-fund
    # Mark lockfile and node_modules as in sync even if npm left them untouched.
    touch package-lock.json
    if [[ -f node_modules/.package-lock.json ]]; then
        touch node_modules/.package-lock.json
    fi
elif [[ ! -f node_modules/.package-lock.json ]] \
    || [[ package-lock.json -nt node_modules/.package-lock.json ]]; then
    log "npm ci"
    npm ci --no-audit --no-fund
else
    log "node_modules up to date"
fi

# --- Disk space -----------------------------------------------------------------
# A run from a clean clone writes about 17 GB under target/ and fuzz/target (debug,
# release, wasm and fuzz builds). Say so up front: a full disk otherwise shows up as a
# linker "Bus error".
FREE_GB="$(df -Pk "$ROOT" | awk 'NR == 2 { printf "%d", $4 / 1048576 }')"
if ((FREE_GB < 20)); then
    log "WARNING: only ${FREE_GB} GB free on the disk holding $ROOT; a full run from scratch writes about 17 GB"
    log "         (free space, or point CARGO_TARGET_DIR at a larger disk)"
else
    log "disk: ${FREE_GB} GB free"
fi
