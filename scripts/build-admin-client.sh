#!/usr/bin/env bash
# Builds `convene-admin`, the typed admin client (admin-client/):
#   --generate  first regenerates admin-client/src/schema.ts from the server's OpenAPI
#               document (`convene openapi`) with openapi-typescript;
#   then tsc compiles it to admin-client/dist, and esbuild bundles it (with
#   openapi-fetch) into www/admin-client.js, which the admin page imports.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BIN=node_modules/.bin

if [[ "${1:-}" == "--generate" ]]; then
    echo "build-admin-client: schema.d.ts from the server's OpenAPI document"
    DOC="$(mktemp --suffix=.json)"
    trap 'rm -f "$DOC"' EXIT
    cargo run -q -p convene-server --bin convene -- openapi >"$DOC"
    "$BIN/openapi-typescript" "$DOC" -o admin-client/src/schema.ts
fi
echo "build-admin-client: tsc -> admin-client/dist"
"$BIN/tsc" -p admin-client
echo "build-admin-client: esbuild -> www/admin-client.js"
"$BIN/esbuild" admin-client/dist/index.js --bundle --format=esm --target=es2022 \
    --minify --log-level=warning --outfile=www/admin-client.js
