// How soon a new viewer sees video: `node bench/first-frame.mjs [JOINS=10]`.
// A real server (CONVENE_BIN, default the release build) and headless Chromium with a
// fake camera; one publisher joins through the join page, then JOINS viewers (receive-
// only: no pre-join screen), one after another, each on a fresh page. For each viewer,
// milliseconds from the page's navigation start to: the signaling socket open, `joined`,
// the receiving peer connection connected, and the publisher's first video frame shown
// (requestVideoFrameCallback). Prints each join and the medians as JSON.
import { resolve } from "node:path";

const ROOT = resolve(import.meta.dirname, "..");
process.env.CONVENE_BIN ||= resolve(ROOT, "target/release/convene");
const { startServer } = await import(resolve(ROOT, "tests/lib/server.mjs"));
const { launch, newPage, joinPastPrejoin } = await import(resolve(ROOT, "tests/lib/browser.mjs"));

const JOINS = Number(process.argv[2] || 10);

// In every page: marks on the page's own clock (0 = navigation start).
const MARKS = () => {
  window.__marks = {};
  const mark = (name) => { if (!(name in window.__marks)) window.__marks[name] = performance.now(); };
  const NativeWs = window.WebSocket;
  window.WebSocket = class extends NativeWs {
    constructor(...args) {
      super(...args);
      this.addEventListener("open", () => mark("socketOpen"));
      this.addEventListener("message", (e) => { if (String(e.data).includes('"type":"joined"')) mark("joined"); });
    }
  };
  const NativePc = window.RTCPeerConnection;
  window.RTCPeerConnection = class extends NativePc {
    constructor(...args) {
      super(...args);
      this.addEventListener("connectionstatechange", () => { if (this.connectionState === "connected") mark("pcConnected"); });
    }
  };
  new MutationObserver(() => {
    for (const v of document.querySelectorAll("video:not([data-watched])")) {
      v.dataset.watched = "1";
      const tile = v.closest("[data-tile]");
      if (tile?.dataset.tile !== "pub:camera") continue;
      v.requestVideoFrameCallback(() => mark("firstFrame"));
    }
  }).observe(document, { childList: true, subtree: true });
};

const server = await startServer();
const browser = await launch();
try {
  const participants = { pub: { role: "attendee" } };
  for (let i = 0; i < JOINS; i++) participants[`v${i}`] = { role: "consumer" };
  await server.api("POST", "/v1/rooms", { id: "first-frame", participants });
  const token = async (userId) => (await server.api("POST", "/v1/rooms/first-frame/tokens", { userId })).token;
  const pub = await newPage(browser, "pub");
  await pub.goto(`${server.url}/join#token=${await token("pub")}`);
  await joinPastPrejoin(pub);
  await pub.waitForFunction(() => document.querySelector("#state")?.textContent === "connected");
  // The publisher's camera is flowing before the first viewer comes.
  await new Promise((r) => setTimeout(r, 3000));
  const runs = [];
  for (let i = 0; i < JOINS; i++) {
    const context = await browser.newContext({ permissions: ["camera", "microphone"] });
    await context.addInitScript(MARKS);
    const page = await context.newPage();
    await page.goto(`${server.url}/join#token=${await token(`v${i}`)}`);
    await page.waitForFunction(() => "firstFrame" in window.__marks, null, { timeout: 20_000 });
    const marks = await page.evaluate(() => {
      const m = { ...window.__marks };
      const nav = performance.getEntriesByType("navigation")[0];
      if (nav) m.domContentLoaded = nav.domContentLoadedEventEnd;
      for (const r of performance.getEntriesByType("resource")) {
        const name = r.name.split("/").pop().split("?")[0];
        if (/\.(wasm|js)$/.test(name) || name.startsWith("rtc")) m[`loaded ${name}`] = r.responseEnd;
      }
      return m;
    });
    runs.push(Object.fromEntries(Object.entries(marks).map(([k, v]) => [k, Math.round(v)])));
    console.error(`viewer ${i}: ${JSON.stringify(runs.at(-1))}`);
    await context.close();
  }
  const median = (k) => {
    const v = runs.map((r) => r[k]).sort((a, b) => a - b);
    return v[Math.floor(v.length / 2)];
  };
  const { execFileSync } = await import("node:child_process");
  const commit = execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: ROOT }).toString().trim();
  console.log(JSON.stringify({
    joins: JOINS,
    commit,
    medianMs: Object.fromEntries(["socketOpen", "joined", "pcConnected", "firstFrame"].map((k) => [k, median(k)])),
    runs,
  }, null, 1));
} finally {
  await browser.close();
  await server.stop();
}
