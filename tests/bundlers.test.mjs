// The npm package as an app developer uses it: a tiny app bundled with esbuild (the
// wasm as a `file` asset, its URL given to `init`), served from another origin than
// the Convene server, joins a call and receives the other member's camera.
import { before, after } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve, extname } from "node:path";
import { execFileSync } from "node:child_process";
import { startServer } from "./lib/server.mjs";
import { launch, eventually, pageSet } from "./lib/browser.mjs";

const ROOT = resolve(import.meta.dirname, "..");
let server;
let browser;
let site;
let out;
const { open, scenario } = pageSet(() => browser);

// What the README tells an esbuild user to write.
const APP = `
import init, { Room } from "convene-sdk";
import wasmUrl from "convene-sdk/convene_sdk_bg.wasm";
await init({ module_or_path: wasmUrl });
const q = new URLSearchParams(location.hash.slice(1));
window.seen = [];
const room = await Room.join({ url: q.get("url"), token: q.get("token"), audio: true, video: true });
room.on("trackAdded", ({ participantId, kind }) => window.seen.push(participantId + ":" + kind));
window.state = room.state;
room.on("stateChanged", ({ state }) => (window.state = state));
`;

before(async () => {
  // Inside the repository, so "convene-sdk" resolves through the npm workspace.
  out = mkdtempSync(join(ROOT, "target", "bundle-esbuild-"));
  writeFileSync(join(out, "app.js"), APP);
  writeFileSync(join(out, "index.html"), '<!doctype html><title>app</title><script type="module" src="dist/app.js"></script>');
  execFileSync(join(ROOT, "node_modules/.bin/esbuild"), [
    join(out, "app.js"), "--bundle", "--format=esm", "--loader:.wasm=file", "--public-path=/dist", `--outdir=${join(out, "dist")}`, "--log-level=warning",
  ]);
  const types = { ".html": "text/html", ".js": "text/javascript", ".wasm": "application/wasm" };
  site = createServer((req, res) => {
    const path = join(out, new URL(req.url, "http://x").pathname);
    try {
      const body = readFileSync(path.endsWith("/") ? join(path, "index.html") : path);
      res.writeHead(200, { "Content-Type": types[extname(path) || ".html"] ?? "application/octet-stream" });
      res.end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise((ok) => site.listen(0, "127.0.0.1", ok));
  server = await startServer();
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await server?.stop();
  site?.close();
  if (out) rmSync(out, { recursive: true, force: true });
});

scenario("an app bundled with esbuild, on another origin, joins a call", async () => {
  await server.api("POST", "/v1/rooms", { id: "bundled", participants: { ann: {}, ben: {} } });
  const appUrl = `http://localhost:${site.address().port}/`;
  assert.notEqual(new URL(appUrl).origin, new URL(server.url).origin);
  const pages = {};
  for (const user of ["ann", "ben"]) {
    const { token } = await server.api("POST", "/v1/rooms/bundled/tokens", { userId: user });
    pages[user] = await open(`${user}-esbuild`, `${appUrl}#url=${encodeURIComponent(server.url)}&token=${token}`);
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
