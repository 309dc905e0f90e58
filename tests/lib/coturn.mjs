// A real coturn (Debian's `turnserver`) on loopback for the TURN tests: a free port,
// a temp dir for its database and log, the TURN REST API scheme (`use-auth-secret`)
// with the given secret, relaying to loopback peers (the Convene server is one).
// Stopped by `stop()`, and killed with this process if the test runner dies.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createSocket } from "node:dgram";
import { createServer } from "node:net";

/** A port free for both UDP and TCP on 127.0.0.1 (coturn listens on both). */
async function freePort() {
  for (;;) {
    const port = 20000 + Math.floor(Math.random() * 20000);
    const udp = createSocket("udp4");
    const tcp = createServer();
    const ok = await new Promise((done) => {
      udp.once("error", () => done(false));
      udp.bind(port, "127.0.0.1", () => {
        tcp.once("error", () => done(false));
        tcp.listen(port, "127.0.0.1", () => done(true));
      });
    });
    await new Promise((r) => { try { udp.close(r); } catch { r(); } });
    await new Promise((r) => tcp.close(() => r()));
    if (ok) return port;
  }
}

export async function startCoturn({ secret }) {
  const dir = mkdtempSync(join(tmpdir(), "convene-coturn-"));
  const port = await freePort();
  // Relay ports: a block of 200 above a random base, inside 40000-59999.
  const min = 40000 + Math.floor(Math.random() * 99) * 200;
  const log = join(dir, "turn.log");
  const child = spawn("turnserver", [
    "-n", // no config file: everything is on this line
    "--listening-ip=127.0.0.1", `--listening-port=${port}`, "--relay-ip=127.0.0.1",
    `--min-port=${min}`, `--max-port=${min + 199}`,
    "--use-auth-secret", `--static-auth-secret=${secret}`, "--realm=convene.test",
    "--allow-loopback-peers", "--no-cli", "--no-tls", "--no-dtls", "--fingerprint",
    `--userdb=${join(dir, "turndb")}`, `--pidfile=${join(dir, "turn.pid")}`,
    `--log-file=${log}`, "--simple-log", "--verbose",
  ], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (d) => { stderr += d; });
  const killNow = () => child.kill("SIGKILL");
  process.once("exit", killNow);
  const readLog = () => { try { return readFileSync(log, "utf8"); } catch { return ""; } };
  await new Promise((ok, fail) => {
    const end = Date.now() + 15_000;
    const poll = () => {
      if (child.exitCode !== null) return fail(new Error(`turnserver exited (${child.exitCode}): ${stderr}${readLog()}`));
      // Listening: a TCP connect to the port succeeds.
      const probe = createServer();
      probe.once("error", () => ok());
      probe.listen(port, "127.0.0.1", () => probe.close(() => {
        if (Date.now() > end) fail(new Error(`turnserver did not listen on ${port} in 15 s: ${readLog()}`));
        else setTimeout(poll, 100);
      }));
    };
    poll();
  });
  return {
    url: `turn:127.0.0.1:${port}?transport=udp`,
    log: readLog,
    async stop() {
      process.removeListener("exit", killNow);
      child.kill("SIGTERM");
      await new Promise((ok) => { if (child.exitCode !== null) ok(); else child.on("exit", ok); setTimeout(() => { child.kill("SIGKILL"); ok(); }, 5000); });
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
