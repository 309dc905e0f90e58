#!/usr/bin/env bash
# Builds the browser SDK: Rust -> wasm32 -> wasm-bindgen JS glue (client-wasm/pkg),
# checks that the module loads, then publishes it to www/sdk/ for the demo pages.
# Works from any directory.
#
# No wasm-opt: rustc already builds the module with opt-level "z", LTO and one codegen
# unit. Measured on this module (2026-12): binaryen 132 (npm) -Oz takes 20 s and cuts
# 471,461 bytes to 410,705 but the gzipped size grows, 152,540 -> 156,209, which is
# what browsers download; Debian 12's binaryen 108 breaks the module (it rewrites the
# export of wasm-bindgen's externref table).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

OUT_DIR=client-wasm/pkg
WASM_IN=target/wasm32-unknown-unknown/sdk-release/convene_sdk.wasm
WASM_OUT="$OUT_DIR/convene_sdk_bg.wasm"

echo "build-sdk: cargo build (wasm32, profile sdk-release)"
cargo build -p convene-sdk --target wasm32-unknown-unknown --profile sdk-release

echo "build-sdk: wasm-bindgen --target web -> $OUT_DIR"
wasm-bindgen --target web --remove-name-section --remove-producers-section \
    --out-dir "$OUT_DIR" --out-name convene_sdk "$WASM_IN"

# Instantiates a wasm file with the generated JS glue and calls into it; fails
# if the module is broken.
smoke_test() {
    node --input-type=module -e '
        import { readFileSync } from "node:fs";
        import { pathToFileURL } from "node:url";
        const [glue, wasmFile] = process.argv.slice(1);
        try {
            const sdk = await import(pathToFileURL(glue).href);
            sdk.initSync({ module: readFileSync(wasmFile) });
            if (typeof sdk.version === "function") sdk.version();
        } catch (e) {
            console.error(`build-sdk: ${wasmFile} does not load: ${e.message}`);
            process.exit(1);
        }
    ' "$OUT_DIR/convene_sdk.js" "$1"
}

smoke_test "$WASM_OUT"

RAW_SIZE="$(wc -c <"$WASM_OUT")"
GZ_SIZE="$(gzip -c "$WASM_OUT" | wc -c)"
echo "build-sdk: $WASM_OUT: $RAW_SIZE bytes, $GZ_SIZE bytes gzipped"

# The demo and admin pages load the SDK from /sdk/ (www/sdk is not committed).
rm -rf www/sdk
mkdir -p www/sdk
cp -R "$OUT_DIR"/. www/sdk/
echo "build-sdk: copied $OUT_DIR/ to www/sdk/"

# The admin page's typed client (convene-admin), bundled to www/admin-client.js.
bash scripts/build-admin-client.sh
