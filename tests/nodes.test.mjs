// Two nodes on one Redis and one PostgreSQL (real servers, started here), and one room
// across them: a browser that joined through node A publishes, and a browser that joined
// through node B sees and hears it. The room's session runs on its home (node A, where
// the first member joined); node B forwards its member's signaling to it. What a member
// publishes goes to the home's relay; what a member on node B receives comes from node
// B's relay, which gets each of alice's tracks from the home once (a pipe), her camera's
// simulcast layers included, of which node B's relay sends bob the one that fits.
import { before, after } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { startServer } from "./lib/server.mjs";
import { startRedis, startPostgres } from "./lib/cluster.mjs";
import { launch, pageSet, inbound, eventually, joinWithSdk, sentLayers, encodingsActive } from "./lib/browser.mjs";

const KEY = randomBytes(24).toString("hex");
let redis;
let db;
const nodes = [];
let browser;

before(async () => {
  redis = await startRedis();
  db = await startPostgres();
  for (const id of ["node-a", "node-b"]) {
    nodes.push(await startServer({
      adminKey: KEY,
      // Each node gets a media port of its own from startServer.
      env: { CONVENE_DATABASE_URL: db.url, CONVENE_REDIS_URL: redis.url, CONVENE_NODE_ID: id },
    }));
  }
  browser = await launch();
});

after(async () => {
  await browser?.close();
  for (const n of nodes) await n.stop();
  await redis?.stop();
  await db?.stop();
});

const { open, scenario } = pageSet(() => browser);

/** A `convene_media_open` gauge of one node. */
async function mediaOpen(node, what) {
  const text = await (await fetch(`${node.url}/metrics`, { headers: { Authorization: `Bearer ${KEY}` } })).text();
  const line = text.split("\n").find((l) => l.startsWith(`convene_media_open{what="${what}"} `));
  return line ? Number(line.split(" ")[1]) : 0;
}

scenario("a browser on one node sees and hears a publisher on another", async () => {
  const [a, b] = nodes;
  // Written on node B, read on node A: one database.
  await b.api("POST", "/v1/rooms", {
    id: "two-nodes",
    participants: { alice: { role: "presenter" }, bob: { role: "attendee" } },
  });
  const token = async (node, userId) => (await node.api("POST", "/v1/rooms/two-nodes/tokens", { userId })).token;
  const alice = await open("alice", `${a.url}/live`);
  await joinWithSdk(alice, await token(a, "alice"));
  const bob = await open("bob", `${b.url}/live`);
  await joinWithSdk(bob, await token(b, "bob"));

  const video = await eventually("bob (node B) decoding alice's video (node A)", async () => {
    const v = await inbound(bob, "video");
    return v.framesDecoded > 30 ? v : `frames ${v.framesDecoded}`;
  }, 40_000);
  const audio = await eventually("bob hearing alice", async () => {
    const s = await inbound(bob, "audio");
    return s.totalAudioEnergy > 0.01 ? s : `energy ${s.totalAudioEnergy}`;
  }, 30_000);
  console.log(`bob through node B: ${video.framesDecoded} frames decoded, audio energy ${audio.totalAudioEnergy.toFixed(3)}`);
  // And the other way: alice, on the home, decodes bob's video.
  await eventually("alice decoding bob's video", async () => {
    const v = await inbound(alice, "video");
    return v.framesDecoded > 10 ? v : `frames ${v.framesDecoded}`;
  }, 40_000);

  // bob's media came through node B's relay: alice's camera and microphone, one pipe
  // each from A to B; nothing is piped the other way (bob publishes to the home).
  assert.deepEqual(
    [await mediaOpen(a, "pipes_out"), await mediaOpen(b, "pipes_in")],
    [2, 2],
    "pipes from A to B",
  );
  assert.deepEqual([await mediaOpen(b, "pipes_out"), await mediaOpen(a, "pipes_in")], [0, 0]);

  // Alice's camera goes in simulcast layers, all through the one pipe: bob, showing it
  // small, is sent the smallest by node B's relay (his size went there), then the
  // largest when he shows it large.
  const height = () => bob.evaluate(async () => {
    let h = 0;
    for (const pc of window.__pcs) {
      (await pc.getStats()).forEach((s) => {
        if (s.type === "inbound-rtp" && s.kind === "video" && s.frameHeight) h = s.frameHeight;
      });
    }
    return h;
  });
  await bob.evaluate(() => window.__room.setViewing("alice", { videoHeight: 100 }));
  const small = await eventually("bob decoding alice's smallest layer", async () => {
    const h = await height();
    return h > 0 && h <= 180 ? h : `height ${h}`;
  }, 20_000);
  // Node A cannot know how large node B's viewers show her camera: alice keeps encoding
  // every layer (well past the 3 s a smaller need must hold before she is told).
  await new Promise((r) => setTimeout(r, 4500));
  assert.equal(await encodingsActive(alice), "q:true h:true f:true", "a camera other nodes receive keeps its layers");
  await bob.evaluate(() => window.__room.setViewing("alice", { videoHeight: 2000 }));
  // The largest layer alice's browser sends then (its encoder may send less on a busy
  // machine), with node B's relay holding no link below the top.
  const large = await eventually("bob decoding alice's largest layer", async () => {
    const [h, sent, reduced] = await Promise.all([height(), sentLayers(alice), mediaOpen(b, "links_reduced")]);
    const ok = h > 0 && h >= sent.largest && reduced === 0;
    return ok ? { h, largest: sent.largest } : JSON.stringify({ h, sent, reduced });
  }, 20_000);
  console.log(`bob through node B, alice's layers: ${small} lines shown small, ${large.h} large (alice's largest then: ${large.largest})`);
  assert.equal(await mediaOpen(a, "pipes_out"), 2, "still one pipe per track");

  // One session, on node A (the home), listed the same from either node, with both.
  for (const node of [a, b]) {
    const sessions = (await node.api("GET", "/v1/sessions")).value;
    assert.equal(sessions.length, 1, JSON.stringify(sessions));
    assert.equal(sessions[0].node, "node-a", JSON.stringify(sessions));
  }
  const members = (await a.api("GET", "/v1/rooms/two-nodes/members")).value.map((m) => m.id).sort();
  assert.deepEqual(members, ["alice", "bob"]);

  // Chat typed on node B's page reaches the page on node A.
  await alice.evaluate(() => {
    window.__messages = [];
    window.__room.on("message", ({ from, text }) => window.__messages.push({ from, text }));
  });
  await bob.evaluate(() => window.__room.sendMessage("hello from node B"));
  await eventually("alice getting bob's message", () => alice.evaluate(() => {
    const got = (window.__messages || []).find((m) => m.text === "hello from node B");
    return got ? got : "not yet";
  }), 10_000);
});
