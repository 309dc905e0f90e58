// The npm package as an app developer uses it: a tiny app bundled with esbuild, with
// Vite and with webpack, each as the SDK's README says (the wasm as an asset, its URL
// given to `init`), served from another origin than the Convene server, joins a call
// and receives the other member's camera. A bundler that prints anything but its
// success line (a warning) fails its scenario.
import { before, after } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve, extname } from "node:path";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { startServer } from "./lib/server.mjs";
import { launch, eventually, pageSet } from "./lib/browser.mjs";

const ROOT = resolve(import.meta.dirname, "..");
const BIN = join(ROOT, "node_modules/.bin");
let server;
let browser;
const sites = [];
const outs = [];
const { open, scenario } = pageSet(() => browser);

// The app, the same for every bundler but for the line that gets the wasm's URL.
const app = (wasmImport) => `
import init, { Room } from "convene-sdk";
${wasmImport}
await init({ module_or_path: wasmUrl });
const q = new URLSearchParams(location.hash.slice(1));
window.seen = [];
const room = await Room.join({ url: q.get("url"), token: q.get("token"), audio: true, video: true });
room.on("trackAdded", ({ participantId, kind }) => window.seen.push(participantId + ":" + kind));
window.state = room.state;
room.on("stateChanged", ({ state }) => (window.state = state));
`;
const html = (script) => `<!doctype html><title>app</title>${script}`;

// What the README tells each bundler's user to write, the command that builds it (run in
// the app's folder), what it prints on success, and the folder to serve.
const BUNDLERS = {
  esbuild: {
    files: {
      "app.js": app(`import wasmUrl from "convene-sdk/convene_sdk_bg.wasm";`),
      "index.html": html('<script type="module" src="dist/app.js"></script>'),
    },
    build: ["esbuild", "app.js", "--bundle", "--format=esm", "--loader:.wasm=file", "--public-path=/dist", "--outdir=dist", "--log-level=warning"],
    serve: ".",
  },
  vite: {
    // No config: `vite build` takes index.html and writes dist/ (the wasm in dist/assets/).
    files: {
      "app.js": app(`import wasmUrl from "convene-sdk/convene_sdk_bg.wasm?url";`),
      "index.html": html('<script type="module" src="/app.js"></script>'),
    },
    build: ["vite", "build", "--logLevel", "warn"],
    serve: "dist",
  },
  webpack: {
    // webpack's defaults: ./dist/main.js, its public path found from its <script>.
    files: {
      "app.js": app(`import wasmUrl from "convene-sdk/convene_sdk_bg.wasm";`),
      "webpack.config.mjs": `export default {
  mode: "production",
  entry: "./app.js",
  module: { rules: [{ test: /\\.wasm$/, type: "asset/resource" }] },
  // The wasm (~500 kB) is fetched by init(), not one of the entry's scripts.
  performance: { assetFilter: (file) => !file.endsWith(".wasm") },
};
`,
      "index.html": html('<script src="dist/main.js"></script>'),
    },
    build: ["webpack", "--stats=errors-warnings", "--fail-on-warnings"],
    printed: "webpack compiled successfully",
    serve: ".",
  },
};

const TYPES = { ".html": "text/html", ".js": "text/javascript", ".wasm": "application/wasm" };

/** A static site serving `dir` on its own port; resolves with its URL. */
async function serveDir(dir) {
  const site = createServer((req, res) => {
    const path = join(dir, new URL(req.url, "http://x").pathname);
    try {
      const body = readFileSync(path.endsWith("/") ? join(path, "index.html") : path);
      res.writeHead(200, { "Content-Type": TYPES[extname(path) || ".html"] ?? "application/octet-stream" });
      res.end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  sites.push(site);
  await new Promise((ok) => site.listen(0, "127.0.0.1", ok));
  return `http://localhost:${site.address().port}/`;
}

/** Writes `bundler`'s app in a new folder, builds it, serves it; resolves with its URL. */
async function bundle(bundler) {
  const { files, build: [cmd, ...args], printed = "", serve } = BUNDLERS[bundler];
  // Inside the repository, so "convene-sdk" resolves through the npm workspace.
  const out = mkdtempSync(join(ROOT, "target", `bundle-${bundler}-`));
  outs.push(out);
  for (const [name, text] of Object.entries(files)) writeFileSync(join(out, name), text);
  let output;
  try {
    const { stdout, stderr } = await promisify(execFile)(join(BIN, cmd), args, { cwd: out, env: { ...process.env, NO_COLOR: "1" } });
    output = stdout + stderr;
  } catch (e) {
    throw new Error(`${bundler} failed (${e.message.split("\n")[0]}):\n${e.stdout}${e.stderr}`);
  }
  assert.equal(output.trim(), printed, `${bundler} printed more than its success line`);
  return serveDir(join(out, serve));
}

before(async () => {
  server = await startServer();
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await server?.stop();
  for (const site of sites) site.close();
  for (const out of outs) rmSync(out, { recursive: true, force: true });
});

for (const bundler of Object.keys(BUNDLERS)) {
  scenario(`an app bundled with ${bundler}, on another origin, joins a call`, async () => {
    const appUrl = await bundle(bundler);
    assert.notEqual(new URL(appUrl).origin, new URL(server.url).origin);
    const id = `bundled-${bundler}`;
    await server.api("POST", "/v1/rooms", { id, participants: { ann: {}, ben: {} } });
    const pages = {};
    for (const user of ["ann", "ben"]) {
      const { token } = await server.api("POST", `/v1/rooms/${id}/tokens`, { userId: user });
      pages[user] = await open(`${user}-${bundler}`, `${appUrl}#url=${encodeURIComponent(server.url)}&token=${token}`);
    }
    for (const [user, other] of [["ann", "ben"], ["ben", "ann"]]) {
      const page = pages[user];
      await eventually(`${user} is connected`, async () => (await page.evaluate(() => window.state)) === "connected" || (await page.evaluate(() => window.state)));
      await eventually(`${user} receives ${other}'s video`, async () => {
        const seen = await page.evaluate(() => window.seen);
        return seen.includes(`${other}:video`) || JSON.stringify(seen);
      }, 30_000);
    }
  });
}
