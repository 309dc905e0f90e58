// Simulcast in real Chromium: a publisher's camera goes out as three VP8 layers (RIDs
// q, h, f), the relay receives them all, and each viewer gets the one layer that fits
// how tall it shows the video (`setViewing`'s `videoHeight`): a small tile gets the
// smallest layer, a viewer that says nothing the largest. When the small tile grows,
// that viewer is switched to the top layer (at a keyframe) and its one stream goes on
// decoding, with nothing counted lost. Layers no viewer needs are paused at the
// publisher (the server's `cameraDemand`) and resumed when one does. `simulcast: false`
// sends one layer.
import assert from "node:assert/strict";
import { browserSuite, encodingsActive, eventually, joinWithSdk } from "./lib/browser.mjs";

const { server, open, scenario } = browserSuite();

/** The page's outgoing camera encodings: rid -> {height, packets}. */
const sentLayers = (page) => page.evaluate(async () => {
  const out = {};
  for (const pc of window.__pcs || []) {
    if (pc.connectionState === "closed") continue;
    (await pc.getStats()).forEach((s) => {
      if (s.type === "outbound-rtp" && s.kind === "video" && s.packetsSent > 0) {
        out[s.rid || "-"] = { height: s.frameHeight || 0, packets: s.packetsSent };
      }
    });
  }
  return out;
});

/** The page's incoming video: frame height, frames decoded, packets received and lost, freezes. */
const received = (page) => page.evaluate(async () => {
  const out = { height: 0, frames: 0, packets: 0, lost: 0, freezes: 0, streams: 0 };
  for (const pc of window.__pcs || []) {
    if (pc.connectionState === "closed") continue;
    (await pc.getStats()).forEach((s) => {
      if (s.type !== "inbound-rtp" || s.kind !== "video" || !s.packetsReceived) return;
      out.streams += 1;
      out.height = s.frameHeight || 0;
      out.frames += s.framesDecoded || 0;
      out.packets += s.packetsReceived;
      out.lost += s.packetsLost || 0;
      out.freezes += s.freezeCount || 0;
    });
  }
  return out;
});

/** The relay's figures from the server's metrics. */
async function media() {
  const res = await fetch(`${server.url}/metrics`, { headers: { Authorization: `Bearer ${server.adminKey}` } });
  const text = await res.text();
  const get = (what) => Number(new RegExp(`^convene_media_(?:open|total)\\{what="${what}"\\} (\\d+)`, "m").exec(text)?.[1] ?? NaN);
  return {
    layers: get("simulcast_layers"), switches: get("layer_switches"),
    paused: get("links_paused"), reduced: get("links_reduced"), steps: get("link_steps"),
  };
}

scenario("a camera in three layers: each viewer gets the one that fits, and switches without a break", async () => {
  await server.api("POST", "/v1/rooms", {
    id: "simulcast",
    participants: { alice: { role: "presenter" }, bob: { role: "attendee" }, carol: { role: "attendee" } },
  });
  const token = async (userId) => (await server.api("POST", "/v1/rooms/simulcast/tokens", { userId })).token;

  const alice = await open("alice", `${server.url}/live`);
  await joinWithSdk(alice, await token("alice"), { audio: false });

  // Bob shows alice's camera small; carol says nothing (the largest), so alice sends
  // every layer.
  const bob = await open("bob", `${server.url}/live`);
  await joinWithSdk(bob, await token("bob"), { audio: false, video: false });
  await bob.evaluate(() => window.__room.setViewing("alice", { videoHeight: 100 }));
  const carol = await open("carol", `${server.url}/live`);
  await joinWithSdk(carol, await token("carol"), { audio: false, video: false });

  const layers = await eventually("alice sending three layers", async () => {
    const l = await sentLayers(alice);
    return Object.keys(l).length === 3 && Object.values(l).every((x) => x.height > 0) ? l : JSON.stringify(l);
  }, 30_000);
  console.log(`alice sends ${JSON.stringify(layers)}`);
  const heights = Object.values(layers).map((l) => l.height).sort((a, b) => a - b);
  assert.deepEqual(Object.keys(layers).sort(), ["f", "h", "q"]);
  assert.ok(heights[0] < heights[1] && heights[1] < heights[2], `three sizes: ${heights}`);
  assert.equal((await media()).layers, 3, "the relay receives the three layers");

  const small = await eventually("bob decoding the smallest layer", async () => {
    const r = await received(bob);
    return r.frames > 30 && r.height === heights[0] ? r : JSON.stringify(r);
  }, 30_000);
  const large = await eventually("carol decoding the largest layer", async () => {
    const r = await received(carol);
    return r.frames > 30 && r.height === heights[2] ? r : JSON.stringify(r);
  }, 30_000);
  console.log(`bob (videoHeight 100): ${JSON.stringify(small)}; carol (nothing said): ${JSON.stringify(large)}`);
  assert.equal(small.streams, 1, "one stream, whatever the layers");

  // Bob's tile grows: the top layer, from its next keyframe on, in the same stream.
  const before = await received(bob);
  const switches = (await media()).switches;
  const t0 = Date.now();
  await bob.evaluate(() => window.__room.setViewing("alice", { videoHeight: 2000 }));
  const grown = await eventually("bob decoding the largest layer", async () => {
    const r = await received(bob);
    return r.height === heights[2] && r.frames > before.frames + 30 ? r : JSON.stringify(r);
  }, 15_000);
  console.log(`bob switched up within ${Date.now() - t0} ms: ${JSON.stringify(grown)}`);
  assert.equal(grown.streams, 1);
  assert.ok(grown.lost - before.lost <= 5, `packets counted lost across the switch: ${grown.lost - before.lost}`);
  assert.ok((await media()).switches > switches, "the relay counted the switch");

  // And down again.
  await bob.evaluate((h) => window.__room.setViewing("alice", { videoHeight: h }), heights[1]);
  const middle = await eventually("bob decoding the middle layer", async () => {
    const r = await received(bob);
    return r.height === heights[1] && r.frames > grown.frames + 30 ? r : JSON.stringify(r);
  }, 15_000);
  console.log(`bob at videoHeight ${heights[1]}: ${JSON.stringify(middle)}`);
  assert.ok(middle.lost - before.lost <= 5, `packets counted lost: ${middle.lost - before.lost}`);
  // A switch up waits for the new layer's keyframe, and its first large frame may stall
  // a decoder on a busy machine once (Chromium counts a gap over 3 frame times); more
  // would mean a break in the stream.
  assert.ok(middle.freezes - before.freezes <= 1, `freezes across two switches: ${middle.freezes - before.freezes}`);

  // A bad height is refused in words.
  const err = await bob.evaluate(() => window.__room.setViewing("alice", { videoHeight: -1 }).then(() => null, (e) => e.message));
  assert.match(err || "", /videoHeight/);
});

/** Packets each of the page's camera layers sent over `ms`, and the SDK's `active` flags. */
async function sending(page, ms = 1500) {
  const a = await sentLayers(page);
  await new Promise((r) => setTimeout(r, ms));
  const b = await sentLayers(page);
  const out = {};
  for (const rid of Object.keys(b)) out[rid] = b[rid].packets - (a[rid]?.packets ?? 0);
  out.bwe = await page.evaluate(async () => {
    const o = [];
    for (const pc of window.__pcs) {
      if (pc.connectionState === "closed") continue;
      (await pc.getStats()).forEach((s) => {
        if (s.type === "candidate-pair" && s.nominated) o.push(Math.round((s.availableOutgoingBitrate || 0) / 1000));
        if (s.type === "outbound-rtp" && s.kind === "video") o.push(`${s.rid}:${s.qualityLimitationReason}:${Math.round((s.targetBitrate || 0) / 1000)}`);
      });
    }
    return o.join(" ");
  });
  out.active = await encodingsActive(page);
  return out;
}

scenario("layers no viewer needs are paused at the publisher, and resumed when one does", async () => {
  await server.api("POST", "/v1/rooms", {
    id: "demand",
    participants: { erin: { role: "presenter" }, frank: { role: "attendee" } },
  });
  const token = async (userId) => (await server.api("POST", "/v1/rooms/demand/tokens", { userId })).token;
  const erin = await open("erin", `${server.url}/live`);
  await joinWithSdk(erin, await token("erin"), { audio: false });
  const frank = await open("frank", `${server.url}/live`);
  await joinWithSdk(frank, await token("frank"), { audio: false, video: false });
  await frank.evaluate(() => {
    window.__told = [];
    for (const e of ["trackPaused", "trackResumed"]) window.__room.on(e, () => window.__told.push(e));
    return window.__room.setViewing("erin", { videoHeight: 100 });
  });

  // Frank shows erin's camera 100 pixels tall: the smallest layer does, and erin stops
  // encoding the other two.
  const small = await eventually("erin sending only her smallest layer", async () => {
    const s = await sending(erin);
    return s.q > 0 && !s.h && !s.f ? s : JSON.stringify(s);
  }, 30_000);
  console.log(`frank at videoHeight 100: erin sends ${JSON.stringify(small)}`);
  assert.equal(small.active, "q:true h:false f:false");
  const sizes = await sentLayers(erin);
  await eventually("frank decoding the smallest layer", async () => {
    const r = await received(frank);
    return r.frames > 30 && r.height === sizes.q.height ? r : JSON.stringify(r);
  }, 20_000);

  // His tile grows: the top layer is encoded again, and reaches him.
  const before = await received(frank);
  const t0 = Date.now();
  await frank.evaluate(() => window.__room.setViewing("erin", { videoHeight: 2000 }));
  const grown = await eventually("frank decoding erin's largest layer", async () => {
    const r = await received(frank);
    // Erin's top layer as it is now: before the pause it may have sent only probes,
    // no frame (a clean-clone run timed out here, decoding 720 lines, against a
    // top-layer height of 0 read then).
    const top = await sentLayers(erin);
    if (top.f?.height > sizes.q.height && r.height === top.f.height && r.frames > before.frames + 30) return r;
    const told = await frank.evaluate(() => window.__told);
    return `${JSON.stringify(r)}; frank told ${JSON.stringify(told)}; relay ${JSON.stringify(await media())}; ` +
      `erin sends ${JSON.stringify(await sending(erin, 500))} ${JSON.stringify(await sentLayers(erin))}`;
  }, 20_000);
  const all = await sending(erin);
  console.log(`frank at videoHeight 2000: on the top layer within ${Date.now() - t0} ms ` +
    `(${JSON.stringify(grown)}); erin sends ${JSON.stringify(all)}`);
  assert.ok(all.q > 0 && all.h > 0 && all.f > 0, JSON.stringify(all));
  assert.equal(grown.streams, 1, "one stream across the pause and the switch");
  assert.ok(grown.lost - before.lost <= 5, `packets counted lost: ${grown.lost - before.lost}`);

  // Nobody shows it: only the smallest layer goes on (for the next viewer's first frame).
  await frank.evaluate(() => window.__room.setViewing("erin", { video: false }));
  const hidden = await eventually("erin sending only her smallest layer again", async () => {
    const s = await sending(erin);
    return s.q > 0 && !s.h && !s.f ? s : JSON.stringify(s);
  }, 30_000);
  console.log(`frank hides erin's camera: erin sends ${JSON.stringify(hidden)}`);
});

scenario("simulcast: false sends one layer", async () => {
  await server.api("POST", "/v1/rooms", {
    id: "one-layer",
    participants: { dave: { role: "presenter" } },
  });
  const { token } = await server.api("POST", "/v1/rooms/one-layer/tokens", { userId: "dave" });
  const dave = await open("dave", `${server.url}/live`);
  await joinWithSdk(dave, token, { audio: false, simulcast: false });
  const sent = await eventually("dave sending", async () => {
    const l = await sentLayers(dave);
    return Object.keys(l).length ? l : "nothing sent yet";
  });
  await new Promise((r) => setTimeout(r, 2000));
  assert.deepEqual(Object.keys(await sentLayers(dave)), ["-"], JSON.stringify(sent));
});
