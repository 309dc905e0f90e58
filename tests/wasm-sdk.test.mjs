// Loads the wasm-bindgen build of the SDK (client-wasm/pkg, made by
// scripts/build-sdk.sh) in Node and calls into it: proves the whole wasm
// toolchain (cargo -> wasm-bindgen -> JS glue) produces a working module.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const repoRoot = fileURLToPath(new URL('..', import.meta.url));
const pkgDir = new URL('../client-wasm/pkg/', import.meta.url);
const jsUrl = new URL('convene_sdk.js', pkgDir);
const wasmUrl = new URL('convene_sdk_bg.wasm', pkgDir);

/** The `version` of a `[package]` / `[workspace.package]` table in a Cargo.toml. */
function tomlTableVersion(path, table) {
  let current = null;
  for (const raw of readFileSync(path, 'utf8').split('\n')) {
    const line = raw.trim();
    const header = line.match(/^\[([^\]]+)\]$/);
    if (header) {
      current = header[1].trim();
    } else if (current === table) {
      const m = line.match(/^version\s*=\s*"([^"]+)"/);
      if (m) return m[1];
      if (/^version\.workspace\s*=\s*true/.test(line)) return { workspace: true };
    }
  }
  return undefined;
}

/** client-wasm's Cargo package version, following `version.workspace = true`. */
function sdkCrateVersion() {
  const own = tomlTableVersion(`${repoRoot}client-wasm/Cargo.toml`, 'package');
  if (typeof own === 'string') return own;
  return tomlTableVersion(`${repoRoot}Cargo.toml`, 'workspace.package');
}

let sdk;

before(async () => {
  for (const url of [jsUrl, wasmUrl]) {
    if (!existsSync(url)) {
      throw new Error(`${fileURLToPath(url)} is missing; build it with \`npm run build\` (scripts/build-sdk.sh)`);
    }
  }
  sdk = await import(jsUrl.href);
  const bytes = readFileSync(wasmUrl);
  sdk.initSync({ module: bytes });
});

test('version() is the client-wasm crate version', () => {
  const expected = sdkCrateVersion();
  assert.equal(typeof expected, 'string', 'could not read the convene-sdk version from Cargo.toml');
  assert.equal(sdk.version(), expected);
});

test('protocolVersion() is convene_protocol::PROTOCOL_VERSION', () => {
  assert.equal(sdk.protocolVersion(), 1);
});

test('the npm package version matches the crate version', () => {
  const pkg = JSON.parse(readFileSync(`${repoRoot}client-wasm/package.json`, 'utf8'));
  assert.equal(pkg.version, sdkCrateVersion());
});

test('the npm tarball has the README, the LICENSE, the glue, the types and the wasm', async () => {
  const { execFileSync } = await import('node:child_process');
  const json = execFileSync('npm', ['pack', '--dry-run', '--json', '-w', 'convene-sdk'], {
    cwd: repoRoot, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'],
  });
  const files = JSON.parse(json)[0].files.map((f) => f.path).sort();
  assert.deepEqual(files, [
    'LICENSE', 'README.md', 'package.json', 'pkg/convene_sdk.d.ts', 'pkg/convene_sdk.js',
    'pkg/convene_sdk_bg.wasm', 'pkg/convene_sdk_bg.wasm.d.ts',
  ]);
  const pkg = JSON.parse(readFileSync(`${repoRoot}client-wasm/package.json`, 'utf8'));
  assert.equal(pkg.exports['./convene_sdk_bg.wasm'], './pkg/convene_sdk_bg.wasm', 'bundlers need the wasm as a subpath');
});
