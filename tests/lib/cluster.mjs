// What several Convene nodes share, for the tests that run more than one: a real
// redis-server and a real PostgreSQL (Debian's packages), each in a temp dir on a free
// loopback port, stopped by `stop()`, or when this process exits without calling it
// (its `exit` event; a runner killed with SIGKILL leaves them running, as with coturn).
// PostgreSQL refuses to run as root: as root, it runs as the `postgres` user.
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, readdirSync, existsSync, chownSync } from "node:fs";
import { createServer, createConnection } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

async function freePort() {
  const srv = createServer();
  await new Promise((ok) => srv.listen(0, "127.0.0.1", ok));
  const { port } = srv.address();
  await new Promise((ok) => srv.close(ok));
  return port;
}

/** Resolves once something accepts TCP connections on 127.0.0.1:`port`. */
async function listening(port, what, child, ms = 20_000) {
  const end = Date.now() + ms;
  for (;;) {
    if (child && child.exitCode !== null) throw new Error(`${what} exited (${child.exitCode})`);
    const up = await new Promise((ok) => {
      const s = createConnection({ host: "127.0.0.1", port });
      s.once("connect", () => { s.destroy(); ok(true); });
      s.once("error", () => ok(false));
    });
    if (up) return;
    if (Date.now() > end) throw new Error(`${what} did not listen on ${port} in ${ms / 1000} s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export async function startRedis() {
  const dir = mkdtempSync(join(tmpdir(), "convene-redis-"));
  const port = await freePort();
  const child = spawn("redis-server", [
    "--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir,
  ], { stdio: "ignore" });
  const killNow = () => child.kill("SIGKILL");
  process.once("exit", killNow);
  await listening(port, "redis-server", child);
  return {
    url: `redis://127.0.0.1:${port}`,
    async stop() {
      process.removeListener("exit", killNow);
      child.kill("SIGTERM");
      await new Promise((ok) => { if (child.exitCode !== null) ok(); else child.on("exit", ok); setTimeout(ok, 5000); });
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Debian's newest PostgreSQL's programs. */
function pgBin() {
  const base = "/usr/lib/postgresql";
  const versions = existsSync(base) ? readdirSync(base).filter((v) => existsSync(join(base, v, "bin/initdb"))) : [];
  if (!versions.length) throw new Error("PostgreSQL is not installed (Debian package postgresql)");
  versions.sort((a, b) => Number(b) - Number(a));
  return join(base, versions[0], "bin");
}

export async function startPostgres() {
  const bin = pgBin();
  const dir = mkdtempSync(join(tmpdir(), "convene-pg-"));
  const asRoot = process.getuid() === 0;
  const run = (prog, args) => asRoot ? ["runuser", ["-u", "postgres", "--", join(bin, prog), ...args]] : [join(bin, prog), args];
  if (asRoot) {
    const uid = Number(execFileSync("id", ["-u", "postgres"]).toString());
    const gid = Number(execFileSync("id", ["-g", "postgres"]).toString());
    chownSync(dir, uid, gid);
  }
  const data = join(dir, "data");
  execFileSync(...run("initdb", ["-D", data, "-U", "convene", "-A", "trust", "-E", "UTF8", "--locale=C"]), { stdio: "ignore" });
  const port = await freePort();
  const pgCtl = (args) => execFileSync(...run("pg_ctl", ["-D", data, ...args]), { stdio: "ignore" });
  pgCtl(["-l", join(dir, "pg.log"), "-w", "-o",
    `-p ${port} -c listen_addresses=127.0.0.1 -c unix_socket_directories=${dir} -c fsync=off`, "start"]);
  const stopNow = () => { try { pgCtl(["-m", "immediate", "stop"]); } catch { /* already stopped */ } };
  process.once("exit", stopNow);
  execFileSync(...run("createdb", ["-h", "127.0.0.1", "-p", String(port), "-U", "convene", "convene"]), { stdio: "pipe" });
  return {
    url: `postgres://convene@127.0.0.1:${port}/convene`,
    async stop() {
      process.removeListener("exit", stopNow);
      try { pgCtl(["-m", "fast", "-w", "stop"]); } catch { stopNow(); }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
