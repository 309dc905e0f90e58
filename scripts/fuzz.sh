#!/usr/bin/env bash
# Runs each fuzz target (fuzz/fuzz_targets: the signaling decoder, the session core's
# input handling, the join-token parser) for a bounded time with cargo-fuzz on a
# nightly toolchain, starting from the seeds in fuzz/seeds/. Installs the nightly
# toolchain and cargo-fuzz when missing. A crash fails the run and leaves its input in
# fuzz/artifacts/<target>/ (reproduce: cargo +nightly fuzz run <target> <file>).
#
#   bash scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]    (default: 10, all)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
SECONDS_PER_TARGET="${1:-10}"
shift || true
TARGETS=("$@")
if ((${#TARGETS[@]} == 0)); then
    TARGETS=(signal_decode session_input token_parse)
fi
# Pinned so a fresh machine builds what was tested.
NIGHTLY="${CONVENE_FUZZ_TOOLCHAIN:-nightly-2026-05-20}"
CARGO_FUZZ_VERSION="0.13.2"

log() { echo "fuzz: $*"; }

if ! rustup run "$NIGHTLY" rustc --version >/dev/null 2>&1; then
    log "installing the $NIGHTLY toolchain (minimal)"
    rustup toolchain install "$NIGHTLY" --profile minimal
fi
if ! cargo fuzz --version 2>/dev/null | grep -q "$CARGO_FUZZ_VERSION"; then
    log "installing cargo-fuzz $CARGO_FUZZ_VERSION"
    cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked
fi

# A debug build without sanitizers: the targets are safe Rust, where a panic is the
# bug to find, and it builds in a fraction of the time of an optimized ASan build.
FLAGS=(--dev --sanitizer none)
log "building the targets"
cargo "+$NIGHTLY" fuzz build "${FLAGS[@]}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
for t in "${TARGETS[@]}"; do
    mkdir -p "$WORK/$t"
    log "running $t for ${SECONDS_PER_TARGET}s"
    out="$WORK/$t.log"
    if ! cargo "+$NIGHTLY" fuzz run "${FLAGS[@]}" "$t" "$WORK/$t" "fuzz/seeds/$t" -- \
        -max_total_time="$SECONDS_PER_TARGET" -rss_limit_mb=2048 -print_final_stats=1 \
        >"$out" 2>&1; then
        tail -n 40 "$out"
        log "$t FAILED; the input is in fuzz/artifacts/$t/"
        exit 1
    fi
    runs="$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$out" | grep -o '[0-9]*$' || echo '?')"
    cov="$(grep -o 'cov: [0-9]*' "$out" | tail -n 1 || true)"
    log "$t: $runs inputs, no crash ($cov)"
done
