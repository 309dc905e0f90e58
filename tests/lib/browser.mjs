// Headless Debian Chromium with a fake camera and microphone, one context per person.
// Each page records its RTCPeerConnections and WebSockets (see RECORD).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { startServer } from "./server.mjs";

export const ARTIFACTS = resolve(import.meta.dirname, "../artifacts");

const ARGS = [
  "--no-sandbox", "--disable-gpu", "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
  "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
  // Required where loopback is the only interface: otherwise no ICE candidates at all.
  "--allow-loopback-in-peer-connection",
  "--autoplay-policy=no-user-gesture-required",
  // getDisplayMedia picks the whole (virtual) screen without a picker.
  "--auto-select-desktop-capture-source=Entire",
];

export async function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: ARGS,
    ignoreDefaultArgs: ["--mute-audio"],
  });
}

// Records the page's peer connections and WebSockets (the real ones, subclassed) so a
// test can read media stats and drop the signaling connection.
export const RECORD = () => {
  const NativePc = window.RTCPeerConnection;
  window.__pcs = [];
  window.RTCPeerConnection = class extends NativePc {
    constructor(...args) { super(...args); window.__pcs.push(this); }
  };
  const NativeWs = window.WebSocket;
  window.__sockets = [];
  window.WebSocket = class extends NativeWs {
    constructor(...args) { super(...args); window.__sockets.push(this); }
  };
};

export async function newPage(browser, name) {
  const context = await browser.newContext({ permissions: ["camera", "microphone"] });
  await context.addInitScript(RECORD);
  const page = await context.newPage();
  page.__name = name;
  page.__console = [];
  page.on("console", (m) => page.__console.push(`[${m.type()}] ${m.text()}`));
  page.on("pageerror", (e) => page.__console.push(`[pageerror] ${e.message}`));
  return page;
}

/**
 * Joins with the SDK on a page of the server (e.g. /live), with `options` added to
 * `Room.join`, and plays every remote track in an element (so video is decoded). The
 * room is `window.__room`; its `error` events, from the start, are in `window.__errors`.
 */
export async function joinWithSdk(page, token, options = {}) {
  await page.evaluate(async ({ token, options }) => {
    const { default: init, Room } = await import("/sdk/convene_sdk.js");
    await init();
    window.__errors = [];
    const on = { error: (e) => window.__errors.push({ code: e.code, message: e.message }) };
    const room = await Room.join({ token, ...options, on });
    room.on("trackAdded", ({ kind, stream }) => {
      const el = document.createElement(kind === "audio" ? "audio" : "video");
      el.muted = kind !== "audio";
      el.autoplay = true;
      el.srcObject = stream;
      document.body.append(el);
    });
    window.__room = room;
  }, { token, options });
}

/** Sums inbound-rtp stats of one kind over the page's live peer connections. */
export async function inbound(page, kind) {
  return page.evaluate(async (kind) => {
    const sum = { framesDecoded: 0, totalAudioEnergy: 0, bytesReceived: 0 };
    for (const pc of window.__pcs || []) {
      if (pc.connectionState === "closed") continue;
      (await pc.getStats()).forEach((s) => {
        if (s.type === "inbound-rtp" && s.kind === kind) {
          sum.framesDecoded += s.framesDecoded || 0;
          sum.totalAudioEnergy += s.totalAudioEnergy || 0;
          sum.bytesReceived += s.bytesReceived || 0;
        }
      });
    }
    return sum;
  }, kind);
}

/** The SRTP ciphers the page's live peer connections negotiated (one per transport). */
/** The layers a publisher's page sends now (a layer its browser dropped has no bitrate). */
export const sentLayers = (page) => page.evaluate(async () => {
  const out = { largest: 0 };
  for (const pc of window.__pcs) {
    (await pc.getStats()).forEach((s) => {
      if (s.type !== "outbound-rtp" || s.kind !== "video") return;
      const on = (s.targetBitrate || 0) > 0;
      out[s.rid || "-"] = { height: on ? s.frameHeight : 0, limit: s.qualityLimitationReason };
      if (on) out.largest = Math.max(out.largest, s.frameHeight || 0);
    });
  }
  return out;
});

/** The page's camera encodings as its SDK set them: "rid:active" each, e.g. "q:true h:false f:false". */
export const encodingsActive = (page) => page.evaluate(() => window.__pcs
  .filter((pc) => pc.connectionState !== "closed")
  .flatMap((pc) => pc.getSenders())
  .filter((s) => s.track?.kind === "video")
  .flatMap((s) => s.getParameters().encodings.map((e) => `${e.rid}:${e.active}`))
  .join(" "));

export async function srtpCiphers(page) {
  return page.evaluate(async () => {
    const out = [];
    for (const pc of window.__pcs || []) {
      if (pc.connectionState !== "connected") continue;
      (await pc.getStats()).forEach((s) => {
        if (s.type === "transport" && s.srtpCipher) out.push(s.srtpCipher);
      });
    }
    return out;
  });
}

/**
 * Polls `check` until it returns a truthy value other than a string; fails with `what`
 * after `ms`. A string return is "not yet, and here is why", shown on timeout.
 */
export async function eventually(what, check, ms = 20_000) {
  const end = Date.now() + ms;
  let last;
  for (;;) {
    try {
      last = await check();
      if (last && typeof last !== "string") return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

export async function saveFailure(pages, testName) {
  mkdirSync(ARTIFACTS, { recursive: true });
  for (const p of pages) {
    if (!p || p.isClosed()) continue;
    const base = join(ARTIFACTS, `${testName}-${p.__name}`);
    await p.screenshot({ path: `${base}.png`, fullPage: true }).catch(() => {});
    console.error(`--- ${p.__name} console (${base}.png) ---\n${p.__console.slice(-40).join("\n")}`);
  }
}

/**
 * On a call page just (re)loaded: clicks "Join now" when the pre-join screen shows (people
 * who may send), and waits for the call or a refusal.
 */
export async function joinPastPrejoin(page) {
  await page.waitForSelector("#prejoin:not([hidden]), #call:not([hidden]), #notice:not([hidden])", { timeout: 20_000 });
  if (await page.isVisible("#prejoin")) {
    await page.click("#join:not([disabled])");
    await page.waitForSelector("#call:not([hidden]), #notice:not([hidden])", { timeout: 20_000 });
  }
}

/**
 * The pages of one test file. `open` makes a new person's page and keeps it (`openCall`
 * also joins the call past the pre-join screen); `scenario`
 * runs a test body (after closing the previous scenario's pages), checks that no page
 * broke the server's Content-Security-Policy, and on failure saves screenshots and
 * console logs of every page. `browser` is a function
 * because the browser is launched in `before`, after the file's top level has run.
 */
export function pageSet(browser) {
  const pages = [];
  // `init`: a function run in the page before its own scripts (e.g. to change a
  // browser API).
  const open = async (name, url, init) => {
    const page = await newPage(browser(), name);
    if (init) await page.context().addInitScript(init);
    pages.push(page);
    await page.goto(url);
    return page;
  };
  // A call page (/join#token=...): opened, and joined past the pre-join screen when it
  // shows one (people who may send); a refused link stops at its notice.
  const openCall = async (name, url) => {
    const page = await open(name, url);
    await joinPastPrejoin(page);
    return page;
  };
  const scenario = (name, body, timeout = 240_000) =>
    test(name, { timeout }, async () => {
      // The previous scenario's people leave (their pages were kept until now for its
      // screenshots): on two cores, a call nobody looks at slows the next one.
      for (const page of pages.splice(0)) if (!page.isClosed()) await page.context().close();
      try {
        await body();
        const refused = pages.flatMap((p) => p.__console.filter((l) => /Content.Security.Policy/i.test(l)));
        assert.deepEqual(refused, [], "a page broke its own Content-Security-Policy");
      } catch (e) {
        await saveFailure(pages, name.replace(/\W+/g, "-"));
        throw e;
      }
    });
  return { pages, open, openCall, scenario };
}

/**
 * A test file's real server and Chromium, started before its tests and stopped after:
 * `server` is filled in by `before` (so `server.url` and `server.api` work in tests),
 * with `open` and `scenario` as in `pageSet`.
 */
export function browserSuite() {
  const server = {};
  let browser;
  before(async () => {
    Object.assign(server, await startServer());
    browser = await launch();
  });
  after(async () => {
    await browser?.close();
    await server.stop?.();
  });
  return { server, ...pageSet(() => browser) };
}
