// The README's "Five-minute admin walkthrough", run as written: every `sh` block and
// every `$ ` line of the `console` block, in order, in one bash session, against a real
// server started the way `npm start` starts it (in an empty directory, no admin key given,
// so it generates one in ./convene-data). Each command's output must match the block the
// README shows after it, once times, ids and tokens are masked. The startup banner the
// README quotes is checked too. To refresh the README after a change to the API, run
// with README_DUMP=<file>: it writes each command and what the server printed.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";

const ROOT = resolve(import.meta.dirname, "..");
const BIN = process.env.CONVENE_BIN || join(ROOT, "target/debug/convene");
const README = readFileSync(join(ROOT, "README.md"), "utf8");

/** The fenced blocks of `text`: {lang, body}. */
function blocks(text) {
  const out = [];
  const re = /^```(\w*)\n([\s\S]*?)^```$/gm;
  for (let m; (m = re.exec(text)); ) out.push({ lang: m[1], body: m[2].replace(/\n$/, "") });
  return out;
}

/** The README section from `heading` to the next heading of the same level. */
function section(heading) {
  const start = README.indexOf(`\n${heading}\n`);
  assert.ok(start >= 0, `the README has no "${heading}"`);
  const level = heading.split(" ")[0];
  const next = README.indexOf(`\n${level} `, start + heading.length + 2);
  return README.slice(start, next < 0 ? undefined : next);
}

/** Commands and the outputs the README shows for them, in order. */
function walkthrough() {
  const steps = [];
  const bs = blocks(section("## Five-minute admin walkthrough"));
  for (let i = 0; i < bs.length; i++) {
    const b = bs[i];
    if (b.lang === "sh") {
      const next = bs[i + 1];
      const shown = next && (next.lang === "json" || next.lang === "") ? next.body : null;
      if (shown !== null) i++;
      steps.push({ command: b.body, expected: shown });
    } else if (b.lang === "console") {
      // `$ ` starts a command, lines after a trailing `\` continue it, the rest is output.
      let cur = null;
      let continued = false;
      for (const line of b.body.split("\n")) {
        if (continued) {
          cur.command += "\n" + line;
          continued = line.endsWith("\\");
        } else if (line.startsWith("$ ")) {
          cur = { command: line.slice(2), expected: [] };
          steps.push(cur);
          continued = line.endsWith("\\");
        } else if (cur) {
          cur.expected.push(line);
        }
      }
      for (const s of steps) if (Array.isArray(s.expected)) s.expected = s.expected.join("\n").trim();
    }
  }
  return steps;
}

/** What differs from run to run, masked; table columns collapsed to one space. */
function mask(text, url) {
  return text
    .replaceAll("\r", "")
    .replaceAll(url, "http://127.0.0.1:7880")
    .replace(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z/g, "<time>")
    .replace(/eyJ[\w.-]*…?/g, "<token>")
    .replace(/\bt_[a-z0-9]+/g, "<token-id>")
    .replace(/\breq_[a-z0-9]+/g, "<request-id>")
    .split("\n")
    .map((l) => l.trim().replace(/\s+/g, " "))
    .filter((l) => l !== "");
}

/** Whether `actual` lines match `expected` lines, where an expected `…` matches any run. */
function matches(expected, actual) {
  const parts = [[]];
  for (const l of expected) (l === "…" ? parts.push([]) : parts.at(-1).push(l));
  let at = 0;
  for (const [k, part] of parts.entries()) {
    if (part.length === 0) continue;
    const from = k === 0 ? at : actual.findIndex((_, j) => j >= at && part.every((l, n) => actual[j + n] === l));
    if (from < 0 || part.some((l, n) => actual[from + n] !== l)) return false;
    at = from + part.length;
  }
  return parts.at(-1).length === 0 || at === actual.length;
}

let dir;
let server;
let url;
let banner = "";

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "convene-readme-"));
  const env = { ...process.env };
  delete env.CONVENE_ADMIN_KEY;
  server = spawn(BIN, ["serve", "--listen", "127.0.0.1:0", "--www-dir", join(ROOT, "www")], {
    cwd: dir, env, stdio: ["ignore", "ignore", "pipe"],
  });
  url = await new Promise((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`the server did not start:\n${banner}`)), 30_000);
    server.stderr.on("data", (d) => {
      banner += d;
      const m = /serving on (http:\/\/[0-9.:]+)/.exec(banner);
      if (m && /--key-dir/.test(banner)) { clearTimeout(timer); ok(m[1]); }
    });
    server.on("exit", (c) => fail(new Error(`the server exited (${c}):\n${banner}`)));
  });
});

after(async () => {
  server?.kill("SIGINT");
  await new Promise((ok) => (server?.exitCode !== null ? ok() : server.on("exit", ok)));
  rmSync(dir, { recursive: true, force: true });
});

test("the README's startup banner is what the server prints", () => {
  // The first block after the sentence that introduces it (wrapped anywhere).
  const at = README.search(/says\s+where\s+it\s+put\s+it:/);
  assert.ok(at >= 0, "the README introduces the banner with 'says where it put it:'");
  const shown = blocks(README.slice(at))[0].body;
  const printed = banner.split("\n").filter((l) => l.startsWith("convene: ")).join("\n");
  assert.deepEqual(mask(printed, url), mask(shown, url));
});

test("the README's admin walkthrough runs as written and prints what it shows", () => {
  const steps = walkthrough();
  assert.ok(steps.length >= 20, `only ${steps.length} commands found`);
  // One bash session, so the walkthrough's variables carry from block to block. The
  // CLI is found on PATH as the README arranges it (here: the binary under test).
  const script = steps
    .map((s, i) => `echo "@@@${i}"\n{\n${s.command.replaceAll("http://127.0.0.1:7880", url)}\n} 2>&1\necho\n`)
    .join("");
  // stderr is read too (2>&1): the CLI says refusals and token details there.
  const env = { ...process.env, PATH: `${dirname(BIN)}:${process.env.PATH}`, CONVENE_URL: url };
  delete env.CONVENE_ADMIN_KEY;
  const out = execFileSync("bash", ["-c", script], { cwd: dir, encoding: "utf8", env, stdio: ["ignore", "pipe", "inherit"] });
  const outputs = out.split(/^@@@\d+\n/m).slice(1);
  if (process.env.README_DUMP) writeFileSync(process.env.README_DUMP, JSON.stringify(outputs.map((o, i) => [steps[i].command, o]), null, 1));
  assert.equal(outputs.length, steps.length);
  steps.forEach((s, i) => {
    if (s.expected === null) return;
    const want = mask(s.expected, url);
    const got = mask(outputs[i], url);
    assert.ok(matches(want, got), `README command:\n${s.command}\nREADME shows:\n${want.join("\n")}\nthe server printed:\n${got.join("\n")}`);
  });
});
