#!/usr/bin/env bash
# Builds the browser SDK: Rust -> wasm32 -> wasm-bindgen JS glue (client-wasm/pkg)
# -> wasm-opt -Oz when binaryen is installed, then publishes it to www/sdk/ for the
# demo pages. Works from any directory.
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
# if the module is broken (e.g. miscompiled by wasm-opt).
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

if ! command -v wasm-opt >/dev/null 2>&1; then
    echo "build-sdk: wasm-opt not found (install binaryen); skipping size optimization"
elif ! command -v node >/dev/null 2>&1; then
    echo "build-sdk: node not found, cannot check wasm-opt's output; skipping wasm-opt"
else
    echo "build-sdk: wasm-opt -Oz ($(wasm-opt --version))"
    # No --enable-* flags needed: wasm-opt reads the target_features section
    # rustc emits (bulk-memory, nontrapping-float-to-int, sign-ext,
    # mutable-globals, reference-types, multivalue for Rust 1.95).
    # Its output is smoke-tested: binaryen 108 (Debian 12's) rewrites the export
    # of wasm-bindgen's externref table to point at the funcref table, which
    # only shows up when the module is instantiated.
    OPT_LOG="$(mktemp)"
    if wasm-opt -Oz -o "$WASM_OUT.opt" "$WASM_OUT" 2>"$OPT_LOG" && smoke_test "$WASM_OUT.opt"; then
        mv "$WASM_OUT.opt" "$WASM_OUT"
    else
        rm -f "$WASM_OUT.opt"
        echo "build-sdk: warning: this wasm-opt cannot optimize the module ($(tail -n 1 "$OPT_LOG")); keeping the unoptimized wasm" >&2
    fi
    rm -f "$OPT_LOG"
fi

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
