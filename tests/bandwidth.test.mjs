// Per-viewer bandwidth, in real Chromium on a shaped link: three viewers of one
// publisher's simulcast camera, one of them (bob) behind a cap put on the packets the
// server sends him (tc htb on loopback, matched by his port: no other traffic is
// touched). The server's estimate of his link (from his transport-wide feedback) moves
// him to the smallest layer while the others keep the largest; lifted, he is back on the
// largest; under a cap that cannot carry even the smallest, his video pauses (the SDK's
// `trackPaused`) while audio goes on, and resumes by itself (`trackResumed`).
import { before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { browserSuite, eventually, joinWithSdk, sentLayers } from "./lib/browser.mjs";

const { server, open, scenario } = browserSuite();

// Shaping loopback needs root (CAP_NET_ADMIN), as the CI machine has; tc says so if not.
const tc = (...args) => execFileSync("tc", args, { stdio: ["ignore", "ignore", "pipe"] });
const untc = () => { try { tc("qdisc", "del", "dev", "lo", "root"); } catch { /* none */ } };

/**
 * Caps what loopback carries to UDP `ports` at `bits` per second, with a queue of half a
 * second's worth (a router's buffer; a longer one would hold old video for seconds).
 */
function cap(ports, bits) {
  untc();
  const rate = `${bits / 1000}kbit`;
  tc("qdisc", "add", "dev", "lo", "root", "handle", "1:", "htb", "default", "10");
  // Everything else: unshaped (its burst is set: the one htb computes for 10 gbit/s is
  // 0 bytes, which holds packets back a timer tick now and then).
  tc("class", "add", "dev", "lo", "parent", "1:", "classid", "1:10", "htb", "rate", "10gbit", "burst", "1mb", "cburst", "1mb");
  tc("class", "add", "dev", "lo", "parent", "1:", "classid", "1:20", "htb", "rate", rate, "ceil", rate, "burst", "4k");
  tc("qdisc", "add", "dev", "lo", "parent", "1:20", "handle", "20:", "bfifo", "limit", String(Math.max(3000, bits / 16)));
  for (const port of ports) {
    tc("filter", "add", "dev", "lo", "parent", "1:", "protocol", "ip", "prio", "1", "u32",
      "match", "ip", "protocol", "17", "0xff", "match", "ip", "dport", String(port), "0xffff", "flowid", "1:20");
  }
}

before(untc);
after(untc);

/** The page's incoming video and audio, and its connections' local ports. */
const received = (page) => page.evaluate(async () => {
  const out = { height: 0, frames: 0, lost: 0, packets: 0, audio: 0, ports: [] };
  for (const pc of window.__pcs || []) {
    if (pc.connectionState === "closed") continue;
    const stats = await pc.getStats();
    stats.forEach((s) => {
      if (s.type === "inbound-rtp" && s.kind === "video") {
        out.height = s.frameHeight || 0;
        out.frames += s.framesDecoded || 0;
        out.lost += s.packetsLost || 0;
        out.packets += s.packetsReceived || 0;
      }
      if (s.type === "inbound-rtp" && s.kind === "audio") out.audio += s.packetsReceived || 0;
      // Every port its sockets have: which one the server's packets reach depends on
      // the host's addresses (a host candidate, or the loopback one it maps to).
      if (s.type === "local-candidate") {
        for (const p of [s.port, s.relatedPort]) if (p && !out.ports.includes(p)) out.ports.push(p);
      }
    });
  }
  return out;
});

async function media(what) {
  const res = await fetch(`${server.url}/metrics`, { headers: { Authorization: `Bearer ${server.adminKey}` } });
  return Number(new RegExp(`^convene_media_(?:open|total)\\{what="${what}"\\} (\\d+)`, "m").exec(await res.text())?.[1] ?? NaN);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

scenario("a viewer on a weak link gets the smallest layer, then the largest again, and a pause it is told of", async () => {
  await server.api("POST", "/v1/rooms", {
    id: "bandwidth",
    participants: { alice: { role: "presenter" }, bob: { role: "attendee" }, carol: { role: "attendee" } },
  });
  const token = async (userId) => (await server.api("POST", "/v1/rooms/bandwidth/tokens", { userId })).token;
  const alice = await open("alice", `${server.url}/live`);
  await joinWithSdk(alice, await token("alice"));
  const viewers = {};
  for (const name of ["bob", "carol"]) {
    viewers[name] = await open(name, `${server.url}/live`);
    await joinWithSdk(viewers[name], await token(name), { audio: false, video: false });
    await viewers[name].evaluate(() => {
      window.__paused = [];
      window.__room.on("trackPaused", (e) => window.__paused.push({ ...e, paused: true, at: Date.now() }));
      window.__room.on("trackResumed", (e) => window.__paused.push({ ...e, paused: false, at: Date.now() }));
    });
  }
  const { bob, carol } = viewers;
  const top = async (page, name) => eventually(`${name} on the largest layer`, async () => {
    const r = await received(page);
    return r.height >= 720 && r.frames > 30 ? r : JSON.stringify(r);
  }, 40_000);
  const start = await top(bob, "bob");
  await top(carol, "carol");
  assert.ok(start.ports.length > 0, "bob's ports");

  // ~300 kbit/s to bob: the smallest layer (180 lines) and audio fit, no larger one.
  cap(start.ports, 300_000);
  let t0 = Date.now();
  const low = await eventually("bob on the smallest layer", async () => {
    const r = await received(bob);
    return r.height > 0 && r.height <= 180 ? r : JSON.stringify(r);
  }, 30_000);
  console.log(`capped at 300 kbit/s: bob on ${low.height} lines after ${Date.now() - t0} ms`);
  // Settled: over the next 10 s it keeps decoding and loses little.
  await sleep(3000);
  const a = await received(bob);
  await sleep(10_000);
  const b = await received(bob);
  const fps = (b.frames - a.frames) / 10;
  const loss = (b.lost - a.lost) / Math.max(1, b.packets - a.packets + b.lost - a.lost);
  console.log(`capped, 10 s: ${fps.toFixed(1)} fps at ${b.height} lines, ${(100 * loss).toFixed(1)} % of video packets lost`);
  assert.ok(b.height <= 180 || (b.height <= 360 && a.height <= 180), `still small: ${JSON.stringify(b)}`);
  assert.ok(fps > 10, `more than 10 fps on the weak link: ${fps}`);
  assert.ok(loss < 0.05, `no sustained loss: ${(100 * loss).toFixed(1)} %`);
  // Carol, uncapped, keeps the largest layer alice sends, larger than bob's: the relay
  // holds one viewer below the top, bob. (Alice's browser decides her largest layer: on
  // a busy machine its encoder may send less than 720 lines. Her send estimate no
  // longer sinks when bob's link is capped: the relay used to drop her padding probes
  // unreported, and her browser took them for lost.)
  const others = await received(carol);
  const sent = await sentLayers(alice);
  console.log(`carol: ${others.height} lines; alice sends ${JSON.stringify(sent)}; relay: ${await media("link_steps")} link steps`);
  assert.equal(others.height, sent.largest, `carol, uncapped, keeps the largest: ${JSON.stringify(others)}`);
  assert.ok(sent.largest > low.height, `alice sends a layer larger than bob's: ${JSON.stringify(sent)}`);
  assert.equal(await media("links_reduced"), 1, "the relay holds one viewer below the top layer");
  const told = await bob.evaluate(() => window.__paused);
  console.log(`capped at 300 kbit/s: bob's video paused ${told.filter((e) => e.paused).length} times`);
  assert.deepEqual(told, [], "the smallest layer fits: never paused");

  // The cap lifted: back to the largest within 15 s (the relay's level back at the
  // top, and bob on the largest layer alice sends then).
  untc();
  t0 = Date.now();
  const back = await eventually("bob, the cap lifted, on the largest layer", async () => {
    const [r, now, reduced] = await Promise.all([received(bob), sentLayers(alice), media("links_reduced")]);
    const ok = reduced === 0 && r.height > 0 && r.height >= now.largest;
    return ok ? { ...r, largest: now.largest } : JSON.stringify({ r, now, reduced });
  }, 30_000);
  const recovered = Date.now() - t0;
  console.log(`cap lifted: bob on ${back.height} lines (alice's largest: ${back.largest}) after ${recovered} ms`);
  assert.ok(recovered < 15_000, `back to the largest within 15 s: ${recovered} ms`);

  // ~60 kbit/s: not even the smallest layer fits; video pauses, audio goes on.
  cap((await received(bob)).ports, 60_000);
  t0 = Date.now();
  const paused = await eventually("bob told his video is paused", () =>
    bob.evaluate(() => window.__paused.find((e) => e.paused) || "not yet"), 40_000);
  await sleep(1000); // what the link's queue still held
  console.log(`capped at 60 kbit/s: trackPaused after ${Date.now() - t0} ms: ${JSON.stringify(paused)}`);
  assert.deepEqual([paused.participantId, paused.kind], ["alice", "video"]);
  assert.equal(await media("links_paused"), 1, "the relay counts a paused link");
  const still = await received(bob);
  await sleep(2000);
  const later = await received(bob);
  console.log(`paused, 2 s: ${later.packets - still.packets} video packets, ${later.audio - still.audio} audio packets`);
  assert.ok(later.packets - still.packets <= 2, "no video while paused");
  assert.ok(later.audio - still.audio > 20, "audio goes on");
  untc();
  t0 = Date.now();
  const resumed = await eventually("bob told his video resumed", () =>
    bob.evaluate(() => window.__paused.find((e) => !e.paused) || "not yet"), 30_000);
  console.log(`cap lifted: trackResumed after ${Date.now() - t0} ms`);
  assert.equal(resumed.participantId, "alice");
  assert.equal(await media("links_paused"), 0);
  const again = await received(bob);
  await eventually("bob decoding again", async () => {
    const r = await received(bob);
    return r.frames > again.frames + 20 ? r : JSON.stringify(r);
  }, 20_000);
  console.log(`relay: ${await media("link_steps")} link steps`);
});
