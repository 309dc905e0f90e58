// Starts a real Convene server on 127.0.0.1:0 (media on a UDP port the OS picks) with a temporary data dir and the www/
// pages, and gives its URL and admin key. The binary comes from CONVENE_BIN (set by
// scripts/test.sh) or the debug build.
import { spawn } from "node:child_process";
import { appendFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { randomBytes } from "node:crypto";

const ROOT = resolve(import.meta.dirname, "../..");

/**
 * `args`: more `convene serve` flags, e.g. the ICE servers and TURN secret; `env`: more
 * environment, e.g. a node's database and Redis; `adminKey`: one shared by several nodes.
 */
export async function startServer({ args = [], env = {}, adminKey = randomBytes(24).toString("hex") } = {}) {
  const bin = process.env.CONVENE_BIN || join(ROOT, "target/debug/convene");
  const dataDir = mkdtempSync(join(tmpdir(), "convene-e2e-"));
  const child = spawn(bin, ["serve", "--listen", "127.0.0.1:0", "--data-dir", dataDir, "--www-dir", join(ROOT, "www"), ...args], {
    // Media on a port the OS picks: a fixed port is one server's alone, and tests (or
    // a server started by hand) may run side by side.
    env: { ...process.env, CONVENE_ADMIN_KEY: adminKey, CONVENE_MEDIA_PORT: "0", RUST_LOG: process.env.RUST_LOG || "warn", ...env },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let log = "";
  const url = await new Promise((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`the server did not start in 30 s:\n${log}`)), 30_000);
    child.stderr.on("data", (d) => {
      log += d;
      // E2E_SERVER_LOG=<file>: the server's log kept there too (with CONVENE_LOG to pick).
      if (process.env.E2E_SERVER_LOG) appendFileSync(process.env.E2E_SERVER_LOG, d);
      const m = /serving on (http:\/\/[0-9.:]+)/.exec(log);
      if (m) { clearTimeout(timer); ok(m[1]); }
    });
    child.on("exit", (code) => { clearTimeout(timer); fail(new Error(`the server exited (${code}):\n${log}`)); });
  });
  const api = async (method, path, body) => {
    const res = await fetch(url + path, {
      method,
      headers: { Authorization: `Bearer ${adminKey}`, "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    const data = text ? JSON.parse(text) : null;
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
    return data;
  };
  return {
    url,
    adminKey,
    api,
    log: () => log,
    async stop() {
      child.kill("SIGINT");
      await new Promise((ok) => { if (child.exitCode !== null) ok(); else child.on("exit", ok); setTimeout(() => { child.kill("SIGKILL"); ok(); }, 5000); });
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
