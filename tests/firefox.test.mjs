// The call in a second browser engine: Debian's Firefox ESR, driven headless by
// puppeteer-core over WebDriver BiDi (Playwright cannot drive Debian's Firefox).
// A Firefox page and a Chromium page join one call from their invite links and get each
// other's video and audio; the Firefox page fits its window; and where ICE cannot
// succeed (UDP to the relay blocked, as by a firewall), the SDK's rejoins slow down
// instead of looping.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import puppeteer from "puppeteer-core";
import { startServer } from "./lib/server.mjs";
import { launch, newPage, inbound, eventually, joinPastPrejoin, RECORD, ARTIFACTS } from "./lib/browser.mjs";

const FIREFOX = process.env.FIREFOX || "/usr/bin/firefox-esr";

// Fake camera and microphone, no prompts, loopback ICE, autoplay. The two permission
// prefs matter beyond prompts: without them Firefox may offer only mDNS candidates,
// which cannot work on a loopback-only machine.
const PREFS = {
  "media.navigator.streams.fake": true,
  "media.navigator.permission.disabled": true,
  "permissions.default.camera": 1,
  "permissions.default.microphone": 1,
  "media.peerconnection.ice.loopback": true,
  "media.autoplay.default": 0,
};

// The relay unreachable, in the page: the page is given none of the relay's ICE
// candidates (and told there are no more), so each media connection fails at once.
const NO_RELAY = () => {
  const proto = window.RTCPeerConnection.prototype;
  const setRemote = proto.setRemoteDescription;
  proto.setRemoteDescription = async function (d) {
    const stripped = d && d.sdp ? { type: d.type, sdp: d.sdp.replace(/a=candidate:[^\r\n]*\r\n/g, "") } : d;
    await setRemote.call(this, stripped);
    await addCandidate.call(this, { candidate: "", sdpMLineIndex: 0 }).catch(() => {});
  };
  const addCandidate = proto.addIceCandidate;
  proto.addIceCandidate = async function () {};
  // When each connection was made and when it failed (ms since the page loaded).
  window.__pcTimes = [];
  const Pc = window.RTCPeerConnection;
  window.RTCPeerConnection = class extends Pc {
    constructor(...args) {
      super(...args);
      const t = { born: Math.round(performance.now()) };
      window.__pcTimes.push(t);
      this.addEventListener("connectionstatechange", () => {
        if (this.connectionState === "failed") t.failed = Math.round(performance.now());
      });
    }
  };
};

let server;
let chromium;
const firefoxes = [];
const pages = [];

async function firefox(prefs) {
  const browser = await puppeteer.launch({ browser: "firefox", executablePath: FIREFOX, headless: true, extraPrefsFirefox: prefs });
  firefoxes.push(browser);
  return browser;
}

async function firefoxPage(browser, name, url, script) {
  const context = await browser.createBrowserContext();
  const page = await context.newPage();
  page.__name = name;
  page.__console = [];
  page.on("console", (m) => page.__console.push(`[${m.type()}] ${m.text()}`));
  page.on("pageerror", (e) => page.__console.push(`[pageerror] ${e.message}`));
  await page.evaluateOnNewDocument(RECORD);
  if (script) await page.evaluateOnNewDocument(script);
  await page.setViewport({ width: 1280, height: 800 });
  await page.goto(url);
  pages.push(page);
  return page;
}

const text = (page, sel) => page.$eval(sel, (e) => e.textContent);

// Screenshots and console of every page, on failure.
async function run(name, body) {
  try {
    await body();
  } catch (e) {
    mkdirSync(ARTIFACTS, { recursive: true });
    for (const p of pages) {
      const base = join(ARTIFACTS, `${name}-${p.__name}`);
      await p.screenshot({ path: `${base}.png` }).catch(() => {});
      console.error(`--- ${p.__name} console (${base}.png) ---\n${p.__console.slice(-40).join("\n")}`);
    }
    throw e;
  }
}

before(async () => {
  server = await startServer();
  chromium = await launch();
});

after(async () => {
  for (const b of firefoxes) await b.close().catch(() => {});
  await chromium?.close();
  await server?.stop();
});

test("Firefox and Chromium in one call: video and audio both ways, and the page fits", { timeout: 180_000 }, () =>
  run("firefox-call", async () => {
    await server.api("POST", "/v1/rooms", { id: "engines", participants: { fox: { role: "presenter" }, chr: {} } });
    const ff = await firefox(PREFS);
    const fox = await firefoxPage(ff, "fox", (await server.api("POST", "/v1/rooms/engines/tokens", { userId: "fox" })).joinUrl);
    await fox.waitForSelector("#prejoin:not([hidden])");
    await eventually("Firefox previews its camera", () => fox.evaluate(() => document.getElementById("preview").videoWidth > 0));
    await fox.click("#join");
    await eventually("fox joins", async () => (await text(fox, "#state")) === "connected" || text(fox, "#state"));

    const chr = await newPage(chromium, "chr");
    pages.push(chr);
    await chr.goto((await server.api("POST", "/v1/rooms/engines/tokens", { userId: "chr" })).joinUrl);
    await joinPastPrejoin(chr);

    for (const [page, other] of [[fox, "chr"], [chr, "fox"]]) {
      await eventually(`${page.__name} lists ${other}`, () => page.evaluate((o) => Boolean(document.querySelector(`#people li[data-id="${o}"]`)), other));
      const video = await eventually(`${page.__name} decodes ${other}'s video`, async () => {
        const v = await inbound(page, "video");
        return v.framesDecoded > 10 && v;
      }, 30_000);
      const audio = await eventually(`${page.__name} receives ${other}'s audio`, async () => {
        const a = await inbound(page, "audio");
        return a.bytesReceived > 2000 && a;
      }, 30_000);
      await eventually(`${page.__name} plays ${other}'s camera`, () => page.evaluate((o) => {
        const v = document.querySelector(`[data-tile="${o}:camera"] video`);
        return Boolean(v && v.videoWidth > 0);
      }, other));
      console.log(`${page.__name} receives ${other}: ${video.framesDecoded} frames decoded, ${audio.bytesReceived} audio bytes`);
    }
    // Chromium hears Firefox's fake microphone (a tone), not silence.
    await eventually("chr hears fox", async () => (await inbound(chr, "audio")).totalAudioEnergy > 0.01, 30_000);

    // The layout in Firefox: the side panel keeps its 20rem, nothing is wider than the
    // window, "Send" is on screen.
    const box = await fox.evaluate(() => ({
      aside: document.querySelector("aside").getBoundingClientRect().width,
      scroll: document.documentElement.scrollWidth,
      width: innerWidth,
      send: document.querySelector("#chat-form button").getBoundingClientRect().right,
    }));
    assert.ok(box.aside <= 320.5, `the side panel is ${box.aside} px wide`);
    assert.ok(box.scroll <= box.width, `the page is ${box.scroll} px wide in a ${box.width} px window`);
    assert.ok(box.send <= box.width, `"Send" ends at ${box.send} px`);
    // Chat from Firefox reaches Chromium.
    await fox.type("#chat-text", "hello from Firefox");
    await fox.click("#chat-form button");
    await eventually("chr reads fox's message", async () => /hello from Firefox/.test(await chr.textContent("#chat-log")));
  }),
);

test("when ICE cannot succeed, Firefox's rejoins slow down instead of looping", { timeout: 120_000 }, () =>
  run("firefox-ice-failure", async () => {
    await server.api("POST", "/v1/rooms", { id: "no-ice", participants: { lone: {} } });
    const ff = await firefox(PREFS);
    const lone = await firefoxPage(ff, "lone", (await server.api("POST", "/v1/rooms/no-ice/tokens", { userId: "lone" })).joinUrl, NO_RELAY);
    await clickJoin(lone);
    const start = Date.now();
    await new Promise((r) => setTimeout(r, 30_000));
    const times = await lone.evaluate(() => window.__pcTimes);
    console.log(`Firefox with the relay unreachable, ${Math.round((Date.now() - start) / 1000)} s: ${JSON.stringify(times)}`);
    assert.ok(times.length <= 20, `${times.length} peer connections in 30 s`);
    // How long the SDK waited after each failure before making the next connection.
    const waits = [];
    for (const t of times) {
      const before = times.filter((x) => x.failed !== undefined && x.failed <= t.born).map((x) => x.failed);
      if (before.length) waits.push(t.born - Math.max(...before));
    }
    console.log(`waits after each failure: ${waits.join(", ")} ms`);
    // The failures really happened (else this proves nothing), and each wait is about
    // twice the one before (250 ms, 500 ms, 1 s, ...): the backoff grows across
    // rejoins instead of starting again at each one (which made 195 connections in 30 s).
    assert.ok(waits.length >= 3, `only ${waits.length} rejoins: ${JSON.stringify(times)}`);
    for (let i = 1; i < waits.length; i++) {
      assert.ok(waits[i] >= waits[i - 1], `wait ${i} (${waits[i]} ms) is shorter than wait ${i - 1} (${waits[i - 1]} ms)`);
    }
    assert.ok(waits.at(-1) >= 4 * waits[0], `the waits did not grow: ${waits.join(", ")} ms`);
  }),
);

// Joins from the pre-join screen, whatever the connection then does.
async function clickJoin(page) {
  await page.waitForSelector("#prejoin:not([hidden])", { timeout: 20_000 });
  await page.click("#join");
  await page.waitForSelector("#call:not([hidden])", { timeout: 20_000 });
}
